"""Command buttons (`agent.layout.Action`) in every rendering: plain text names the
command to type, Block Kit and Discord rows stay within each platform's limits."""

from __future__ import annotations

from agent.layout import Action, Field, Layout, Section
from agent.post_actions import post_actions as row_actions
from bot.discord import embeds
from bot.slack import blocks


def _queue(rows: int) -> Layout:
    return Layout(
        "Your scheduled posts",
        tuple(
            Section(f"{n}: Fri 18:00 UTC", (Field("Title", f"Post {n}"),), actions=row_actions(n))
            for n in range(1, rows + 1)
        ),
    )


def test_plain_text_and_json_keep_the_commands() -> None:
    layout = _queue(2)
    text = layout.plain_text()
    assert "Cancel: `cancel 2` · Reschedule: `reschedule 2 <when>`" in text
    assert Layout.from_json(layout.to_json()) == layout
    assert row_actions(7, failed=True)[0] == Action("Retry", "reschedule 7 in 1m")


def test_forty_rows_fit_both_platforms_with_every_button() -> None:
    layout = _queue(40)
    slack = blocks.messages(layout)
    assert all(blocks.problems(p) == [] for p in slack)
    values = [
        e["value"]
        for p in slack
        for b in p["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert values.count("cancel 40") == 1 and len(values) == 80

    discord = embeds.messages(layout)
    assert all(embeds.problems(m) == [] for m in discord)
    assert all(len(m.rows) <= 5 for m in discord) and len(discord) == 8
    commands = [a.command for m in discord for row in m.rows for a in row]
    assert len(commands) == 80 and "reschedule 40" in commands
    too_many = embeds.EmbedMessage("x", [{"title": "t"}], rows=[row_actions(1)] * 6)
    assert embeds.problems(too_many)


async def test_notifiers_pass_a_layout_only_to_those_given_one() -> None:
    from typing import Any

    from bot.notify import Notifiers

    seen: list[tuple[str, Layout | None]] = []

    async def plain(reply_to: dict[str, Any], text: str) -> None:
        seen.append((text, None))

    async def rich(reply_to: dict[str, Any], text: str, *, layout: Layout | None = None) -> None:
        seen.append((text, layout))

    notifiers = Notifiers()
    notifiers.register("plain", plain)
    notifiers.register("rich", rich)
    note = _queue(1)
    assert await notifiers.notify("plain", {}, "linked")
    assert await notifiers.notify("rich", {}, "failed", layout=note)
    assert seen == [("linked", None), ("failed", note)]
