"""Request bodies are capped per route while they stream, before any route reads them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from bot.web import DEFAULT_BODY_LIMIT, BodyLimit
from tests.fakes.server import serve_asgi

CAP = 1024 * 1024
CHUNK = 64 * 1024


class CountingBody:
    """A request body of `total` bytes that records how much of it was consumed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            piece = b"x" * min(CHUNK, self.total - self.sent)
            self.sent += len(piece)
            yield piece


def _app(seen: list[int]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodyLimit, limits={"/big": CAP})

    async def echo(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"bytes": len(body)}

    app.add_api_route("/big", echo, methods=["POST"])
    app.add_api_route("/small", echo, methods=["POST"])
    return app


@pytest.fixture
async def client_and_seen() -> AsyncIterator[tuple[httpx.AsyncClient, list[int]]]:
    seen: list[int] = []
    transport = httpx.ASGITransport(app=_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client, seen


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_oversized_body_is_refused_without_reading_it_all(client_and_seen, declared) -> None:
    client, seen = client_and_seen
    body = CountingBody(300 * 1024 * 1024)
    headers = {"Content-Length": str(body.total)} if declared else {}
    response = await client.post("/big", content=body, headers=headers)

    assert response.status_code == 413
    assert seen == []  # the route never ran
    # A declared length is refused before a byte is read; a chunked body as soon as it
    # passes the cap.
    assert body.sent == 0 if declared else CAP < body.sent <= CAP + CHUNK


async def test_other_routes_have_the_small_cap(client_and_seen) -> None:
    client, seen = client_and_seen
    small_over = CountingBody(DEFAULT_BODY_LIMIT + 1)
    assert (await client.post("/small", content=small_over)).status_code == 413
    assert small_over.sent == DEFAULT_BODY_LIMIT + 1
    assert (await client.post("/big", content=CountingBody(DEFAULT_BODY_LIMIT + 1))).json() == {
        "bytes": DEFAULT_BODY_LIMIT + 1
    }
    assert seen == [DEFAULT_BODY_LIMIT + 1]


async def test_bodies_within_the_cap_arrive_whole(client_and_seen) -> None:
    client, seen = client_and_seen
    chunked = await client.post("/big", content=CountingBody(CAP))
    declared = await client.post("/small", content=b"y" * DEFAULT_BODY_LIMIT)
    empty = await client.post("/small")
    assert [r.json()["bytes"] for r in (chunked, declared, empty)] == [CAP, DEFAULT_BODY_LIMIT, 0]
    assert seen == [CAP, DEFAULT_BODY_LIMIT, 0]


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"9" * 40])
async def test_malformed_content_length_is_a_400(value: bytes) -> None:
    seen: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        raise AssertionError("the body must not be read")

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/small",
        "headers": [(b"content-length", value)],
    }
    await BodyLimit(_app(seen))(scope, receive, send)
    assert sent[0]["status"] == 400 and seen == []


async def test_a_real_server_answers_413_at_once_to_a_huge_declared_body() -> None:
    """Over a socket: only the headers are sent, and the answer does not wait for the body."""
    seen: list[int] = []
    async with serve_asgi(_app(seen)) as base:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n" + b"{" * 1000
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        writer.close()
        await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head.lower()
    assert seen == []
