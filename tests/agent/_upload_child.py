"""A worker process that uploads one video; the test SIGKILLs it mid-upload.

Usage: python -m tests.agent._upload_child '<json>' (see test_upload_kill_process.py).
"""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg

from agent.context import AgentConfig
from agent.limits import NoLimits
from agent.ops import PlatformOps
from integrations.base import UploadRequest
from integrations.http import Guards, make_client
from integrations.youtube.plugin import PLUGIN as YOUTUBE
from storage.crypto import TokenCipher, parse_keys
from storage.identity import Identity
from tests.fakes.platforms import build, directory


async def main(spec: dict) -> None:
    pool = await asyncpg.create_pool(spec["dsn"], min_size=1, max_size=3)
    async with make_client(platform="youtube", guards=Guards(), timeout=30) as http:
        platform = build(YOUTUBE, http, **spec["settings"])
        ops = PlatformOps(
            pool=pool,
            cipher=TokenCipher(parse_keys(spec["keys"])),
            platforms=directory(platform),
            budgets=NoLimits(),
            config=AgentConfig(),
        )
        print("child: uploading", flush=True)
        await ops.upload(
            Identity(**spec["identity"]),
            account_ref=spec["account_ref"],
            source={"kind": "file", "path": spec["path"]},
            request=UploadRequest(title="from a worker that dies", privacy="private"),
            idempotency_key=spec["key"],
        )
    print("child: finished (the test should have killed me)", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
