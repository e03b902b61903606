"""Outbound HTTP for platform integrations: timeouts, retries, circuit breakers, caps.

`make_client(platform=...)` returns an `httpx.AsyncClient` whose transport is a
`ResilientTransport`, so an integration written against a plain injected client
gets all of this without changing a line:

* **Timeouts**: connect / read / write / pool timeouts on every request, and
  `deadline(...)` / `fan_out(...)` for an overall limit per tool call.
* **Retries** (at most 4 attempts) only for idempotent requests (GET, HEAD, OPTIONS,
  PUT, DELETE, or any request sent with `extensions={"idempotent": True}`, e.g. a
  resumable upload's session start) whose body can be replayed, on connection errors,
  timeouts, 408, 429 and 5xx; jittered exponential backoff, honouring `Retry-After`.
  A 400 (or any other 4xx) is never retried.
* **A circuit breaker per platform**: after `failure_threshold` consecutive failures
  (no response, 408, 5xx) calls fail fast with `CircuitOpen` for `cooldown` seconds;
  then one probe is let through (half-open) and its outcome closes or reopens it.
* **A concurrency cap per platform** (a semaphore held until the response is closed),
  so one slow platform cannot take every connection and every worker with it.
* **Shared pacing** (optional `pace` callable): each attempt first asks the shared
  calls-per-second budget; short waits are slept, long ones raise `RateLimited`.

The transport raises `PlatformUnavailable` (no response at all) and `CircuitOpen`;
any response, including a final 429 or 5xx, is returned as is so the integration can
read the platform's own error reason. `error_for_response` maps a status to the
`integrations.errors` tree, and `PlatformHttp` does that for callers that want it.

Why hand-written: retry libraries (tenacity, stamina) retry on raised exceptions,
while here the decision depends on the response (status, `Retry-After`) and must
interleave with the breaker and the semaphore; `purgatory`'s breaker reads the wall
clock (`time.time`, which jumps), counts only raised exceptions, and lets every
concurrent caller through when half-open instead of a single probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import httpx

from integrations.errors import (
    CircuitOpen,
    IntegrationError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    PlatformUnavailable,
    RateLimited,
    TokenExpired,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_DISPLAY = {"youtube": "YouTube", "instagram": "Instagram", "tiktok": "TikTok", "x": "X"}


def display_name(platform: str) -> str:
    """The platform's name as people write it ("YouTube")."""
    return _DISPLAY.get(platform, platform.capitalize())


# --------------------------------------------------------------------------------------
# Retry policy
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry. A Retry-After above `max_retry_after` is not
    waited for: the response goes back to the caller (who tells the user when to retry)."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 10.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Exponential backoff with jitter (half to all of the step) before attempt `attempt + 1`."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + rng() / 2)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


# --------------------------------------------------------------------------------------
# Circuit breaker and concurrency cap
# --------------------------------------------------------------------------------------

BreakerState = Literal["closed", "open", "half_open"]

Pacer = Callable[[str], Awaitable[float]]
"""Shared call pacing: given a platform, seconds to wait before calling it (0 = go now).
The composition root wires it to the Redis limiter, so every replica shares the budget."""


class CircuitBreaker:
    """Consecutive-failure breaker for one platform, on a monotonic clock.

    closed -> open after `failure_threshold` consecutive failures; open -> half_open
    when `cooldown` has passed, admitting exactly one probe; the probe's success
    closes it, its failure reopens it for another cooldown.
    """

    def __init__(
        self,
        *,
        platform: str,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown >= 0")
        self.platform = platform
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    def before_call(self) -> bool:
        """Admit a call or raise CircuitOpen. Returns True if the call is the half-open probe."""
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        assert self._opened_at is not None
        wait = max(self.cooldown - (self._clock() - self._opened_at), 1.0)
        name = display_name(self.platform)
        raise CircuitOpen(
            f"{name} is not responding right now, so I've paused calls to it. "
            f"Try again in about {int(wait + 0.999)} s.",
            platform=self.platform,
            retry_after=wait,
        )

    def record_success(self, probe: bool = False) -> None:
        if probe:
            self._probe_in_flight = False
        if self._opened_at is not None:
            log.info("circuit closed", extra={"platform": self.platform})
        self._failures = 0
        self._opened_at = None

    def record_failure(self, probe: bool = False) -> None:
        if probe:
            self._probe_in_flight = False
        self._failures += 1
        if probe or (self._opened_at is None and self._failures >= self.failure_threshold):
            if self._opened_at is None:
                log.warning(
                    "circuit opened",
                    extra={"platform": self.platform, "failures": self._failures},
                )
            self._opened_at = self._clock()

    def record_abandoned(self, probe: bool = False) -> None:
        """The call ended without an outcome (cancelled, or not retryable locally)."""
        if probe:
            self._probe_in_flight = False


class PlatformGuard:
    """Everything shared by one platform's calls in this process: breaker and cap."""

    def __init__(
        self,
        *,
        platform: str,
        breaker: CircuitBreaker,
        max_concurrency: int,
        acquire_timeout: float,
    ) -> None:
        self.platform = platform
        self.breaker = breaker
        self.max_concurrency = max_concurrency
        self.acquire_timeout = acquire_timeout
        self._slots = asyncio.Semaphore(max_concurrency)

    @property
    def in_flight(self) -> int:
        return self.max_concurrency - self._slots._value

    async def acquire(self) -> Callable[[], None]:
        """Take a slot (or raise PlatformUnavailable); returns an idempotent release."""
        try:
            async with asyncio.timeout(self.acquire_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PlatformUnavailable(
                f"{display_name(self.platform)} is slow to respond right now; try again shortly.",
                platform=self.platform,
                reason="concurrency_cap",
            ) from None
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._slots.release()

        return release


class Guards:
    """One PlatformGuard per platform name, created on first use, shared by all clients."""

    def __init__(
        self,
        *,
        max_concurrency: int = 8,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        acquire_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        pace: Pacer | None = None,
        max_pace_wait: float = 5.0,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.acquire_timeout = acquire_timeout
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.pace = pace
        self.max_pace_wait = max_pace_wait
        self._guards: dict[str, PlatformGuard] = {}

    def __getitem__(self, platform: str) -> PlatformGuard:
        guard = self._guards.get(platform)
        if guard is None:
            breaker = CircuitBreaker(
                platform=platform,
                failure_threshold=self.failure_threshold,
                cooldown=self.cooldown,
                clock=self.clock,
            )
            guard = PlatformGuard(
                platform=platform,
                breaker=breaker,
                max_concurrency=self.max_concurrency,
                acquire_timeout=self.acquire_timeout,
            )
            self._guards[platform] = guard
        return guard

    def transport(self, platform: str, inner: httpx.AsyncBaseTransport) -> ResilientTransport:
        return ResilientTransport(
            inner,
            guard=self[platform],
            retry=self.retry,
            sleep=self.sleep,
            rng=self.rng,
            pace=self.pace,
            max_pace_wait=self.max_pace_wait,
        )


_default_guards: Guards | None = None


def default_guards() -> Guards:
    """The process-wide Guards used when none is injected (breaker state is per process)."""
    global _default_guards
    if _default_guards is None:
        _default_guards = Guards()
    return _default_guards


# --------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it gives the platform's concurrency slot back."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()


class ResilientTransport(httpx.AsyncBaseTransport):
    """Wraps any httpx transport with the platform's breaker, cap and retry policy."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        guard: PlatformGuard,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        pace: Pacer | None = None,
        max_pace_wait: float = 5.0,
    ) -> None:
        self._inner = inner
        self.guard = guard
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng
        self._pace = pace
        self._max_pace_wait = max_pace_wait

    async def _wait_for_pace(self) -> None:
        """Hold the call until the shared per-platform rate allows it, or refuse it."""
        if self._pace is None:
            return
        platform = self.guard.platform
        waited = 0.0
        while (wait := await self._pace(platform)) > 0:
            if waited + wait > self._max_pace_wait:
                raise RateLimited(
                    f"Too many {display_name(platform)} calls right now; "
                    f"try again in about {int(wait + 0.999)} s.",
                    platform=platform,
                    reason="local_rate_limit",
                    retry_after=wait,
                )
            await self._sleep(wait)
            waited += wait

    @staticmethod
    def retryable(request: httpx.Request) -> bool:
        """Safe to send again: idempotent (by method or by the caller's word) and replayable."""
        idempotent = request.extensions.get("idempotent")
        if idempotent is None:
            idempotent = request.method.upper() in IDEMPOTENT_METHODS
        # A streamed body (async iterator) cannot be sent twice; bytes/json/form can.
        return bool(idempotent) and isinstance(request.stream, httpx.ByteStream)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        guard, breaker, platform = self.guard, self.guard.breaker, self.guard.platform
        can_retry = self.retryable(request)
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.max_attempts or not can_retry
            await self._wait_for_pace()
            probe = breaker.before_call()
            try:
                release = await guard.acquire()
            except BaseException:
                breaker.record_abandoned(probe)
                raise
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as exc:
                release()
                breaker.record_failure(probe)
                log.info(
                    "request failed",
                    extra={"platform": platform, "attempt": attempt, "error": type(exc).__name__},
                )
                if last:
                    raise PlatformUnavailable(
                        f"{display_name(platform)} could not be reached; try again shortly.",
                        platform=platform,
                        reason=type(exc).__name__,
                    ) from exc
                await self._sleep(self.retry.backoff(attempt, self._rng))
                continue
            except BaseException:
                release()
                breaker.record_abandoned(probe)
                raise

            status = response.status_code
            if status == 408 or status >= 500:
                breaker.record_failure(probe)
            else:
                breaker.record_success(probe)  # the platform answered: it is up (even a 429)
            if status not in RETRY_STATUSES or last:
                response.stream = _ReleasingStream(_as_async_stream(response), release)
                return response
            wait = self.retry.backoff(attempt, self._rng)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:
                if retry_after > self.retry.max_retry_after:
                    # Too long to hold a chat reply: hand the 429/503 to the caller.
                    response.stream = _ReleasingStream(_as_async_stream(response), release)
                    return response
                wait = max(wait, retry_after)
            try:
                await response.aclose()
            finally:
                release()
            log.info(
                "retrying",
                extra={"platform": platform, "attempt": attempt, "status": status, "wait": wait},
            )
            await self._sleep(wait)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _as_async_stream(response: httpx.Response) -> httpx.AsyncByteStream:
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover - sync inner transport
        raise TypeError("ResilientTransport needs an async inner transport")
    return stream


def make_client(
    *,
    platform: str,
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    guards: Guards | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """An httpx client for one platform with timeouts, retries, breaker and cap.

    `transport` is the inner transport (tests pass one; production uses httpx's own,
    with a connection pool sized to the platform's concurrency cap). `guards` defaults
    to the process-wide registry, so every client of a platform shares one breaker.
    """
    guards = guards or default_guards()
    inner = transport or httpx.AsyncHTTPTransport(
        limits=httpx.Limits(
            max_connections=guards.max_concurrency,
            max_keepalive_connections=guards.max_concurrency,
        ),
        retries=0,  # retries are ours, with backoff and the breaker in the loop
    )
    return httpx.AsyncClient(
        base_url=base_url or "",
        transport=guards.transport(platform, inner),
        timeout=timeout,
        headers=dict(headers or {}),
        follow_redirects=False,
    )


# --------------------------------------------------------------------------------------
# Errors, deadlines, fan-out
# --------------------------------------------------------------------------------------


def error_for_response(response: httpx.Response, *, platform: str) -> IntegrationError | None:
    """The `integrations.errors` error a response stands for; None when it succeeded."""
    status = response.status_code
    if status < 400:
        return None
    name = display_name(platform)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        wait = f" in about {int(retry_after + 0.999)} s" if retry_after else " shortly"
        return RateLimited(
            f"{name} is rate limiting us; try again{wait}.",
            platform=platform,
            status=status,
            retry_after=retry_after,
        )
    if status == 408 or status >= 500:
        return PlatformUnavailable(
            f"{name} is having trouble right now; try again shortly.",
            platform=platform,
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status == 400:
        return InvalidRequest(
            f"{name} refused the request as invalid.", platform=platform, status=status
        )
    if status == 401:
        return TokenExpired(f"{name} refused the access token.", platform=platform, status=status)
    if status == 403:
        return PermissionDenied(
            f"{name} denied permission for this action.", platform=platform, status=status
        )
    if status == 404:
        return NotFound(f"{name} could not find that.", platform=platform, status=status)
    return IntegrationError(
        f"{name} refused the request (HTTP {status}).", platform=platform, status=status
    )


class PlatformHttp:
    """A thin request helper over a `make_client` client that raises mapped errors."""

    def __init__(self, *, client: httpx.AsyncClient, platform: str) -> None:
        self.client = client
        self.platform = platform

    async def request(
        self, method: str, url: str, *, idempotent: bool, **kwargs: Any
    ) -> httpx.Response:
        """Send; return a successful (< 400) response, else raise its IntegrationError."""
        extensions = dict(kwargs.pop("extensions", None) or {})
        extensions["idempotent"] = idempotent
        response = await self.client.request(method, url, extensions=extensions, **kwargs)
        error = error_for_response(response, platform=self.platform)
        if error is not None:
            raise error
        return response


@contextlib.asynccontextmanager
async def deadline(seconds: float, *, platform: str) -> AsyncIterator[None]:
    """Bound a whole platform operation (all its requests and retries) in time."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise PlatformUnavailable(
            f"{display_name(platform)} did not answer in time; try again shortly.",
            platform=platform,
            reason="deadline",
        ) from None


async def fan_out(
    calls: Mapping[str, Callable[[], Awaitable[T]]], *, seconds: float
) -> dict[str, T | IntegrationError]:
    """Run one call per platform concurrently, each within `seconds`.

    A platform that fails or does not answer in time yields its IntegrationError
    (e.g. "YouTube did not answer in time") while the others' results come back.
    Any other exception is a bug and propagates (the remaining calls are cancelled).
    """

    async def one(platform: str, call: Callable[[], Awaitable[T]]) -> T | IntegrationError:
        try:
            async with deadline(seconds, platform=platform):
                return await call()
        except IntegrationError as exc:
            return exc

    tasks = {p: asyncio.ensure_future(one(p, c)) for p, c in calls.items()}
    try:
        await asyncio.gather(*tasks.values())
    except BaseException:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        raise
    return {p: t.result() for p, t in tasks.items()}
