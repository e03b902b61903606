"""A Discord digest goes only to a channel of the server (or DM) that asked for it.

One bot token reaches every guild the bot is in, so a channel id named in guild A
must not let guild A's figures be posted into guild B.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.digest_post import DigestPoster, DigestUndeliverable
from bot.notify import Notifiers
from storage.digests import Workspace
from tests.fakes.discord import FakeDiscord


def _poster(fake: FakeDiscord, http: httpx.AsyncClient) -> DigestPoster:
    return DigestPoster(
        slack=None,
        notifiers=Notifiers(),
        discord_token=fake.token,
        discord_api_base=fake.api_base,
        http=http,
    )


def _posted_to(fake: FakeDiscord, channel_id: str) -> list[dict[str, Any]]:
    return [m for m in fake.created if m["channel_id"] == channel_id]


async def test_digest_refuses_a_channel_of_another_guild(fake: FakeDiscord) -> None:
    home = next(iter(fake.guilds.values()))
    other = fake.add_guild("Someone else")
    workspace = Workspace(id=1, frontend="discord", external_id=home["id"], name="Creators")
    async with httpx.AsyncClient() as http:
        poster = _poster(fake, http)
        foreign = other["channels"][0]["id"]
        with pytest.raises(DigestUndeliverable):
            await poster(workspace, foreign, "Daily digest: secret figures")
        assert _posted_to(fake, foreign) == []
        with pytest.raises(DigestUndeliverable):
            await poster(workspace, "..", "Daily digest")
        own = home["channels"][0]["id"]
        ref = await poster(workspace, own, "Daily digest: our figures")
    assert ref and [m["content"] for m in _posted_to(fake, own)] == ["Daily digest: our figures"]


async def test_dm_digest_goes_only_to_that_persons_dm(fake: FakeDiscord) -> None:
    guild = next(iter(fake.guilds.values()))
    async with httpx.AsyncClient() as http:
        opened = await http.post(
            f"{fake.api_base}/users/@me/channels",
            headers={"Authorization": f"Bot {fake.token}"},
            json={"recipient_id": "4242"},
        )
        dm = opened.json()["id"]
        poster = _poster(fake, http)
        mine = Workspace(id=2, frontend="discord", external_id="dm:4242", name=None)
        theirs = Workspace(id=3, frontend="discord", external_id="dm:777", name=None)
        with pytest.raises(DigestUndeliverable):
            await poster(mine, guild["channels"][0]["id"], "Daily digest")
        with pytest.raises(DigestUndeliverable):
            await poster(theirs, dm, "Daily digest")
        assert fake.created == []
        await poster(mine, dm, "Daily digest: mine")
    assert [m["content"] for m in _posted_to(fake, dm)] == ["Daily digest: mine"]


class _FailSecondPost(httpx.AsyncBaseTransport):
    """Loopback transport that answers the second message POST with a 500."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/messages"):
            self.posts += 1
            if self.posts == 2:
                return httpx.Response(500, json={"message": "injected"})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_long_digest_cut_short_is_not_posted_again(fake: FakeDiscord) -> None:
    """A digest longer than one Discord message goes out in parts. If a later part fails
    after the first was posted, the run must count as posted: a retry would post the
    first part a second time."""
    home = next(iter(fake.guilds.values()))
    own = home["channels"][0]["id"]
    workspace = Workspace(id=1, frontend="discord", external_id=home["id"], name="Creators")
    text = "\n".join(f"- account {i}: views {i * 100}" for i in range(200))  # > 2,000 chars
    async with httpx.AsyncClient(transport=_FailSecondPost()) as http:
        ref = await _poster(fake, http)(workspace, own, text)
    [first] = _posted_to(fake, own)
    assert ref == first["id"]
