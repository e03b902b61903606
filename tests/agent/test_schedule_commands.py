"""The scheduling words of the grammar: upload ... <when>, timezone, queue, reschedule, best time."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.actions.schedule_time import looks_like_time
from agent.commands import Command, Usage, help_text, parse
from tests.fakes.platforms import directory

PLATFORMS = directory()


def test_upload_takes_a_trailing_time() -> None:
    assert parse('upload youtube "Launch" at 18:00 tomorrow', PLATFORMS) == Command(
        "upload",
        {
            "platform": "youtube",
            "path": None,
            "title": "Launch",
            "privacy": None,
            "publish_at": "at 18:00 tomorrow",
        },
    )
    parsed = parse('upload yt "Launch" public on friday 09:30 Europe/Paris', PLATFORMS)
    assert isinstance(parsed, Command)
    assert parsed.args["privacy"] == "public"
    assert parsed.args["publish_at"] == "on friday 09:30 Europe/Paris"
    parsed = parse("upload ig Fun in the sun in 2h", PLATFORMS)
    assert isinstance(parsed, Command)
    assert parsed.args["title"] == "Fun in the sun" and parsed.args["publish_at"] == "in 2h"
    # A title that only looks like it has a time keeps it (quote it to be sure).
    parsed = parse("upload youtube Meet me at the beach", PLATFORMS)
    assert isinstance(parsed, Command) and "publish_at" not in parsed.args


def test_schedule_commands() -> None:
    assert parse("timezone", PLATFORMS) == Command("timezone", {"zone": None})
    assert parse("timezone Europe/Paris", PLATFORMS) == Command(
        "timezone", {"zone": "Europe/Paris"}
    )
    assert parse("queue", PLATFORMS) == Command("queue", {"workspace": False})
    assert parse("queue workspace", PLATFORMS) == Command("queue", {"workspace": True})
    assert parse("reschedule 12 in 2h", PLATFORMS) == Command(
        "reschedule", {"post": "12", "when": "in 2h"}
    )
    # The "Reschedule" button's command: answered with the command to complete.
    assert parse("reschedule 12", PLATFORMS) == Command("reschedule", {"post": "12", "when": ""})
    assert parse("best time yt", PLATFORMS) == Command("best_time", {"platform": "youtube"})
    for bad in ("reschedule", "reschedule 12 soon", "best time", "queue everyone"):
        assert isinstance(parse(bad, PLATFORMS), Usage), bad
    text = help_text()
    assert "timezone [Area/City]" in text and "happens twice means the first" in text


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "at",
                    "on",
                    "in",
                    "today",
                    "tomorrow",
                    "fri",
                    "18:00",
                    "9am",
                    "2h",
                    "UTC",
                    "Europe/",
                    "Europe/Paris",
                    "../x/y",
                    "a/b",
                    "2026-13-40",
                    "2026-12-01T25:00",
                    "2026-12-01T10:00",
                ]
            ),
            st.text(max_size=6),
        ),
        max_size=6,
    )
)
def test_time_words_never_raise(words: list[str]) -> None:
    assert looks_like_time(words) in (True, False)
    for verb in ("upload youtube x", "reschedule 3"):
        result = parse(f"{verb} {' '.join(words)}", PLATFORMS)
        assert result is None or isinstance(result, Command | Usage)
