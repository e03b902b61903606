"""Fixtures: a FakeInstagram on loopback and an InstagramPlatform pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from integrations.base import TokenSet
from integrations.http import Guards, RetryPolicy, make_client
from integrations.instagram import InstagramPlatform
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from tests.fakes.instagram import FakeInstagram, FakeUser, instagram_settings
from tests.fakes.platforms import build
from tests.fakes.server import serve_asgi

REDIRECT = "https://bot.example/oauth/instagram/callback"
# The production retry policy, with backoff short enough for tests.
TEST_RETRY = RetryPolicy(base_delay=0.001, max_delay=0.01)


@dataclass
class IG:
    fake: FakeInstagram
    platform: InstagramPlatform
    base: str
    user: FakeUser
    token: TokenSet
    guards: Guards


@pytest.fixture
async def ig() -> AsyncIterator[IG]:
    fake = FakeInstagram()
    guards = Guards(retry=TEST_RETRY)
    async with (
        serve_asgi(fake.app) as base,
        make_client(platform="instagram", guards=guards, timeout=10) as http,
    ):
        platform = build(INSTAGRAM, http, **instagram_settings(base, fake))
        user = fake.add_user("studio.fern", name="Fern Studio", followers=4200)
        token = TokenSet(access_token=fake.issue_token(user), scopes=("instagram_business_basic",))
        yield IG(fake, platform, base, user, token, guards)


@dataclass
class MemorySource:
    """A ByteSource (and HostedByteSource) backed by bytes in memory."""

    data: bytes = b"\x00" * 4096
    mime_type: str = "video/mp4"
    public_url: str | None = "https://media.example/clip.mp4"

    @property
    def size(self) -> int:
        return len(self.data)

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        for i in range(offset, len(self.data), 1024):
            yield self.data[i : i + 1024]


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
