"""Source locators: files and HTTP downloads stream in pieces and resume with Range."""

from __future__ import annotations

import os

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from agent.sources import HttpByteSource, open_source, register_source_opener
from integrations.errors import InvalidRequest, PlatformUnavailable
from tests.fakes.server import serve_asgi

DATA = os.urandom(3 * 1024 * 1024 + 17)


async def _read(source, offset=0) -> bytes:
    return b"".join([piece async for piece in source.open(offset)])


async def test_file_source_streams_from_an_offset(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(DATA)
    source = open_source({"kind": "file", "path": str(path)})
    assert source.size == len(DATA) and source.mime_type == "video/mp4"
    pieces = [p async for p in source.open(0)]
    assert max(len(p) for p in pieces) <= 1024 * 1024
    assert await _read(source, 1_000_001) == DATA[1_000_001:]


async def test_missing_file_and_unknown_kind(tmp_path):
    with pytest.raises(InvalidRequest):
        open_source({"kind": "file", "path": str(tmp_path / "nope.mp4")})
    with pytest.raises(InvalidRequest):
        open_source({"kind": "ftp", "url": "ftp://x"})
    with pytest.raises(InvalidRequest):
        open_source({"kind": "http", "url": "file:///etc/passwd", "size": 1})


def _download_app(seen: list, *, honor_range: bool = True) -> FastAPI:
    app = FastAPI()

    @app.get("/v.mp4")
    async def video(request: Request) -> Response:
        seen.append(dict(request.headers))
        header = request.headers.get("range")
        if header and honor_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            return Response(DATA[start:], status_code=206, media_type="video/mp4")
        return Response(DATA, media_type="video/mp4")

    @app.get("/gone")
    async def gone() -> Response:
        return Response(status_code=404)

    return app


@pytest.mark.parametrize("honor_range", [True, False])
async def test_http_source_resumes_with_range(honor_range):
    seen: list = []
    async with serve_asgi(_download_app(seen, honor_range=honor_range)) as base:
        source = open_source(
            {"kind": "http", "url": f"{base}/v.mp4", "size": len(DATA), "mime_type": "video/mp4"}
        )
        assert await _read(source) == DATA
        assert await _read(source, 2_000_000) == DATA[2_000_000:]
        with pytest.raises(PlatformUnavailable):
            await _read(HttpByteSource(f"{base}/gone", size=1, mime_type="video/mp4"))
    assert "range" not in seen[0] and seen[1]["range"] == "bytes=2000000-"


async def test_registered_kind_injects_credentials_at_open_time():
    seen: list = []
    async with serve_asgi(_download_app(seen)) as base:

        def slack(locator):
            return HttpByteSource(
                locator["url"],
                size=int(locator["size"]),
                mime_type="video/mp4",
                headers={"Authorization": "Bearer xoxb-secret"},
            )

        register_source_opener("test-slack", slack)
        source = open_source({"kind": "test-slack", "url": f"{base}/v.mp4", "size": len(DATA)})
        assert "xoxb" not in repr(source)
        assert await _read(source, 5) == DATA[5:]
    assert seen[0]["authorization"] == "Bearer xoxb-secret"
