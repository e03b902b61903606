"""`socialops serve` with the companion app API on: Supabase HS256 tokens, file uploads, the cap."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import jwt

from tests.blackbox.harness import stack, wait_for

SECRET = "blackbox-supabase-secret-0123456789abcdef0123"
PROJECT = "http://supabase.blackbox.test"
CAP = 512 * 1024


def token(sub: str = "app-user-1", secret: str = SECRET) -> str:
    now = int(time.time())
    claims = {
        "sub": sub,
        "aud": "authenticated",
        "iss": PROJECT + "/auth/v1",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_api_uploads_a_file_through_the_web_role_and_refuses_one_over_the_cap(
    tmp_path: Path, empty_db: str, redis_url: str
) -> None:
    async with stack(tmp_path, empty_db, redis_url) as s:
        s.extra_env.update(
            SUPABASE_URL=PROJECT, SUPABASE_JWT_SECRET=SECRET, API_UPLOAD_MAX_BYTES=str(CAP)
        )
        serve = await s.serve()
        await s.link_youtube()
        since = len(s.slack.calls)
        await s.command("connect app")
        codes: list[str] = []

        def coded() -> bool:
            codes[:] = re.findall(r"for the app: ([A-Z0-9-]+)", str(s.replies(since=since)))
            return bool(codes)

        await wait_for(coded, what=serve)
        mine = {"Authorization": f"Bearer {token()}"}
        async with httpx.AsyncClient(base_url=s.base + "/api/v1", timeout=30) as api:
            forged = {
                "Authorization": f"Bearer {token(secret='not-the-projects-secret-0123456789')}"
            }
            assert (await api.get("/accounts", headers=forged)).status_code == 401
            claimed = await api.post("/identity/claim", headers=mine, json={"code": codes[0]})
            assert claimed.status_code == 200, claimed.text
            # A file well over the web role's 64 KiB default and under the API's own cap.
            video = os.urandom(300 * 1024)
            sent = await api.post(
                "/uploads",
                headers=mine,
                files={"file": ("clip.mp4", video, "video/mp4")},
                data={"platform": "youtube", "title": "From the app"},
            )
            assert sent.status_code == 202, sent.text
            assert "From the app" in sent.text and "clip.mp4" in sent.text, sent.text
            big = await api.post(
                "/uploads",
                headers=mine,
                files={"file": ("big.mp4", os.urandom(CAP + 1024), "video/mp4")},
                data={"platform": "youtube", "title": "Too big"},
            )
            assert big.status_code == 413, big.text
            assert big.headers["content-type"].startswith("application/problem+json"), big.text
            # The cap the detail names is the configured one (512 KiB), not "0 MB".
            assert "524 kB" in big.json()["detail"], big.text
        assert "Traceback" not in serve.output()
