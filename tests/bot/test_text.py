"""Fitting replies into Discord's message limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.text import MAX_PARTS, MESSAGE_LIMIT, split_message, truncate


def test_short_text_is_one_message() -> None:
    assert split_message("hello") == ["hello"]


def test_empty_text_is_still_sendable() -> None:
    [only] = split_message("")
    assert only  # Discord refuses empty content


def test_code_fence_cut_by_a_split_is_closed_and_reopened() -> None:
    body = "\n".join(f"print({i})  # " + "z" * 40 for i in range(80))
    parts = split_message(f"Here you go:\n```python\n{body}\n```\nDone.")
    assert len(parts) > 1
    for part in parts:
        assert part.count("```") % 2 == 0, part[:80]
        assert len(part) <= MESSAGE_LIMIT
    assert parts[1].startswith("```python\n")


def test_unbroken_text_is_hard_split() -> None:
    parts = split_message("a" * 4500)
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert "".join(parts) == "a" * 4500


def test_truncate_keeps_short_text_and_marks_a_cut() -> None:
    assert truncate("short") == "short"
    cut = truncate("word " * 1000)
    assert len(cut) <= MESSAGE_LIMIT and cut.endswith("…")


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n`"), min_size=0, max_size=12_000))
def test_every_part_fits_and_there_are_few(text: str) -> None:
    parts = split_message(text)
    assert 1 <= len(parts) <= MAX_PARTS
    assert all(0 < len(p) <= MESSAGE_LIMIT for p in parts)
    if len(parts) == MAX_PARTS and len(text) > MAX_PARTS * MESSAGE_LIMIT:
        assert parts[-1].endswith("more characters not shown)")
