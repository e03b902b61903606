"""Every Block Kit block and Discord embed we emit fits the platform's limits table,
however large the answer (a 30-account workspace, very long platform text), and what
does not fit one message continues in the next; only past the hard cap is anything
left out, and then the answer says how much."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from agent.actions.metrics import metrics_layout
from agent.layout import Entry, Field, Layout, Section
from agent.ports import MetricsReport
from bot.core.messages import ApprovalRequest, Reply
from bot.discord import embeds
from bot.slack import blocks
from bot.slack.convert import approval_payload, decided_payload, reply_payloads
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics
from tests.fakes.platforms import directory

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
PLATFORMS = ("youtube", "instagram", "tiktok", "x")
LONG = "Ünïcødé & <tags> *stars* _under_ " * 40  # ~1,300 characters of awkward text


def workspace_report(accounts: int = 30) -> MetricsReport:
    """`accounts` accounts, every metric, a daily series and three long-titled top posts."""
    rows = []
    for n in range(accounts):
        platform = PLATFORMS[n % len(PLATFORMS)]
        figures = {m: Figure(float(1000 + n), "x") for m in Metric}
        figures[Metric.ENGAGEMENT_RATE] = Figure(0.0421, "x")
        series = [
            (date(2026, 11, 23) + timedelta(days=d), {Metric.VIEWS: Figure(100.0 + d, "x")})
            for d in range(2)
        ]
        top = [
            PostMetrics(
                platform,
                f"post{n}x{k}",
                NOW,
                {Metric.VIEWS: Figure(500.0, "x"), Metric.LIKES: Figure(20.0, "x")},
                title=f"{k} {LONG}",
                url=f"https://example.com/watch?v=post{n}x{k}",
                thumbnail_url=f"https://img.example.com/{n}/{k}.jpg",
            )
            for k in range(3)
        ]
        acct = AccountMetrics(
            platform,
            f"acct{n}",
            date(2026, 11, 18),
            date(2026, 11, 24),
            NOW,
            figures,
            series=series,
            top_posts=top,
        )
        rows.append((f"{platform[:2]}-{n:08x}", acct))
    return MetricsReport(
        as_of=NOW, accounts=rows, unavailable={"x": "X did not answer in time " + LONG}
    )


def caption_layout() -> Layout:
    """A section whose body is longer than any one text object allows."""
    return Layout(
        "Captions " + LONG,
        (Section("1." + LONG, (Field("Title", LONG),), body=LONG * 8, inline=False),),
        notes=(LONG,),
    )


def _slack_block_types(payloads: list[dict]) -> set[str]:
    found = set()
    for payload in payloads:
        for block in payload["blocks"]:
            found.add(block["type"])
            if "fields" in block:
                found.add("section.fields")
            if "accessory" in block:
                found.add("section.accessory.image")
    return found


def test_slack_thirty_accounts_fit_every_limit_and_lose_nothing() -> None:
    layout = metrics_layout(workspace_report(30), "7d", directory())
    payloads = blocks.messages(layout, share_id="abc123", shared_by=None)
    assert len(payloads) > 1  # 30 accounts need more than 50 blocks
    for payload in payloads:
        assert blocks.problems(payload) == []
    # Every kind of block the renderer emits was checked above.
    assert _slack_block_types(payloads) == {
        "header",
        "section",
        "section.fields",
        "section.accessory.image",
        "divider",
        "context",
        "actions",
    }
    shown = str(payloads)
    assert all(ref in shown for ref, _ in workspace_report(30).accounts)  # nothing lost
    assert "more blocks not shown" not in shown
    # The share button is on the last message only.
    assert [p["blocks"][-1]["type"] == "actions" for p in payloads][-1]
    assert all(b["type"] != "actions" for p in payloads[:-1] for b in p["blocks"])


def test_slack_past_the_cap_says_how_much_was_left_out() -> None:
    layout = metrics_layout(workspace_report(200), "7d", directory())
    payloads = blocks.messages(layout)
    assert len(payloads) == blocks.MAX_MESSAGES
    assert all(blocks.problems(p) == [] for p in payloads)
    note = payloads[-1]["blocks"][-1]["elements"][0]["text"]
    assert "more blocks not shown" in note


def test_slack_long_text_is_split_or_cut_with_a_count() -> None:
    payloads = blocks.messages(caption_layout(), shared_by="U1")
    for payload in payloads:
        assert blocks.problems(payload) == []
    body = "".join(
        b["text"]["text"] for p in payloads for b in p["blocks"] if b["type"] == "section"
    )
    assert body.count("Ünïcødé") >= 8 * 40  # the long body arrived whole, in pieces
    header = payloads[0]["blocks"][0]["text"]["text"]
    assert len(header) <= 150 and "more characters)" in header
    assert "&lt;tags&gt;" in body and "<tags>" not in body  # data cannot become markup


def test_slack_other_payloads_fit_too() -> None:
    request = ApprovalRequest("act-1", LONG * 5, "U1", 900)
    approval = approval_payload(request)
    assert blocks.problems(approval) == []
    decided = decided_payload(approval["blocks"], Reply("Done."), decided_by="U1", approved=True)
    assert blocks.problems(decided) == []
    for reply in (
        Reply(LONG * 10, share_id="abc"),
        Reply(LONG * 10, shared_by="U1"),
        Reply("short"),
    ):
        for payload in reply_payloads(reply):
            assert blocks.problems(payload) == []


def test_the_slack_validator_catches_what_slack_refuses() -> None:
    assert blocks.problems({"text": "x", "blocks": [blocks.header("ok")] * 51})
    too_many = {"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}] * 11}
    assert blocks.problems({"text": "x", "blocks": [too_many]})
    long_header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    assert blocks.problems({"text": "x", "blocks": [long_header]})
    long_text = {"type": "section", "text": {"type": "mrkdwn", "text": "t" * 3001}}
    assert blocks.problems({"text": "x", "blocks": [long_text]})
    assert blocks.problems({"text": "x", "blocks": [{"type": "video"}]})


def test_discord_thirty_accounts_fit_every_limit_and_lose_nothing() -> None:
    layout = metrics_layout(workspace_report(30), "7d", directory())
    messages = embeds.messages(layout, shared_by="42")
    assert len(messages) >= 3  # 30 embeds, 10 to a message
    for message in messages:
        assert embeds.problems(message) == []
    all_embeds = [e for m in messages for e in m.embeds]
    titles = {e.get("title", "") for e in all_embeds}
    assert all(any(ref in t for t in titles) for ref, _ in workspace_report(30).accounts)
    # Every part of an embed we emit was checked above.
    keys = set().union(*(e.keys() for e in all_embeds))
    assert {"title", "description", "fields", "color", "thumbnail", "footer", "timestamp"} <= keys
    colours = {e["color"] for e in all_embeds}
    caps = directory()
    assert colours == {caps.capabilities(p).colour for p in PLATFORMS}
    assert messages[0].content.startswith("Shared by <@42>")
    assert all(m.embeds[-1]["footer"]["text"].startswith("as of") for m in messages)


def test_discord_past_the_cap_says_how_much_was_left_out() -> None:
    layout = metrics_layout(workspace_report(150), "7d", directory())
    messages = embeds.messages(layout)
    assert len(messages) == embeds.MAX_MESSAGES
    assert all(embeds.problems(m) == [] for m in messages)
    assert "more sections not shown" in messages[-1].content


def test_discord_long_text_continues_in_more_embeds() -> None:
    layout = caption_layout()
    messages = embeds.messages(layout)
    for message in messages:
        assert embeds.problems(message) == []
    description = "".join(e.get("description", "") for m in messages for e in m.embeds)
    assert description.count("Ünïcødé") == 8 * 40  # nothing of the body lost
    assert "\\*stars\\*" in description  # data cannot become markdown


def test_discord_many_fields_split_across_embeds() -> None:
    section = Section("Lots", tuple(Field(f"f{i}", "v" * 150) for i in range(60)))
    messages = embeds.messages(Layout("Many", (section,)))
    assert all(embeds.problems(m) == [] for m in messages)
    assert sum(len(m.embeds) for m in messages) >= 3  # 25 fields at most to an embed
    fields = [f for m in messages for e in m.embeds for f in e.get("fields", [])]
    assert [f["name"] for f in fields] == [f"f{i}" for i in range(60)]


def test_the_discord_validator_catches_what_discord_refuses() -> None:
    big = {"title": "t", "fields": [{"name": "n", "value": "v"}] * 26}
    assert embeds.problems(embeds.EmbedMessage("x", [big]))
    assert embeds.problems(embeds.EmbedMessage("x", [{"title": "t"}] * 11))
    heavy = {"title": "t", "description": "d" * 4000}
    assert embeds.problems(embeds.EmbedMessage("x", [heavy, heavy]))  # 8,000 > 6,000
    assert embeds.problems(embeds.EmbedMessage("x" * 2001, []))
    assert embeds.problems(embeds.EmbedMessage("x", [{"title": "t" * 257}]))


def test_entries_without_links_or_pictures_render_plainly() -> None:
    layout = Layout("T", (Section("S", entries=(Entry("no link"),)),))
    [payload] = blocks.messages(layout)
    assert blocks.problems(payload) == []
    assert all("accessory" not in b for b in payload["blocks"])
    [message] = embeds.messages(layout)
    assert "thumbnail" not in message.embeds[0] and "no link" in message.embeds[0]["description"]


def test_a_layout_outside_the_limits_falls_back_to_its_text(monkeypatch) -> None:
    """Were a renderer ever to break a limit, the answer still goes, as plain text."""
    layout = metrics_layout(workspace_report(1), "7d", directory())
    broken = [{"text": "x", "blocks": [blocks.header("ok")] * 51}]
    monkeypatch.setattr(blocks, "messages", lambda *a, **k: broken)
    payloads = reply_payloads(Reply(layout.plain_text(), layout=layout, share_id="abc"))
    assert all(blocks.problems(p) == [] for p in payloads)
    assert "Views 1,000" in "".join(p["text"] for p in payloads)
    assert payloads[-1]["blocks"][-1]["type"] == "actions"  # still shareable

    from bot.discord import sink

    monkeypatch.setattr(
        embeds, "messages", lambda *a, **k: [embeds.EmbedMessage("x", [{"title": "t" * 300}])]
    )
    parts = sink.outgoing(Reply(layout.plain_text(), layout=layout))
    assert all(shown == [] and rows == [] for _, shown, rows in parts)
    assert "Views 1,000" in "".join(content for content, _, _ in parts)
