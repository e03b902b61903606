"""`socialops serve` and `socialops worker` in Slack HTTP mode, driven as Slack drives them.

Slash commands answer privately unless shared; a mention answers in its thread; a
scheduled upload is approved in the requester's own time zone (users.info) with UTC
beside it, is listed by `queue` and `status`, and the worker uploads it with the
platform's own schedule.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.blackbox.harness import Stack, stack, wait_for


def said(s: Stack, since: int, method: str) -> list[dict[str, Any]]:
    return [c.args for c in s.slack.calls[since:] if c.method == method]


async def answer(
    s: Stack, text: str, method: str = "chat.postEphemeral", **kw: str
) -> dict[str, Any]:
    """Run `/social <text>`; the first message of `method` it leads to."""
    since = len(s.slack.calls)
    ack = await s.command(text, **kw)
    assert ack.status_code == 200, ack.text
    await wait_for(lambda: bool(said(s, since, method)), what=s.roles[0])
    return said(s, since, method)[0]


async def decide(s: Stack, ask: dict[str, Any]) -> str:
    """Approve `ask` as its requester; the text the approval message becomes."""
    assert "Approval needed" in ask["text"], ask
    since = len(s.slack.calls)
    await s.click(ask, "socialops:approve")
    await wait_for(lambda: bool(said(s, since, "chat.update")), what=s.roles[0])
    text: str = said(s, since, "chat.update")[0]["text"]
    return text


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    raw = message.get("blocks") or []
    found: list[dict[str, Any]] = json.loads(raw) if isinstance(raw, str) else raw
    return found


async def test_private_by_default_share_public_and_block_kit_within_limits(
    tmp_path: Path, empty_db: str, redis_url: str
) -> None:
    async with stack(tmp_path, empty_db, redis_url) as s:
        serve = await s.serve()
        await s.link_youtube()
        for command in ("accounts", "metrics", "quota"):
            since = len(s.slack.calls)
            private = await answer(s, command)
            assert private["user"] == "UALICE", private
            assert said(s, since, "chat.postMessage") == []  # nothing public
            kinds = [b["type"] for b in blocks_of(private)]
            assert kinds[0] == "header" and "actions" in kinds, (command, kinds)
            # Slack's limits: 50 blocks, 10 fields of 2000 characters a section.
            assert len(kinds) <= 50
            for block in blocks_of(private):
                assert len(block.get("fields", [])) <= 10
                assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        # The "Share to channel" button posts the last answer for everyone.
        since = len(s.slack.calls)
        await s.click(private, "socialops:share")
        await wait_for(lambda: bool(said(s, since, "chat.postMessage")), what=serve)
        [shared] = said(s, since, "chat.postMessage")
        assert shared["channel"] == "C1" and "user" not in shared
        assert "Shared by <@UALICE>" in json.dumps(shared["blocks"])
        assert shared["text"] == private["text"]
        # ... and so does `share` at the end of the command.
        public = await answer(s, "accounts share", method="chat.postMessage")
        assert public["channel"] == "C1" and "@adacooks" in public["text"]
        assert "Traceback" not in serve.output()


async def test_scheduled_upload_in_the_users_zone_then_queue_status_and_the_worker(
    tmp_path: Path, empty_db: str, redis_url: str
) -> None:
    async with stack(tmp_path, empty_db, redis_url) as s:
        s.slack.user_zones["UALICE"] = "Europe/Paris"
        serve = await s.serve()
        await s.link_youtube()
        clip = s.slack.add_file("F1", os.urandom(300 * 1024))
        since = len(s.slack.calls)
        await s.event(
            {
                "type": "app_mention",
                "user": "UALICE",
                "channel": "C1",
                "ts": "1700000001.000100",
                "text": '<@UBOT> upload youtube "Launch" at 18:00 tomorrow',
                "files": [clip],
            }
        )
        await wait_for(lambda: bool(said(s, since, "chat.postMessage")), what=serve)
        [ask] = said(s, since, "chat.postMessage")
        assert ask["thread_ts"] == "1700000001.000100"  # a mention answers in its thread
        # Paris is UTC+1 in winter: 18:00 local is 17:00 UTC; both are shown.
        assert "18:00 Europe/Paris (17:00 UTC)" in ask["text"], ask["text"]
        since = len(s.slack.calls)
        await s.click(ask, "socialops:approve")
        await wait_for(lambda: bool(said(s, since, "chat.update")), what=serve)
        assert "Scheduled as post 1" in said(s, since, "chat.update")[0]["text"]

        queue = await answer(s, "queue")
        assert "18:00 Europe/Paris (17:00 UTC)" in queue["text"] and "Launch" in queue["text"]
        status = await answer(s, "status")
        assert "job 1 (upload 'Launch' to YouTube @adacooks): queued" in status["text"], status

        # The worker uploads it now, private, with YouTube's own publishAt.
        worker = await s.start("worker")
        await wait_for(lambda: bool(s.google.videos_created), timeout=60, what=worker)
        [session] = s.google.sessions.values()
        assert session.metadata["status"]["privacyStatus"] == "private"
        assert session.metadata["status"]["publishAt"].endswith("T17:00:00Z")
        video = s.google.videos[s.google.videos_created[0]]

        # Moving it moves YouTube's publishAt; cancelling it takes the publishAt away.
        await decide(s, await answer(s, "reschedule 1 at 20:00 tomorrow", "chat.postMessage"))
        assert video["status"]["publishAt"].endswith("T19:00:00Z"), video
        await decide(s, await answer(s, "cancel 1", "chat.postMessage"))
        assert "publishAt" not in video["status"] and video["status"]["privacyStatus"] == "private"
        assert "no scheduled posts" in (await answer(s, "queue"))["text"]
        assert "Traceback" not in serve.output() + worker.output()
