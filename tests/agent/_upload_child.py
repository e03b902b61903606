"""A worker process on the real job engine; the test SIGKILLs it mid-upload.

Usage: python -m tests.agent._upload_child '<json>' (see test_upload_kill_process.py).
Status messages go to a JSON-lines file, as a chat front-end would show them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg

from agent.context import AgentConfig
from agent.jobs.upload import run_upload_job
from agent.limits import NoLimits
from agent.ops import PlatformOps
from bot.worker import JobKind, WorkerPart
from integrations.http import Guards, make_client
from integrations.youtube.plugin import PLUGIN as YOUTUBE
from storage import queue
from storage.crypto import TokenCipher, parse_keys
from tests.fakes.platforms import build, directory


class FileBoard:
    """A StatusBoard that appends every post and edit to a file (one JSON object a line)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _write(self, entry: dict[str, Any]) -> None:
        with self._path.open("a") as out:
            out.write(json.dumps(entry) + "\n")

    async def post(self, reply_to: dict[str, Any], text: str) -> str | None:
        self._write({"op": "post", "text": text, "tag": reply_to.get("tag")})
        return "msg-1"

    async def edit(self, reply_to: dict[str, Any], message_ref: str, text: str) -> None:
        self._write({"op": "edit", "ref": message_ref, "text": text, "tag": reply_to.get("tag")})


async def main(spec: dict[str, Any]) -> None:
    pool = await asyncpg.create_pool(spec["dsn"], min_size=1, max_size=5)
    async with make_client(platform="youtube", guards=Guards(), timeout=30) as http:
        platform = build(YOUTUBE, http, **spec["settings"])
        ops = PlatformOps(
            pool=pool,
            cipher=TokenCipher(parse_keys(spec["keys"])),
            platforms=directory(platform),
            budgets=NoLimits(),
            config=AgentConfig(),
        )
        board = FileBoard(Path(spec["board"]))

        async def upload(payload: dict[str, Any]) -> None:
            if payload["run"] == spec["run"]:  # the shared test database holds others' jobs
                await run_upload_job(pool, ops, board, payload["run"])

        worker = WorkerPart(
            pool=lambda: pool,
            kinds={queue.UPLOAD: JobKind(upload)},
            triggers=[],
            max_concurrent=4,
            heartbeat_seconds=2.0,
            poll_seconds=0.5,
        )
        print("child: worker running", flush=True)
        await worker.start()
        await worker.wait()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
