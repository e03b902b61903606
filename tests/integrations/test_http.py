"""Outbound resilience against fake platforms on loopback: retries, breakers, caps, pacing,
and the one status-to-error mapping every integration uses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from integrations.errors import (
    CircuitOpen,
    ConnectionLost,
    ErrorMapper,
    IntegrationError,
    InvalidRequest,
    NeedsRelink,
    NotFound,
    PermissionDenied,
    PlatformUnavailable,
    QuotaExceeded,
    RateLimited,
    ReasonRule,
    TokenExpired,
    error_for_status,
    format_wait,
)
from integrations.http import (
    SPAN_ATTRIBUTES,
    CircuitBreaker,
    Guards,
    RetryPolicy,
    endpoint_template,
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
    async with make_client(
        platform="youtube", display="YouTube", base_url=base, guards=Guards(retry=FAST)
    ) as client:
        response = await client.get("/limited")
    assert response.status_code == 200
    times = [t for _, path, t in server.hits if path == "limited"]
    assert len(times) == 2
    assert times[1] - times[0] >= 2.0


async def test_a_call_is_at_most_max_attempts_requests_and_one_breaker_failure(
    fake: tuple[FakePlatform, str],
) -> None:
    server, base = fake
    server.script["down"] = [(503, {})]
    guards = Guards(retry=FAST, failure_threshold=5)
    async with make_client(
        platform="youtube", display="YouTube", base_url=base, guards=guards
    ) as client:
        response = await client.get("/down")
        assert response.status_code == 503  # the final answer goes back for mapping
        assert server.count("down") == FAST.max_attempts == 4
        assert guards.guard("youtube").breaker.failures == 1  # one call, not four attempts
        await client.get("/down")
        assert server.count("down") == 8
        assert guards.guard("youtube").breaker.failures == 2
        assert guards.guard("youtube").breaker.state == "closed"
    assert guards.guard("youtube").in_flight == 0  # every slot given back


async def test_a_call_that_succeeds_after_retries_counts_as_a_success(
    fake: tuple[FakePlatform, str],
) -> None:
    server, base = fake
    server.script["flaky"] = [(503, {}), (502, {}), (200, {})]
    guards = Guards(retry=FAST, failure_threshold=2)
    async with make_client(
        platform="youtube", display="YouTube", base_url=base, guards=guards
    ) as client:
        guards.guard("youtube").breaker.record_failure()
        assert (await client.get("/flaky")).status_code == 200
    assert server.count("flaky") == 3
    assert guards.guard("youtube").breaker.failures == 0  # the call succeeded: the streak ends
    assert guards.guard("youtube").breaker.state == "closed"


async def test_a_400_is_never_retried(fake: tuple[FakePlatform, str]) -> None:
    server, base = fake
    server.script["bad"] = [(400, {})]
    server.script["gone"] = [(404, {})]
    guards = Guards(retry=FAST)
    async with make_client(
        platform="youtube", display="YouTube", base_url=base, guards=guards
    ) as client:
        assert (await client.put("/bad", content=b"x")).status_code == 400
        assert (await client.get("/gone")).status_code == 404
    assert server.count("bad") == 1
    assert server.count("gone") == 1
    assert guards.guard("youtube").breaker.failures == 0  # the platform answered: it is up


async def test_only_idempotent_replayable_requests_are_retried(
    fake: tuple[FakePlatform, str],
) -> None:
    server, base = fake
    server.script["post"] = [(503, {}), (503, {}), (200, {})]
    async with make_client(
        platform="youtube", display="YouTube", base_url=base, guards=Guards(retry=FAST)
    ) as client:
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
        platform="instagram", display="Instagram", base_url=base, guards=Guards(retry=FAST)
    ) as client:
        response = await client.get("/slow")
    assert response.status_code == 429
    assert server.count("slow") == 1
    error = error_for_status(
        "instagram",
        "Instagram",
        response.status_code,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )
    assert isinstance(error, RateLimited) and error.retry_after == 3600
    assert error.user_message == "Instagram is rate limiting us; try again in about 1 h."


async def test_connection_errors_are_retried_then_platform_unavailable() -> None:
    attempts = 0

    class Refusing(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal attempts
            attempts += 1
            raise httpx.ConnectError("connection refused", request=request)

    guards = Guards(retry=FAST)
    async with make_client(
        platform="youtube",
        display="YouTube",
        base_url="http://127.0.0.1:9",
        transport=Refusing(),
        guards=guards,
    ) as client:
        with pytest.raises(PlatformUnavailable) as info:
            await client.get("/anything?access_token=secret")
        assert type(info.value) is PlatformUnavailable and info.value.reason == "ConnectError"
        assert attempts == 4
        assert guards.guard("youtube").breaker.failures == 1

        # A request the transport may not send again fails once, as ConnectionLost: the
        # platform may hold part of it, and only the sender can reconcile.
        with pytest.raises(ConnectionLost):
            await client.post("/anything", json={"a": 1})
        assert attempts == 5

        async def body() -> AsyncIterator[bytes]:
            yield b"chunk"

        with pytest.raises(ConnectionLost):
            await client.put("/anything", content=body())
        assert attempts == 6
        assert guards.guard("youtube").breaker.failures == 3
    assert "secret" not in str(info.value) and "127.0.0.1" not in str(info.value)
    assert guards.guard("youtube").in_flight == 0


async def test_a_body_cut_mid_response_is_reported_like_a_cut_request() -> None:
    class Cut(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'{"items": ['
            raise httpx.ReadError("connection reset by peer")

    class HalfAnswering(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, stream=Cut(), request=request)

    guards = Guards(retry=FAST)
    async with make_client(
        platform="youtube",
        display="YouTube",
        base_url="http://yt.test",
        transport=HalfAnswering(),
        guards=guards,
    ) as client:
        with pytest.raises(PlatformUnavailable) as info:
            await client.get("/list")
        assert type(info.value) is PlatformUnavailable and info.value.reason == "ReadError"
        with pytest.raises(ConnectionLost):
            await client.post("/create", json={})
    assert guards.guard("youtube").in_flight == 0  # the slot came back with the failed body


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


def test_format_wait_rounds_up_to_words_people_use() -> None:
    assert format_wait(0) == "1 s"
    assert format_wait(2.1) == "3 s"
    assert format_wait(59.5) == "1 min"
    assert format_wait(61) == "2 min"
    assert format_wait(3600) == "1 h"
    assert format_wait(5 * 3600 + 600) == "5 h 10 min"
    assert format_wait(24 * 3600) == "24 h"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequest),
        (401, TokenExpired),
        (403, PermissionDenied),
        (404, NotFound),
        (410, NotFound),
        (408, PlatformUnavailable),
        (429, RateLimited),
        (500, PlatformUnavailable),
        (503, PlatformUnavailable),
        (418, IntegrationError),
    ],
)
def test_error_for_status(status: int, expected: type[IntegrationError]) -> None:
    error = error_for_status("youtube", "YouTube", status, reason="r", doing="reading the channel")
    assert type(error) is expected
    assert (error.platform, error.status, error.reason) == ("youtube", status, "r")
    assert error.user_message.startswith("YouTube ")
    assert "while reading the channel" in error.user_message
    if status in (400, 403):
        assert "(r)" in error.user_message  # the platform's reason code, for support
    if status == 418:
        assert "(HTTP 418, r)" in error.user_message


def test_error_for_status_words_the_wait() -> None:
    limited = error_for_status("x", "X", 429, retry_after=7)
    assert limited.retry_after == 7 and limited.user_message.endswith("try again in about 7 s.")
    assert error_for_status("x", "X", 503).user_message.endswith("try again shortly.")


def test_a_platform_reason_table_comes_before_the_status() -> None:
    mapper = ErrorMapper(
        platform="p",
        display="Pl",
        reasons={
            "quota": ReasonRule(QuotaExceeded, "{display} quota: back in {wait}.", default_wait=90),
            "7": ReasonRule(NeedsRelink, "{display} wants a new link."),
        },
    )
    quota = mapper(403, reason="quota")
    assert type(quota) is QuotaExceeded and quota.retry_after == 90
    assert quota.user_message == "Pl quota: back in 2 min."
    assert mapper(403, reason="quota", retry_after=5).user_message == "Pl quota: back in 5 s."
    relink = mapper(400, reason="graph_7_1", keys=["7/1", "*/1", "7"])
    assert type(relink) is NeedsRelink and relink.reason == "graph_7_1"
    assert type(mapper(403, reason="other")) is PermissionDenied  # not in the table: the status
    with pytest.raises(ValueError):
        ReasonRule(RateLimited, "wait {wait}")  # a message that names a wait needs one


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
    yt = make_client(platform="youtube", display="YouTube", base_url=base, guards=guards)
    ig = make_client(platform="instagram", display="Instagram", base_url=base, guards=guards)
    async with yt, ig:
        for _ in range(3):
            assert (await yt.get("/fail")).status_code == 500
        assert guards.guard("youtube").breaker.state == "open"
        with pytest.raises(CircuitOpen) as info:
            await yt.get("/fail")
        assert server.count("fail") == 3  # failed fast, never sent
        assert "YouTube" in info.value.user_message and info.value.retry_after == 30
        # Other platforms are unaffected.
        assert (await ig.get("/ok")).status_code == 200
        assert guards.guard("instagram").breaker.state == "closed"

        clock.now += 30
        assert guards.guard("youtube").breaker.state == "half_open"
        assert (await yt.get("/fail")).status_code == 500  # the probe fails: open again
        assert guards.guard("youtube").breaker.state == "open"
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
        assert guards.guard("youtube").breaker.state == "closed"
        assert (await yt.get("/ok")).status_code == 200
        # Closed again: it takes the full threshold of failures to reopen.
        assert (await yt.get("/fail")).status_code == 500
        assert guards.guard("youtube").breaker.state == "closed"


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


# --- concurrency cap -------------------------------------------------------------------


async def test_a_hanging_platform_takes_only_its_own_slots(
    fake: tuple[FakePlatform, str], other_fake: tuple[FakePlatform, str]
) -> None:
    yt_server, yt_base = fake
    ig_server, ig_base = other_fake
    guards = Guards(max_concurrency=2, acquire_timeout=0.3, retry=FAST)
    yt = make_client(platform="youtube", display="YouTube", base_url=yt_base, guards=guards)
    ig = make_client(platform="instagram", display="Instagram", base_url=ig_base, guards=guards)
    async with yt, ig:
        # Two slow YouTube calls take every YouTube slot...
        stuck = [asyncio.create_task(yt.get("/hang")) for _ in range(2)]
        while yt_server.count("hang") < 2:
            await asyncio.sleep(0.01)
        # ...but Instagram still answers, and a third YouTube call ends in a clear error.
        assert (await ig.get("/ok")).json() == {"ok": True}
        assert ig_server.count("ok") == 1
        with pytest.raises(PlatformUnavailable) as info:
            await yt.get("/hang")
        assert info.value.reason == "concurrency_cap" and "YouTube" in info.value.user_message
        assert yt_server.count("hang") == 2  # the cap held: the third call never went out
        assert guards.guard("youtube").breaker.failures == 0  # our cap says nothing of YouTube
        assert guards.guard("instagram").in_flight == 0

        # A cancelled call gives its slot back.
        late = asyncio.create_task(yt.get("/hang"))
        await asyncio.sleep(0.05)
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late

        yt_server.release.set()
        assert all(r.status_code == 200 for r in await asyncio.gather(*stuck))
        assert guards.guard("youtube").in_flight == 0


async def test_streamed_response_holds_its_slot_until_closed(
    fake: tuple[FakePlatform, str],
) -> None:
    _, base = fake
    guards = Guards(max_concurrency=1, acquire_timeout=0.2)
    async with make_client(
        platform="youtube", display="YouTube", base_url=base, guards=guards
    ) as client:
        async with client.stream("GET", "/ok") as response:
            assert guards.guard("youtube").in_flight == 1
            with pytest.raises(PlatformUnavailable):
                await client.get("/ok")
            await response.aread()
        assert guards.guard("youtube").in_flight == 0
        assert (await client.get("/ok")).status_code == 200


# --- what a trace's span says about a call -----------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/youtube/v3/videos", "/youtube/v3/videos"),
        ("/v21.0/17841400000000000/media_publish", "/v21.0/{id}/media_publish"),
        ("/2/tweets/1460323737035677698", "/2/tweets/{id}"),
        ("/2/media/upload/1880028106020515840/finalize", "/2/media/upload/{id}/finalize"),
        ("/17841400000/media", "/{id}/media"),
        ("/upload/" + "A" * 40 + "/", "/upload/{id}/"),
        ("/v2/post/publish/inbox/video/init/", "/v2/post/publish/inbox/video/init/"),
    ],
)
def test_an_endpoint_template_keeps_the_words_and_the_version_not_the_ids(
    path: str, template: str
) -> None:
    assert endpoint_template(path) == template


async def test_a_platform_request_carries_its_span_attributes(
    fake: tuple[FakePlatform, str],
) -> None:
    _, base = fake
    seen: list[dict[str, str]] = []

    class Recording(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.extensions[SPAN_ATTRIBUTES])
            return await super().handle_async_request(request)

    guards = Guards(retry=FAST)
    async with make_client(
        platform="tube", guards=guards, base_url=base, transport=Recording()
    ) as client:
        assert (await client.get("/ok", params={"id": "123"})).status_code == 200
    assert seen == [{"socialops.platform": "tube", "url.template": "/ok"}]
