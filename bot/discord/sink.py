"""`ReplySink` implementations for Discord.

- `ChannelSink`: a message from the gateway. Replies go to the same channel or
  thread as a reply to the request; private replies go by DM.
- `InteractionSink`: a `/social` command or a button click. Replies are
  follow-ups of the interaction (ephemeral when private); its token lasts 15
  minutes, so past that (long uploads) replies fall back to the channel.
- `ApprovalClickSink`: the requester's own approve/reject click. The first thing
  the core says is written into the approval message itself (buttons removed),
  so the channel sees the outcome where the question was asked.

A reply's `layout` is shown as embeds (`bot.discord.embeds`), else its text, split
where it reads well; `Reply.blocks` are Slack's own and ignored here. Approval and
"Share to channel" buttons carry everything in their custom_id (`bot.discord.buttons`),
so a click is handled by whichever replica receives it, even after a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from agent.layout import Action
from bot import digest_layout
from bot.core.messages import ApprovalRequest, Reply
from bot.core.text import split_message, truncate
from bot.discord import embeds
from bot.discord.buttons import ApprovalButton, RunButton, ShareButton

log = logging.getLogger(__name__)

_DM_CLOSED_HINT = (
    "I couldn't send you a direct message. Allow direct messages from server members "
    "(Server settings > Privacy) and try again."
)


def _approval_header(requester_user_id: str) -> str:
    return f"**Approval needed** · requested by <@{requester_user_id}>"


def approval_content(request: ApprovalRequest, *, now: dt.datetime | None = None) -> str:
    """The text of an approval message: header line, then the action's summary."""
    now = now or dt.datetime.now(dt.UTC)
    expires = int(now.timestamp()) + max(request.expires_in_seconds, 0)
    header = f"{_approval_header(request.requester_user_id)} · expires <t:{expires}:R>"
    return truncate(f"{header}\n{request.summary}")


def approval_view(request: ApprovalRequest, guild: str | None = None) -> discord.ui.View:
    """Approve / Reject buttons. The view is stopped so it is never stored in memory:
    clicks are routed by `ApprovalButton`'s custom-id template instead. `guild`: the
    server the action is about, when the buttons are in a DM (see `RunButton`)."""
    view = discord.ui.View(timeout=None)
    for approve in (True, False):
        view.add_item(
            ApprovalButton(
                request.requester_user_id, request.action_id, approve=approve, guild=guild
            )
        )
    view.stop()
    return view


Part = tuple[str, list[discord.Embed], list[tuple[Action, ...]]]


def outgoing(reply: Reply) -> list[Part]:
    """A reply as the (content, embeds, button rows) messages that carry it, each within
    Discord's limits."""
    if reply.digest is not None:
        # The digest's own embeds (the chart stays with the channel's digest).
        body = digest_layout.discord_message(reply.digest, chart_attached=False)
        refused = embeds.problems(embeds.EmbedMessage("", body["embeds"]))
        if not refused:
            return [("", [discord.Embed.from_dict(e) for e in body["embeds"]], [])]
        log.error(
            "digest embeds outside discord's limits; sending text", extra={"problems": refused}
        )
    if reply.layout is not None:
        laid_out = embeds.messages(reply.layout, shared_by=reply.shared_by)
        refused = [p for m in laid_out for p in embeds.problems(m)]
        if not refused:
            return [
                (m.content, [discord.Embed.from_dict(e) for e in m.embeds], m.rows)  # type: ignore[arg-type]
                for m in laid_out
            ]
        # A renderer bug must cost the layout, never the answer: the plain text still goes.
        log.error("embeds outside discord's limits; sending text", extra={"problems": refused})
    text = f"Shared by <@{reply.shared_by}>\n{reply.text}" if reply.shared_by else reply.text
    return [(part, [], []) for part in split_message(text)]


def _part_view(
    rows: list[tuple[Action, ...]], share: discord.ui.View | None, guild: str | None = None
) -> discord.ui.View | None:
    """One message's buttons: its command rows, and the share (or approval) view's items."""
    if not rows:
        return share
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(rows):
        for action in row:
            button = RunButton(action.command, label=action.label, row=number, guild=guild)
            if button.fits:
                view.add_item(button)
    if share is not None:
        for item in share.children:
            view.add_item(item)
    view.stop()
    return view


def share_view(share_id: str) -> discord.ui.View:
    """The "Share to channel" button of a private answer (stopped: routed by custom id)."""
    view = discord.ui.View(timeout=None)
    view.add_item(ShareButton(share_id))
    view.stop()
    return view


def _view_for(reply: Reply) -> discord.ui.View | None:
    return share_view(reply.share_id) if reply.share_id else None


def _allowed_mentions() -> discord.AllowedMentions:
    # Platform text (titles, captions) is data: it must never ping @everyone or roles.
    return discord.AllowedMentions(everyone=False, roles=False, users=False, replied_user=True)


class ChannelSink:
    """Replies to a gateway message in its own channel or thread."""

    def __init__(
        self,
        *,
        channel: discord.abc.Messageable,
        requester: discord.abc.User,
        request: discord.Message | None = None,
        client: discord.Client,
        is_dm: bool = False,
    ) -> None:
        self._channel = channel
        self._requester = requester
        self._request = request
        self._client = client
        self._is_dm = is_dm
        self.guild: str | None = None  # set for a DM that speaks of a server's posts

    async def _post(
        self, channel: discord.abc.Messageable, reply: Reply, *, view: discord.ui.View | None = None
    ) -> str:
        parts = outgoing(reply)
        view = view or _view_for(reply)
        first: discord.Message | None = None
        for index, (content, shown, rows) in enumerate(parts):
            kwargs: dict[str, Any] = {"allowed_mentions": _allowed_mentions()}
            if shown:
                kwargs["embeds"] = shown
            if index == 0 and self._request is not None and channel is self._channel:
                kwargs["reference"] = self._request.to_reference(fail_if_not_exists=False)
            last = view if index == len(parts) - 1 else None
            part_view = _part_view(rows, last, self.guild)
            if part_view is not None:
                kwargs["view"] = part_view
            sent = await channel.send(content, **kwargs)
            first = first or sent
        assert first is not None
        return str(first.id)

    async def send(self, reply: Reply) -> str:
        return await self._post(self._channel, reply)

    async def update(self, message_ref: str, reply: Reply) -> None:
        partial = _partial_message(self._channel, int(message_ref))
        await partial.edit(content=truncate(reply.text), allowed_mentions=_allowed_mentions())

    async def send_private(self, reply: Reply) -> None:
        if self._is_dm:
            await self._post(self._channel, reply)
            return
        try:
            dm = await self._client.create_dm(self._requester)
            await self._post(dm, reply)
        except discord.Forbidden:
            # Never fall back to posting private text in the channel; say how to fix it.
            await self._post(self._channel, Reply(f"<@{self._requester.id}> {_DM_CLOSED_HINT}"))

    async def ask_approval(self, request: ApprovalRequest) -> None:
        await self._post(
            self._channel,
            Reply(approval_content(request)),
            view=approval_view(request, self.guild),
        )


def _partial_message(channel: discord.abc.Messageable, message_id: int) -> discord.PartialMessage:
    getter = getattr(channel, "get_partial_message", None)
    if getter is None:
        raise TypeError(f"cannot edit messages in {type(channel).__name__}")
    message: discord.PartialMessage = getter(message_id)
    return message


# Discord's "Invalid Webhook Token": the interaction token has lapsed (15 minutes).
INVALID_WEBHOOK_TOKEN = 50027


def token_lapsed(exc: discord.HTTPException) -> bool:
    """Does this error mean the interaction token no longer works (so use the channel)?

    404 and 403 (expired or revoked), and 401 with code 50027, which is what Discord
    answers once the token has lapsed.
    """
    if isinstance(exc, discord.NotFound | discord.Forbidden):
        return True
    return exc.status == 401 and exc.code == INVALID_WEBHOOK_TOKEN


class InteractionSink:
    """Replies to an already-deferred interaction with follow-ups (private ones ephemeral).

    `loading_ephemeral` says how the interaction was deferred with "thinking": Discord
    turns the first follow-up into that loading message, which keeps its visibility.
    So a follow-up of the other visibility (a public approval after a private defer)
    first removes the loading message, and is then a message of its own.
    """

    def __init__(
        self,
        *,
        interaction: discord.Interaction,
        ephemeral: bool = False,
        loading_ephemeral: bool | None = None,
    ) -> None:
        self._interaction = interaction
        self._ephemeral = ephemeral
        self._loading = loading_ephemeral
        self.sent_any = False
        self.guild: str | None = None  # set for a DM click about a server's posts

    async def _followup(
        self, reply: Reply, *, ephemeral: bool, view: discord.ui.View | None = None
    ) -> str:
        if self._loading is not None and self._loading != ephemeral:
            try:
                await self._interaction.delete_original_response()
            except discord.HTTPException as exc:
                if not token_lapsed(exc):  # gone already, or lapsed: the channel takes over
                    raise
        self._loading = None
        parts = outgoing(reply)
        view = view or _view_for(reply)
        first: str | None = None
        for index, (part, shown, rows) in enumerate(parts):
            kwargs: dict[str, Any] = {
                "ephemeral": ephemeral,
                "wait": True,
                "allowed_mentions": _allowed_mentions(),
            }
            if shown:
                kwargs["embeds"] = shown
            last = view if index == len(parts) - 1 else None
            part_view = _part_view(rows, last, self.guild)
            if part_view is not None:
                kwargs["view"] = part_view
            message_id = await self._send_one(part, kwargs, ephemeral=ephemeral)
            first = first or message_id
        self.sent_any = True
        assert first is not None
        return first

    async def _send_one(self, part: str, kwargs: dict[str, Any], *, ephemeral: bool) -> str:
        try:
            message = await self._interaction.followup.send(part, **kwargs)
            return str(message.id)
        except discord.HTTPException as exc:
            channel = self._interaction.channel
            if (
                not token_lapsed(exc)
                or ephemeral
                or channel is None
                or not isinstance(channel, discord.abc.Messageable)
            ):
                raise
            log.info(
                "interaction follow-up failed; posting to the channel", extra={"status": exc.status}
            )
            kwargs.pop("ephemeral", None)
            kwargs.pop("wait", None)
            sent = await channel.send(part, **kwargs)
            return str(sent.id)

    async def send(self, reply: Reply) -> str:
        return await self._followup(reply, ephemeral=self._ephemeral)

    async def update(self, message_ref: str, reply: Reply) -> None:
        content = truncate(reply.text)
        await _edit_with_fallback(
            lambda: self._interaction.followup.edit_message(
                int(message_ref), content=content, allowed_mentions=_allowed_mentions()
            ),
            self._interaction.channel,
            int(message_ref),
            content=content,
        )

    async def send_private(self, reply: Reply) -> None:
        await self._followup(reply, ephemeral=True)

    async def ask_approval(self, request: ApprovalRequest) -> None:
        # Visible where the command was given, whoever else may see its answers.
        await self._followup(
            Reply(approval_content(request)),
            ephemeral=self._ephemeral,
            view=approval_view(request, self.guild),
        )


async def _edit_with_fallback(
    primary: Callable[[], Awaitable[object]],
    channel: object,
    message_id: int,
    *,
    content: str,
    **extra: Any,
) -> None:
    """Edit through the interaction token; once it has expired, through the channel."""
    try:
        await primary()
    except discord.HTTPException as exc:
        if (
            not token_lapsed(exc)
            or channel is None
            or not isinstance(channel, discord.abc.Messageable)
        ):
            raise
        await _partial_message(channel, message_id).edit(
            content=content, allowed_mentions=_allowed_mentions(), **extra
        )


class ApprovalClickSink(InteractionSink):
    """The requester clicked: the first reply becomes the approval message's outcome line."""

    def __init__(self, *, interaction: discord.Interaction, approved: bool) -> None:
        super().__init__(interaction=interaction)
        message = interaction.message
        if message is None:
            raise ValueError("a button click always comes with its message")
        self._message_id = message.id
        original = message.content
        _, _, summary = original.partition("\n")
        verdict = "✅ **Approve**" if approved else "✖️ **Reject**"
        self._header = f"{summary or original}\n\n{verdict} · <@{interaction.user.id}>"
        self._outcome_written = False

    async def _edit_approval(self, text: str) -> None:
        content = truncate(f"{self._header}\n{text}")
        await _edit_with_fallback(
            lambda: self._interaction.edit_original_response(
                content=content, view=None, allowed_mentions=_allowed_mentions()
            ),
            self._interaction.channel,
            self._message_id,
            content=content,
            view=None,
        )

    async def send(self, reply: Reply) -> str:
        if self._outcome_written:
            return await super().send(reply)
        self._outcome_written = True
        self.sent_any = True
        await self._edit_approval(reply.text)
        return str(self._message_id)

    async def update(self, message_ref: str, reply: Reply) -> None:
        if message_ref == str(self._message_id):
            await self._edit_approval(reply.text)
            return
        await super().update(message_ref, reply)
