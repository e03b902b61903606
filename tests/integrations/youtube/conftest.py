from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from integrations.youtube import YouTubePlatform
from tests.fakes.google import FakeGoogle, youtube_config
from tests.fakes.server import serve_asgi


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogle]:
    fake = FakeGoogle()
    async with serve_asgi(fake) as base:
        fake.base = base
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def make_platform(google: FakeGoogle, http: httpx.AsyncClient) -> Any:
    def build(**overrides: Any) -> YouTubePlatform:
        platform = YouTubePlatform(
            config=youtube_config(google.base, google, **overrides), http=http
        )
        # Tests never wait for real backoff.
        platform.uploader._backoff_base = 0.001
        return platform

    return build
