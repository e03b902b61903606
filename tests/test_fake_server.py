"""The loopback fake-server harness itself."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.fakes.server import serve_asgi


async def test_serves_an_app_on_loopback_and_stops() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    async with serve_asgi(app) as base:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{base}/ping")
        assert response.json() == {"pong": "yes"}
    async with httpx.AsyncClient() as client:
        try:
            await client.get(f"{base}/ping", timeout=1)
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("server still answering after exit")
