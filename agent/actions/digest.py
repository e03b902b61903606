"""Daily engagement digests: which channels get one, at what local time."""

from __future__ import annotations

import re
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.actions import approvals
from agent.actions.base import ActionError, Outcome
from agent.actions.schedule import requester_zone
from agent.context import ActionContext, Progress
from agent.layout import channel_mention
from storage import digests as store

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# Slack renders a channel mention as <#C123|name>; keep the id.
_SLACK_CHANNEL = re.compile(r"^<#([A-Z0-9]+)(?:\|[^>]*)?>$")


def parse_time(value: str) -> time:
    match = _TIME.match(value.strip())
    if match is None:
        raise ActionError(
            f"Time must be HH:MM on a 24-hour clock, e.g. 09:00 (got '{value[:20]}')."
        )
    return time(int(match.group(1)), int(match.group(2)))


def parse_zone(value: str) -> str:
    name = value.strip()
    try:
        if not name or ".." in name or name.startswith("/"):
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ActionError(
            f"Unknown time zone '{name[:40]}'. Use an IANA name such as Europe/Paris or UTC."
        ) from None
    return name


def parse_channel(value: str | None, default: str) -> str:
    if not value:
        return default
    raw = value.strip()
    match = _SLACK_CHANNEL.match(raw)
    if match:
        return match.group(1)
    name = raw.lstrip("#")
    if not name or len(name) > 80 or not re.fullmatch(r"[\w.-]+", name):
        raise ActionError(f"'{raw[:40]}' does not look like a channel.")
    return name


def here(channel: str | None, current_channel: str) -> str:
    """The target channel, which must be the one the request came from.

    The front-end delivered the request from that channel, so the requester is in it;
    a digest can never be pointed at a channel its requester cannot read.
    """
    chan = parse_channel(channel, current_channel)
    if chan != current_channel:
        raise ActionError(
            "Manage a channel's digest from inside that channel, so I know you are in it."
        )
    return chan


async def _managed_by_someone_else(ctx: ActionContext, chan: str) -> bool:
    sub = await store.get(ctx.deps.pool, workspace_id=ctx.identity.workspace_id, channel_id=chan)
    return (
        sub is not None
        and sub.enabled
        and sub.created_by is not None
        and sub.created_by != ctx.identity.chat_user_id
    )


NOT_YOURS = (
    "Only the person who set up {chan}'s digest can change or stop it. "
    "Say `digest join` to add your own accounts to it."
)


async def _default_zone(ctx: ActionContext) -> str:
    """The requester's own zone (their `timezone` setting, else their chat profile's)
    when `digest on` names none; UTC when neither is known."""
    zone, _ = await requester_zone(ctx)
    return zone.key if zone is not None else "UTC"


async def request_change(
    ctx: ActionContext,
    *,
    enabled: bool,
    channel: str | None,
    current_channel: str,
    at: str | None = None,
    zone: str | None = None,
) -> Outcome:
    """Digest on/off for a channel: validated now, applied on approval."""
    chan = here(channel, current_channel)
    if await _managed_by_someone_else(ctx, chan):
        raise ActionError(NOT_YOURS.format(chan=channel_mention(chan)))
    if enabled:
        local = parse_time(at) if at else time(9, 0)
        tz = parse_zone(zone) if zone else await _default_zone(ctx)
        args = {"channel": chan, "enabled": True, "time": local.strftime("%H:%M"), "zone": tz}
        summary = f"Post a daily digest in {channel_mention(chan)} at {local:%H:%M} {tz}"
    else:
        args = {"channel": chan, "enabled": False}
        summary = f"Stop the daily digest in {channel_mention(chan)}"
    return await approvals.propose(ctx, "digest", args, summary)


async def execute_change(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    args = pending.args
    ident = ctx.identity
    if await _managed_by_someone_else(ctx, args["channel"]):
        raise ActionError(NOT_YOURS.format(chan=channel_mention(args["channel"])))
    if args["enabled"]:
        sub = await store.upsert(
            ctx.deps.pool,
            workspace_id=ident.workspace_id,
            channel_id=args["channel"],
            local_time=parse_time(args["time"]),
            time_zone=parse_zone(args["zone"]),
            created_by=ident.chat_user_id,
        )
        return f"Daily digest on for {channel_mention(sub.channel_id)} at {sub.local_time:%H:%M} {sub.time_zone}."
    changed = await store.disable(
        ctx.deps.pool, workspace_id=ident.workspace_id, channel_id=args["channel"]
    )
    if not changed:
        return f"{channel_mention(args['channel'])} had no digest; nothing to stop."
    return f"Daily digest off for {channel_mention(args['channel'])}."


async def subscriptions(ctx: ActionContext) -> list[store.Subscription]:
    """The workspace's digests (which channels, at what local time)."""
    return await store.list_for_workspace(ctx.deps.pool, workspace_id=ctx.identity.workspace_id)


async def request_change_elsewhere(
    ctx: ActionContext,
    *,
    enabled: bool,
    channel: str,
    at: str | None = None,
    zone: str | None = None,
) -> Outcome:
    """A change asked for outside the channel (the companion app): only a digest the
    requester set up, from inside that channel, can be re-timed or stopped this way."""
    chan = parse_channel(channel, "")
    sub = await store.get(ctx.deps.pool, workspace_id=ctx.identity.workspace_id, channel_id=chan)
    if sub is None or not sub.enabled or sub.created_by != ctx.identity.chat_user_id:
        raise ActionError(
            f"You have no digest in {channel_mention(chan)}. Turn one on in chat, from inside that channel "
            "(`digest on`); then you can change or stop it here."
        )
    return await request_change(
        ctx, enabled=enabled, channel=chan, current_channel=chan, at=at, zone=zone
    )


async def show(ctx: ActionContext) -> Outcome:
    subs = await subscriptions(ctx)
    if not subs:
        return Outcome("No channel gets a daily digest. Try `digest on`.")
    lines = ["Daily digests:"]
    lines += [
        f"- {channel_mention(s.channel_id)} at {s.local_time:%H:%M} {s.time_zone}" for s in subs
    ]
    return Outcome("\n".join(lines))


async def request_membership(
    ctx: ActionContext, *, join: bool, channel: str | None, current_channel: str
) -> Outcome:
    """Add (or remove) the requester's own accounts to (or from) this channel's digest."""
    chan = here(channel, current_channel)
    sub = await store.get(ctx.deps.pool, workspace_id=ctx.identity.workspace_id, channel_id=chan)
    if sub is None or not sub.enabled:
        raise ActionError(f"{channel_mention(chan)} has no digest. Try `digest on`.")
    if join:
        summary = f"Show your accounts' figures in {channel_mention(chan)}'s daily digest, to everyone there"
    else:
        summary = f"Take your accounts out of {channel_mention(chan)}'s daily digest"
    return await approvals.propose(
        ctx, "digest_membership", {"channel": chan, "join": join}, summary
    )


async def execute_membership(
    ctx: ActionContext, pending: approvals.PendingAction, progress: Progress | None
) -> str:
    chan, join = pending.args["channel"], bool(pending.args["join"])
    sub = await store.get(ctx.deps.pool, workspace_id=ctx.identity.workspace_id, channel_id=chan)
    if sub is None or not sub.enabled:
        return f"{channel_mention(chan)} has no digest any more; nothing changed."
    await store.set_member(
        ctx.deps.pool, subscription_id=sub.id, chat_user_id=ctx.identity.chat_user_id, member=join
    )
    if join:
        return f"Your accounts are in {channel_mention(chan)}'s daily digest."
    return f"Your accounts are out of {channel_mention(chan)}'s daily digest."


async def preview(ctx: ActionContext, *, current_channel: str) -> Outcome:
    """Tomorrow's digest of this channel, built now and shown to the requester only
    (they are in the channel, so it holds nothing they would not see tomorrow)."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from agent.digests import build_digest

    chan = here(None, current_channel)
    sub = await store.get(ctx.deps.pool, workspace_id=ctx.identity.workspace_id, channel_id=chan)
    workspace = await store.get_workspace(ctx.deps.pool, ctx.identity.workspace_id)
    if sub is None or not sub.enabled or workspace is None:
        raise ActionError(f"{channel_mention(chan)} has no digest. Try `digest on`.")
    digest = await build_digest(ctx.deps, workspace, sub, now=datetime.now(UTC))
    # The chart stays out, saying so: a private answer cannot carry a file everywhere
    # (Slack's ephemeral messages take none), and a DM upload instead would put half the
    # preview somewhere else than where it was asked for.
    note = "Preview, only for you: the real digest also carries the views chart."
    digest = replace(
        digest,
        title=f"Preview of this channel's next digest ({digest.title})",
        notice=f"{digest.notice} {note}" if digest.notice else note,
        chart=[],
        chart_days=None,
    )
    return Outcome(
        f"Sent you a preview of {channel_mention(chan)}'s next digest, privately.",
        private=digest.text(),
        private_digest=digest,
    )
