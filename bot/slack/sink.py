"""`SlackReplySink`: how the conversation core answers in Slack.

Replies go to the request's channel, in its thread when it has one. Private
replies are ephemeral to the requester (falling back to the command's
`response_url`, then to a DM, where Slack refuses an ephemeral). After the
requester's click on an approval, the core's first public reply replaces the
approval message, so the buttons disappear and the outcome (or the progress
that `update` then edits) shows where the question was. Replies to anyone
else's click are private to them.

slack_sdk is imported where it is used: a sink only ever works through a slack_sdk
client, so it is loaded by then, and a web process that imports this module at start
loads it only with its first Slack work (bot.slack.bolt_app).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core.messages import ApprovalRequest, Reply
from bot.slack.api_error import api_error
from bot.slack.convert import approval_payload, decided_payload, reply_payloads

if TYPE_CHECKING:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingDecision:
    """The approval message a click came from, to be replaced by the outcome."""

    channel: str
    ts: str
    blocks: list[dict[str, Any]]
    decided_by: str
    approved: bool


# Errors meaning "the bot cannot post here", where a response_url still can.
_UNREACHABLE = {"not_in_channel", "channel_not_found"}
# The reference `send` returns for a message posted through a response_url.
RESPONSE_URL_REF = "response_url"
# The reference `send` returns when the answer went privately (ephemeral).
PRIVATE_REF = "private"


def message_ref(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def message_ref_of(decision: PendingDecision) -> str:
    return message_ref(decision.channel, decision.ts)


class SlackReplySink:
    """ReplySink over the Slack Web API for one request."""

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        channel: str,
        user: str,
        thread_ts: str | None = None,
        response_url: str | None = None,
        decision: PendingDecision | None = None,
        private_only: bool = False,
    ) -> None:
        self._client = client
        self._channel = channel
        self._user = user
        self._thread_ts = thread_ts
        self._response_url = response_url
        self._decision = decision
        self._decided: PendingDecision | None = None
        # Answers to someone else's click on an approval go to that person only.
        self._private_only = private_only

    async def send(self, reply: Reply) -> str:
        if self._private_only:
            await self.send_private(reply)
            return PRIVATE_REF
        decision, self._decision = self._decision, None
        if decision is not None:
            self._decided = decision
            return await self._show_decision(decision, reply)
        # Long answers (a model's, many accounts) go as several messages, nothing lost.
        first, *rest = reply_payloads(reply)
        ref = await self._post(first)
        for payload in rest:
            await self._post(payload)
        return ref

    async def _post(self, payload: dict[str, Any]) -> str:
        try:
            response = await self._client.chat_postMessage(
                channel=self._channel,
                thread_ts=self._thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                **payload,
            )
        except api_error() as exc:
            if not await self._via_response_url(exc, payload, replace=False):
                raise
            return RESPONSE_URL_REF
        return message_ref(str(response["channel"]), str(response["ts"]))

    async def update(self, message_ref: str, reply: Reply) -> None:
        if message_ref == PRIVATE_REF:
            await self.send_private(reply)  # ephemeral messages cannot be edited by the API
            return
        decided = self._decided
        if decided is not None and message_ref == message_ref_of(decided):
            # Progress on the former approval message keeps its summary and decider.
            await self._show_decision(decided, reply)
            return
        # An edited message stays one message: the reply's first part (progress lines).
        payload = reply_payloads(reply)[0]
        if message_ref == RESPONSE_URL_REF and self._response_url:
            await self._webhook(payload, replace=True)
            return
        channel, _, ts = message_ref.partition(":")
        if not ts:
            raise ValueError(f"not a Slack message reference: {message_ref!r}")
        await self._client.chat_update(channel=channel, ts=ts, **payload)

    async def _show_decision(self, decision: PendingDecision, reply: Reply) -> str:
        payload = decided_payload(
            decision.blocks, reply, decided_by=decision.decided_by, approved=decision.approved
        )
        try:
            await self._client.chat_update(channel=decision.channel, ts=decision.ts, **payload)
        except api_error() as exc:
            if not await self._via_response_url(exc, payload, replace=True):
                raise
            return RESPONSE_URL_REF
        return message_ref_of(decision)

    async def _via_response_url(
        self, exc: SlackApiError, payload: dict[str, Any], *, replace: bool
    ) -> bool:
        """Post through the request's response_url where the bot may not post itself.

        A slash command works in any channel, but the bot can only post in the
        ones it was invited to; the command's response_url reaches the rest.
        """
        if exc.response.get("error") not in _UNREACHABLE or not self._response_url:
            return False
        return await self._webhook(payload, replace=replace)

    async def _webhook(self, payload: dict[str, Any], *, replace: bool) -> bool:
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        assert self._response_url is not None
        result = await AsyncWebhookClient(self._response_url).send(
            response_type="in_channel", replace_original=replace, **payload
        )
        return result.status_code == 200

    async def send_private(self, reply: Reply) -> None:
        for payload in reply_payloads(reply):
            await self._ephemeral(payload)

    async def _ephemeral(self, payload: dict[str, Any]) -> None:
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        try:
            await self._client.chat_postEphemeral(
                channel=self._channel, user=self._user, thread_ts=self._thread_ts, **payload
            )
            return
        except api_error() as exc:
            # e.g. not_in_channel: a slash command in a channel the bot is not in.
            log.info("ephemeral refused", extra={"error": exc.response.get("error")})
        if self._response_url:
            webhook = AsyncWebhookClient(self._response_url)
            result = await webhook.send(response_type="ephemeral", **payload)
            if result.status_code == 200:
                return
        # Last resort: a DM from the bot (posting to a user id opens the DM).
        await self._client.chat_postMessage(channel=self._user, **payload)

    async def ask_approval(self, request: ApprovalRequest) -> None:
        payload = approval_payload(request)
        try:
            await self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, **payload
            )
        except api_error() as exc:
            if not await self._via_response_url(exc, payload, replace=False):
                raise
