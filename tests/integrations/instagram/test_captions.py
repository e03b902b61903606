"""Instagram caption limits: 2,200 characters, 30 hashtags, 20 mentions."""

from __future__ import annotations

from integrations.base import UploadRequest
from integrations.instagram import CAPTION_RULES, check_caption, compose_caption


def test_rules_are_published_for_callers() -> None:
    assert CAPTION_RULES.caption_max_chars == 2200
    assert CAPTION_RULES.hashtags_max == 30


def test_a_normal_caption_passes() -> None:
    assert check_caption("New reel! #plants #studio with @fern.studio, mail me@example.com") == []


def test_length_limit_is_exact() -> None:
    assert check_caption("a" * 2200) == []
    (problem,) = check_caption("a" * 2201)
    assert "2,201 characters" in problem and "2,200" in problem


def test_hashtag_limit_counts_occurrences() -> None:
    assert check_caption(" ".join(f"#t{i}" for i in range(30))) == []
    (problem,) = check_caption(" ".join(f"#t{i}" for i in range(31)))
    assert "31 hashtags" in problem


def test_mention_limit_and_emails_are_not_mentions() -> None:
    assert check_caption(" ".join(f"@u{i}" for i in range(20)) + " a@b.com c@d.org") == []
    (problem,) = check_caption(" ".join(f"@u{i}" for i in range(21)))
    assert "21 accounts" in problem


def test_all_problems_are_reported_together() -> None:
    text = " ".join(f"#t{i} @u{i}" for i in range(40)) + "x" * 2200
    assert len(check_caption(text)) == 3


def test_compose_caption_joins_title_description_and_missing_tags() -> None:
    request = UploadRequest(
        title="Morning", description="Tour #studio", tags=("studio", "#Plants", "new tag")
    )
    assert compose_caption(request) == "Morning\n\nTour #studio\n\n#Plants #newtag"
    assert compose_caption(UploadRequest(title="Same", description="Same words")) == "Same words"
    assert compose_caption(UploadRequest(title="", tags=("a",))) == "#a"
