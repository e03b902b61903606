"""Jobs through the real processes: an upload survives its worker being killed mid-file,
and `cancel` stops a queued one before any byte leaves."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

from tests.blackbox.harness import Stack, stack, wait_for
from tests.blackbox.test_slack import answer, said

CHUNK = 256 * 1024


async def approved_upload(s: Stack, data: bytes, title: str, ts: str) -> None:
    """Mention the bot with a video attached, and approve the upload it proposes."""
    clip = s.slack.add_file("F" + ts.replace(".", ""), data)
    since = len(s.slack.calls)
    await s.event(
        {
            "type": "app_mention",
            "user": "UALICE",
            "channel": "C1",
            "ts": ts,
            "text": f'<@UBOT> upload youtube "{title}"',
            "files": [clip],
        }
    )
    await wait_for(lambda: bool(said(s, since, "chat.postMessage")), what=s.roles[0])
    [ask] = said(s, since, "chat.postMessage")
    since = len(s.slack.calls)
    await s.click(ask, "socialops:approve")
    await wait_for(lambda: bool(said(s, since, "chat.update")), what=s.roles[0])
    assert "Queued as job" in said(s, since, "chat.update")[0]["text"]


async def test_an_upload_survives_its_worker_killed_mid_file(
    tmp_path: Path, empty_db: str, redis_url: str
) -> None:
    async with stack(tmp_path, empty_db, redis_url) as s:
        serve = await s.serve()
        await s.link_youtube()
        data = os.urandom(8 * CHUNK + 1234)
        s.google.faults.pause_at_byte = 3 * CHUNK + 10
        await approved_upload(s, data, "Survivor", "1700000002.000100")
        first = await s.start("worker")
        await wait_for(s.google.paused.is_set, timeout=60, what=first)
        assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        s.google.resume.set()  # the killed worker's connection is gone
        second = await s.start("worker")
        await wait_for(lambda: bool(s.google.videos_created), timeout=60, what=second)
        [session] = s.google.sessions.values()  # resumed, not started over
        assert session.sha256 == hashlib.sha256(data).hexdigest()
        # The job's message in the thread ends with the video's link; `status` agrees.
        video = s.google.videos_created[0]
        await wait_for(lambda: "Done: upload 'Survivor'" in str(s.replies()), what=second)
        assert video in str([r for r in s.replies() if "Done:" in str(r)])
        status = await answer(s, "status")
        assert "Done: upload 'Survivor'" in status["text"], status["text"]
        assert "Traceback" not in serve.output() + second.output()


async def test_cancel_stops_a_queued_upload(tmp_path: Path, empty_db: str, redis_url: str) -> None:
    async with stack(tmp_path, empty_db, redis_url) as s:
        serve = await s.serve()
        await s.link_youtube()
        await approved_upload(s, os.urandom(CHUNK), "Never", "1700000003.000100")
        cancelled = await answer(s, "cancel 1")
        assert "Cancelled job 1 (upload 'Never'" in cancelled["text"], cancelled["text"]
        worker = await s.start("worker")
        status = await answer(s, "status")
        assert "job 1 (upload 'Never' to YouTube @adacooks): Cancelled" in status["text"], status
        await worker.stop()
        assert s.google.sessions == {} and s.google.videos_created == []
        assert "Traceback" not in serve.output() + worker.output()
