"""The 'discord' part is refused clearly when Discord is not configured."""

from __future__ import annotations

import pytest

from bot.assembly import PartUnavailable, build_part
from bot.services import Services


def test_discord_part_without_a_token_is_unavailable(make_settings) -> None:
    services = Services(settings=make_settings(discord_token=None))
    with pytest.raises(PartUnavailable, match="DISCORD_TOKEN"):
        build_part(services, "discord")


def test_bad_shard_settings_make_the_discord_part_unavailable(make_settings) -> None:
    settings = make_settings(discord_token="t", discord_shard_ids="1")
    with pytest.raises(PartUnavailable, match="DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"):
        build_part(Services(settings=settings), "discord")
