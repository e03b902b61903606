"""Outbound resilience against fake platforms on loopback: retries, breakers, caps, deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from integrations.errors import (
    CircuitOpen,
    InvalidRequest,
    NotFound,
    PlatformUnavailable,
    RateLimited,
)
from integrations.http import (
    CircuitBreaker,
    Guards,
    PlatformHttp,
    RetryPolicy,
    error_for_response,
    fan_out,
    make_client,
    parse_retry_after,
)
from tests.fakes.server import serve_asgi

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


class FakePlatform:
    """A platform API that answers from a script and records when each attempt arrived."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str, float]] = []  # (method, path, monotonic time)
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.release = asyncio.Event()
        self.app = FastAPI()

        @self.app.api_route("/{name}", methods=["GET", "POST", "PUT"])
        async def handle(name: str, request: Request) -> Response:
            self.hits.append((request.method, name, time.monotonic()))
            await request.body()
            if name == "hang":
                await self.release.wait()
            queue = self.script.get(name)
            if queue:
                status, headers = queue.pop(0) if len(queue) > 1 else queue[0]
                return Response(
                    status_code=status, headers=headers, content=b'{"error": "scripted"}'
                )
            return Response(content=b'{"ok": true}', media_type="application/json")

    def count(self, name: str) -> int:
        return sum(1 for _, path, _ in self.hits if path == name)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakePlatform, str]]:
    platform = FakePlatform()
    async with serve_asgi(platform.app) as base:
        yield platform, base
        platform.release.set()


@pytest.fixture
async def other_fake() -> AsyncIterator[tuple[FakePlatform, str]]:
    platform = FakePlatform()
    async with serve_asgi(platform.app) as base:
        yield platform, base
        platform.release.set()


# --- retries ---------------------------------------------------------------------------


async def test_429_retry_after_is_waited_for(fake: tuple[FakePlatform, str]) -> None:
    server, base = fake
    server.script["limited"] = [(429, {"Retry-After": "2"}), (200, {})]
    async with make_client(platform="youtube", base_url=base, guards=Guards(retry=FAST)) as client:
        response = await client.get("/limited")
    assert response.status_code == 200
    times = [t for _, path, t in server.hits if path == "limited"]
    assert len(times) == 2
    assert times[1] - times[0] >= 2.0


async def test_at_most_four_attempts_then_the_error_is_mapped(
    fake: tuple[FakePlatform, str],
) -> None:
    server, base = fake
    server.script["down"] = [(503, {})]
    guards = Guards(retry=FAST, failure_threshold=100)
    async with make_client(platform="youtube", base_url=base, guards=guards) as client:
        response = await client.get("/down")
        assert response.status_code == 503
        assert server.count("down") == 4
        with pytest.raises(PlatformUnavailable) as info:
            await PlatformHttp(client=client, platform="youtube").request(
                "GET", "/down", idempotent=True
            )
    assert server.count("down") == 8
    assert info.value.status == 503 and "YouTube" in info.value.user_message
    assert guards["youtube"].in_flight == 0  # every slot given back


async def test_a_400_is_never_retried(fake: tuple[FakePlatform, str]) -> None:
    server, base = fake
    server.script["bad"] = [(400, {})]
    server.script["gone"] = [(404, {})]
    async with make_client(platform="youtube", base_url=base, guards=Guards(retry=FAST)) as client:
        http = PlatformHttp(client=client, platform="youtube")
        with pytest.raises(InvalidRequest):
            await http.request("PUT", "/bad", idempotent=True, content=b"x")
        with pytest.raises(NotFound):
            await http.request("GET", "/gone", idempotent=True)
    assert server.count("bad") == 1
    assert server.count("gone") == 1


async def test_only_idempotent_replayable_requests_are_retried(
    fake: tuple[FakePlatform, str],
) -> None:
    server, base = fake
    server.script["post"] = [(503, {}), (503, {}), (200, {})]
    async with make_client(platform="youtube", base_url=base, guards=Guards(retry=FAST)) as client:
        assert (await client.post("/post", json={"a": 1})).status_code == 503
        assert server.count("post") == 1  # a plain POST is sent once
        marked = await client.post("/post", json={"a": 1}, extensions={"idempotent": True})
        assert marked.status_code == 200
        assert server.count("post") == 3

        server.script["stream"] = [(503, {}), (200, {})]

        async def body() -> AsyncIterator[bytes]:
            yield b"chunk"

        streamed = await client.put("/stream", content=body())
        assert streamed.status_code == 503  # a streamed body cannot be replayed
        assert server.count("stream") == 1


async def test_a_long_retry_after_goes_back_to_the_caller(fake: tuple[FakePlatform, str]) -> None:
    server, base = fake
    server.script["slow"] = [(429, {"Retry-After": "3600"})]
    async with make_client(
        platform="instagram", base_url=base, guards=Guards(retry=FAST)
    ) as client:
        with pytest.raises(RateLimited) as info:
            await PlatformHttp(client=client, platform="instagram").request(
                "GET", "/slow", idempotent=True
            )
    assert server.count("slow") == 1
    assert info.value.retry_after == 3600
    assert "Instagram" in info.value.user_message and "3600 s" in info.value.user_message


async def test_connection_errors_are_retried_then_platform_unavailable() -> None:
    attempts = 0

    class Refusing(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal attempts
            attempts += 1
            raise httpx.ConnectError("connection refused", request=request)

    guards = Guards(retry=FAST)
    async with make_client(
        platform="youtube", base_url="http://127.0.0.1:9", transport=Refusing(), guards=guards
    ) as client:
        with pytest.raises(PlatformUnavailable) as info:
            await client.get("/anything?access_token=secret")
    assert attempts == 4
    assert "secret" not in str(info.value) and "127.0.0.1" not in str(info.value)
    assert guards["youtube"].in_flight == 0


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30
    )
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [policy.backoff(n, rng=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
    ]
    assert policy.backoff(1, rng=lambda: 0.0) == 0.25  # jittered down to half at most


def test_error_mapping() -> None:
    req = httpx.Request("GET", "https://example.invalid/x")
    assert error_for_response(httpx.Response(200, request=req), platform="x") is None
    limited = error_for_response(
        httpx.Response(429, headers={"Retry-After": "7"}, request=req), platform="youtube"
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 7
    assert isinstance(
        error_for_response(httpx.Response(502, request=req), platform="x"), PlatformUnavailable
    )


# --- circuit breaker -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_fails_fast_half_opens_and_closes(
    fake: tuple[FakePlatform, str],
) -> None:
    server, base = fake
    server.script["fail"] = [(500, {})]
    clock = FakeClock()
    guards = Guards(
        failure_threshold=3, cooldown=30, clock=clock, retry=RetryPolicy(max_attempts=1)
    )
    yt = make_client(platform="youtube", base_url=base, guards=guards)
    ig = make_client(platform="instagram", base_url=base, guards=guards)
    async with yt, ig:
        for _ in range(3):
            assert (await yt.get("/fail")).status_code == 500
        assert guards["youtube"].breaker.state == "open"
        with pytest.raises(CircuitOpen) as info:
            await yt.get("/fail")
        assert server.count("fail") == 3  # failed fast, never sent
        assert "YouTube" in info.value.user_message and info.value.retry_after == 30
        # Other platforms are unaffected.
        assert (await ig.get("/ok")).status_code == 200
        assert guards["instagram"].breaker.state == "closed"

        clock.now += 30
        assert guards["youtube"].breaker.state == "half_open"
        assert (await yt.get("/fail")).status_code == 500  # the probe fails: open again
        assert guards["youtube"].breaker.state == "open"
        with pytest.raises(CircuitOpen):
            await yt.get("/ok")

        clock.now += 30
        # Half-open admits exactly one probe: hold it on a hanging endpoint.
        probe = asyncio.create_task(yt.get("/hang"))
        while server.count("hang") == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(CircuitOpen):
            await yt.get("/ok")
        server.release.set()
        assert (await probe).status_code == 200
        assert guards["youtube"].breaker.state == "closed"
        assert (await yt.get("/ok")).status_code == 200
        # Closed again: it takes the full threshold of failures to reopen.
        assert (await yt.get("/fail")).status_code == 500
        assert guards["youtube"].breaker.state == "closed"


def test_breaker_rejects_bad_settings_and_counts_consecutive_failures() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(platform="x", failure_threshold=0)
    clock = FakeClock()
    breaker = CircuitBreaker(platform="x", failure_threshold=2, cooldown=5, clock=clock)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"  # not consecutive
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 5
    assert breaker.before_call() is True  # the probe
    breaker.record_abandoned(True)  # a cancelled probe frees the slot for another
    assert breaker.before_call() is True


# --- concurrency cap and deadlines -----------------------------------------------------


async def test_fan_out_returns_the_healthy_platform_when_one_hangs(
    fake: tuple[FakePlatform, str], other_fake: tuple[FakePlatform, str]
) -> None:
    yt_server, yt_base = fake
    ig_server, ig_base = other_fake
    guards = Guards(max_concurrency=2, acquire_timeout=0.3, retry=FAST)
    yt = make_client(platform="youtube", base_url=yt_base, guards=guards)
    ig = make_client(platform="instagram", base_url=ig_base, guards=guards)
    async with yt, ig:
        # Two slow YouTube calls take every YouTube slot...
        stuck = [asyncio.create_task(yt.get("/hang")) for _ in range(2)]
        while yt_server.count("hang") < 2:
            await asyncio.sleep(0.01)

        async def instagram_metrics() -> dict[str, Any]:
            response = await ig.get("/ok")
            return dict(response.json())

        async def youtube_metrics() -> dict[str, Any]:
            response = await yt.get("/hang")
            return dict(response.json())

        results = await fan_out(
            {"youtube": youtube_metrics, "instagram": instagram_metrics}, seconds=2.0
        )
        # ...but Instagram still answers, and YouTube's slot wait ends in a clear error.
        assert results["instagram"] == {"ok": True}
        assert ig_server.count("ok") == 1
        youtube = results["youtube"]
        assert isinstance(youtube, PlatformUnavailable)
        assert "YouTube" in youtube.user_message
        assert yt_server.count("hang") == 2  # the cap held: the third call never went out
        assert guards["instagram"].in_flight == 0

        # Under the cap but hanging: the per-call deadline answers instead.
        roomy = Guards(max_concurrency=8, retry=FAST)
        async with make_client(platform="youtube", base_url=yt_base, guards=roomy) as yt2:

            async def hanging() -> int:
                return (await yt2.get("/hang")).status_code

            late = await fan_out({"youtube": hanging}, seconds=0.3)
        assert isinstance(late["youtube"], PlatformUnavailable)
        assert late["youtube"].reason == "deadline"
        assert roomy["youtube"].in_flight == 0  # a cancelled call gives its slot back

        yt_server.release.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*stuck))
        assert guards["youtube"].in_flight == 0


async def test_streamed_response_holds_its_slot_until_closed(
    fake: tuple[FakePlatform, str],
) -> None:
    _, base = fake
    guards = Guards(max_concurrency=1, acquire_timeout=0.2)
    async with make_client(platform="youtube", base_url=base, guards=guards) as client:
        async with client.stream("GET", "/ok") as response:
            assert guards["youtube"].in_flight == 1
            with pytest.raises(PlatformUnavailable):
                await client.get("/ok")
            await response.aread()
        assert guards["youtube"].in_flight == 0
        assert (await client.get("/ok")).status_code == 200


async def test_fan_out_lets_bugs_through() -> None:
    async def broken() -> int:
        raise KeyError("bug")

    async def fine() -> int:
        await asyncio.sleep(0)
        return 1

    with pytest.raises(KeyError):
        await fan_out({"youtube": broken, "instagram": fine}, seconds=1.0)


async def test_shared_pacing_delays_short_waits_and_refuses_long_ones(
    fake: tuple[FakePlatform, str],
) -> None:
    server, base = fake
    answers = {"youtube": [0.2, 0.0], "instagram": [30.0]}
    asked: list[str] = []
    slept: list[float] = []

    async def pace(platform: str) -> float:
        asked.append(platform)
        queue = answers[platform]
        return queue.pop(0) if queue else 0.0

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    guards = Guards(pace=pace, sleep=sleep, max_pace_wait=5.0)
    async with make_client(platform="youtube", base_url=base, guards=guards) as yt:
        assert (await yt.get("/ok")).status_code == 200
    assert asked == ["youtube", "youtube"] and slept == [0.2]
    async with make_client(platform="instagram", base_url=base, guards=guards) as ig:
        with pytest.raises(RateLimited) as info:
            await ig.get("/ok")
    assert info.value.retry_after == 30.0 and "Instagram" in info.value.user_message
    assert server.count("ok") == 1  # the refused call never went out
    assert guards["instagram"].in_flight == 0
