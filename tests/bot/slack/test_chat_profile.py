"""The requester's time zone and role from Slack's users.info, through the real adapter."""

from __future__ import annotations

from agent.context import ChatProfile
from bot.chat_profiles import ChatProfiles
from storage.identity import Identity
from tests.bot.slack.conftest import BOT_TOKEN, TEAM, SlackHarness


def _who(user: str) -> Identity:
    return Identity(
        workspace_id=1,
        chat_user_id=1,
        frontend="slack",
        workspace_external_id=TEAM,
        user_external_id=user,
    )


async def test_zone_comes_from_users_info_and_is_cached(slack: SlackHarness) -> None:
    slack.fake.user_zones.update({"UALICE": "Europe/Paris", "UBOB": None})
    profiles = ChatProfiles()
    profiles.register("slack", slack.adapter.chat_profile)

    alice = await profiles.lookup(_who("UALICE"))
    assert alice == ChatProfile(time_zone="Europe/Paris")
    assert await profiles.lookup(_who("UALICE")) == alice
    calls = slack.fake.calls_of("users.info")
    assert len(calls) == 1  # the second answer came from the cache
    assert calls[0].token == BOT_TOKEN and calls[0].args["user"] == "UALICE"
    # No tz in the profile: nothing is guessed.
    assert await profiles.lookup(_who("UBOB")) == ChatProfile(time_zone=None)


async def test_a_failed_lookup_knows_nothing(slack: SlackHarness) -> None:
    profiles = ChatProfiles()
    profiles.register("slack", slack.adapter.chat_profile)
    assert await profiles.lookup(_who("UNOBODY")) == ChatProfile()  # user_not_found
    assert (
        await profiles.lookup(
            Identity(
                workspace_id=1,
                chat_user_id=1,
                frontend="discord",
                workspace_external_id="G1",
                user_external_id="1",
            )
        )
        == ChatProfile()
    )
