"""Fixtures: a FakeX on loopback and an XPlatform built through its plug-in, on the fake's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from integrations.base import TokenSet
from integrations.x import XPlatform
from integrations.x.plugin import PLUGIN
from tests.fakes.platforms import build
from tests.fakes.server import serve_asgi
from tests.fakes.x import FakeClock, FakeUser, FakeX, use_clock, x_settings

REDIRECT = "https://bot.example/oauth/x/callback"
SEGMENT = 256 * 1024


@dataclass
class XEnv:
    fake: FakeX
    base: str
    http: httpx.AsyncClient
    user: FakeUser
    token: TokenSet
    make: Callable[..., XPlatform]

    @property
    def clock(self) -> FakeClock:
        return self.fake.clock


@pytest.fixture
async def x() -> AsyncIterator[XEnv]:
    fake = FakeX()
    async with serve_asgi(fake) as base, httpx.AsyncClient(timeout=10) as http:

        def make(**overrides: Any) -> XPlatform:
            platform: XPlatform = build(PLUGIN, http, **x_settings(base, fake, **overrides))
            use_clock(platform, fake.clock)
            return platform

        user = fake.add_user("studio_fern", name="Fern Studio")
        raw = fake.issue_tokens(user)
        token = TokenSet(access_token=raw["access_token"], refresh_token=raw["refresh_token"])
        yield XEnv(fake, base, http, user, token, make)
    # A fake answers what our client should never send, and remembers it: fail here.
    assert fake.unexpected == [], fake.unexpected


@dataclass
class MemorySource:
    """A ByteSource over bytes, in small pieces; records where it was opened."""

    data: bytes
    mime_type: str = "video/mp4"
    piece: int = 64 * 1024
    opens: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.data)

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        self.opens.append(offset)
        for i in range(offset, len(self.data), self.piece):
            yield self.data[i : i + self.piece]


@dataclass
class MemoryCheckpoint:
    session: str | None = None
    confirmed: int = 0
    saves: list[tuple[str | None, int]] = field(default_factory=list)

    async def load(self) -> tuple[str | None, int]:
        return self.session, self.confirmed

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        self.session, self.confirmed = session_uri, confirmed
        self.saves.append((session_uri, confirmed))
