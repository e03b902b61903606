"""Source locators: files and HTTP downloads stream in pieces and resume with Range;
downloads go only to the chat platforms' file hosts (or a configured API base)."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from agent.sources import (
    DISCORD_FILE_HOSTS,
    MAX_REDIRECTS,
    SLACK_FILE_HOSTS,
    DownloadHosts,
    HttpByteSource,
    SourceOpeners,
    http_opener,
)
from integrations.base import RangeByteSource
from integrations.chunks import ChunkReader
from integrations.errors import InvalidRequest, PlatformUnavailable
from tests.fakes.server import serve_asgi

DATA = os.urandom(3 * 1024 * 1024 + 17)


async def _read(source, offset=0) -> bytes:
    return b"".join([piece async for piece in source.open(offset)])


async def test_file_source_streams_from_an_offset(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(DATA)
    source = SourceOpeners().open({"kind": "file", "path": str(path)})
    assert source.size == len(DATA) and source.mime_type == "video/mp4"
    pieces = [p async for p in source.open(0)]
    assert max(len(p) for p in pieces) <= 1024 * 1024
    assert await _read(source, 1_000_001) == DATA[1_000_001:]


async def test_file_source_reads_a_range_in_one_read(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(DATA)
    source = SourceOpeners().open({"kind": "file", "path": str(path)})
    assert isinstance(source, RangeByteSource)
    assert (
        await source.read_range(1_000_001, 2 * 1024 * 1024)
        == DATA[1_000_001 : 1_000_001 + 2 * 1024 * 1024]
    )
    assert await source.read_range(len(DATA) - 5, 100) == DATA[-5:]  # short only at the end
    assert await source.read_range(len(DATA), 10) == b""


async def test_missing_file_and_unknown_kind(tmp_path):
    with pytest.raises(InvalidRequest):
        SourceOpeners().open({"kind": "file", "path": str(tmp_path / "nope.mp4")})
    with pytest.raises(InvalidRequest):
        SourceOpeners().open({"kind": "ftp", "url": "ftp://x"})
    with pytest.raises(InvalidRequest):
        SourceOpeners().open({"kind": "http", "url": "file:///etc/passwd", "size": 1})


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
        hosts = DownloadHosts(DISCORD_FILE_HOSTS, api_bases=[base])
        source = http_opener(hosts)(
            {"kind": "http", "url": f"{base}/v.mp4", "size": len(DATA), "mime_type": "video/mp4"}
        )
        assert await _read(source) == DATA
        assert await _read(source, 2_000_000) == DATA[2_000_000:]
        with pytest.raises(PlatformUnavailable):
            await _read(HttpByteSource(f"{base}/gone", size=1, mime_type="video/mp4", hosts=hosts))
    assert "range" not in seen[0] and seen[1]["range"] == "bytes=2000000-"


async def test_registered_kind_injects_credentials_at_open_time():
    seen: list = []
    async with serve_asgi(_download_app(seen)) as base:

        def slack(locator):
            return HttpByteSource(
                locator["url"],
                size=int(locator["size"]),
                mime_type="video/mp4",
                hosts=DownloadHosts(SLACK_FILE_HOSTS, api_bases=[base]),
                headers={"Authorization": "Bearer xoxb-secret"},
            )

        openers = SourceOpeners()
        openers.register("test-slack", slack)
        source = openers.open({"kind": "test-slack", "url": f"{base}/v.mp4", "size": len(DATA)})
        assert "xoxb" not in repr(source)
        assert await _read(source, 5) == DATA[5:]
    assert seen[0]["authorization"] == "Bearer xoxb-secret"


# --- where downloads may go ---------------------------------------------------------------

PUBLIC = "162.159.130.233"
CDN = "https://cdn.discordapp.com/attachments/1/2/clip.mp4"


def _resolver(table: dict[str, list[str]], asked: list[str]):
    async def resolve(host: str) -> list[str]:
        asked.append(host)
        return table.get(host, [PUBLIC])

    return resolve


def _ok(data: bytes) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, data


def _moved(status: int, location: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Location": location}, b""


def _mock(routes: dict[str, tuple[int, dict[str, str], bytes]], seen: list[httpx.Request]):
    """A client factory whose transport answers by URL (the internet, faked)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, headers, body = routes[str(request.url)]
        # A streamed body, as from a socket (a `content=` body counts as already read).
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    return lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _source(url: str, hosts: DownloadHosts, factory, **kw) -> HttpByteSource:
    return HttpByteSource(
        url, size=len(DATA), mime_type="video/mp4", hosts=hosts, client_factory=factory, **kw
    )


async def test_a_platform_file_host_at_a_public_address_is_downloaded():
    seen: list[httpx.Request] = []
    asked: list[str] = []
    hosts = DownloadHosts(DISCORD_FILE_HOSTS, resolve=_resolver({}, asked))
    factory = _mock({CDN: _ok(DATA)}, seen)
    assert await _read(_source(CDN, hosts, factory)) == DATA
    assert asked == ["cdn.discordapp.com"] and len(seen) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/clip.mp4",
        "http://cdn.discordapp.com/attachments/1/2/clip.mp4",
        "https://169.254.169.254/latest/meta-data/",
        "https://127.0.0.1:8000/admin",
        "https://files.slack.com/files-pri/T1-F1/download/clip.mp4",
        "https://cdn.discordapp.com.evil.example/clip.mp4",
    ],
    ids=["other-host", "plain-http", "metadata-ip", "loopback-ip", "other-platform", "suffix"],
)
async def test_a_url_off_the_platform_hosts_is_refused_before_any_request(url):
    seen: list[httpx.Request] = []
    asked: list[str] = []
    hosts = DownloadHosts(DISCORD_FILE_HOSTS, resolve=_resolver({}, asked))
    with pytest.raises(InvalidRequest) as refused:
        http_opener(hosts)({"kind": "http", "url": url, "size": 10})
    assert "file servers" in refused.value.user_message
    with pytest.raises(InvalidRequest):
        await _read(_source(url, hosts, _mock({}, seen)))
    assert seen == [] and asked == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.7"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["100.64.0.1"],
        ["::1"],
        ["fe80::1%eth0"],
        ["::ffff:127.0.0.1"],
        [PUBLIC, "192.168.1.20"],
        [],
    ],
    ids=[
        "private",
        "loopback",
        "link-local",
        "shared",
        "v6-loopback",
        "v6-link-local",
        "v4-mapped-loopback",
        "one-of-several",
        "none",
    ],
)
async def test_a_platform_host_resolving_to_a_non_public_address_is_refused(addresses):
    seen: list[httpx.Request] = []
    hosts = DownloadHosts(
        DISCORD_FILE_HOSTS, resolve=_resolver({"cdn.discordapp.com": addresses}, [])
    )
    with pytest.raises(InvalidRequest):
        await _read(_source(CDN, hosts, _mock({}, seen)))
    assert seen == []


async def test_every_redirect_hop_is_checked():
    metadata = "http://169.254.169.254/latest/meta-data/iam"
    media = "https://media.discordapp.net/attachments/1/2/clip.mp4"
    private = "https://media.discordapp.net/internal/clip.mp4"
    routes = {
        CDN: _moved(302, metadata),
        "https://cdn.discordapp.com/ok": _moved(302, media),
        media: _ok(DATA),
        "https://cdn.discordapp.com/to-private": _moved(301, private),
        "https://cdn.discordapp.com/loop": _moved(307, "/loop"),
    }
    seen: list[httpx.Request] = []
    table = {"media.discordapp.net": [PUBLIC]}
    hosts = DownloadHosts(DISCORD_FILE_HOSTS, resolve=_resolver(table, []))
    factory = _mock(routes, seen)

    with pytest.raises(InvalidRequest):
        await _read(_source(CDN, hosts, factory))
    assert [str(r.url) for r in seen] == [CDN]  # the metadata address was never asked

    assert await _read(_source("https://cdn.discordapp.com/ok", hosts, factory)) == DATA

    seen.clear()
    rebound = DownloadHosts(
        DISCORD_FILE_HOSTS, resolve=_resolver({"media.discordapp.net": ["10.1.2.3"]}, [])
    )
    with pytest.raises(InvalidRequest):
        await _read(_source("https://cdn.discordapp.com/to-private", rebound, factory))
    assert [str(r.url) for r in seen] == ["https://cdn.discordapp.com/to-private"]

    seen.clear()
    with pytest.raises(InvalidRequest):
        await _read(_source("https://cdn.discordapp.com/loop", hosts, factory))
    assert len(seen) == MAX_REDIRECTS + 1


async def test_credentials_do_not_follow_a_redirect_to_another_origin():
    file_url = "https://files.slack.com/files-pri/T1-F1/download/clip.mp4"
    moved = "https://files.slack.com/files-tmb/T1-F1/clip.mp4"
    elsewhere = "https://slack.test/api/relayed/clip.mp4"
    routes = {
        file_url: _moved(302, moved),
        moved: _moved(302, elsewhere),
        elsewhere: _ok(DATA),
    }
    seen: list[httpx.Request] = []
    hosts = DownloadHosts(
        SLACK_FILE_HOSTS, api_bases=["https://slack.test/api/"], resolve=_resolver({}, [])
    )
    source = _source(
        file_url, hosts, _mock(routes, seen), headers={"Authorization": "Bearer xoxb-secret"}
    )
    assert await _read(source) == DATA
    assert [r.headers.get("authorization") for r in seen] == [
        "Bearer xoxb-secret",
        "Bearer xoxb-secret",  # same origin
        None,
    ]


async def test_a_configured_api_base_may_be_loopback_but_nothing_else_on_loopback_is():
    """Over real sockets: the configured base serves; its redirect to another local
    server (not configured) is refused before that server is asked anything."""
    other_seen: list = []
    async with serve_asgi(_download_app(other_seen)) as other:
        base_app = FastAPI()

        @base_app.get("/cdn/clip.mp4")
        async def clip() -> Response:
            return Response(DATA, media_type="video/mp4")

        @base_app.get("/cdn/moved.mp4")
        async def moved() -> Response:
            return Response(status_code=302, headers={"Location": f"{other}/v.mp4"})

        async with serve_asgi(base_app) as base:
            hosts = DownloadHosts(DISCORD_FILE_HOSTS, api_bases=[f"{base}/api/v10"])
            opener = http_opener(hosts)
            ok = opener({"kind": "http", "url": f"{base}/cdn/clip.mp4", "size": len(DATA)})
            assert await _read(ok) == DATA
            redirected = opener({"kind": "http", "url": f"{base}/cdn/moved.mp4", "size": 1})
            with pytest.raises(InvalidRequest):
                await _read(redirected)
            with pytest.raises(InvalidRequest):
                opener({"kind": "http", "url": f"{other}/v.mp4", "size": 1})
    assert other_seen == []


def test_the_default_http_opener_refuses_loopback():
    """Without process wiring, `http` locators reach Discord's CDN only."""
    with pytest.raises(InvalidRequest):
        SourceOpeners().open({"kind": "http", "url": "http://127.0.0.1:9/v.mp4", "size": 1})


async def test_http_source_under_a_reader_that_reads_ahead():
    # The uploaders' ChunkReader reads the next piece in a task of its own: a download
    # must survive being advanced, reopened and closed from tasks other than its first.
    seen: list = []
    async with serve_asgi(_download_app(seen)) as base:
        hosts = DownloadHosts(DISCORD_FILE_HOSTS, api_bases=[base])
        source = http_opener(hosts)(
            {"kind": "http", "url": f"{base}/v.mp4", "size": len(DATA), "mime_type": "video/mp4"}
        )
        reader = ChunkReader(source, platform="test", read_ahead=True)
        try:
            assert b"".join(await reader.read(0, 1_500_000)) == DATA[:1_500_000]
            assert b"".join(await reader.read(1_500_000, 1_000_000)) == DATA[1_500_000:2_500_000]
            assert (
                b"".join(await reader.read(1_000_000, 600_000)) == DATA[1_000_000:1_600_000]
            )  # reopened
            await asyncio.sleep(0.05)  # the next piece's download under way
        finally:
            await reader.aclose()
        rest = ChunkReader(source, platform="test", read_ahead=True)
        try:
            assert b"".join(await rest.read(3_000_000, len(DATA) - 3_000_000)) == DATA[3_000_000:]
        finally:
            await rest.aclose()
    assert [h.get("range") for h in seen] == [None, "bytes=1000000-", "bytes=3000000-"]
