"""The whole product wired as `socialops run` wires it, against fake Google over loopback.

Services + Assembly (the real composition root), the real limiter on real Redis,
the real web app for the OAuth pages, and the grammar path of the conversation
core: link a channel, list it, upload a video with approval, read metrics and
quota. Nothing in between is replaced.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bot.assembly import Assembly
from bot.web import create_app
from storage import queue
from tests import wiring
from tests.fakes.chatops import RecordingSink
from tests.fakes.google import FakeGoogle
from tests.fakes.google_env import google  # noqa: F401


@pytest.fixture
async def wired(make_settings: Any, google: FakeGoogle) -> AsyncIterator[Assembly]:
    async with wiring.wired(make_settings, **wiring.google_settings(google)) as assembly:
        yield assembly


async def test_link_list_upload_metrics_quota_through_the_composition_root(
    wired: Assembly, google: FakeGoogle, tmp_path: Path
) -> None:
    chat = wired.chatops
    workspace, user = f"W{secrets.token_hex(3)}", f"u{secrets.token_hex(3)}"
    channel = google.add_channel("Cooking With Ada", custom_url="@adacooks")
    google.login_channel = channel.id

    # 1. link: the URL goes to the requester privately.
    sink = RecordingSink()
    await chat.handle(wiring.chat_message(workspace, user, "link youtube"), sink)
    links = re.findall(r"http://testserver/oauth/youtube/start\?s=[\w-]+", "\n".join(sink.private))
    assert len(links) == 1, (sink.private, sink.sent)

    # 2. the browser: our start page -> Google consent -> our callback.
    app = create_app(wired.services, routers=wired.web_routers(), endpoints=wired.web_endpoints())
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as web,
        httpx.AsyncClient() as browser,
    ):
        page = await web.get(links[0].removeprefix("http://testserver"))
        assert page.status_code == 200 and "Continue" in page.text
        state = links[0].rsplit("s=", 1)[1]
        start = await web.post("/oauth/youtube/start", data={"s": state})
        assert start.status_code == 303
        consent = await browser.get(start.headers["location"])
        assert consent.status_code == 302
        parts = urlsplit(consent.headers["location"])
        page = await web.get(f"{parts.path}?{parts.query}")
        assert page.status_code == 200, page.text
        assert "Cooking With Ada" in page.text

    # 3. accounts lists the channel under an opaque handle, never a token.
    sink = RecordingSink()
    await chat.handle(wiring.chat_message(workspace, user, "accounts"), sink)
    assert "@adacooks" in sink.text or "Cooking With Ada" in sink.text
    assert "access_token" not in sink.text and "ya29" not in sink.text

    # 4. upload from a file path: approval first, then the resumable upload.
    video = tmp_path / "clip.mp4"
    data = os.urandom(700 * 1024)
    video.write_bytes(data)
    sink = RecordingSink()
    await chat.handle(
        wiring.chat_message(workspace, user, f'upload youtube {video} "My first clip"'), sink
    )
    assert len(sink.approvals) == 1, sink.sent
    assert google.videos_created == []  # nothing happens before the person says yes
    told: list[str] = []

    async def shell_notifier(reply_to: dict, text: str) -> None:
        told.append(text)

    wired.services.notifiers.register("local", shell_notifier)
    await chat.resolve_approval(
        frontend="local",
        workspace_id=workspace,
        user_id=user,
        action_id=sink.approvals[0].action_id,
        approved=True,
        sink=sink,
    )
    assert "Queued as job" in sink.text and google.videos_created == []  # serve only enqueues
    pool = wired.services.db.pool
    run_id = int(re.search(r"Queued as job (\d+)", sink.text).group(1))
    [job] = await pool.fetch(
        "SELECT payload FROM pgqueuer WHERE dedupe_key = (SELECT 'upload:' || post_id"
        " FROM job_runs WHERE id = $1)",
        run_id,
    )
    await wired.upload_job(queue.decode(job["payload"]))  # what a worker does with it
    assert len(google.videos_created) == 1, told
    session = next(iter(google.sessions.values()))
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert told[0].endswith(": queued") and google.videos_created[0] in told[-1], told
    assert told[-1].startswith("Done:") and not any("failed" in t for t in told)

    # 5. metrics come back normalized, with an "as of" time.
    sink = RecordingSink()
    await chat.handle(wiring.chat_message(workspace, user, "metrics youtube 7d"), sink)
    assert "as of" in sink.text.lower(), sink.text
    assert "views" in sink.text.lower()

    # 6. quota shows the real limiter's figures, including the upload's units.
    sink = RecordingSink()
    await chat.handle(wiring.chat_message(workspace, user, "quota"), sink)
    assert re.search(r"Your messages \(per minute\): \d+ of 20 used", sink.text), sink.text
    assert "YouTube" in sink.text, sink.text
    used = re.search(r"YouTube quota units today \(America/Los_Angeles\): ([\d,]+) of", sink.text)
    assert used is not None, sink.text
    # The upload's cost plus one unit per metrics/profile read: more than the upload alone.
    assert int(used.group(1).replace(",", "")) > wired.services.settings.youtube_upload_cost_units
    assert "YouTube uploads today (America/Los_Angeles): 1 of 100 used" in sink.text
