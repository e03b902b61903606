"""Links the companion app uploads from: https only, public addresses on every hop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from agent.sources import PublicHosts, probe_url
from integrations.errors import InvalidRequest

ADDRESSES = {"videos.example": ["93.184.216.34"], "internal.example": ["10.0.0.5"]}


async def resolve(host: str) -> list[str]:
    return ADDRESSES.get(host, ["203.0.113.1"])


def client(handler: httpx.MockTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=handler)


async def test_probe_reads_size_and_type_from_a_public_host():
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "videos.example"
        headers = {"content-length": "1048576", "content-type": "video/mp4; charset=binary"}
        return httpx.Response(200, headers=headers, content=b"\0" * 1048576)

    async with client(httpx.MockTransport(answer)) as http:
        size, mime = await probe_url(
            "https://videos.example/clip.mp4", hosts=PublicHosts(resolve=resolve), client=http
        )
    assert (size, mime) == (1048576, "video/mp4")


@pytest.mark.parametrize(
    "url",
    ["http://videos.example/clip.mp4", "https://internal.example/clip.mp4"],
)
async def test_plain_http_and_private_addresses_are_refused(url):
    def answer(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be fetched")

    async with client(httpx.MockTransport(answer)) as http:
        with pytest.raises(InvalidRequest):
            await probe_url(url, hosts=PublicHosts(resolve=resolve), client=http)


async def test_a_redirect_to_a_private_address_is_refused_before_it_is_fetched():
    fetched: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url.host))
        return httpx.Response(302, headers={"location": "https://internal.example/admin"})

    async with client(httpx.MockTransport(answer)) as http:
        with pytest.raises(InvalidRequest, match="private or local"):
            await probe_url(
                "https://videos.example/clip.mp4", hosts=PublicHosts(resolve=resolve), client=http
            )
    assert fetched == ["videos.example"]


async def test_a_file_without_a_size_is_refused():
    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"transfer-encoding": "chunked"}, content=chunks())

    async with client(httpx.MockTransport(answer)) as http:
        with pytest.raises(InvalidRequest, match="how big"):
            await probe_url(
                "https://videos.example/clip.mp4", hosts=PublicHosts(resolve=resolve), client=http
            )
