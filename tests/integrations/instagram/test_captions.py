"""Instagram's declared caption limits (2,200 characters, 30 hashtags, 20 mentions), and
the one caption composed from a request's title, text and tags."""

from __future__ import annotations

from integrations.base import UploadRequest
from integrations.instagram.plugin import InstagramSettings, capabilities
from integrations.text import compose_post_text as compose_caption

RULES = capabilities(InstagramSettings()).caption_rules


def check(text: str) -> list[str]:
    return RULES.problems(title=None, body=text)


def test_a_normal_caption_passes() -> None:
    assert check("New reel! #plants #studio with @fern.studio, mail me@example.com") == []


def test_length_limit_is_exact() -> None:
    assert check("a" * 2200) == []
    assert check("a" * 2201) == ["text over 2200 characters"]


def test_hashtag_limit_counts_occurrences() -> None:
    assert check(" ".join(f"#t{i}" for i in range(30))) == []
    assert check(" ".join(f"#t{i}" for i in range(31))) == ["more than 30 hashtags"]


def test_mention_limit_and_emails_are_not_mentions() -> None:
    assert check(" ".join(f"@u{i}" for i in range(20)) + " a@b.com c@d.org") == []
    assert check(" ".join(f"@u{i}" for i in range(21))) == ["more than 20 @mentions"]


def test_all_problems_are_reported_together() -> None:
    text = " ".join(f"#t{i} @u{i}" for i in range(40)) + "x" * 2200
    assert len(check(text)) == 3


def test_compose_caption_joins_title_description_and_missing_tags() -> None:
    request = UploadRequest(
        title="Morning",
        privacy="public",
        description="Tour #studio",
        tags=("studio", "#Plants", "new tag"),
    )
    assert compose_caption(request) == "Morning\n\nTour #studio\n\n#Plants #newtag"
    same = UploadRequest(title="Same", privacy="public", description="Same words")
    assert compose_caption(same) == "Same words"
    assert compose_caption(UploadRequest(title="", privacy="public", tags=("a",))) == "#a"
