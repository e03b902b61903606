"""The command grammar: exact parses, usage for near misses, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import captions
from agent.commands import COMMANDS, Command, Usage, history_text, parse, usage_for_unknown
from tests.fakes.platforms import directory

PLATFORMS = directory()


def test_exact_commands_parse():
    assert parse("help", PLATFORMS) == Command("help")
    assert parse("/social link YT", PLATFORMS) == Command("link", {"platform": "youtube"})
    assert parse("accounts", PLATFORMS) == Command("accounts")
    assert parse("unlink instagram ig-1234abcd", PLATFORMS) == Command(
        "unlink", {"platform": "instagram", "account": "ig-1234abcd"}
    )
    assert parse('upload youtube ~/clip.mp4 "My title"', PLATFORMS) == Command(
        "upload",
        {"platform": "youtube", "path": "~/clip.mp4", "title": "My title", "privacy": None},
    )
    assert parse("upload youtube Launch day", PLATFORMS) == Command(
        "upload", {"platform": "youtube", "path": None, "title": "Launch day", "privacy": None}
    )
    assert parse("metrics", PLATFORMS) == Command(
        "metrics", {"platform": None, "period": None, "post": None}
    )
    assert parse("metrics ig today dQw4w9WgXcQ", PLATFORMS) == Command(
        "metrics", {"platform": "instagram", "period": "today", "post": "dQw4w9WgXcQ"}
    )
    assert parse("caption youtube a b", PLATFORMS) == Command(
        "caption", {"platform": "youtube", "description": "a b"}
    )
    assert parse("digest on <#C42|general> at 7:05 UTC", PLATFORMS) == Command(
        "digest", {"verb": "on", "channel": "<#C42|general>", "at": "7:05", "zone": "UTC"}
    )
    assert parse("digest off #news", PLATFORMS) == Command(
        "digest", {"verb": "off", "channel": "#news"}
    )
    assert parse("quota", PLATFORMS) == Command("quota")


def test_free_text_is_not_a_command():
    assert parse("how many views did I get?", PLATFORMS) is None
    assert isinstance(
        parse("help me write a caption", PLATFORMS), Usage
    )  # starts like one: not exact
    assert isinstance(parse("upload this to youtube please", PLATFORMS), Usage)


def test_near_misses_get_the_closest_usage():
    assert usage_for_unknown("acounts").startswith("Did you mean `accounts`?")
    assert usage_for_unknown("metrcs 7d").startswith("Did you mean `metrics`?")
    assert usage_for_unknown("zzzz").startswith("Commands")
    bad = parse("digest maybe", PLATFORMS)
    assert isinstance(bad, Usage) and bad.command == "digest" and "digest on" in bad.message
    bad = parse("link myspace", PLATFORMS)
    assert isinstance(bad, Usage) and "link <platform>" in bad.message


words = st.sampled_from(
    [
        *COMMANDS,
        "youtube",
        "ig",
        "7d",
        "at",
        "09:00",
        "#c",
        "on",
        "off",
        '"',
        "'",
        "\\",
        "~/x.mp4",
        "<#C1|x>",
        "/social",
    ]
)
lines = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(words, st.text(max_size=8)), max_size=8).map(" ".join),
)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(lines)
def test_parse_never_raises(line):
    result = parse(line, PLATFORMS)
    assert result is None or isinstance(result, Command | Usage)
    if result is None:
        assert isinstance(usage_for_unknown(line), str)


def test_captions_fit_platform_limits():
    desc = "Sunset sail " + " ".join(f"#tag{i} word{i}" for i in range(400))
    for variants in (1, 5):
        for c in captions.generate(
            desc, rules=PLATFORMS.capabilities("instagram").caption_rules, variants=variants
        ):
            assert len(c.body) <= 2200
            assert c.body.count("#") <= 30
        for c in captions.generate(
            desc + ". <b>bold</b>",
            rules=PLATFORMS.capabilities("youtube").caption_rules,
            tone="hype",
        ):
            assert c.title is not None and len(c.title) <= 100
            assert len(c.body) <= 5000 and "<" not in c.body and ">" not in c.title
    assert captions.problems(
        PLATFORMS.capabilities("youtube").caption_rules, captions.Caption("x" * 101, "ok", ())
    )


def test_link_confirm_takes_the_code_and_history_does_not_keep_it():
    parsed = parse("link confirm abcd efgh", PLATFORMS)
    assert parsed == Command("link_confirm", {"code": "abcd efgh"})
    assert history_text(parsed, "link confirm abcd efgh") == "link confirm [code]"
    assert history_text(Command("accounts"), "accounts") == "accounts"
    missing = parse("link confirm", PLATFORMS)
    assert isinstance(missing, Usage) and "link confirm <code>" in missing.message


def test_hashtag_ideas_never_come_from_a_link() -> None:
    tags = captions.hashtags_for("Launch day, see https://example.com/studio/tour now", 10)
    assert tags == ["#launch"]


def test_trailing_share_word_asks_for_a_public_answer() -> None:
    assert parse("metrics youtube 7d share", PLATFORMS) == Command(
        "metrics", {"platform": "youtube", "period": "7d", "post": None}, share=True
    )
    assert parse("accounts SHARE", PLATFORMS) == Command("accounts", share=True)
    assert parse("quota", PLATFORMS) == Command("quota")
    # The others say they cannot be shared (not a bare usage error).
    refused = parse("queue share", PLATFORMS)
    assert isinstance(refused, Usage) and "cannot be shared" in refused.message
    # A quoted "share" is an argument, not the word.
    parsed = parse('caption youtube "we share"', PLATFORMS)
    assert parsed == Command("caption", {"platform": "youtube", "description": "we share"})
    # Commands that answer privately by nature (links, approvals) take no `share`.
    assert not isinstance(parse("link youtube share", PLATFORMS), Command)
