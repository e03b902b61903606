"""Request and response bodies of /api/v1 (so the published OpenAPI has real schemas)."""

from __future__ import annotations

from datetime import datetime

from annotated_types import MaxLen
from pydantic import BaseModel, Field, model_validator

# RFC 3339 (with `T`), the offset optional: without one, the time is read in `time_zone`.
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
_PUBLISH_AT = (
    "When to publish: RFC 3339 with an offset (`2026-12-04T18:00:00+01:00`), or a local"
    " wall time (`2026-12-04T18:00`) read in `time_zone` (else in your chat time zone)."
    " Past times and times more than SCHEDULE_MAX_DAYS ahead are refused; a local time"
    " skipped by a clock change is refused, one that happens twice means the first."
)
_TIME_ZONE = "An IANA time zone (`Europe/Paris`) for a `publish_at` without an offset."


class PublishTime(BaseModel):
    """A time to publish at, with the zone its wall-clock reading is in."""

    publish_at: str | None = Field(
        default=None, max_length=40, pattern=TIME_PATTERN, description=_PUBLISH_AT
    )
    time_zone: str | None = Field(default=None, max_length=64, description=_TIME_ZONE)

    @model_validator(mode="after")
    def _zone_needs_a_time(self) -> PublishTime:
        if self.time_zone is not None and self.publish_at is None:
            raise ValueError("time_zone is given without publish_at")
        return self


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


class UploadDetails(PublishTime):
    """Where and how to post the video, and when (every field optional, as in chat)."""

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
            text: dict[str, object] = {"type": "string", "maxLength": limit}
            if spec.description:
                text["description"] = spec.description
            if name == "publish_at":
                text["pattern"] = TIME_PATTERN
            properties[name] = text
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


class ScheduledPost(BaseModel):
    """A post waiting for its time (or missed, or failed in the last week)."""

    number: int = Field(description="The post's number, as chat's `queue` shows it.")
    publish_at: datetime
    local_time: str = Field(description="The time in your zone and in UTC, as chat shows it.")
    platform: str
    account: str = Field(description="The account's handle ref.")
    handle: str
    title: str | None
    status: str = Field(
        description="scheduled; uploaded (the platform publishes it at its time);"
        " missed (no worker ran at its time: reschedule or cancel it);"
        " failed (reschedule it to try again)"
    )
    error: str | None
    yours: bool = Field(description="Whether you asked for it (only yours can be changed).")


class Queue(BaseModel):
    scope: str = Field(description="mine or workspace")
    posts: list[ScheduledPost]


class Reschedule(PublishTime):
    """The new time (`publish_at` required)."""

    publish_at: str = Field(max_length=40, pattern=TIME_PATTERN, description=_PUBLISH_AT)


class Slot(BaseModel):
    """A weekday-and-hour the account's history favours, and its next start."""

    at: datetime
    local_time: str
    weekday: str
    hour: int = Field(description="Hour of the day in `zone`")
    mean_views: float = Field(description="Mean first-day views of the posts at this hour")
    posts: int = Field(description="How many posts the figure rests on")


class BestTimes(BaseModel):
    platform: str
    account: str
    zone: str
    posts: int = Field(description="Recent posts with first-day figures")
    min_posts: int = Field(description="Below this many, no suggestion")
    slots: list[Slot] = Field(description="Soonest first; empty without enough history")
