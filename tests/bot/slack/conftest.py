"""Fixtures for the Slack adapter: a fake Slack on loopback, a recording core, the real app."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bot.core.messages import ApprovalRequest, IncomingMessage, Reply, ReplySink
from bot.services import Services
from bot.slack import SlackAdapter, build_slack_adapter
from bot.web import create_app
from storage.redis import RedisHandle
from tests.fakes.server import serve_asgi
from tests.fakes.slack import FakeSlack, form_body, interaction_body, sign

SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-T1-fixture"
TEAM = "T1"
BOT_USER = "UBOT"


@dataclass
class RecordingCore:
    """A conversation core that records what the adapter gives it and answers by script.

    It fails loudly: anything it does not expect is kept in `unexpected`, which
    the fixture asserts empty after each test.
    """

    messages: list[IncomingMessage] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    bytes_read: dict[str, bytes] = field(default_factory=dict)
    chunk_sizes: list[int] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    decided: dict[str, bool] = field(default_factory=dict)
    requesters: dict[str, str] = field(default_factory=dict)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # "hold" waits for it

    async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        self.messages.append(message)
        text = message.text
        if text == "hold":
            await self.gate.wait()
            await sink.send(Reply("held"))
        elif text.startswith("approve-me"):
            action_id = text.split()[-1] if len(text.split()) > 1 else "act-1"
            self.requesters[action_id] = message.user_id
            await sink.ask_approval(
                ApprovalRequest(
                    action_id=action_id,
                    summary="Upload *clip.mp4* to YouTube as <!channel> Launch",
                    requester_user_id=message.user_id,
                    expires_in_seconds=900,
                )
            )
        elif text == "upload":
            for attachment in message.attachments:
                data = b""
                async for chunk in attachment.open():
                    self.chunk_sizes.append(len(chunk))
                    data += chunk
                self.bytes_read[attachment.name] = data
            await sink.send(Reply(f"read {sum(len(b) for b in self.bytes_read.values())} bytes"))
        elif text == "progress":
            ref = await sink.send(Reply("Uploading: 0%"))
            await sink.update(ref, Reply("Uploading: 100%"))
        elif text == "private":
            await sink.send_private(Reply("Open this link to connect: https://example.test/oauth"))
        elif text.startswith("echo"):
            await sink.send(Reply(f"you said: {text}"))
        else:
            self.unexpected.append(f"handle: {text!r}")

    async def resolve_approval(
        self,
        *,
        frontend: str,
        workspace_id: str,
        user_id: str,
        action_id: str,
        approved: bool,
        sink: ReplySink,
    ) -> None:
        self.approvals.append(
            {
                "frontend": frontend,
                "workspace_id": workspace_id,
                "user_id": user_id,
                "action_id": action_id,
                "approved": approved,
            }
        )
        requester = self.requesters.get(action_id)
        if requester is None:
            self.unexpected.append(f"approval for unknown action {action_id}")
            return
        # Like the real core, refusals are plain `send`s: the adapter decides who sees them.
        if user_id != requester:
            await sink.send(Reply("Only the person who asked can approve or reject this request."))
            return
        if action_id in self.decided:
            await sink.send(Reply("That request was already answered; nothing more was done."))
            return
        self.decided[action_id] = approved
        if not approved:
            await sink.send(Reply("Cancelled."))
            return
        ref = await sink.send(Reply("Uploading… 0%"))
        await sink.update(ref, Reply("Uploading… 100%"))
        await sink.send(Reply("Uploaded."))


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    async with serve_asgi(fake.app) as url:
        fake.base_url = url
        fake.add_team(TEAM, token=BOT_TOKEN, bot_user_id=BOT_USER)
        yield fake


@pytest.fixture
def core() -> RecordingCore:
    return RecordingCore()


@dataclass
class SlackHarness:
    """The real ASGI app with the Slack routes, and helpers to post as Slack does."""

    http: httpx.AsyncClient
    adapter: SlackAdapter
    services: Services
    fake: FakeSlack
    core: RecordingCore

    async def command(
        self, text: str, *, user: str = "UALICE", signed: bool = True, **extra: str
    ) -> httpx.Response:
        fields = {
            "token": "legacy",
            "team_id": TEAM,
            "team_domain": "acme",
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": user,
            "user_name": "alice",
            "command": "/social",
            "text": text,
            "api_app_id": "A1",
            "response_url": f"{self.fake.base_url}/response/cmd1",
            # Unique per invocation, as Slack makes it (replays are deduplicated on it).
            "trigger_id": f"t.{uuid.uuid4().hex}",
        }
        fields.update(extra)
        body = form_body(fields)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signed:
            headers.update(sign(SIGNING_SECRET, body))
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str = "Ev1",
        retry: int | None = None,
        team: str = TEAM,
    ) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": team,
                "api_app_id": "A1",
                "type": "event_callback",
                "event": event,
                "event_id": event_id,
                "event_time": int(time.time()),
                "authorizations": [{"team_id": team, "user_id": BOT_USER, "is_bot": True}],
            }
        ).encode()
        headers = {"Content-Type": "application/json", **sign(SIGNING_SECRET, body)}
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def click(
        self, *, user: str, action_id: str, message: dict[str, Any], channel: str = "C1"
    ) -> httpx.Response:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM, "domain": "acme"},
            "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A1",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
            "channel": {"id": channel},
            "message": message,
            "response_url": f"{self.fake.base_url}/response/click",
            "trigger_id": "t.2",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": next(
                        (b["block_id"] for b in message["blocks"] if b["type"] == "actions"),
                        "socialops:approval",
                    ),
                    "value": action_id.rsplit(":", 1)[-1],
                    "action_ts": str(time.time()),
                }
            ],
        }
        body = interaction_body(payload)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **sign(SIGNING_SECRET, body),
        }
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def settle(self) -> None:
        """Wait for the background work the requests scheduled."""
        await self.adapter.drain(30)


async def _harness(
    make_settings: Any, fake: FakeSlack, core: RecordingCore, **overrides: Any
) -> AsyncIterator[SlackHarness]:
    settings = make_settings(
        slack_signing_secret=SIGNING_SECRET, slack_api_base=fake.api_base, **overrides
    )
    services = Services(settings=settings)
    await services.initialize()
    adapter = build_slack_adapter(services, handler=core)
    app = create_app(services, routers=[adapter.router()], endpoints=adapter.endpoints())
    transport = httpx.ASGITransport(app=app)
    # https: bolt's OAuth state cookie is Secure, and httpx honours that.
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        try:
            yield SlackHarness(http=http, adapter=adapter, services=services, fake=fake, core=core)
            await adapter.drain(30)
            assert core.unexpected == []
        finally:
            await adapter.aclose(5)
            await services.shutdown()


@pytest.fixture
async def slack(
    make_settings: Any, fake_slack: FakeSlack, core: RecordingCore, redis: RedisHandle
) -> AsyncIterator[SlackHarness]:
    """Single-workspace HTTP mode (SLACK_BOT_TOKEN)."""
    async for harness in _harness(make_settings, fake_slack, core, slack_bot_token=BOT_TOKEN):
        yield harness


@pytest.fixture
async def slack_multi(
    make_settings: Any, fake_slack: FakeSlack, core: RecordingCore, redis: RedisHandle
) -> AsyncIterator[SlackHarness]:
    """Multi-workspace HTTP mode (SLACK_CLIENT_ID / SLACK_CLIENT_SECRET, installs via OAuth)."""
    async for harness in _harness(
        make_settings,
        fake_slack,
        core,
        slack_client_id="1111.2222",
        slack_client_secret="client-secret-xyz",
    ):
        yield harness
