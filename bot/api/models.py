"""Request and response bodies of /api/v1 (so the published OpenAPI has real schemas)."""

from __future__ import annotations

from datetime import datetime

from annotated_types import MaxLen
from pydantic import BaseModel, Field


class Message(BaseModel):
    """What the bot would say in chat about the outcome."""

    message: str


class Workspace(BaseModel):
    """A workspace the app user acts in (as the chat user they connected there)."""

    workspace: int = Field(description="Pass as `?workspace=` when you act in several.")
    frontend: str
    name: str | None


class Workspaces(BaseModel):
    workspaces: list[Workspace]


class Claim(BaseModel):
    code: str = Field(min_length=1, max_length=40, description="The code `connect app` gave.")


class Approval(BaseModel):
    """A pending action: nothing happens until the person approves it (here or in chat)."""

    approval_id: str
    summary: str
    expires_in_seconds: int
    message: str


class Decision(BaseModel):
    approve: bool


class Account(BaseModel):
    id: str = Field(description="The account's handle ref, as chat shows it.")
    platform: str
    handle: str
    status: str


class Accounts(BaseModel):
    accounts: list[Account]


class Figures(BaseModel):
    """Normalized figures (metric name -> value) and when the platform computed them."""

    platform: str
    account: str
    as_of: datetime
    figures: dict[str, float]


class PostFigures(Figures):
    post_id: str
    title: str | None


class Metrics(BaseModel):
    period: str
    as_of: datetime
    accounts: list[Figures]
    posts: list[PostFigures]
    unavailable: dict[str, str] = Field(description="platform -> why its figures are missing")


class Post(BaseModel):
    id: int
    platform: str
    platform_post_id: str | None
    title: str | None
    status: str = Field(description="pending, uploading, processing, published or failed")
    bytes_total: int | None
    bytes_confirmed: int
    error: str | None
    created_at: datetime
    updated_at: datetime


class Posts(BaseModel):
    posts: list[Post]


class UploadDetails(BaseModel):
    """Where and how to post the video (every field optional, as in chat)."""

    platform: str | None = Field(default=None, max_length=40)
    account: str | None = Field(default=None, max_length=100)
    title: str | None = Field(default=None, max_length=500)
    description: str = Field(default="", max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=100)
    privacy: str | None = Field(default=None, max_length=20)


class UploadByUrl(UploadDetails):
    url: str = Field(max_length=2048, description="An https link to the video.")


def upload_form_schema() -> dict[str, object]:
    """The multipart/form-data body of POST /uploads: the file, and the details as text
    fields with UploadDetails' limits (`tags` comma-separated)."""
    properties: dict[str, object] = {
        "file": {"type": "string", "format": "binary", "description": "The video."}
    }
    for name, spec in UploadDetails.model_fields.items():
        limit = next((m.max_length for m in spec.metadata if isinstance(m, MaxLen)), None)
        if name == "tags":
            properties[name] = {"type": "string", "description": "Comma-separated."}
        else:
            properties[name] = {"type": "string", "maxLength": limit}
    return {"type": "object", "properties": properties, "required": ["file"]}


class Digest(BaseModel):
    channel: str
    time: str = Field(description="HH:MM, local to `zone`")
    zone: str


class Digests(BaseModel):
    digests: list[Digest]


class DigestTime(BaseModel):
    time: str = Field(max_length=5, description="HH:MM on a 24-hour clock")
    zone: str = Field(default="UTC", max_length=64, description="An IANA time zone")


class Budget(BaseModel):
    label: str
    scope: str
    platform: str | None
    used: int
    limit: int
    remaining: int
    reset_at: datetime | None


class Quota(BaseModel):
    budgets: list[Budget]


class CaptionRequest(BaseModel):
    platform: str = Field(max_length=40)
    description: str = Field(min_length=1, max_length=5000)
    tone: str = Field(default="neutral", max_length=20)
    variants: int = Field(default=3, ge=1, le=5)


class Caption(BaseModel):
    title: str | None
    body: str
    hashtags: list[str]


class Captions(BaseModel):
    platform: str
    captions: list[Caption]


class AuditEntry(BaseModel):
    """Who asked the bot to do what, when, and how it ended (people by their chat ids)."""

    at: datetime
    action: str = Field(description="e.g. upload, link, request:upload, approval:upload")
    target: str | None
    outcome: str
    actor: str | None = Field(description="Who acted (for an approval: who decided).")
    actor_name: str | None
    requested_by: str | None = Field(description="For an approval: who asked for it.")
    requested_by_name: str | None


class AuditLog(BaseModel):
    entries: list[AuditEntry]
