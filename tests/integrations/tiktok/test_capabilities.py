"""What TikTok declares: privacy per app status and mode, quota spec, caption rules, chunk plan."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydantic import ValidationError

from integrations.base import UploadRequest
from integrations.capabilities import PRIVACY_WORDS, PlatformCapabilities
from integrations.registry import PLUGINS, Registry
from integrations.text import compose_post_text as compose_caption
from integrations.tiktok.captions import utf16_len
from integrations.tiktok.plugin import PLUGIN, UNAUDITED_NOTE, TikTokSettings, capabilities
from integrations.tiktok.upload import PRIVACY_LEVELS, plan_chunks

MIB = 1024 * 1024


def caps(**values: Any) -> PlatformCapabilities:
    return capabilities(TikTokSettings(**values))


def test_registered_once_with_its_words() -> None:
    assert [p.name for p in PLUGINS].count("tiktok") == 1
    tiktok = caps()
    assert tiktok.display_name == "TikTok" and tiktok.words == ("tiktok", "tt")
    assert tiktok.account_prefix == "tt"
    assert PLUGIN in Registry().plugins
    assert not PLUGIN.enabled(TikTokSettings())
    assert PLUGIN.missing(TikTokSettings()) == ["tiktok_client_key", "tiktok_client_secret"]
    assert PLUGIN.enabled(TikTokSettings(tiktok_client_key="k", tiktok_client_secret="s"))


def test_unaudited_apps_offer_private_only_and_say_so() -> None:
    tiktok = caps()
    assert tiktok.privacy.values == ("private",) and tiktok.privacy.fixed
    assert tiktok.posting_note == UNAUDITED_NOTE
    assert "not audited yet, so posts are private to the creator" in UNAUDITED_NOTE


def test_audited_apps_offer_every_tiktok_level_with_private_by_default() -> None:
    tiktok = caps(tiktok_app_audited=True)
    assert set(tiktok.privacy.values) == {"public", "followers", "friends", "private"}
    assert tiktok.privacy.default == "private" and tiktok.posting_note is None
    assert set(PRIVACY_LEVELS) <= set(PRIVACY_WORDS)
    assert set(PRIVACY_LEVELS.values()) == {
        "PUBLIC_TO_EVERYONE",
        "FOLLOWER_OF_CREATOR",
        "MUTUAL_FOLLOW_FRIENDS",
        "SELF_ONLY",
    }


def test_media_is_pushed_unless_tiktok_pulls_from_a_verified_url() -> None:
    assert caps().media == "push"
    assert caps(tiktok_pull_from_url=True).media == "public_url"


def test_quota_spec_names_its_sources() -> None:
    quota = caps().quota
    counters = {c.name: c for c in quota.counters}
    inits = counters["inits"]
    assert (inits.limit, inits.rolling_seconds, inits.per_account) == (6, 60, True)
    posts = counters["posts"]
    assert (posts.limit, posts.rolling_seconds, posts.per_account) == (15, 86_400, True)
    for name in ("user_info", "video_list", "video_query"):
        read = counters[name]
        assert (read.limit, read.rolling_seconds, read.per_account) == (600, 60, False)
    assert all(c.source for c in quota.counters)
    assert quota.cost("upload") == {"inits": 1, "posts": 1}
    assert quota.cost("post_metrics", 3) == {"video_query": 3}
    assert quota.cost("recent_posts") == {"video_list": 1}
    assert quota.cost("profile") == quota.cost("account_metrics") == {"user_info": 1}
    assert caps(tiktok_posts_per_day=4).quota.counters[1].limit == 4


def test_metrics_limits_say_what_is_true() -> None:
    metrics = caps().metrics
    assert metrics.max_ids_per_call == 20 and metrics.recent_page_size == 20
    assert metrics.max_period_days == 1  # totals as of now; no per-day figures


def test_caption_rules_count_utf16_units() -> None:
    rules = caps().caption_rules
    assert not rules.has_title and rules.body_max_chars == 2200
    assert utf16_len("🎬") == 2 and utf16_len("é") == 1
    assert rules.problems(title=None, body="🎬" * 1100) == []
    assert rules.problems(title=None, body="🎬" * 1100 + "x") == ["text over 2200 characters"]
    assert rules.hashtags_max is None and rules.mentions_max is None  # TikTok documents none


def test_compose_caption_folds_title_text_and_missing_tags() -> None:
    request = UploadRequest(
        title="Launch", description="New #studio tour", tags=("Studio", "fern"), privacy="private"
    )
    assert compose_caption(request) == "Launch\n\nNew #studio tour\n\n#fern"
    assert compose_caption(UploadRequest(title="", tags=("a",), privacy="private")) == "#a"


@pytest.mark.parametrize("value", [5 * MIB - 1, 64_000_001])
def test_chunk_size_setting_stays_within_tiktoks_bounds(value: int) -> None:
    with pytest.raises(ValidationError):
        TikTokSettings(tiktok_chunk_bytes=value)


def test_the_default_chunk_size_passes_the_settings_own_bounds() -> None:
    default = TikTokSettings().tiktok_chunk_bytes  # (a default is not validated by itself)
    assert TikTokSettings(tiktok_chunk_bytes=default).tiktok_chunk_bytes == default


@pytest.mark.parametrize(
    ("size", "chunk", "expected"),
    [
        (1, 5 * MIB, (1, 1)),
        (4 * MIB, 5 * MIB, (4 * MIB, 1)),  # under 5 MB: whole
        (5 * MIB, 5 * MIB, (5 * MIB, 1)),
        (9 * MIB, 5 * MIB, (5 * MIB, 1)),  # the last (only) chunk takes the rest
        (50_000_123, 10_000_000, (10_000_000, 5)),  # the media transfer guide's example
        (4_000_000_000, 5 * MIB, (5 * MIB, 762)),
        (4_000_000_000, 64_000_000, (64_000_000, 62)),
    ],
)
def test_chunk_plans_follow_the_media_transfer_guide(
    size: int, chunk: int, expected: tuple[int, int]
) -> None:
    plan = plan_chunks(size, chunk)
    assert (plan.chunk_size, plan.count) == expected
    assert plan.count == size // plan.chunk_size and 1 <= plan.count <= 1000
    first, last = plan.span(plan.count - 1)
    assert last == size - 1 and last - first + 1 <= 128_000_000
    assert plan.span(0)[0] == 0
    spans = [plan.span(i) for i in range(plan.count)]
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))


def test_a_huge_file_grows_the_chunk_to_stay_within_1000_chunks() -> None:
    plan = plan_chunks(12_000 * MIB, 5 * MIB)
    assert plan.count <= 1000 and plan.chunk_size == -(-12_000 * MIB // 1000)
