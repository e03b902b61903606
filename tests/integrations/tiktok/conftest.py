"""Fixtures: a FakeTikTok on loopback and the TikTok plug-in built against it as production does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from integrations.base import TokenSet
from integrations.tiktok.convert import token_set_from
from integrations.tiktok.platform import TikTokPlatform
from integrations.tiktok.plugin import PLUGIN
from tests.fakes.platforms import build
from tests.fakes.server import serve_asgi
from tests.fakes.tiktok import ALL_SCOPES, FakeCreator, FakeTikTok, tiktok_settings

REDIRECT = "https://bot.example.com/oauth/tiktok/callback"
MIB = 1024 * 1024


def token_from(raw: dict[str, Any]) -> TokenSet:
    """A stored TokenSet from a token answer, as the link flow keeps it."""
    return token_set_from(raw, now=datetime.now(UTC))


@dataclass
class TT:
    fake: FakeTikTok
    base: str
    http: httpx.AsyncClient
    platform: TikTokPlatform
    creator: FakeCreator
    token: TokenSet

    def build(self, **overrides: Any) -> TikTokPlatform:
        """Another client from these settings (TIKTOK_* overrides), built as production does."""
        platform: TikTokPlatform = build(
            PLUGIN, self.http, **tiktok_settings(self.base, self.fake, **overrides)
        )
        return platform

    def token_with(self, scopes: tuple[str, ...] = ALL_SCOPES, **kw: Any) -> TokenSet:
        return token_from(self.fake.issue_tokens(self.creator, scopes=scopes, **kw))


@pytest.fixture
async def tt() -> AsyncIterator[TT]:
    fake = FakeTikTok()
    async with serve_asgi(fake) as base, httpx.AsyncClient(timeout=30) as http:
        fake.base = base
        creator = fake.add_creator("studio.fern", display_name="Fern Studio", followers=4200)
        platform: TikTokPlatform = build(PLUGIN, http, **tiktok_settings(base, fake))
        token = token_from(fake.issue_tokens(creator))
        yield TT(fake, base, http, platform, creator, token)
    # The fake records every request it did not expect; none may remain.
    assert fake.unexpected == [], fake.unexpected
