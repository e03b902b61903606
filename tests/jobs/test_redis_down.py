"""Redis down, end to end through the job engine: chat answers, uploads say "try again shortly".

The whole product as `socialops run` wires it (Services, Assembly, the real worker
part on PgQueuer) with REDIS_URL pointing at a port nobody listens on. Chat's own
limits fail open, so chat answers; platform quotas fail closed, so the upload job
ends refused with the limiter's text, never a made-up "0 of 10000 remain".
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

from storage import job_runs
from tests.fakes.chatops import RecordingSink
from tests.fakes.google import FakeGoogle
from tests.wiring import chat_message, google_settings, link_youtube, wait_until, wired

REFUSED = "Rate limits are unavailable right now; try again shortly."


async def test_redis_down_chat_answers_and_the_upload_job_is_refused_truthfully(
    make_settings: Any, empty_db: str, google: FakeGoogle, tmp_path: Path
) -> None:
    dead_redis = "redis://127.0.0.1:1/0"
    async with wired(
        make_settings, empty_db, redis_url=dead_redis, **google_settings(google)
    ) as assembly:
        workspace, user = f"W{secrets.token_hex(3)}", f"u{secrets.token_hex(3)}"
        await link_youtube(assembly, google, workspace, user)
        chat = assembly.chatops

        sink = RecordingSink()
        await chat.handle(chat_message(workspace, user, "accounts"), sink)
        assert "@linked" in sink.text.lower(), sink.sent  # chat answers, limits fail open

        video = tmp_path / "clip.mp4"
        video.write_bytes(os.urandom(300 * 1024))
        sink = RecordingSink()
        await chat.handle(chat_message(workspace, user, f'upload youtube {video} "A clip"'), sink)
        # Asking needs no quota yet: the approval comes; the job is what gets refused.
        assert len(sink.approvals) == 1, sink.sent
        told: list[str] = []

        async def notifier(reply_to: dict[str, Any], text: str) -> None:
            told.append(text)

        assembly.services.notifiers.register("local", notifier)
        await chat.resolve_approval(
            frontend="local",
            workspace_id=workspace,
            user_id=user,
            action_id=sink.approvals[0].action_id,
            approved=True,
            sink=sink,
        )
        found = re.search(r"Queued as job (\d+)", sink.text)
        assert found is not None, sink.sent
        run_id = int(found.group(1))
        pool = assembly.services.db.pool
        worker = assembly.build_part("worker")
        await worker.start()
        try:

            async def ended() -> bool:
                run = await job_runs.get(pool, run_id)
                return run is not None and run.ended

            await wait_until(ended, timeout=60)
        finally:
            await worker.stop(5)
        run = await job_runs.get(pool, run_id)
        assert run is not None and run.state == "failed", run
        assert run.outcome is not None and REFUSED in run.outcome, run.outcome
        finals = [t for t in told if REFUSED in t]
        assert len(finals) == 1 and told[-1] == finals[0], told
        said = "\n".join(told)
        assert REFUSED in said, said
        assert "remain" not in said and "quota left" not in said.lower(), said
        assert not google.sessions  # nothing was sent to the platform
