"""Upload a video to one of the requester's accounts, after their approval."""

from __future__ import annotations

import re
from typing import Any

from agent import captions
from agent.actions import approvals
from agent.actions.accounts import resolve_account
from agent.actions.base import (
    ActionError,
    Outcome,
    normalize_platform,
    platform_title,
    require_configured,
)
from agent.actions.captions import rules_for
from agent.context import ActionContext
from integrations.base import UploadRequest

PRIVACY = ("private", "unlisted", "public")
# A locator says where bytes are; anything that looks like a credential stays out of it.
_SECRET_KEY = re.compile(r"token|secret|auth|password|cookie|signature", re.IGNORECASE)


def clean_locator(locator: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in locator.items() if not _SECRET_KEY.search(str(k))}


async def request_upload(
    ctx: ActionContext,
    *,
    platform: str | None,
    account: str | None,
    source: dict[str, Any] | None,
    source_name: str,
    title: str | None,
    description: str = "",
    tags: list[str] | None = None,
    privacy: str | None = None,
) -> Outcome:
    """Check everything now (account, limits, privacy), then ask for approval."""
    plat = normalize_platform(platform)
    target = await resolve_account(ctx, account, platform=plat)
    require_configured(ctx, target.platform)
    if not source:
        raise ActionError(
            "Attach the video to your message (or, in the shell, give its path:"
            ' `upload youtube ~/clip.mp4 "Title"`).'
        )
    title = " ".join((title or "").split()) or source_name.rsplit(".", 1)[0]
    privacy = (privacy or ctx.deps.config.youtube_default_privacy).lower()
    if privacy not in PRIVACY:
        raise ActionError(f"Privacy must be one of: {', '.join(PRIVACY)}.")
    tag_list = [t.strip().lstrip("#") for t in (tags or []) if t and t.strip()]
    rules = rules_for(ctx, target.platform) if target.platform in captions.DEFAULT_RULES else None
    if rules is not None:
        check = captions.Caption(title=title, body=description, hashtags=())
        if target.platform != "youtube":
            check = captions.Caption(title=None, body=description, hashtags=())
        issues = captions.problems(rules, check)
        if rules.tags_max_chars_total is not None:
            # YouTube counts each tag plus a separator (and quotes around tags with spaces).
            total = sum(len(t) + 1 + (2 if " " in t else 0) for t in tag_list)
            if total > rules.tags_max_chars_total:
                issues.append(f"tags over {rules.tags_max_chars_total} characters in total")
        if issues:
            raise ActionError(
                f"The {platform_title(target.platform)} text has problems: {'; '.join(issues)}."
            )
    args = {
        "account": target.ref,
        "platform": target.platform,
        "source": clean_locator(source),
        "source_name": source_name,
        "title": title,
        "description": description,
        "tags": tag_list,
        "privacy": privacy,
    }
    summary = (
        f"Upload '{source_name}' to {platform_title(target.platform)} @{target.handle}"
        f" as '{title}' ({privacy})"
    )
    return await approvals.propose(ctx, "upload", args, summary)


async def execute_upload(
    ctx: ActionContext, pending: approvals.PendingAction, progress: approvals.Progress | None
) -> str:
    args = pending.args
    target = await resolve_account(ctx, args["account"])
    request = UploadRequest(
        title=args["title"],
        description=args.get("description", ""),
        tags=tuple(args.get("tags") or ()),
        privacy=args.get("privacy", "private"),
    )
    outcome = await ctx.deps.ops.upload(
        ctx.identity,
        account_ref=target.ref,
        source=args["source"],
        request=request,
        idempotency_key=f"approval:{pending.id}",
        progress=progress,
    )
    result = outcome.result
    where = f" {result.url}" if result.url else ""
    note = (
        f" The platform set it to {result.privacy} (it did not allow {request.privacy})."
        if result.privacy_forced
        else ""
    )
    return f"Uploaded to {platform_title(target.platform)} @{target.handle}:{where}{note}"


approvals.register("upload", execute_upload)
