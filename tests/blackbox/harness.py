"""Black-box harness: the real `socialops` processes against the fakes over loopback.

The fakes run in the test's event loop (`serve_asgi`); each role is a child
process (`python -m bot.cli <role>`) configured only by environment variables,
as an operator would start it. The test talks to the processes only through
their public surfaces: Slack's signed requests to `/slack/events`, the HTTP API,
`/metrics`, and what they leave in the fakes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from storage.crypto import generate_key_spec
from tests.fakes.google import FakeGoogle
from tests.fakes.server import serve_asgi
from tests.fakes.slack import FakeSlack, form_body, sign

SIGNING_SECRET = "blackbox-signing-secret-0123456789"
BOT_TOKEN = "xoxb-TBB-blackbox"
TEAM = "TBB"
BOT_USER = "UBOT"
# Variables of the developer's shell that would point a child at real services.
_INHERITED_OUT = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_SIGNING_SECRET",
    "DISCORD_TOKEN",
    "LLM_API_KEY",
    "OPENAI_API_KEY",
    "METRICS_TOKEN",
    "METRICS_PORT",
)
BAD_WORDS = ("Traceback", "Task was destroyed", "never awaited")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Role:
    """One running `socialops <role>` child; its stderr goes to a file for the test to read."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), timeout)


@dataclass
class Stack:
    """The fakes, the environment every role gets, and the roles started so far."""

    tmp: Path
    database_url: str
    redis_url: str
    slack: FakeSlack
    google: FakeGoogle
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    roles: list[Role] = field(default_factory=list)
    keys: str = field(default_factory=lambda: generate_key_spec("bb"))
    prefix: str = field(default_factory=lambda: f"socialops-bb:{secrets.token_hex(4)}:")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _INHERITED_OUT}
        g = self.google.base
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            REDIS_KEY_PREFIX=self.prefix,
            SOCIALOPS_DATA_DIR=str(self.tmp / "data"),
            TOKEN_ENCRYPTION_KEYS=self.keys,
            PORT=str(self.port),
            PUBLIC_BASE_URL=self.base,
            LOG_FORMAT="json",
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_BASE=self.slack.api_base,
            GOOGLE_CLIENT_ID=self.google.client_id,
            GOOGLE_CLIENT_SECRET=self.google.client_secret,
            GOOGLE_AUTH_URL=f"{g}/o/oauth2/v2/auth",
            GOOGLE_TOKEN_URL=f"{g}/token",
            GOOGLE_REVOKE_URL=f"{g}/revoke",
            YOUTUBE_API_BASE=f"{g}/youtube/v3",
            YOUTUBE_UPLOAD_BASE=f"{g}/upload",
            YOUTUBE_ANALYTICS_BASE=f"{g}/v2",
            YOUTUBE_UPLOAD_CHUNK_BYTES=str(256 * 1024),
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    async def start(self, role: str, **extra: str) -> Role:
        log = self.tmp / f"{role}-{len(self.roles)}.log"
        with log.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                role,
                env=self.env(**extra),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started = Role(role, proc, log)
        self.roles.append(started)
        return started

    async def serve(self, **extra: str) -> Role:
        role = await self.start("serve", **extra)
        await wait_for(lambda: _healthy(self.base, role), timeout=60, what=role)
        return role

    # --- Slack as Slack sends it -----------------------------------------------------

    async def command(
        self, text: str, *, user: str = "UALICE", channel: str = "C1"
    ) -> httpx.Response:
        fields = {
            "token": "legacy",
            "team_id": TEAM,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/social",
            "text": text,
            "api_app_id": "A1",
            "response_url": f"{self.slack.base_url}/response/{uuid.uuid4().hex}",
            "trigger_id": f"t.{uuid.uuid4().hex}",
        }
        body = form_body(fields)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **sign(SIGNING_SECRET, body),
        }
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            return await http.post("/slack/events", content=body, headers=headers)

    async def event(self, event: dict[str, Any]) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": TEAM,
                "api_app_id": "A1",
                "type": "event_callback",
                "event": event,
                "event_id": f"Ev{uuid.uuid4().hex[:10]}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
            }
        ).encode()
        headers = {"Content-Type": "application/json", **sign(SIGNING_SECRET, body)}
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            return await http.post("/slack/events", content=body, headers=headers)

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        body = form_body({"payload": json.dumps(payload)})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **sign(SIGNING_SECRET, body),
        }
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as http:
            return await http.post("/slack/events", content=body, headers=headers)

    async def link_youtube(self, user: str = "UALICE", title: str = "Ada Cooks") -> str:
        """`/social link youtube`, then the browser through the consent: the channel's id."""
        channel = self.google.add_channel(title)
        self.google.login_channel = channel.id
        since = len(self.slack.calls)
        await self.command("link youtube", user=user)
        pattern = re.compile(re.escape(self.base) + r"/oauth/youtube/start\?s=[\w-]+")
        links: list[str] = []

        def sent() -> bool:
            links[:] = [m for r in self.replies(since=since) for m in pattern.findall(str(r))]
            return bool(links)

        await wait_for(sent, what=self.roles[0])
        state = links[0].rsplit("s=", 1)[1]
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as web:
            start = await web.post("/oauth/youtube/start", data={"s": state})
            assert start.status_code == 303, start.text
            consent = await web.get(start.headers["location"])
            assert consent.status_code == 302, consent.text
            back = urlsplit(consent.headers["location"])
            page = await web.get(f"{back.path}?{back.query}")
            assert page.status_code == 200 and title in page.text, page.text
        # No Sign in with Slack here: the page shows a code the requester types in chat.
        code = re.search(r"link confirm ([\w-]+)</code>", page.text)
        assert code is not None, page.text
        since = len(self.slack.calls)
        await self.command(f"link confirm {code.group(1)}", user=user)
        await wait_for(
            lambda: any(
                "Linked" in str(r) or "linked" in str(r) for r in self.replies(since=since)
            ),
            what=self.roles[0],
        )
        return channel.id

    async def click(
        self, message: dict[str, Any], action_id: str, *, user: str = "UALICE", channel: str = "C1"
    ) -> httpx.Response:
        """A button of `message` (a chat.postMessage/postEphemeral's args) clicked by `user`."""
        blocks = message["blocks"]
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        block, button = next(
            (b, e)
            for b in blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == action_id or e["action_id"].startswith(action_id)
        )
        # Each message its own ts (the adapter claims an approval once per message).
        ts = f"1800000000.{uuid.uuid4().int % 10**6:06d}"
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM, "domain": "acme"},
            "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A1",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
            },
            "channel": {"id": channel},
            "message": {
                "ts": ts,
                **({"thread_ts": message["thread_ts"]} if message.get("thread_ts") else {}),
                "text": message.get("text", ""),
                "blocks": blocks,
            },
            "response_url": f"{self.slack.base_url}/response/{uuid.uuid4().hex}",
            "trigger_id": f"t.{uuid.uuid4().hex}",
            "actions": [
                {
                    "type": "button",
                    "action_id": button["action_id"],
                    "block_id": block.get("block_id", ""),
                    "value": button.get("value", ""),
                    "action_ts": str(time.time()),
                }
            ],
        }
        return await self.interact(payload)

    def replies(self, *, since: int = 0) -> list[dict[str, Any]]:
        """What the processes said in Slack: Web API messages and response_url posts."""
        said: list[dict[str, Any]] = []
        for call in self.slack.calls[since:]:
            if call.method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
                said.append({"via": call.method, **call.args})
        return said + [{"via": "response_url", **p} for p in self.slack.webhook_posts]


async def _healthy(base: str, role: Role) -> bool:
    if role.proc.returncode is not None:
        raise AssertionError(f"{role.name} exited during startup:\n{role.output()}")
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"{base}/healthz", timeout=1)).status_code == 200
    except httpx.TransportError:
        return False


async def wait_for(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    *,
    timeout: float = 30,
    what: Any = "",
) -> None:
    """Poll `check` until it holds; AssertionError (with `what`'s output) after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            detail = what.output() if isinstance(what, Role) else str(what)
            raise AssertionError(f"condition did not hold in {timeout}s\n{detail[-4000:]}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def stack(tmp: Path, database_url: str, redis_url: str) -> AsyncIterator[Stack]:
    """The fakes served, and every role started in the block stopped after it (SIGTERM)."""
    async with AsyncExitStack() as exits:
        slack = FakeSlack()
        slack.base_url = await exits.enter_async_context(serve_asgi(slack.app))
        slack.add_team(TEAM, token=BOT_TOKEN, bot_user_id=BOT_USER)
        google = FakeGoogle()
        google.base = await exits.enter_async_context(serve_asgi(google))
        running = Stack(tmp, database_url, redis_url, slack, google)
        try:
            yield running
        finally:
            for role in running.roles:
                if role.proc.returncode is None:
                    role.proc.send_signal(signal.SIGTERM)
            for role in running.roles:
                try:
                    await asyncio.wait_for(role.proc.wait(), 30)
                except TimeoutError:
                    role.proc.kill()
                    await role.proc.wait()
