"""A worker process that uploads one video; the test SIGKILLs it mid-upload.

Usage: python -m tests.agent._upload_child '<json>' (see test_upload_kill_process.py).
"""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg

from agent.context import AgentConfig, Deps
from agent.platform_ops import PlatformOps
from integrations.base import UploadRequest
from integrations.http import Guards, make_client
from integrations.youtube import YouTubeConfig, YouTubePlatform
from storage.crypto import TokenCipher, parse_keys
from storage.identity import Identity


async def main(spec: dict) -> None:
    pool = await asyncpg.create_pool(spec["dsn"], min_size=1, max_size=3)
    async with make_client(platform="youtube", guards=Guards(), timeout=30) as http:
        platform = YouTubePlatform(config=YouTubeConfig(**spec["config"]), http=http)
        deps = Deps(
            pool=pool,
            redis=None,  # type: ignore[arg-type]  # PlatformOps does not use Redis
            cipher=TokenCipher(parse_keys(spec["keys"])),
            config=AgentConfig(),
            platforms={"youtube": platform},
        )
        print("child: uploading", flush=True)
        await PlatformOps(deps=deps).upload(
            Identity(**spec["identity"]),
            account_ref=spec["account_ref"],
            source={"kind": "file", "path": spec["path"]},
            request=UploadRequest(title="from a worker that dies"),
            idempotency_key=spec["key"],
        )
    print("child: finished (the test should have killed me)", flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
