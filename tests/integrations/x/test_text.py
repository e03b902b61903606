"""X's weighted text length (cases from the official twitter-text conformance suite) and the
composition of a post's text from an upload request."""

from __future__ import annotations

import pytest

from integrations.base import UploadRequest
from integrations.text import compose_post_text as compose_text
from integrations.x import weighted_length
from integrations.x.plugin import XSettings, capabilities

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi http://test.co", 26),  # a URL is 23 whatever its length
        ("http://test.co", 23),
        ("https://example.com/" + "a" * 200, 23),
        ("english text 日本語 😷 https://example.com", 46),
        ("😷👾😡🔥💩", 10),  # emoji weigh 2
        ("🙋🏽👨\u200d🎤", 4),  # a modifier or a ZWJ sequence is one emoji
        ("H🐱☺" + FAMILY, 7),
        (FAMILY * 140, 280),
        ("1\u20e3", 2),  # a keycap emoji starting in the Latin range
        ("故人西辞黄鹤楼", 14),  # CJK weighs 2
        ("café naïve", 10),  # Latin with accents weighs 1
        ("\u2000\u2001\u2002", 3),  # general punctuation spaces weigh 1
        ("a" * 280, 280),
        ("a" * 281, 281),
    ],
)
def test_weighted_length_follows_twitter_text(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


def test_caption_rules_use_the_weighted_count() -> None:
    rules = capabilities(XSettings()).caption_rules
    assert rules.body_max_chars == 280 and not rules.has_title
    assert rules.problems(title=None, body="a" * 280) == []
    assert rules.problems(title=None, body="a" * 281) == ["text over 280 characters"]
    long_url = "https://example.com/" + "p" * 300
    assert rules.problems(title=None, body="a" * 256 + " " + long_url) == []  # 256 + 1 + 23
    assert rules.problems(title=None, body="a" * 257 + " " + long_url) != []
    assert rules.problems(title=None, body="好" * 140) == []
    assert rules.problems(title=None, body="好" * 141) == ["text over 280 characters"]


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (
            UploadRequest(
                title="Launch", description="New tour", tags=("a", "b"), privacy="public"
            ),
            "Launch\n\nNew tour\n\n#a #b",
        ),
        (
            UploadRequest(title="Launch", description="Launch day is here", privacy="public"),
            "Launch day is here",
        ),
        (
            UploadRequest(
                title="Tour",
                description="Come see #Studio",
                tags=("studio", "New York!", "#tour", ""),
                privacy="public",
            ),
            "Tour\n\nCome see #Studio\n\n#NewYork #tour",
        ),
        (UploadRequest(title="", description="", tags=("only",), privacy="public"), "#only"),
    ],
)
def test_compose_text(request_: UploadRequest, text: str) -> None:
    assert compose_text(request_) == text


@pytest.mark.parametrize(
    "request_",
    [
        UploadRequest(
            title="T " * 60, description="日本語 " * 20, tags=("a b", "c"), privacy="public"
        ),
        UploadRequest(
            title="Hi", description="see https://example.com/x", tags=("é",), privacy="public"
        ),
    ],
)
def test_composed_text_is_never_longer_than_what_was_approved(request_: UploadRequest) -> None:
    # What agent.actions.upload.check_text measures for a platform without a title field.
    checked = "\n\n".join(
        p
        for p in (request_.title, request_.description, " ".join(f"#{t}" for t in request_.tags))
        if p
    )
    assert weighted_length(compose_text(request_)) <= weighted_length(checked)
