"""LangChain tools over the actions. Identity comes from the runtime context only.

Every tool takes `runtime: ToolRuntime[ChatContext]`, which LangChain injects and
hides from the model's schema: the model can name an account or a file but never
who is asking. Tool results are the actions' plain-text answers (the same text
the command grammar replies with); refusals come back as text the model relays.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from langchain.tools import ToolRuntime, tool
from langchain_core.tools import BaseTool

from agent.actions import (
    accounts,
    best_time,
    captions,
    digest,
    jobs,
    metrics,
    quota,
    schedule,
    upload,
)
from agent.actions.base import USER_ERRORS, ActionError, Outcome, user_message
from agent.observe import counted_tool
from agent.session import ChatContext
from integrations.capabilities import PrivacyWord

log = logging.getLogger(__name__)

MAX_TOOL_OUTPUT_CHARS = 4000
TOOL_LIMIT_TEXT = (
    "Tool call limit reached for this request; nothing was done. Answer with what you have."
)

Runtime = ToolRuntime[ChatContext]


async def _run(chat: ChatContext, make: Callable[[], Awaitable[Outcome]]) -> str:
    """Run an action; queue its private message/approval; return its text (bounded)."""
    chat.tool_calls += 1
    if chat.tool_calls > chat.max_tool_calls:
        return TOOL_LIMIT_TEXT
    try:
        outcome = await make()
    except USER_ERRORS as exc:
        return user_message(exc)
    if outcome.private is not None or outcome.approval is not None:
        chat.outbox.append(outcome)
    text = outcome.text
    if len(text) > MAX_TOOL_OUTPUT_CHARS:
        text = text[:MAX_TOOL_OUTPUT_CHARS] + "\n[truncated]"
    return text


@tool
async def link_account(platform: str, runtime: Runtime) -> str:
    """Send the person a private, single-use link to connect a platform account.

    Args:
        platform: the platform's name, e.g. one the person named.
    """
    chat = runtime.context
    return await _run(chat, lambda: accounts.link(chat.action, platform, reply_to=chat.reply_to))


@tool
async def list_accounts(runtime: Runtime) -> str:
    """List the person's own linked accounts with their handles (e.g. yt-1a2b3c4d)."""
    chat = runtime.context
    return await _run(chat, lambda: accounts.list_accounts(chat.action))


@tool
async def unlink_account(account: str, runtime: Runtime) -> str:
    """Request to disconnect one of the person's accounts (they must approve it).

    Args:
        account: the account handle (e.g. yt-1a2b3c4d), its @name, or its platform.
    """
    chat = runtime.context
    return await _run(
        chat, lambda: accounts.request_unlink(chat.action, platform=None, account=account)
    )


@tool
async def upload_video(
    account: str,
    title: str,
    runtime: Runtime,
    attachment: str | None = None,
    description: str = "",
    tags: list[str] | None = None,
    privacy: PrivacyWord | None = None,
    publish_at: str | None = None,
) -> str:
    """Request an upload of a video attached to the person's message (they must approve it).

    Args:
        account: the account handle (e.g. yt-1a2b3c4d), its @name, or its platform.
        title: the video title.
        attachment: the attachment's file name; may be omitted when exactly one is attached.
        description: the video description or caption.
        tags: keywords, without '#'.
        privacy: who may see it; each platform accepts some of these (default: the
            platform's own default).
        publish_at: only when the person asks for a later time: their words for it, such
            as "at 18:00 tomorrow", "on friday 09:30 Europe/Paris", "in 2h", or an ISO
            8601 local time ("2026-12-04T18:00"); read in the person's time zone.
    """
    chat = runtime.context

    async def make() -> Outcome:
        found = chat.find_attachment(attachment)
        if found is None:
            names = ", ".join(a.name for a in chat.attachments) or "none"
            raise ActionError(f"No such attachment on this message (attached: {names}).")
        return await upload.request_upload(
            chat.action,
            platform=None,
            account=account,
            source=found.locator,
            source_name=found.name,
            title=title,
            description=description,
            tags=tags,
            privacy=privacy,
            reply_to=chat.reply_to,
            publish_at=publish_at,
        )

    return await _run(chat, make)


@tool
async def get_metrics(
    runtime: Runtime,
    platform: str | None = None,
    account: str | None = None,
    period: Literal["today", "7d", "28d", "90d"] | None = None,
    post: str | None = None,
) -> str:
    """Engagement figures (views, likes, ...) for the person's accounts, with an "as of" time.

    Args:
        platform: a platform's name; omit for all.
        account: one account handle; omit for all.
        period: today, 7d, 28d or 90d; omit unless the person asked for one.
        post: one post id, for that post's figures.
    """
    chat = runtime.context
    return await _run(
        chat,
        lambda: metrics.get_metrics(
            chat.action, platform=platform, account=account, period=period, post=post
        ),
    )


@tool
async def generate_caption(
    platform: str,
    description: str,
    runtime: Runtime,
    tone: Literal["neutral", "friendly", "professional", "playful", "hype"] = "neutral",
    variants: int = 3,
) -> str:
    """Caption (and, where the platform has one, title) ideas within the platform's limits.

    Args:
        platform: a platform's name.
        description: what the post is about.
        tone: neutral, friendly, professional, playful or hype.
        variants: how many ideas, 1 to 5.
    """
    chat = runtime.context
    return await _run(
        chat,
        lambda: captions.suggest(
            chat.action, platform=platform, description=description, tone=tone, variants=variants
        ),
    )


@tool
async def manage_digest(
    action: Literal["on", "off", "join", "leave", "show"],
    runtime: Runtime,
    channel: str | None = None,
    time: str | None = None,
    time_zone: str | None = None,
) -> str:
    """Show, turn on or off, join or leave this channel's daily digest (changes need approval).

    Args:
        action: on, off, join (add the person's accounts), leave, or show.
        channel: the channel (default: the current one).
        time: local time HH:MM (default 09:00).
        time_zone: IANA time zone such as Europe/Paris (default UTC).
    """
    chat = runtime.context
    if action == "show":
        return await _run(chat, lambda: digest.show(chat.action))
    if action in ("join", "leave"):
        return await _run(
            chat,
            lambda: digest.request_membership(
                chat.action,
                join=action == "join",
                channel=channel,
                current_channel=chat.channel_id,
            ),
        )
    return await _run(
        chat,
        lambda: digest.request_change(
            chat.action,
            enabled=action == "on",
            channel=channel,
            current_channel=chat.channel_id,
            at=time,
            zone=time_zone,
        ),
    )


@tool
async def show_quota(runtime: Runtime) -> str:
    """What the person has left today: messages, model tokens, platform quotas."""
    chat = runtime.context
    return await _run(chat, lambda: quota.show_quota(chat.action))


@tool
async def job_status(runtime: Runtime) -> str:
    """The person's running and recent background jobs (uploads), with their job numbers."""
    chat = runtime.context
    return await _run(chat, lambda: jobs.show_status(chat.action))


@tool
async def cancel_job(job: str, runtime: Runtime) -> str:
    """Ask to cancel one of the person's jobs that has not published yet (they approve).

    Args:
        job: the job number, as job_status shows it (e.g. "12").
    """
    chat = runtime.context
    return await _run(chat, lambda: jobs.request_cancel(chat.action, job))


@tool
async def scheduled_posts(runtime: Runtime, everyone: bool = False) -> str:
    """The person's scheduled posts (number, time, platform, account, title).

    Args:
        everyone: everyone's scheduled posts, not only the person's (admins only).
    """
    chat = runtime.context
    return await _run(chat, lambda: schedule.show_queue(chat.action, workspace=everyone))


@tool
async def reschedule_post(post: str, publish_at: str, runtime: Runtime) -> str:
    """Ask to move one of the person's scheduled posts to another time (they approve).

    Args:
        post: the post's number, as scheduled_posts shows it (e.g. "12").
        publish_at: the new time in the person's words ("at 18:00 tomorrow", "in 2h").
    """
    chat = runtime.context
    return await _run(chat, lambda: schedule.request_reschedule(chat.action, post, publish_at))


@tool
async def set_time_zone(zone: str, runtime: Runtime) -> str:
    """Set the person's own time zone (an IANA name such as Europe/Paris), when they say it.

    Args:
        zone: the IANA time zone name.
    """
    chat = runtime.context
    return await _run(chat, lambda: schedule.set_timezone(chat.action, zone))


@tool
async def best_time_to_post(platform: str, runtime: Runtime) -> str:
    """The next three times to post on one of the person's accounts, from its own history
    (first-day views by weekday and hour). Relay the figures exactly; add none.

    Args:
        platform: the platform's name.
    """
    chat = runtime.context
    return await _run(chat, lambda: best_time.suggest(chat.action, platform=platform))


def build_tools() -> list[BaseTool]:
    """Every tool the agent may call, each counted and spanned (`agent.observe`)."""
    tools: list[BaseTool] = [
        link_account,
        list_accounts,
        unlink_account,
        upload_video,
        get_metrics,
        generate_caption,
        manage_digest,
        show_quota,
        job_status,
        cancel_job,
        scheduled_posts,
        reschedule_post,
        set_time_zone,
        best_time_to_post,
    ]
    return [counted_tool(t) for t in tools]
