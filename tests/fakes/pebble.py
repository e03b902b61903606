"""Pebble: a made-up platform that exists only in tests, to prove the plug-in seam.

It is registered the way a real platform is (a `PlatformPlugin` with its settings
model, capabilities and factory) and nothing else in the bot names it. Its client
keeps everything in memory and fails loudly on anything unexpected.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, SecretStr

from integrations.base import (
    AccountMetrics,
    AccountProfile,
    ByteSource,
    Figure,
    Metric,
    PostMetrics,
    PostSummary,
    ProgressCallback,
    TokenSet,
    UploadCheckpoint,
    UploadRequest,
    UploadResult,
)
from integrations.capabilities import (
    CaptionRules,
    MetricsLimits,
    PlatformCapabilities,
    Privacy,
    QuotaCounter,
    QuotaSpec,
)
from integrations.errors import InvalidRequest, NeedsRelink
from integrations.plugin import PlatformPlugin


class PebbleSettings(BaseModel):
    pebble_client_id: str | None = "pebble-app"
    pebble_client_secret: SecretStr | None = SecretStr("pebble-secret-123456")
    pebble_posts_per_day: int = 3


def capabilities(settings: PebbleSettings) -> PlatformCapabilities:
    return PlatformCapabilities(
        name="pebble",
        display_name="Pebble",
        aliases=("pb",),
        account_prefix="pb",
        privacy=Privacy(values=("public", "followers"), default="followers"),
        media="push",
        metrics=MetricsLimits(max_ids_per_call=2, max_period_days=7, recent_page_size=5),
        caption_rules=CaptionRules(caption_max_chars=40, hashtags_max=2),
        quota=QuotaSpec(
            counters=(
                QuotaCounter(
                    "posts",
                    "posts",
                    settings.pebble_posts_per_day,
                    per_account=True,
                    rolling_seconds=86400,
                ),
                QuotaCounter("reads", "reads", 1000, reset_zone="Pacific/Auckland"),
            ),
            costs={
                "upload": {"posts": 1},
                "recent_posts": {"reads": 1},
                "post_metrics": {"reads": 1},
                "account_metrics": {"reads": 1},
            },
        ),
    )


@dataclass
class PebbleWorld:
    """What happened at "Pebble": accounts, issued tokens, posts and every call."""

    user: str = "pebbler"
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> user
    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)


WORLD = PebbleWorld()


class PebblePlatform:
    """The SocialPlatform of Pebble, in memory."""

    scopes = ("post", "read")

    def __init__(self, caps: PlatformCapabilities, world: PebbleWorld) -> None:
        self.capabilities = caps
        self.world = world

    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        query = urlencode({"state": state, "redirect_uri": redirect_uri})
        return f"https://pebble.example/authorize?{query}"

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        self.world.calls.append("exchange_code")
        if code != "pebble-ok":
            raise InvalidRequest("bad code", platform="pebble")
        token = "pbt-" + secrets.token_hex(8)
        self.world.tokens[token] = self.world.user
        return TokenSet(access_token=token, refresh_token="pbr-1", scopes=self.scopes)

    async def refresh(self, token: TokenSet) -> TokenSet:
        raise NeedsRelink("Pebble refuses refreshes in this test", platform="pebble")

    async def revoke(self, token: TokenSet) -> None:
        self.world.tokens.pop(token.access_token, None)

    def _who(self, token: TokenSet) -> str:
        user = self.world.tokens.get(token.access_token)
        assert user is not None, "Pebble called with an unknown token"
        return user

    async def profile(self, token: TokenSet) -> AccountProfile:
        user = self._who(token)
        return AccountProfile(external_id=f"pb-{user}", handle=user, display_name=user.title())

    async def upload(
        self,
        token: TokenSet,
        source: ByteSource,
        request: UploadRequest,
        *,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None = None,
    ) -> UploadResult:
        self._who(token)
        assert request.privacy in self.capabilities.privacy.values, request.privacy
        data = b"".join([piece async for piece in source.open(0)])
        post_id = f"peb{len(self.world.posts) + 1}"
        self.world.posts[post_id] = {"title": request.title, "bytes": len(data), "views": 7}
        self.world.calls.append("upload")
        return UploadResult(post_id, f"https://pebble.example/p/{post_id}", request.privacy)

    async def recent_posts(
        self, token: TokenSet, account: AccountProfile, *, limit: int = 50
    ) -> list[PostSummary]:
        self.world.calls.append("recent_posts")
        ids = list(self.world.posts)[-limit:]
        return [PostSummary(i, self.world.posts[i]["title"], None) for i in ids]

    async def post_metrics(self, token: TokenSet, post_ids: Sequence[str]) -> list[PostMetrics]:
        assert len(post_ids) <= self.capabilities.metrics.max_ids_per_call, "not batched"
        self.world.calls.append("post_metrics")
        now = datetime.now(UTC)
        return [
            PostMetrics("pebble", i, now, {Metric.VIEWS: Figure(self.world.posts[i]["views"], "v")})
            for i in post_ids
            if i in self.world.posts
        ]

    async def account_metrics(
        self, token: TokenSet, account: AccountProfile, *, start: date, end: date
    ) -> AccountMetrics:
        self.world.calls.append("account_metrics")
        views = sum(p["views"] for p in self.world.posts.values())
        return AccountMetrics(
            "pebble",
            account.external_id,
            start,
            end,
            datetime.now(UTC),
            {Metric.VIEWS: Figure(views, "pebble.views")},
        )


def build(
    settings: PebbleSettings, caps: PlatformCapabilities, http: httpx.AsyncClient
) -> PebblePlatform:
    return PebblePlatform(caps, WORLD)


PLUGIN = PlatformPlugin(
    name="pebble",
    display_name="Pebble",
    settings_type=PebbleSettings,
    required=(("pebble_client_id", "pebble_client_secret"),),
    capabilities=capabilities,
    build=build,
)
