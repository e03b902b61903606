"""The fake itself is strict: what TikTok would refuse, it refuses, and records loudly."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.tiktok import DIRECT_INIT, MIN_CHUNK, STATUS
from tests.integrations.tiktok.conftest import TT


async def _init(tt: TT, source_info: dict[str, Any]) -> httpx.Response:
    return await tt.http.post(
        f"{tt.base}{DIRECT_INIT}",
        json={
            "post_info": {"title": "t", "privacy_level": "SELF_ONLY"},
            "source_info": source_info,
        },
        headers={"Authorization": f"Bearer {tt.token.access_token}"},
    )


def _file(size: int, chunk: int, count: int) -> dict[str, Any]:
    return {
        "source": "FILE_UPLOAD",
        "video_size": size,
        "chunk_size": chunk,
        "total_chunk_count": count,
    }


@pytest.mark.parametrize(
    ("info", "why"),
    [
        (_file(12 * 1024 * 1024, MIN_CHUNK, 3), "rounded down"),  # ceil instead of floor
        (_file(3 * 1024 * 1024, 1024 * 1024, 3), "under 5 MB"),
        (_file(200_000_000, 70_000_000, 2), "5 MB..64 MB"),
        (_file(100_000_000, 100_000_000, 1), "several chunks"),
        ({"source": "PULL_FROM_URL"}, "video_url"),
    ],
)
async def test_init_enforces_the_chunk_rules(tt: TT, info: dict[str, Any], why: str) -> None:
    response = await _init(tt, info)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_param"
    assert any(why in entry for entry in tt.fake.unexpected)
    tt.fake.unexpected.clear()


async def _started(tt: TT, size: int) -> str:
    response = await _init(tt, _file(size, MIN_CHUNK, size // MIN_CHUNK))
    assert response.status_code == 200, response.text
    assert response.json()["error"]["code"] == "ok"
    return str(response.json()["data"]["upload_url"])


def _range(first: int, last: int, total: int) -> dict[str, str]:
    return {
        "Content-Type": "video/mp4",
        "Content-Length": str(last - first + 1),
        "Content-Range": f"bytes {first}-{last}/{total}",
    }


async def test_chunks_must_come_in_order_whole_and_well_labelled(tt: TT) -> None:
    size = 3 * MIN_CHUNK + 10
    url = await _started(tt, size)
    first = b"a" * MIN_CHUNK
    wrong = [
        # the second chunk first (the first is missing)
        (b"b" * MIN_CHUNK, _range(MIN_CHUNK, 2 * MIN_CHUNK - 1, size), "expected bytes 0-"),
        # the right start, the wrong size
        (b"a" * 100, _range(0, 99, size), "expected bytes 0-"),
        # a malformed Content-Range
        (first, {**_range(0, MIN_CHUNK - 1, size), "Content-Range": "0-5242879"}, "Content-Range"),
        # the wrong total
        (first, _range(0, MIN_CHUNK - 1, size + 1), "Content-Range"),
        # not a video
        (first, {**_range(0, MIN_CHUNK - 1, size), "Content-Type": "text/plain"}, "Content-Type"),
    ]
    for body, headers, why in wrong:
        response = await tt.http.put(url, content=body, headers=headers)
        assert response.status_code == 400, why
        assert any(why in entry for entry in tt.fake.unexpected), why
        tt.fake.unexpected.clear()
    ok = await tt.http.put(url, content=first, headers=_range(0, MIN_CHUNK - 1, size))
    assert ok.status_code == 206
    again = await tt.http.put(url, content=first, headers=_range(0, MIN_CHUNK - 1, size))
    assert again.status_code == 400  # a chunk TikTok holds is not taken twice
    tt.fake.unexpected.clear()
    status = await tt.http.post(
        f"{tt.base}{STATUS}",
        json={"publish_id": next(iter(tt.fake.publishes))},
        headers={"Authorization": f"Bearer {tt.token.access_token}"},
    )
    assert status.json()["data"] == {"status": "PROCESSING_UPLOAD", "uploaded_bytes": MIN_CHUNK}


async def test_unknown_endpoints_are_recorded(tt: TT) -> None:
    response = await tt.http.get(f"{tt.base}/v2/unknown/")
    assert response.status_code == 404
    assert tt.fake.unexpected == ["GET /v2/unknown/"]
    tt.fake.unexpected.clear()


async def test_a_rate_limit_answer_looks_like_tiktoks(tt: TT) -> None:
    tt.fake.rate_limit(STATUS, retry_after=3)
    response = await tt.http.post(f"{tt.base}{STATUS}", json={})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3" and response.headers["x-tt-logid"]
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["log_id"]
    tt.fake.errors_in_200 = True
    tt.fake.rate_limit(STATUS)
    in_200 = await tt.http.post(f"{tt.base}{STATUS}", json={})
    assert in_200.status_code == 200 and in_200.json()["error"]["code"] == "rate_limit_exceeded"
