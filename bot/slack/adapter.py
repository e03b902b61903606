"""The Slack front-end: a bolt `AsyncApp`, thin handlers, and the routes that serve them.

Every handler here does the same three things: convert the Slack payload to an
`IncomingMessage` (or an approval click), build a `SlackReplySink`, and hand
both to the conversation core in a background task, so Slack gets its 200 at
once whatever the core, the model or the platforms do.

`/slack/events` checks Slack's signature on the raw bytes before anything parses
them (an unsigned or malformed body is a plain 401, never a parser's exception).
Slash commands then take a shorter road in HTTP mode: bolt acknowledges a
listener by polling every 10 ms, so the route schedules the work and answers
straight away. Events, button clicks and the OAuth pages go through bolt
unchanged (its request verification again, authorization, self-event filter).

bolt, the Web API client and their aiohttp session (`bot.slack.bolt_app`) are built
by the first request or call that needs them, not with the adapter: a web process
that has served no Slack request yet does not hold them (~16 MiB; bench/idle.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus

import httpx
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.context import ChatProfile
from agent.layout import Layout
from bot.asgi import read_capped_body, replaying, respond
from bot.core.messages import ConversationHandler, Reply
from bot.slack.admin import admin_check
from bot.slack.api_error import api_error
from bot.slack.blocks import RUN_ACTION_PREFIX, SHARE_ACTION
from bot.slack.convert import (
    APPROVAL_ACTION,
    approval_requester,
    command_to_message,
    event_team,
    event_to_message,
    is_from_bot,
    is_person_dm,
    parse_approval_action,
)
from bot.slack.dedupe import EventDeduper
from bot.slack.files import SlackFiles
from bot.slack.followups import FollowUps, Requests
from bot.slack.sink import PendingDecision, SlackReplySink
from storage.identity import Identity
from storage.redis import RedisHandle
from storage.slack_installations import SlackInstallations

if TYPE_CHECKING:
    from slack_bolt import BoltResponse
    from slack_bolt.async_app import AsyncApp, AsyncBoltContext
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.settings import Settings
    from bot.slack.bolt_app import SlackBolt

log = logging.getLogger(__name__)


# Exactly the bot scopes the handlers below use (manifest.yaml lists the same).
BOT_SCOPES = (
    "app_mentions:read",
    "channels:history",  # conversations.replies: a file shared earlier in the thread
    "chat:write",
    "commands",
    "files:read",
    "files:write",  # the digest's chart, uploaded with its message (bot/slack/digest.py)
    "groups:history",  # the same in private channels
    "im:history",
    "users:read",  # users.info: the requester's time zone for scheduled posts
)
ACK_TEXT = "Working on it…"
EVENTS_PATH = "/slack/events"
# Slack's event and interaction payloads stay well under 1 MiB.
EVENTS_BODY_LIMIT = 1024 * 1024
# Slack's replay window: a signed request older (or newer) than this is refused.
SIGNATURE_MAX_AGE_SECONDS = 5 * 60
_TIMESTAMP = re.compile(rb"[0-9]{1,12}")
_FAILED_TEXT = "Sorry, something went wrong on my side. Please try again in a minute."
BUSY_TEXT = "I'm busy right now, try again in a minute."
_ACK_JSON = json.dumps({"response_type": "ephemeral", "text": ACK_TEXT}).encode()
_BUSY_JSON = json.dumps({"response_type": "ephemeral", "text": BUSY_TEXT}).encode()
_PAYLOAD_FIELD = re.compile(rb"(?:^|&)payload=")
_COMMAND_FIELD = re.compile(rb"(?:^|&)command=([^&]*)")


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """What the adapter needs from Settings; secrets stay out of repr."""

    signing_secret: str = field(repr=False)
    api_base: str = "https://slack.com/api/"
    bot_token: str | None = field(default=None, repr=False)
    app_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    public_base_url: str = "http://localhost:8000"
    command: str = "/social"
    rate_limit_retries: int = 2
    max_in_flight: int = 100

    @property
    def multi_workspace(self) -> bool:
        return self.bot_token is None and bool(self.client_id and self.client_secret)

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackConfig:
        """Build from `bot.settings.Settings` (read-only use of its Slack section)."""

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            signing_secret=secret(settings.slack_signing_secret) or "",
            api_base=settings.slack_api_base,
            bot_token=secret(settings.slack_bot_token),
            app_token=secret(settings.slack_app_token),
            client_id=settings.slack_client_id,
            client_secret=secret(settings.slack_client_secret),
            public_base_url=settings.public_base_url,
            max_in_flight=settings.slack_max_in_flight,
        )


class SlackAdapter:
    """Slack <-> conversation core. Build once per process; serve via `router()` or Socket Mode."""

    def __init__(
        self,
        *,
        config: SlackConfig,
        handler: ConversationHandler,
        redis: RedisHandle,
        installations: SlackInstallations | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if config.multi_workspace and installations is None:
            raise ValueError("multi-workspace Slack needs an installation store")
        self.config = config
        self._handler = handler
        self._dedupe = EventDeduper(redis=redis)
        # Socket Mode needs no signing secret (nothing arrives over HTTP); HTTP mode does.
        self._signing_key = config.signing_secret.encode() if config.signing_secret else None
        # Follow-up work, at most `config.max_in_flight` at once (admission control),
        # and the "busy" notices sent instead past that, bounded the same way; both
        # start behind the acks of the requests on `/slack/events`.
        self._requests = Requests()
        self._work = FollowUps(
            limit=config.max_in_flight, requests=self._requests, guard=self._guard
        )
        self._notices = FollowUps(
            limit=config.max_in_flight, requests=self._requests, guard=self._guard
        )
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=120.0))
        self.files = SlackFiles(
            http=self._http, token_for_team=self._token_for_team, api_base=config.api_base
        )
        # bolt, the Web API client and their aiohttp session: built by the first Slack
        # work that needs them (`bolt()`), so an idle process never loads them.
        self._installations = installations
        self._bolt: asyncio.Future[SlackBolt] | None = None

    # --- construction helpers ---------------------------------------------------------

    async def bolt(self) -> SlackBolt:
        """The bolt app and Web API client, with their session open; built once, by the
        first caller (concurrent first callers wait for that one build)."""
        if self._bolt is None:
            self._bolt = asyncio.ensure_future(self._build_bolt())
        # Shielded: a caller that goes away (a client disconnect) does not cancel the
        # build the others are waiting for.
        bolt = await asyncio.shield(self._bolt)
        bolt.open_session()
        return bolt

    async def _build_bolt(self) -> SlackBolt:
        # Imported on a worker thread: ~0.25 s of module code (bolt, slack_sdk, aiohttp)
        # that on the event loop would hold up every other request meanwhile.
        slack_bolt_class = await asyncio.to_thread(_import_slack_bolt)
        bolt = slack_bolt_class(
            config=self.config,
            scopes=BOT_SCOPES,
            installations=self._installations,
            verify_requests=self._signing_key is not None,
        )
        self._register(bolt.app)
        return bolt

    def _register(self, app: AsyncApp) -> None:
        app.middleware(self._dedupe_events)
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.command(self.config.command)(self._on_command)
        app.action(re.compile(APPROVAL_ACTION.pattern))(self._on_approval)
        app.action(SHARE_ACTION)(self._on_share)
        app.action(re.compile(f"^{re.escape(RUN_ACTION_PREFIX)}[0-9]+$"))(self._on_run)
        if self.config.multi_workspace:
            app.enable_token_revocation_listeners()
        else:
            # Subscribed in the manifest; with one fixed token there is nothing to
            # forget, but an unanswered event would be retried by Slack.
            app.event("app_uninstalled")(self._on_uninstalled)
            app.event("tokens_revoked")(self._on_uninstalled)

    async def _on_uninstalled(self, event: dict[str, Any]) -> None:
        log.warning("slack reports the app uninstalled or its tokens revoked")

    # --- routes -----------------------------------------------------------------------

    def router(self) -> APIRouter:
        """The OAuth pages (multi-workspace mode); `/slack/events` is in `endpoints()`."""
        router = APIRouter()
        if self.config.multi_workspace:
            router.add_route("/slack/install", self._oauth_route, methods=["GET"])
            router.add_route("/slack/oauth_redirect", self._oauth_route, methods=["GET"])
        return router

    def endpoints(self) -> dict[str, ASGIApp]:
        """`/slack/events` as a pure ASGI endpoint, served ahead of the app
        (`bot.web.create_app(endpoints=...)`): the ack is on Slack's 3 s budget."""
        if self._signing_key is None:
            raise ValueError("Slack over HTTP needs SLACK_SIGNING_SECRET")
        return {EVENTS_PATH: self._events}

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /slack/events: body capped, signature checked on the raw bytes, then a
        slash command is acked here at once and anything else (events, clicks, URL
        verification, retries) goes through bolt."""
        if scope["method"] != "POST":
            await respond(send, 405, b"Method Not Allowed", headers=[(b"allow", b"POST")])
            return
        self._requests.arrived()
        try:
            await self._answer_event(scope, receive, send)
        finally:
            self._requests.answered()

    async def _answer_event(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_capped_body(scope, receive, send, cap=EVENTS_BODY_LIMIT)
        if body is None:
            return  # refused (400/413), or the client went away
        content_type, timestamp, signature = _slack_headers(scope["headers"])
        if not self._signed_by_slack(body, timestamp, signature):
            await respond(send, 401, b"invalid request")
            return
        if _command_name(content_type, body) == self.config.command:
            await respond(
                send, 200, self._accept_command_body(body), content_type=b"application/json"
            )
            return
        bolt = await self.bolt()
        request = Request(scope, replaying(body, receive))
        response = await bolt.requests.handle(request)
        await response(scope, receive, send)

    def _signed_by_slack(self, body: bytes, timestamp: bytes, signature: bytes) -> bool:
        """Slack's v0 signature over the raw body, timestamp within 5 minutes.

        Computed on bytes rather than with slack_sdk's `SignatureVerifier`, which
        decodes the body as UTF-8 and parses the timestamp with `int()`, and so
        raises (a 500) on bodies and headers that only an attacker would send.
        """
        if self._signing_key is None or not _TIMESTAMP.fullmatch(timestamp):
            return False
        if abs(time.time() - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
            return False
        digest = hmac.new(
            self._signing_key, b"v0:" + timestamp + b":" + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(b"v0=" + digest.encode(), signature)

    async def _oauth_route(self, request: Request) -> Response:
        bolt = await self.bolt()
        return await bolt.requests.handle(request)

    # --- slash commands ---------------------------------------------------------------

    def accept_command(self, form: Mapping[str, str]) -> dict[str, str]:
        """Schedule a verified slash command; returns the immediate (ephemeral) ack body,
        which says "busy" instead when this process already runs all it may."""
        taken = self._spawn(self._run_command(dict(form)), name="slack:command")
        return {"response_type": "ephemeral", "text": ACK_TEXT if taken else BUSY_TEXT}

    def _accept_command_body(self, body: bytes) -> bytes:
        """`accept_command` for a form still in its bytes (the HTTP fast path): parsed in
        the background, off the ack's path; the ack's JSON is made once."""
        taken = self._spawn(self._run_command_body(body), name="slack:command")
        return _ACK_JSON if taken else _BUSY_JSON

    async def _on_command(self, ack: Any, body: dict[str, Any]) -> None:
        """Socket Mode (and any bolt-routed command): same path as the HTTP fast path."""
        await ack(self.accept_command(body))

    async def _run_command_body(self, body: bytes) -> None:
        await self._run_command(_form(body))

    async def _run_command(self, form: dict[str, str]) -> None:
        # A trigger_id seen before is a replayed signed request (Slack itself never
        # re-sends a command). Claimed here, off the ack path: the replay still gets
        # the usual ack, which tells its sender nothing, and the action does not run.
        trigger_id = form.get("trigger_id")
        if trigger_id and not await self._dedupe.claim_command(trigger_id):
            log.info("replayed slack command ignored")
            return
        client = await self._client_for(
            team_id=form.get("team_id"),
            enterprise_id=form.get("enterprise_id") or None,
            is_enterprise_install=form.get("is_enterprise_install") == "true",
        )
        if client is None:
            log.warning("command from a workspace without an installation")
            return
        message = command_to_message(form)
        message = replace(message, admin_check=admin_check(client, message.user_id))
        sink = SlackReplySink(
            client=client,
            channel=message.channel_id,
            user=message.user_id,
            response_url=form.get("response_url"),
        )
        await self._handler.handle(message, sink)

    # --- events -----------------------------------------------------------------------

    async def _dedupe_events(self, body: dict[str, Any], next: Any) -> BoltResponse | None:
        """Global middleware: an event id seen before gets a 200 and reaches no listener."""
        from slack_bolt import BoltResponse  # loaded: bolt is running this

        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await self._dedupe.claim(str(event_id)):
            log.info("duplicate slack event ignored", extra={"event_id": event_id})
            return BoltResponse(status=200, body="")
        return await next()  # type: ignore[no-any-return]

    async def _on_mention(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if is_from_bot(event, context.bot_user_id):
            return
        if not self._spawn(self._run_event(body, event, context), name="slack:mention"):
            self._tell_busy(context.client, event)

    async def _on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if not is_person_dm(event, context.bot_user_id):
            return
        if not self._spawn(self._run_event(body, event, context), name="slack:dm"):
            self._tell_busy(context.client, event)

    async def _run_event(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        client: AsyncWebClient = context.client
        team = event_team(body) or (context.team_id or "")
        files = list(event.get("files") or [])
        if not files and event.get("thread_ts") and event.get("thread_ts") != event.get("ts"):
            files = await self._thread_files(client, event)
        attachments = await self.files.attachments(files, team_id=team, client=client)
        message = event_to_message(
            event, team_id=team, bot_user_id=context.bot_user_id, attachments=attachments
        )
        message = replace(message, admin_check=admin_check(client, message.user_id))
        sink = SlackReplySink(
            client=client,
            channel=message.channel_id,
            user=message.user_id,
            thread_ts=message.thread_id,
        )
        await self._handler.handle(message, sink)

    async def _thread_files(
        self, client: AsyncWebClient, event: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Files of the latest earlier message in the thread ("upload the video above")."""
        try:
            response = await client.conversations_replies(
                channel=str(event.get("channel", "")), ts=str(event["thread_ts"]), limit=100
            )
        except api_error() as exc:
            # e.g. missing_scope on an older install: go on without the thread's files.
            log.info("thread history unavailable", extra={"error": exc.response.get("error")})
            return []
        earlier = [
            m
            for m in response.get("messages") or []
            if m.get("ts") != event.get("ts") and m.get("files")
        ]
        return list(earlier[-1]["files"]) if earlier else []

    # --- approvals --------------------------------------------------------------------

    async def _on_approval(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        parsed = parse_approval_action(str(action.get("action_id", "")))
        if parsed is None:
            return
        requester = approval_requester(str(action.get("block_id", "")))
        work = self._run_approval(body, parsed, requester, context)
        if not self._spawn(work, name="slack:approval"):
            where = {
                "channel": _click_channel(body),
                "user": str((body.get("user") or {}).get("id", "")),
            }
            self._tell_busy(context.client, where, response_url=body.get("response_url"))

    async def _run_approval(
        self,
        body: dict[str, Any],
        parsed: tuple[bool, str],
        requester: str | None,
        context: AsyncBoltContext,
    ) -> None:
        approved, action_id = parsed
        user = str((body.get("user") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id") or context.team_id or "")
        channel = _click_channel(body)
        message = body.get("message") or {}
        ts = str(message.get("ts") or (body.get("container") or {}).get("message_ts", ""))
        # Where the answer goes is presentation, decided here; whether the click
        # counts is the core's decision. The requester's first click turns the
        # approval message into the outcome; anyone else's click (or a second
        # click) is answered privately, so the buttons stay for the requester.
        decision = None
        if user == requester and await self._dedupe.claim_approval(channel, ts):
            decision = PendingDecision(
                channel=channel,
                ts=ts,
                blocks=list(message.get("blocks") or []),
                decided_by=user,
                approved=approved,
            )
        sink = SlackReplySink(
            client=context.client,
            channel=channel,
            user=user,
            thread_ts=message.get("thread_ts") or ts,
            response_url=body.get("response_url"),
            decision=decision,
            private_only=decision is None,
        )
        await self._handler.resolve_approval(
            frontend="slack",
            workspace_id=team,
            user_id=user,
            action_id=action_id,
            approved=approved,
            sink=sink,
        )

    # --- "Share to channel" -----------------------------------------------------------

    async def _on_share(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """The button on a private answer: the core posts the kept answer publicly."""
        await ack()
        user = str((body.get("user") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id") or context.team_id or "")
        where = {"channel": _click_channel(body), "user": user}
        sink = SlackReplySink(
            client=context.client,
            channel=where["channel"],
            user=user,
            thread_ts=(body.get("container") or {}).get("thread_ts"),
            response_url=body.get("response_url"),
        )
        work = self._run_share(body, team, user, str(action.get("value", "")), sink)
        if not self._spawn(work, name="slack:share"):
            self._tell_busy(context.client, where, response_url=body.get("response_url"))

    async def _run_share(
        self, body: dict[str, Any], team: str, user: str, share_id: str, sink: SlackReplySink
    ) -> None:
        shared = await self._handler.share(
            frontend="slack", workspace_id=team, user_id=user, share_id=share_id, sink=sink
        )
        response_url = body.get("response_url")
        if shared and response_url:
            from slack_sdk.webhook.async_client import AsyncWebhookClient  # loaded: bolt runs

            # The private copy has served its purpose: remove it with its button.
            await AsyncWebhookClient(str(response_url)).send_dict({"delete_original": True})

    # --- command buttons ("Cancel", "Reschedule", "Retry") ---------------------------

    async def _on_run(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """A button standing for a chat command: run it as the person who clicked.

        The command is the button's value, handed to the core exactly as if that person
        had typed it as a slash command here (private answer, approval in the channel);
        the core decides what they may do, whoever's message the button was on."""
        await ack()
        user = str((body.get("user") or {}).get("id", ""))
        team = str((body.get("team") or {}).get("id") or context.team_id or "")
        channel = _click_channel(body)
        message = command_to_message(
            {
                "team_id": team,
                "channel_id": channel,
                "user_id": user,
                "text": str(action.get("value", "")),
            }
        )
        message = replace(message, admin_check=admin_check(context.client, user))
        sink = SlackReplySink(
            client=context.client,
            channel=channel,
            user=user,
            thread_ts=(body.get("container") or {}).get("thread_ts"),
            response_url=body.get("response_url"),
        )
        if not self._spawn(self._handler.handle(message, sink), name="slack:run"):
            where = {"channel": channel, "user": user}
            self._tell_busy(context.client, where, response_url=body.get("response_url"))

    # --- outside callers --------------------------------------------------------------

    async def notify(
        self, reply_to: Mapping[str, Any], text: str, /, *, layout: Layout | None = None
    ) -> None:
        """Tell a user something later (OAuth finished, a scheduled post failed): ephemeral
        where they asked, else a DM; `layout` as Block Kit with its buttons.

        `reply_to` is `{"frontend": "slack", "team": ..., "channel": ..., "user": ...}`
        (see `bot.slack.convert.reply_to_for`); the core's spelling
        (`workspace_id`, `channel_id`, `user_id`, `thread_id`) is accepted too.
        """
        team = str(reply_to.get("team") or reply_to.get("workspace_id") or "")
        user = str(reply_to.get("user") or reply_to.get("user_id") or "")
        channel = str(reply_to.get("channel") or reply_to.get("channel_id") or "")
        thread = reply_to.get("thread_id") or reply_to.get("thread") or None
        client = await self._client_for(team_id=team, enterprise_id=None)
        if client is None or not user:
            log.warning("cannot notify: unknown workspace or user", extra={"team": team})
            return
        sink = SlackReplySink(
            client=client, channel=channel or user, user=user, thread_ts=thread and str(thread)
        )
        await sink.send_private(Reply(text, layout=layout))

    async def chat_profile(self, team_id: str, user_id: str) -> ChatProfile:
        """The user's time zone from Slack (`users.info` `tz`)."""
        client = await self._client_for(team_id=team_id, enterprise_id=None)
        if client is None:
            return ChatProfile()
        response = await client.users_info(user=user_id)
        user = response.get("user") or {}
        zone = user.get("tz")
        return ChatProfile(time_zone=str(zone) if zone else None)

    async def channel_sink(
        self, *, team_id: str, channel: str, thread_ts: str | None = None
    ) -> SlackReplySink:
        """A sink for a channel (and thread) outside any request: job status messages.

        Its `send` returns `channel:ts` and its `update` edits that message (chat.update).
        LookupError when the workspace has no bot installed.
        """
        client = await self.team_client(team_id=team_id)
        return SlackReplySink(client=client, channel=channel, user="", thread_ts=thread_ts)

    async def team_client(self, *, team_id: str) -> AsyncWebClient:
        """The Web API client of a workspace's installation (digests upload with it).

        LookupError when the workspace has no bot installed.
        """
        client = await self._client_for(team_id=team_id or None, enterprise_id=None)
        if client is None:
            raise LookupError(f"no Slack installation for workspace {team_id}")
        return client

    async def drain(self, grace: float) -> None:
        """Let in-flight work finish (up to `grace` seconds), then cancel the rest."""
        await asyncio.gather(self._work.drain(grace), self._notices.drain(grace))

    async def aclose(self, grace: float = 10.0) -> None:
        """Drain background work and close the download client."""
        await self.drain(grace)
        if self._own_http:
            await self._http.aclose()
        built = self._bolt
        if built is not None and built.done() and not built.cancelled() and not built.exception():
            await built.result().close_session()

    # --- internals --------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> bool:
        """Run `work` in the background, unless `max_in_flight` tasks already wait or
        run: then it is dropped unstarted and the answer is False (the caller says
        "busy")."""
        return self._work.start(work, name)

    def _tell_busy(
        self, client: AsyncWebClient, where: Mapping[str, Any], response_url: str | None = None
    ) -> None:
        """Answer the person privately that we are too busy (in the background, bounded
        too: past that, the work is refused in silence and logged)."""
        sink = SlackReplySink(
            client=client,
            channel=str(where.get("channel", "")),
            user=str(where.get("user", "")),
            thread_ts=where.get("thread_ts"),
            response_url=response_url,
        )
        if not self._notices.start(sink.send_private(Reply(BUSY_TEXT)), "slack:busy"):
            log.warning("too busy to say so: slack request dropped")

    async def _guard(self, work: Coroutine[Any, Any, None], name: str) -> None:
        # The core never raises; this catches the adapter's own failures
        # (Slack API errors, a missing installation) so they are logged, not lost.
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, api_error()):
                log.error(
                    "slack api call failed",
                    extra={"work": name, "error": exc.response.get("error")},
                )
            else:
                log.exception("slack handler failed", extra={"work": name})

    async def _client_for(
        self,
        *,
        team_id: str | None,
        enterprise_id: str | None,
        is_enterprise_install: bool = False,
    ) -> AsyncWebClient | None:
        """A client with the right bot token for a workspace (None if not installed)."""
        bolt = await self.bolt()
        if not self.config.multi_workspace:
            return bolt.web_client
        token = await self._token_for(team_id, enterprise_id, is_enterprise_install)
        return bolt.client(token) if token is not None else None

    async def _token_for(
        self, team_id: str | None, enterprise_id: str | None, is_enterprise_install: bool
    ) -> str | None:
        if not self.config.multi_workspace:
            return self.config.bot_token
        bolt = await self.bolt()
        return await bolt.bot_token(team_id, enterprise_id, is_enterprise_install)

    async def is_admin(self, identity: Identity) -> bool:
        """Whether a Slack member administers their workspace (`users.info`)."""
        client = await self._client_for(team_id=identity.workspace_external_id, enterprise_id=None)
        if client is None:
            return False
        return await admin_check(client, identity.user_external_id)()

    async def _token_for_team(self, team_id: str) -> str | None:
        return await self._token_for(team_id or None, None, False)


def _click_channel(body: Mapping[str, Any]) -> str:
    """The channel a button click came from."""
    return str(
        (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
    )


def _slack_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bytes, bytes]:
    """Content type, signature timestamp and signature, from the ASGI scope's headers."""
    content_type = timestamp = signature = b""
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"x-slack-request-timestamp":
            timestamp = value
        elif name == b"x-slack-signature":
            signature = value
    return content_type, timestamp, signature


def _command_name(content_type: bytes, body: bytes) -> str | None:
    """The command if this POST is a slash command (a form with `command` and no
    `payload`), else None: events are JSON, clicks a form with `payload`.

    Only the field names are looked at, on the bytes; the form is parsed in the
    background. Anything this does not recognise (say, a percent-encoded field name)
    goes through bolt, which parses the form itself and routes a command to
    `_on_command`: the same ack, just slower."""
    if not content_type.startswith(b"application/x-www-form-urlencoded"):
        return None
    if _PAYLOAD_FIELD.search(body):
        return None
    found = _COMMAND_FIELD.findall(body)
    return unquote_plus(found[-1].decode("utf-8", errors="replace")) if found else None


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _import_slack_bolt() -> type[SlackBolt]:
    from bot.slack.bolt_app import SlackBolt

    return SlackBolt
