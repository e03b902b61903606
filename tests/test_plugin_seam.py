"""The plug-in proof: a platform that exists only in this test ("Pebble") is registered
through the registry, and link, upload, metrics and quota work for it through the
grammar, the real composition root, the real limiter and the real OAuth pages.
Nothing outside tests/ knows its name.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.assembly import Assembly
from bot.web import create_app
from integrations.registry import PLUGINS, Registry
from tests import wiring
from tests.fakes import pebble
from tests.fakes.chatops import RecordingSink


@pytest.fixture
async def wired(make_settings: Any) -> AsyncIterator[Assembly]:
    pebble.WORLD.posts.clear()
    pebble.WORLD.calls.clear()
    async with wiring.wired(
        make_settings,
        registry=Registry([*PLUGINS, pebble.PLUGIN]),
        public_base_url="http://testserver",
    ) as assembly:
        yield assembly


async def _say(wired: Assembly, who: tuple[str, str], text: str) -> RecordingSink:
    sink = RecordingSink()
    await wired.chatops.handle(wiring.chat_message(*who, text), sink)
    return sink


async def test_an_extra_platform_links_uploads_reports_and_counts(
    wired: Assembly, tmp_path: Path
) -> None:
    who = (f"W{secrets.token_hex(3)}", f"u{secrets.token_hex(3)}")
    assert wired.services.platforms.configured()[-1] == "pebble"

    # link, by its alias: the one-time URL goes to the requester privately.
    sink = await _say(wired, who, "link pb")
    [link] = re.findall(r"http://testserver/oauth/pebble/start\?s=[\w-]+", "\n".join(sink.private))

    # The browser: our start page -> Pebble's consent -> our callback.
    app = create_app(wired.services, routers=wired.web_routers(), endpoints=wired.web_endpoints())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
        page = await web.get(link.removeprefix("http://testserver"))
        assert page.status_code == 200 and "Continue" in page.text
        start = await web.post("/oauth/pebble/start", data={"s": link.rsplit("s=", 1)[1]})
        assert start.status_code == 303
        consent = urlsplit(start.headers["location"])
        assert consent.netloc == "pebble.example"
        state = parse_qs(consent.query)["state"][0]
        page = await web.get("/oauth/pebble/callback", params={"state": state, "code": "pebble-ok"})
        assert page.status_code == 200, page.text
        assert "Pebble linked" in page.text

    sink = await _say(wired, who, "accounts")
    assert re.search(r"pb-[0-9a-f]{8}: Pebble @pebbler", sink.text), sink.text

    # Capabilities are honoured before any approval: a privacy Pebble lacks, text too long.
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(2048))
    sink = await _say(wired, who, f'upload pebble {video} "Hello" unlisted')
    assert not sink.approvals and "public, followers" in sink.text, sink.text
    sink = await _say(wired, who, f'upload pebble {video} "{"x" * 41}"')
    assert not sink.approvals and "text over 40 characters" in sink.text, sink.text

    # A request Pebble can carry out: approval, then the upload, with Pebble's default.
    sink = await _say(wired, who, f'upload pebble {video} "Hello"')
    [approval] = sink.approvals
    assert "(followers)" in approval.summary
    assert pebble.WORLD.posts == {}
    await wired.chatops.resolve_approval(
        frontend="local",
        workspace_id=who[0],
        user_id=who[1],
        action_id=approval.action_id,
        approved=True,
        sink=sink,
    )
    assert pebble.WORLD.posts == {}  # approving only queues the job
    run_id = int(re.search(r"Queued as job (\d+)", sink.text).group(1))
    await wired.upload_job({"run": run_id})  # what the worker does with it
    assert pebble.WORLD.posts["peb1"]["bytes"] == 2048

    # Metrics: its own longest period is refused before any call; a short one works.
    calls = len(pebble.WORLD.calls)
    sink = await _say(wired, who, "metrics pebble 28d")
    assert "at most 7 days" in sink.text and len(pebble.WORLD.calls) == calls, sink.text
    sink = await _say(wired, who, "metrics pebble 7d")
    assert "Pebble" in sink.text and "Views 7" in sink.text, sink.text

    # quota shows its counters from its own spec, per account and per app.
    sink = await _say(wired, who, "quota")
    assert re.search(r"Pebble posts, account pb-[0-9a-f]{8} \(per 24 h\): 1 of 3 used", sink.text)
    assert re.search(r"Pebble reads today \(Pacific/Auckland\): 4 of 1,000 used", sink.text), (
        sink.text
    )
