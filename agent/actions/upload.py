"""Upload a video to one of the requester's accounts, after their approval.

Everything the platform declares (privacy values, caption rules, how it takes
media) is checked before the approval is offered: an approval is only asked for
a request the platform can carry out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from agent.actions import approvals, schedule
from agent.actions.accounts import resolve_account, shown
from agent.actions.base import ActionError, Outcome, normalize_platform, require_configured
from agent.actions.schedule_time import show
from agent.context import ActionContext, Progress
from agent.jobs.upload import UploadJob, queue_upload
from agent.media_links import is_public_base_url, needs_public_url_message
from agent.sources import PublicHosts, probe_url
from integrations.base import UploadRequest
from integrations.capabilities import PlatformCapabilities
from integrations.text import compose_post_text

# A locator says where bytes are; anything that looks like a credential stays out of it.
_SECRET_KEY = re.compile(r"token|secret|auth|password|cookie|signature", re.IGNORECASE)


def clean_locator(locator: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in locator.items() if not _SECRET_KEY.search(str(k))}


def check_reachable(source: dict[str, Any], at: datetime) -> None:
    """A deferred post reads its file at its time: refuse a source whose link lapses first.

    The file is re-fetched through the chat API at run time rather than copied at
    approval: the worker that publishes may run on another machine than the one that
    took the approval (no shared disk), chat files can be gigabytes, and Slack
    re-issues access with the bot token whenever asked. A link that carries its own
    expiry (`expires_at` in the locator, e.g. a signed CDN URL) must outlive the time.
    """
    expires = source.get("expires_at")
    if expires and datetime.fromisoformat(str(expires)) <= at:
        raise ActionError(
            "The link to that attachment expires before the scheduled time, so I could not"
            " fetch it then. Schedule it sooner, or share the video where I can fetch it"
            " again later (Slack, or a public https link)."
        )


def choose_privacy(caps: PlatformCapabilities, asked: str | None) -> str:
    """The privacy to publish with: the asked word if the platform accepts it, else refuse."""
    if asked is None or not asked.strip():
        return caps.privacy.default
    word = asked.strip().lower()
    if word in caps.privacy.values:
        return word
    if caps.privacy.fixed:
        raise ActionError(
            f"{caps.display_name} posts are always {caps.privacy.default}; "
            f"'{word[:20]}' is not available there."
        )
    raise ActionError(
        f"{caps.display_name} privacy must be one of: {', '.join(caps.privacy.values)}."
    )


def check_text(
    caps: PlatformCapabilities, *, title: str, description: str, tags: list[str]
) -> None:
    """Refuse text the platform would refuse, before anyone approves it."""
    rules = caps.caption_rules
    if rules.has_title:
        issues = rules.problems(title=title, body=description, tags=tuple(tags))
    else:
        # No title field: the platform publishes title, text and tags as one text.
        request = UploadRequest(
            title=title, privacy=caps.privacy.default, description=description, tags=tuple(tags)
        )
        issues = rules.problems(title=None, body=compose_post_text(request))
    if issues:
        raise ActionError(f"The {caps.display_name} text has problems: {'; '.join(issues)}.")


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
    reply_to: dict[str, Any] | None = None,
    publish_at: str | None = None,
    time_zone: str | None = None,
) -> Outcome:
    """Check everything now (account, privacy, text, the time), then ask for approval.

    `reply_to` (where the request was made) is where the upload job's status goes.
    `publish_at` is a time phrase (`at 18:00 tomorrow`, `in 2h`, ISO 8601) read in
    the requester's zone, or in `time_zone` (an IANA zone) when given
    (agent.actions.schedule.when_from).
    """
    plat = normalize_platform(ctx, platform)
    target = await resolve_account(ctx, account, platform=plat)
    require_configured(ctx, target.platform)
    caps = ctx.deps.platforms.capabilities(target.platform)
    if not source:
        raise ActionError(
            "Attach the video to your message (or, in the shell, give its path:"
            f' `upload {caps.name} ~/clip.mp4 "Title"`).'
        )
    base_url = ctx.deps.config.public_base_url
    if caps.media == "public_url" and not is_public_base_url(base_url):
        # The platform would fetch the video from this bot's /media link, which it
        # cannot reach: say so now rather than after the person approved.
        raise ActionError(needs_public_url_message(caps.display_name, base_url))
    title = " ".join((title or "").split()) or source_name.rsplit(".", 1)[0]
    when = await schedule.when_from(ctx, publish_at, time_zone) if publish_at else None
    native_as = caps.scheduling.publishes_as if caps.scheduling.native else None
    chosen = choose_privacy(caps, privacy if when is None or privacy else native_as)
    if when is not None and native_as is not None and chosen != native_as:
        raise ActionError(
            f"{caps.display_name} publishes a scheduled post as {native_as}; schedule it"
            f" {native_as}, or upload it {chosen} now."
        )
    tag_list = [t.strip().lstrip("#") for t in (tags or []) if t and t.strip()]
    check_text(caps, title=title, description=description, tags=tag_list)
    if when is not None and not caps.scheduling.native:
        check_reachable(source, when.at)
    args = {
        "account": target.ref,
        "platform": target.platform,
        "source": clean_locator(source),
        "source_name": source_name,
        "title": title,
        "description": description,
        "tags": tag_list,
        "privacy": chosen,
        "reply_to": dict(reply_to or {}),
    }
    summary = f"Upload '{source_name}' to {shown(ctx, target)} as '{title}' ({chosen})"
    if when is not None:
        args["publish_at"] = when.at.isoformat()
        how = (
            f"uploaded now as private; {caps.display_name} publishes it then"
            if caps.scheduling.native
            else "I publish it then"
        )
        summary += f", scheduled for {show(when.at, when.zone)} ({how})"
    if description:
        summary += f"; text: “{approvals.shorten(description, 200)}”"
    if tag_list:
        summary += f"; tags: {approvals.shorten(', '.join(tag_list), 120)}"
    if caps.posting_note:
        summary += f". Note: {caps.posting_note}"
    return await approvals.propose(ctx, "upload", args, summary)


async def execute_upload(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    """Queue the approved upload as a job (post row and job in one transaction)."""
    args = pending.args
    target = await resolve_account(ctx, args["account"])
    if ctx.deps.ops is None:
        raise ActionError("Platform work is not available in this process.")
    at = datetime.fromisoformat(args["publish_at"]) if args.get("publish_at") else None
    if at is not None and at <= datetime.now(UTC):
        raise ActionError("The scheduled time passed while waiting for approval; ask again.")
    native = ctx.deps.platforms.capabilities(target.platform).scheduling.native
    request = UploadRequest(
        title=args["title"],
        description=args.get("description", ""),
        tags=tuple(args.get("tags") or ()),
        privacy=args["privacy"],
        publish_at=at,
    )
    run = await queue_upload(
        ctx.deps.pool,
        ctx.deps.ops,
        UploadJob(
            identity=ctx.identity,
            account_ref=target.ref,
            source=args["source"],
            request=request,
            idempotency_key=f"approval:{pending.id}",
            label=f"upload '{args['title']}' to {shown(ctx, target)}",
            reply_to=dict(args.get("reply_to") or {}),
            run_at=None if native else at,
        ),
    )
    if at is not None:
        zone, _ = await schedule.requester_zone(ctx)
        when = show(at, zone)
        return (
            f"Scheduled as post {run.id} for {when} (`queue` lists your scheduled posts;"
            f" `reschedule {run.id} <time>` or `cancel {run.id}` changes it)."
        )
    return (
        f"Queued as job {run.id}: its status message follows here "
        f"(`status` lists your jobs, `cancel {run.id}` stops it before it is published)."
    )


async def request_upload_from_url(
    ctx: ActionContext,
    *,
    url: str,
    platform: str | None,
    account: str | None,
    title: str | None,
    description: str = "",
    tags: list[str] | None = None,
    privacy: str | None = None,
    publish_at: str | None = None,
    time_zone: str | None = None,
) -> Outcome:
    """An upload of a video reachable at a public https URL (the companion app's uploads).

    The link is checked (https, public addresses on every hop, a size) before the approval
    is asked; the worker downloads through the same check.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ActionError("That is not a link.") from None
    if parsed.scheme != "https" or not parsed.host:
        raise ActionError("Only https links to a video can be uploaded.")
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
        size, mime = await probe_url(url, hosts=PublicHosts(), client=client)
    name = parsed.path.rsplit("/", 1)[-1] or "video"
    return await request_upload(
        ctx,
        platform=platform,
        account=account,
        source={"kind": "url", "url": url, "size": size, "mime_type": mime},
        source_name=name,
        title=title,
        description=description,
        tags=tags,
        privacy=privacy,
        publish_at=publish_at,
        time_zone=time_zone,
    )
