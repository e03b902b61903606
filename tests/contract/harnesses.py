"""One harness per registered platform: its fake on loopback, seen the same way by the
contract suite. A harness is only fake setup; the suite has no platform-specific code.

Adding a platform means adding its harness here (the suite fails for a registered
platform without one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx

from integrations.base import SocialPlatform
from integrations.instagram.plugin import PLUGIN as INSTAGRAM
from integrations.plugin import PlatformPlugin
from integrations.tiktok.plugin import PLUGIN as TIKTOK
from integrations.x.plugin import PLUGIN as X
from integrations.youtube.plugin import PLUGIN as YOUTUBE
from tests.fakes.google import FakeGoogle, youtube_settings
from tests.fakes.instagram import FakeInstagram, instagram_settings
from tests.fakes.server import serve_asgi
from tests.fakes.tiktok import VIDEO_QUERY, FakeTikTok, tiktok_settings
from tests.fakes.x import FakeX, use_clock, x_settings


class Harness(Protocol):
    """A platform's fake, with the account a consent links."""

    plugin: PlatformPlugin[Any]
    settings: dict[str, Any]
    account_external_id: str
    # HTTP reads of post figures per batch of `max_ids_per_call` posts.
    reads_per_batch: int

    def attach(self, platform: SocialPlatform) -> None:
        """Ties the built client to the fake where the fake needs it (its clock, say)."""

    async def consent(self, authorization_url: str) -> str:
        """What the browser does at the platform: the code sent back to our callback."""

    def add_posts(self, n: int) -> list[str]:
        """n posts on the linked account, newest last."""

    def figure_reads(self) -> int:
        """HTTP reads of post figures so far."""

    def cut_next_upload(self) -> None:
        """The next upload loses its connection (or gets a transient failure) once."""

    def published(self) -> list[str]:
        """Post ids published by uploads so far."""


async def consent_by_redirect(authorization_url: str) -> str:
    """What a browser does at a fake that consents at once: open the authorization URL and
    read the code from the redirect to our callback."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorization_url)
    assert answer.status_code == 302, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


class YouTubeHarness:
    plugin = YOUTUBE
    reads_per_batch = 1

    def __init__(self, fake: FakeGoogle, base: str) -> None:
        self.fake = fake
        self.channel = fake.add_channel("Contract Channel", custom_url="@contract")
        fake.login_channel = self.channel.id
        self.account_external_id = self.channel.id
        self.settings = youtube_settings(base, fake)

    def attach(self, platform: SocialPlatform) -> None:
        return None

    async def consent(self, authorization_url: str) -> str:
        return await consent_by_redirect(authorization_url)

    def add_posts(self, n: int) -> list[str]:
        return [self.fake.add_video(self.channel, title=f"post {i}", views=i) for i in range(n)]

    def figure_reads(self) -> int:
        return len(self.fake.calls_to("/youtube/v3/videos"))

    def cut_next_upload(self) -> None:
        self.fake.faults.drop_at_byte = 300 * 1024

    def published(self) -> list[str]:
        return list(self.fake.videos_created)


class InstagramHarness:
    plugin = INSTAGRAM
    reads_per_batch = 2  # basics, then insights per media kind (all Reels here)

    def __init__(self, fake: FakeInstagram, base: str) -> None:
        self.fake = fake
        self.user = fake.add_user("contract.studio", name="Contract Studio", followers=10)
        self.account_external_id = self.user.user_id
        self.settings = instagram_settings(base, fake)
        self._seeded: set[str] = set()

    def attach(self, platform: SocialPlatform) -> None:
        return None

    async def consent(self, authorization_url: str) -> str:
        query = parse_qs(urlsplit(authorization_url).query)
        assert query["client_id"] == [self.fake.client_id]
        return self.fake.issue_code(self.user, query["redirect_uri"][0])

    def add_posts(self, n: int) -> list[str]:
        ids = [
            self.fake.add_media(self.user, caption=f"post {i}", insights={"views": i}).id
            for i in range(n)
        ]
        self._seeded.update(ids)
        return ids

    def figure_reads(self) -> int:
        return len([c for c in self.fake.calls if c.method == "GET" and "ids" in c.params])

    def cut_next_upload(self) -> None:
        # Instagram fetches the video itself: what can fail on our side mid-upload is a
        # status read of the container, which must not cost a second publish.
        self.fake.plan_containers(in_progress_polls=2)
        next_container = str(self.fake._ids + 1)  # the fake numbers objects in sequence
        self.fake.fail_with_500(times=1, path=next_container)

    def published(self) -> list[str]:
        return [m.id for m in self.user.media if m.id not in self._seeded]


class TikTokHarness:
    plugin = TIKTOK
    reads_per_batch = 1

    def __init__(self, fake: FakeTikTok, base: str) -> None:
        self.fake = fake
        self.creator = fake.add_creator("contract.studio", display_name="Contract Studio")
        self.account_external_id = self.creator.open_id
        self.settings = tiktok_settings(base, fake)

    def attach(self, platform: SocialPlatform) -> None:
        return None

    async def consent(self, authorization_url: str) -> str:
        return await consent_by_redirect(authorization_url)

    def add_posts(self, n: int) -> list[str]:
        return [self.fake.add_video(self.creator, f"post {i}").id for i in range(n)]

    def figure_reads(self) -> int:
        return self.fake.requests[VIDEO_QUERY]

    def cut_next_upload(self) -> None:
        self.fake.drop_connection_at(300 * 1024)

    def published(self) -> list[str]:
        # A private post has no public id: the publish id stands for it, as in the client.
        return [p.video_id or p.id for p in self.fake.posts_created]


@asynccontextmanager
async def _tiktok() -> AsyncIterator[Harness]:
    fake = FakeTikTok()
    async with serve_asgi(fake) as base:
        fake.base = base  # upload URLs it hands out point back at it
        yield TikTokHarness(fake, base)
    assert fake.unexpected == [], fake.unexpected


class XHarness:
    plugin = X
    reads_per_batch = 1

    def __init__(self, fake: FakeX, base: str) -> None:
        self.fake = fake
        self.user = fake.add_user("contract_studio", name="Contract Studio")
        self.account_external_id = self.user.id
        self.settings = x_settings(base, fake)
        self._seeded: set[str] = set()

    def attach(self, platform: SocialPlatform) -> None:
        use_clock(platform, self.fake.clock)  # the fake's time moves only when we sleep

    async def consent(self, authorization_url: str) -> str:
        return await consent_by_redirect(authorization_url)

    def add_posts(self, n: int) -> list[str]:
        ids = [self.fake.add_post(self.user, f"post {i}").id for i in range(n)]
        self._seeded.update(ids)
        return ids

    def figure_reads(self) -> int:
        return self.fake.requests["GET /2/tweets"]

    def cut_next_upload(self) -> None:
        self.fake.drop_during_append()

    def published(self) -> list[str]:
        return [p.id for p in self.fake.posts_by(self.user) if p.id not in self._seeded]


@asynccontextmanager
async def _x() -> AsyncIterator[Harness]:
    fake = FakeX()
    async with serve_asgi(fake) as base:
        yield XHarness(fake, base)
    assert fake.unexpected == [], fake.unexpected


@asynccontextmanager
async def _youtube() -> AsyncIterator[Harness]:
    fake = FakeGoogle()
    async with serve_asgi(fake) as base:
        fake.base = base
        yield YouTubeHarness(fake, base)


@asynccontextmanager
async def _instagram() -> AsyncIterator[Harness]:
    fake = FakeInstagram()
    async with serve_asgi(fake.app) as base:
        yield InstagramHarness(fake, base)


HARNESSES: dict[str, Callable[[], AbstractAsyncContextManager[Harness]]] = {
    "youtube": _youtube,
    "instagram": _instagram,
    "tiktok": _tiktok,
    "x": _x,
}
