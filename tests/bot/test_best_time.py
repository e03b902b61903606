"""`best time`: slots from stored first-day views only; the agent relays them unchanged.

The scripted model answers with exactly the tool's text, so what the person reads is
what the tool computed; the expected figures are computed here from the inserted rows.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.actions import best_time, schedule
from agent.context import ActionContext
from agent.runner import AgentRunner, RunnerConfig, build_model
from bot.core.messages import IncomingMessage
from bot.core.service import ChatOpsService
from storage import metrics
from tests.fakes import openai as fake
from tests.fakes.chatops import FakeOps, RecordingSink
from tests.fakes.server import serve_asgi

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def llm() -> AsyncIterator[tuple[fake.ScriptedOpenAI, str]]:
    server = fake.ScriptedOpenAI()
    async with serve_asgi(server.app) as base:
        yield server, base + "/v1"


async def _history(pool: Any, account_id: int, posts: list[tuple[datetime, float]]) -> None:
    """Each post: a snapshot 2 h in (lower), one at 23 h (its first-day figure), and one
    at 3 days (higher, outside the first day: must not count)."""
    for n, (published, views) in enumerate(posts):
        for after, value in ((2, views / 3), (23, views), (72, views * 10)):
            await metrics.record(
                pool,
                account_id=account_id,
                platform_post_id=f"vid{n}",
                captured_at=published + timedelta(hours=after),
                metrics={
                    "views": {"value": value, "source": "views"},
                    "published_at": published.isoformat(),
                },
            )


def _local(days_ago: int, hour: int) -> datetime:
    day = datetime.now(UTC).astimezone(PARIS).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, 15, tzinfo=PARIS).astimezone(UTC)


async def test_not_enough_history_says_so(make_deps, new_identity, link, pool) -> None:
    ident = await new_identity()
    acct = await link(ident, "youtube", "chan")
    ctx = ActionContext(identity=ident, deps=make_deps(ops=FakeOps()))
    await schedule.set_timezone(ctx, "Europe/Paris")
    await _history(pool, acct.id, [(_local(7 * i + 1, 18), 100.0) for i in range(4)])
    text = (await best_time.suggest(ctx, platform="youtube")).text
    assert text.startswith("Not enough history for YouTube @chan: 4 recent post(s)")
    assert re.findall(r"\d+", text) == ["4", str(best_time.MIN_POSTS)]


async def test_agent_relays_slots_computed_from_stored_snapshots(
    llm, make_deps, new_identity, link, pool
) -> None:
    server, base = llm
    ident = await new_identity()
    acct = await link(ident, "youtube", "chan")
    deps = make_deps(ops=FakeOps())
    await schedule.set_timezone(ActionContext(identity=ident, deps=deps), "Europe/Paris")
    # Three weeks of posts at three local hours; 18:xx did best, then 12:xx, then 08:xx.
    posts = [(_local(7 * w + 2, 18), 900.0 + 30 * w) for w in range(3)]
    posts += [(_local(7 * w + 3, 12), 500.0) for w in range(2)]
    posts += [(_local(7 * w + 4, 8), 100.0 + 50 * w) for w in range(2)]
    posts += [(_local(7 * w + 5, 22), 10.0) for w in range(1)]
    await _history(pool, acct.id, posts)
    config = RunnerConfig(model="openai:fake-model", base_url=base, api_key="sk-test")
    service = ChatOpsService(
        deps=deps, runner=AgentRunner(model=build_model(config), config=config)
    )
    server.script(
        fake.tool_call("best_time_to_post", {"platform": "youtube"}),
        lambda body: fake.text(body["messages"][-1]["content"]),
    )
    sink = RecordingSink()
    await service.handle(
        IncomingMessage(
            frontend="slack",
            workspace_id=ident.workspace_external_id,
            channel_id="C1",
            user_id=ident.user_external_id,
            text="when should I post my next video?",
        ),
        sink,
    )
    [answer] = sink.sent
    assert "from the first-day views of its last 8 posts" in answer
    lines = answer.splitlines()[1:]
    assert len(lines) == 3
    slots = {}
    for line in lines:
        hour, mean, count = re.search(
            r"(\d\d):00 averaged ([\d,]+) views in their first day \((\d+) posts?\)", line
        ).groups()  # type: ignore[union-attr]
        slots[int(hour)] = (int(mean.replace(",", "")), int(count))
    weekday_of = {h: posts[i][0].astimezone(PARIS) for i, h in ((0, 18), (3, 12), (5, 8))}
    assert slots == {18: (930, 3), 12: (500, 2), 8: (125, 2)}  # the 22:00 slot is fourth
    for hour, local in weekday_of.items():
        assert f"{local:%A} {hour:02d}:00" in answer
    # Each suggestion is the slot's next start, in the future, in the person's zone.
    starts = re.findall(r"^\d\. (\w{3} \d\d \w{3} \d{4} \d\d:\d\d) Europe/Paris", answer, re.M)
    parsed = [datetime.strptime(s, "%a %d %b %Y %H:%M").replace(tzinfo=PARIS) for s in starts]
    assert parsed == sorted(parsed) and all(p > datetime.now(UTC) for p in parsed)
