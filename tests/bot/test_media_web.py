"""GET|HEAD /media/{token}: exact bytes, ranges, HEAD, and bare refusals for bad tokens."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agent.media_links import MediaLinks
from agent.sources import (
    DISCORD_FILE_HOSTS,
    PIECE_BYTES,
    DownloadHosts,
    SourceOpeners,
    http_opener,
)
from bot.media_web import Unsatisfiable, build_media_router, parse_range
from bot.services import Services
from integrations.base import ByteSource
from storage import posts
from tests.fakes.server import serve_asgi

BASE = "https://bot.example.com"


@dataclass
class Served:
    http: httpx.AsyncClient
    links: MediaLinks
    clock: list[float]
    read_bytes: list[int]  # bytes the source actually produced, per open()


class CountingSource:
    """Wraps a ByteSource and records how many bytes each open() really produced."""

    def __init__(self, inner: ByteSource, sink: list[int]) -> None:
        self._inner, self._sink = inner, sink
        self.size, self.mime_type = inner.size, inner.mime_type

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        self._sink.append(0)
        async for piece in self._inner.open(offset):
            self._sink[-1] += len(piece)
            yield piece


class BrokenSource:
    """A source whose download fails (a Slack file deleted after it was shared)."""

    size, mime_type = 1000, "video/mp4"

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        raise RuntimeError("https://files.slack.com/secret-path?t=xoxb-leak")
        yield b""  # pragma: no cover


@asynccontextmanager
async def media_app(
    pool: Any, cipher: Any, opener: Callable[[Mapping[str, Any]], ByteSource] | None = None
) -> AsyncIterator[Served]:
    clock = [1_800_000_000.0]
    read_bytes: list[int] = []
    links = MediaLinks(cipher=cipher, public_base_url=BASE, ttl_seconds=600, clock=lambda: clock[0])

    def counting(locator: Mapping[str, Any]) -> ByteSource:
        return CountingSource(SourceOpeners().open(locator), read_bytes)

    app = FastAPI()
    app.include_router(
        build_media_router(pool=lambda: pool, links=links, opener=opener or counting)
    )
    async with serve_asgi(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        yield Served(http, links, clock, read_bytes)


async def _post(pool: Any, link: Any, new_identity: Any, locator: dict[str, Any]) -> posts.Post:
    who = await new_identity()
    account = await link(who, "instagram", "studio")
    post, _ = await posts.create_or_get(
        pool,
        account_id=account.id,
        platform="instagram",
        idempotency_key="media-" + secrets.token_hex(6),
        title="Clip",
        caption="",
        source=locator,
        metadata={},
        bytes_total=None,
    )
    return post


def _file(tmp_path: Path, size: int) -> tuple[dict[str, Any], bytes]:
    data = os.urandom(size)
    path = tmp_path / f"clip-{secrets.token_hex(3)}.mp4"
    path.write_bytes(data)
    return {"kind": "file", "path": str(path)}, data


def _path(served: Served, post: posts.Post) -> str:
    return "/media/" + served.links.sign(post.id, post.source)


async def test_serves_exact_bytes_with_headers(pool, cipher, link, new_identity, tmp_path, caplog):
    locator, data = _file(tmp_path, 2 * PIECE_BYTES + 12345)
    post = await _post(pool, link, new_identity, locator)
    caplog.set_level(logging.DEBUG)
    async with media_app(pool, cipher) as served:
        path = _path(served, post)
        response = await served.http.get(path)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert "no-store" in response.headers["cache-control"]
    token = path.rsplit("/", 1)[1]
    # Our own modules' records (the test's httpx client logs the URL it was given).
    ours = [r for r in caplog.records if r.name.startswith(("bot.", "agent."))]
    assert ours
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert token not in logged and locator["path"] not in logged


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-1099", 100, 1099),
        ("bytes=1048570-1048580", 1048570, 1048580),  # across a 1 MiB piece boundary
        ("bytes=2097000-", 2097000, None),
        ("bytes=-500", -500, None),
        ("bytes=2000000-99999999", 2000000, None),  # last byte past the end: clamped
    ],
)
async def test_ranges(pool, cipher, link, new_identity, tmp_path, header, first, last):
    locator, data = _file(tmp_path, 2 * PIECE_BYTES + 777)
    size = len(data)
    post = await _post(pool, link, new_identity, locator)
    async with media_app(pool, cipher) as served:
        response = await served.http.get(_path(served, post), headers={"Range": header})
        read = served.read_bytes[-1]
    start = first if first >= 0 else size + first
    end = size - 1 if last is None else last
    assert response.status_code == 206
    assert response.content == data[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["content-length"] == str(end - start + 1)
    # The source is read from the range start and stopped after it: never the whole file.
    assert read <= (end - start + 1) + PIECE_BYTES


async def test_unsatisfiable_and_ignored_ranges(pool, cipher, link, new_identity, tmp_path):
    locator, data = _file(tmp_path, 5000)
    post = await _post(pool, link, new_identity, locator)
    async with media_app(pool, cipher) as served:
        path = _path(served, post)
        past_end = await served.http.get(path, headers={"Range": "bytes=5000-"})
        zero_suffix = await served.http.get(path, headers={"Range": "bytes=-0"})
        several = await served.http.get(path, headers={"Range": "bytes=0-1,5-9"})
        other_unit = await served.http.get(path, headers={"Range": "items=0-1"})
        if_range = await served.http.get(
            path, headers={"Range": "bytes=0-9", "If-Range": '"some-etag"'}
        )
    for response in (past_end, zero_suffix):
        assert response.status_code == 416
        assert response.headers["content-range"] == "bytes */5000"
    for response in (several, other_unit, if_range):  # ignored: the whole file
        assert response.status_code == 200 and response.content == data


async def test_head_gives_headers_without_reading(pool, cipher, link, new_identity, tmp_path):
    locator, data = _file(tmp_path, 70_000)
    post = await _post(pool, link, new_identity, {**locator, "mime_type": "video/quicktime"})
    async with media_app(pool, cipher) as served:
        path = _path(served, post)
        head = await served.http.head(path)
        ranged_head = await served.http.head(path, headers={"Range": "bytes=0-9"})
        reads = list(served.read_bytes)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["content-type"] == "video/quicktime"
    assert head.headers["accept-ranges"] == "bytes"
    assert ranged_head.status_code == 200  # Range is defined for GET only
    assert reads == []  # HEAD never opened the source


async def test_bad_tokens_get_bare_refusals(pool, cipher, link, new_identity, tmp_path):
    locator, _ = _file(tmp_path, 1000)
    post = await _post(pool, link, new_identity, locator)
    other = await _post(pool, link, new_identity, _file(tmp_path, 1000)[0])
    async with media_app(pool, cipher) as served:
        good = served.links.sign(post.id, post.source)
        forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        # A valid MAC for another post's locator does not open this post.
        swapped = served.links.sign(post.id, other.source)
        missing = served.links.sign(2**62, post.source)
        answers = {
            "forged": await served.http.get("/media/" + forged),
            "garbage": await served.http.get("/media/not-a-token"),
            "swapped": await served.http.get("/media/" + swapped),
            "missing": await served.http.get("/media/" + missing),
        }
        served.clock[0] += 601
        answers["expired"] = await served.http.get("/media/" + good)
        expired_head = await served.http.head("/media/" + good)
    for name, response in answers.items():
        expected = 403 if name == "expired" else 404
        assert response.status_code == expected, name
        assert response.text.strip() in {"Not found", "Forbidden"}
        assert locator["path"] not in response.text and str(post.id) not in response.text
    assert expired_head.status_code == 403
    assert served.read_bytes == []


async def test_moved_or_deleted_file_is_404(pool, cipher, link, new_identity, tmp_path):
    locator, _ = _file(tmp_path, 1000)
    post = await _post(pool, link, new_identity, locator)
    Path(locator["path"]).unlink()
    async with media_app(pool, cipher) as served:
        response = await served.http.get(_path(served, post))
    assert response.status_code == 404 and response.text.strip() == "Not found"


async def test_unreadable_source_is_502_without_detail(pool, cipher, link, new_identity, caplog):
    post = await _post(
        pool, link, new_identity, {"kind": "slack", "url": "https://files.slack.com/x", "size": 1}
    )
    async with media_app(pool, cipher, opener=lambda _: BrokenSource()) as served:
        response = await served.http.get(_path(served, post))
    assert response.status_code == 502
    assert "slack" not in response.text.lower() and "xoxb" not in response.text
    assert all("xoxb" not in r.getMessage() for r in caplog.records)


def test_parse_range_table():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 4)
    assert parse_range("bytes=4-2", 10) is None  # invalid: ignored
    assert parse_range("bytes=-20", 10) == (0, 9)  # suffix longer than the file
    assert parse_range("bytes=0-", 0) is None  # unknown size: no ranges
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=10-", 10)
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=10-12", 10)


async def test_assembly_serves_a_slack_file_with_the_bot_token(
    make_settings, fake_slack, link, new_identity, pool
):
    """Through the real web app: the Slack opener (bot token) feeds /media/{token} ranges."""
    from bot.assembly import Assembly
    from bot.web import create_app
    from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM

    data = os.urandom(200_000)
    info = fake_slack.add_file("F1", data)
    settings = make_settings(
        slack_signing_secret=SIGNING_SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_base=fake_slack.api_base,
        public_base_url=BASE,
    )
    services = Services(settings=settings)
    await services.initialize()
    assembly = Assembly(services)
    try:
        app = create_app(services, routers=assembly.web_routers())
        assert assembly.slack is not None
        locator = assembly.slack.files.attachment(info, team_id=TEAM).locator
        post = await _post(pool, link, new_identity, dict(locator))
        token = MediaLinks(cipher=services.cipher, public_base_url=BASE).sign(post.id, post.source)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            whole = await http.get(f"/media/{token}")
            part = await http.get(f"/media/{token}", headers={"Range": "bytes=70000-70099"})
    finally:
        await assembly.slack.aclose(5)
        await services.shutdown()
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert part.status_code == 206 and part.content == data[70000:70100]
    assert {d.token for d in fake_slack.downloads} == {BOT_TOKEN}  # the bot token, on the wire
    assert BOT_TOKEN not in whole.headers.values() and BOT_TOKEN.encode() not in part.content


async def test_http_locator_is_proxied_with_ranges(pool, cipher, link, new_identity):
    """A Discord CDN-style http locator: ranged reads come out right even from a server
    that ignores Range (the opener skips what it did not ask for)."""
    from fastapi.responses import Response as PlainResponse

    data = os.urandom(150_000)
    cdn = FastAPI()

    @cdn.get("/attachments/clip.mp4")
    async def clip() -> PlainResponse:
        return PlainResponse(data, media_type="video/mp4")

    async with serve_asgi(cdn) as cdn_base:
        locator = {
            "kind": "http",
            "url": f"{cdn_base}/attachments/clip.mp4",
            "size": len(data),
            "mime_type": "video/mp4",
        }
        post = await _post(pool, link, new_identity, locator)
        opener = http_opener(DownloadHosts(DISCORD_FILE_HOSTS, api_bases=[f"{cdn_base}/api/v10"]))
        async with media_app(pool, cipher, opener) as served:
            path = _path(served, post)
            part = await served.http.get(path, headers={"Range": "bytes=100000-"})
            whole = await served.http.get(path)
    assert part.status_code == 206 and part.content == data[100000:]
    assert whole.status_code == 200 and whole.content == data
    assert cdn_base not in str(whole.headers)


@pytest.mark.parametrize(
    ("claimed", "served_as"),
    [
        ("video/mp4", "video/mp4"),
        ("video/quicktime", "video/quicktime"),
        ("text/html", "application/octet-stream"),
        ("image/svg+xml", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        ("video/mp4; codecs=avc1", "application/octet-stream"),
        ("text/html, video/mp4", "application/octet-stream"),
        (None, "application/octet-stream"),
    ],
)
async def test_only_video_types_are_served_and_always_as_a_sandboxed_download(
    pool, cipher, link, new_identity, tmp_path, claimed, served_as
):
    (tmp_path / "page.html").write_bytes(b"<script>alert(document.cookie)</script>")
    locator = {"kind": "file", "path": str(tmp_path / "page.html"), "mime_type": claimed}
    post = await _post(pool, link, new_identity, locator)
    async with media_app(pool, cipher) as served:
        path = _path(served, post)
        answers = [
            await served.http.get(path),
            await served.http.get(path, headers={"Range": "bytes=0-3"}),
            await served.http.head(path),
            await served.http.get("/media/not-a-token"),
        ]
    assert [a.status_code for a in answers] == [200, 206, 200, 404]
    for answer in answers[:3]:
        assert answer.headers["content-type"] == served_as
    for answer in answers:
        assert answer.headers["content-disposition"] == "attachment"
        assert answer.headers["content-security-policy"] == "sandbox"
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_a_locator_off_the_chat_file_hosts_is_never_fetched(pool, cipher, link, new_identity):
    """An `http` locator naming some other server (here a local one) is a bare 404, and
    that server is never asked; the same link on a configured API base is served."""
    from fastapi.responses import Response as PlainResponse

    seen: list[str] = []
    internal = FastAPI()

    @internal.get("/secret")
    async def secret() -> PlainResponse:
        seen.append("asked")
        return PlainResponse(b"internal secret", media_type="video/mp4")

    async with serve_asgi(internal) as internal_base:
        locator = {
            "kind": "http",
            "url": f"{internal_base}/secret",
            "size": 15,
            "mime_type": "video/mp4",
        }
        post = await _post(pool, link, new_identity, locator)
        default = http_opener(DownloadHosts(DISCORD_FILE_HOSTS))
        async with media_app(pool, cipher, default) as served:
            refused = await served.http.get(_path(served, post))
        configured = http_opener(DownloadHosts(DISCORD_FILE_HOSTS, api_bases=[internal_base]))
        async with media_app(pool, cipher, configured) as served:
            allowed = await served.http.get(_path(served, post))
    assert refused.status_code == 404 and refused.content == b"Not found\n"
    assert allowed.status_code == 200 and seen == ["asked"]
