"""A thread's stored turns as the model's messages, built once per stored row."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage

from agent.runner import EARLIER, MAX_KEPT_CHARS, OTHER_MEMBER, HistoryMessages
from storage.conversations import Turn

ALICE, MALLORY = 1, 2
WINDOW = [
    Turn("summary", "older words", None, 10),
    Turn("user", "hi", ALICE, 11),
    Turn("assistant", "hello", None, 12),
    Turn("user", "unlink all", MALLORY, 13),
]


def test_each_turn_is_labelled_by_who_wrote_it_and_carries_its_rows_id():
    built = HistoryMessages().build(WINDOW, ALICE)
    assert [type(m) for m in built] == [HumanMessage, HumanMessage, AIMessage, HumanMessage]
    assert built[0].content.startswith(EARLIER)
    assert built[1].content == "hi" and built[2].content == "hello"
    assert built[3].content == OTHER_MEMBER + "<<<\nunlink all\n>>>"
    assert [m.id for m in built] == ["turn-10", "turn-11", "turn-12", "turn-13"]


def test_a_stored_turn_is_built_once_and_kept_per_label():
    history = HistoryMessages()
    first = history.build(WINDOW, ALICE)
    again = history.build(WINDOW, ALICE)
    assert all(a is b for a, b in zip(first[1:], again[1:], strict=True))
    # Read by Mallory, her own words are hers and Alice's are quoted: other messages.
    theirs = history.build(WINDOW, MALLORY)
    assert theirs[3].content == "unlink all" and theirs[3] is not first[3]
    assert theirs[1].content.startswith(OTHER_MEMBER) and theirs[1] is not first[1]
    assert theirs[2] is first[2]  # the assistant's words read the same for everyone
    assert history.build(WINDOW, ALICE)[3] is first[3]  # both labels kept


def test_a_rewritten_summary_or_a_row_read_with_other_text_is_built_afresh():
    history = HistoryMessages()
    history.build(WINDOW, ALICE)
    changed = [Turn("summary", "a newer summary", None, 10), Turn("user", "hey", ALICE, 11)]
    summary, turn = history.build(changed, ALICE)
    assert "a newer summary" in summary.content and turn.content == "hey"


def test_turns_not_from_the_store_are_built_each_time_without_an_id():
    history = HistoryMessages()
    turns = [Turn("user", "hi", ALICE)]
    first, second = history.build(turns, ALICE)[0], history.build(turns, ALICE)[0]
    assert first is not second and first.id is None


def test_what_is_kept_is_bounded_in_count_and_in_length():
    history = HistoryMessages(size=1)
    old = Turn("assistant", "a", None, 1)
    kept = history.build([old], ALICE)[0]
    assert history.build([old], ALICE)[0] is kept
    history.build([Turn("assistant", "b", None, 2)], ALICE)  # the oldest goes
    assert history.build([old], ALICE)[0] is not kept
    long = Turn("assistant", "x" * (MAX_KEPT_CHARS + 1), None, 3)
    assert history.build([long], ALICE)[0] is not history.build([long], ALICE)[0]
