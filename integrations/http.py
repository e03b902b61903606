"""Outbound HTTP for platform integrations: timeouts, retries, circuit breakers, caps.

`make_client(platform=..., guards=...)` returns an `httpx.AsyncClient` whose transport
is a `ResilientTransport`, the one place where requests to a platform are retried,
counted by its breaker and capped. Integrations take such a client and never retry
on their own:

* **Timeouts**: connect / read / write / pool timeouts on every request.
* **Retries** (at most `RetryPolicy.max_attempts` requests per call) only for idempotent
  requests (GET, HEAD, OPTIONS, PUT, DELETE, or any request sent with
  `extensions={"idempotent": True}`, e.g. a resumable upload's session start) whose body
  can be replayed (bytes, JSON, a form, `BodyParts`), on connection errors, timeouts,
  408, 429 and 5xx; jittered exponential backoff, honouring `Retry-After`. A 400 (or
  any other 4xx) is never retried.
* **A circuit breaker per platform**, counting *calls* (a request and all its retries),
  not attempts: after `failure_threshold` consecutive failed calls (no response, 408,
  5xx) calls fail fast with `CircuitOpen` for `cooldown` seconds; then one probe call
  is let through (half-open) and its outcome closes or reopens it.
* **A concurrency cap per platform** (a semaphore held until the response is closed),
  so one slow platform cannot take every connection and every worker with it.

There is no deployment-wide pace here: each platform's real limits are its declared
quota counters (per project, per account), charged before the calls they cover.

Network failures never leave the transport as httpx exceptions: a call that got no
response raises `PlatformUnavailable` if the transport could retry it, and
`ConnectionLost` if it could not (a streamed body, a POST), since the platform may then
hold part or all of it; a body cut off mid-response raises the same. Any response,
including a final 429 or 5xx, is returned as is so the integration can read the
platform's own error reason and map it with `integrations.errors.ErrorMapper`.

Why hand-written: retry libraries (tenacity, stamina) retry on raised exceptions,
while here the decision depends on the response (status, `Retry-After`) and must
interleave with the breaker and the semaphore; `purgatory`'s breaker reads the wall
clock (`time.time`, which jumps), counts only raised exceptions, and lets every
concurrent caller through when half-open instead of a single probe.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import httpx

from integrations.errors import (
    CircuitOpen,
    ConnectionLost,
    PlatformUnavailable,
    format_wait,
)
from integrations.metrics import BREAKER_OPEN, PLATFORM_CALLS, PLATFORM_SECONDS, outcome_of

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


# Names for the transport's own messages (breaker, cap, network). The platform
# packages word their errors with their own display name.
def _failed(status: int) -> bool:
    """A status that means the platform is in trouble (it counts against the breaker)."""
    return status == 408 or status >= 500


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


class CircuitBreaker:
    """Consecutive-failure breaker for one platform, on a monotonic clock.

    It counts calls, not attempts: the transport reports each call (a request and all
    its retries) once. closed -> open after `failure_threshold` consecutive failed
    calls; open -> half_open when `cooldown` has passed, admitting exactly one probe
    call; the probe's success closes it, its failure reopens it for another cooldown.
    """

    def __init__(
        self,
        *,
        platform: str,
        display: str | None = None,
        failure_threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown >= 0")
        self.platform = platform
        self.display = display or platform
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def failures(self) -> int:
        """Consecutive failed calls (a call is a request and all its retries)."""
        return self._failures

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
        raise CircuitOpen(
            f"{self.display} is not responding right now, so I've paused calls "
            f"to it. Try again in about {format_wait(wait)}.",
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
        """The call ended without an outcome (cancelled, or refused by the cap)."""
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
        self.display = breaker.display
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
                f"{self.display} is slow to respond right now; try again shortly.",
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
    ) -> None:
        self.max_concurrency = max_concurrency
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.acquire_timeout = acquire_timeout
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self._guards: dict[str, PlatformGuard] = {}

    def guard(self, platform: str, display: str | None = None) -> PlatformGuard:
        """The platform's guard, created on first use (`display` names it in messages)."""
        guard = self._guards.get(platform)
        if guard is None:
            breaker = CircuitBreaker(
                platform=platform,
                display=display,
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

    def transport(
        self, platform: str, inner: httpx.AsyncBaseTransport, *, display: str | None = None
    ) -> ResilientTransport:
        return ResilientTransport(
            inner,
            guard=self.guard(platform, display),
            retry=self.retry,
            sleep=self.sleep,
            rng=self.rng,
        )


# --------------------------------------------------------------------------------------
# What a trace's HTTP span says about the call
# --------------------------------------------------------------------------------------

# The request extension holding the span attributes of a platform call; the process's
# tracing (when on) copies them onto the HTTP client span, and nothing else reads it.
SPAN_ATTRIBUTES = "socialops.span_attributes"
_VERSION = re.compile(r"v\d{1,2}(\.\d+)?")  # v3, v21.0
_LEADING_VERSION = re.compile(r"\d{1,2}")  # /2/tweets
_LONGEST_WORD = 32


def endpoint_template(path: str) -> str:
    """The request path with its ids replaced by `{id}` (a bounded name for the endpoint).

    A segment is an id when it holds a digit or is longer than any word of an API path
    (account, post and upload ids, opaque tokens); an API version (`v3`, `v21.0`, and
    a leading `2`) is kept.
    """
    segments = path.split("/")
    out = []
    for i, segment in enumerate(segments):
        version = _VERSION.fullmatch(segment) is not None or (
            i == 1 and _LEADING_VERSION.fullmatch(segment) is not None
        )
        if not version and (
            len(segment) > _LONGEST_WORD or any(char.isdigit() for char in segment)
        ):
            segment = "{id}"
        out.append(segment)
    return "/".join(out)


# --------------------------------------------------------------------------------------
# Transport
# --------------------------------------------------------------------------------------

NetworkError = Callable[[httpx.TransportError], PlatformUnavailable]


class BodyParts(httpx.ByteStream):
    """A request body given as consecutive parts, sent one after another, never joined:
    a chunk of media inside its framing (X's multipart appends), where joining would copy
    megabytes once more for every request (bench/x.py). Replayable, like bytes, so the
    transport may send it again (`ResilientTransport.retryable`). Its sender sets
    Content-Length to `size`."""

    def __init__(self, parts: Sequence[bytes]) -> None:
        super().__init__(b"")
        self._parts = tuple(parts)
        self.size = sum(len(part) for part in self._parts)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            yield part


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it gives the platform's concurrency slot back, and a
    connection cut while reading it is reported like one cut before the response."""

    def __init__(
        self,
        inner: httpx.AsyncByteStream,
        release: Callable[[], None],
        network_error: NetworkError,
    ) -> None:
        self._inner = inner
        self._release = release
        self._network_error = network_error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            raise self._network_error(exc) from exc

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
    ) -> None:
        self._inner = inner
        self.guard = guard
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng

    @staticmethod
    def retryable(request: httpx.Request) -> bool:
        """Safe to send again: idempotent (by method or by the caller's word) and replayable."""
        idempotent = request.extensions.get("idempotent")
        if idempotent is None:
            idempotent = request.method.upper() in IDEMPOTENT_METHODS
        # A streamed body (async iterator) cannot be sent twice; bytes/json/form/BodyParts can.
        return bool(idempotent) and isinstance(request.stream, httpx.ByteStream)

    def _network_error(self, can_retry: bool) -> NetworkError:
        """How a network failure on this request is reported (see the module docstring)."""
        platform = self.guard.platform

        def error(exc: httpx.TransportError) -> PlatformUnavailable:
            if can_retry:
                return PlatformUnavailable(
                    f"{self.guard.display} could not be reached; try again shortly.",
                    platform=platform,
                    reason=type(exc).__name__,
                )
            return ConnectionLost(
                f"The connection to {self.guard.display} dropped before it answered; "
                "try again shortly.",
                platform=platform,
                reason=type(exc).__name__,
            )

        return error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """One call: admitted once by the breaker, sent up to `max_attempts` times, and
        counted once (failed if its last attempt got no response, a 408 or a 5xx)."""
        breaker, platform = self.guard.breaker, self.guard.platform
        can_retry = self.retryable(request)
        # The platform as the Prometheus series name it, and the endpoint's template.
        request.extensions[SPAN_ATTRIBUTES] = {
            "socialops.platform": platform,
            "url.template": endpoint_template(request.url.path),
        }
        try:
            probe = breaker.before_call()
        except CircuitOpen:
            PLATFORM_CALLS.labels(platform, "circuit_open").inc()
            raise
        started = time.monotonic()
        try:
            outcome = await self._attempts(request, can_retry)
        except BaseException:
            # Cancelled, or refused by the cap: says nothing about the platform.
            breaker.record_abandoned(probe)
            PLATFORM_CALLS.labels(platform, "abandoned").inc()
            raise
        PLATFORM_SECONDS.labels(platform).observe(time.monotonic() - started)
        if isinstance(outcome, httpx.TransportError):
            breaker.record_failure(probe)
            PLATFORM_CALLS.labels(platform, "unreachable").inc()
            BREAKER_OPEN.labels(platform).set(breaker.state == "open")
            raise self._network_error(can_retry)(outcome) from outcome
        if _failed(outcome.status_code):
            breaker.record_failure(probe)
        else:
            breaker.record_success(probe)  # the platform answered: it is up (even a 429)
        PLATFORM_CALLS.labels(platform, outcome_of(outcome.status_code)).inc()
        BREAKER_OPEN.labels(platform).set(breaker.state == "open")
        return outcome

    async def _attempts(
        self, request: httpx.Request, can_retry: bool
    ) -> httpx.Response | httpx.TransportError:
        """Send until a final answer: the response to return, or the last network error."""
        guard, platform = self.guard, self.guard.platform
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.max_attempts or not can_retry
            release = await guard.acquire()
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as exc:
                release()
                log.info(
                    "request failed",
                    extra={"platform": platform, "attempt": attempt, "error": type(exc).__name__},
                )
                if last:
                    return exc
                await self._sleep(self.retry.backoff(attempt, self._rng))
                continue
            except BaseException:
                release()
                raise

            status = response.status_code
            keep = status not in RETRY_STATUSES or last
            wait = self.retry.backoff(attempt, self._rng)
            if not keep:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.retry.max_retry_after:
                    keep = True  # too long to hold a chat reply: the caller tells the person
                elif retry_after is not None:
                    wait = max(wait, retry_after)
            if keep:
                response.stream = _ReleasingStream(
                    _as_async_stream(response), release, self._network_error(can_retry)
                )
                return response
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
    guards: Guards,
    display: str | None = None,
    base_url: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
) -> httpx.AsyncClient:
    """An httpx client for one platform with timeouts, retries, breaker and cap.

    `guards` is the process's registry (every client of a platform shares one breaker
    and one cap); `display` is the platform's name in messages ("YouTube"). `transport` is the inner transport: production uses httpx's own, with
    a connection pool sized to the platform's concurrency cap; tests may pass an ASGI
    or fault-injecting one.
    """
    inner = transport or httpx.AsyncHTTPTransport(
        limits=httpx.Limits(
            max_connections=guards.max_concurrency,
            max_keepalive_connections=guards.max_concurrency,
        ),
        retries=0,  # retries are ours, with backoff and the breaker in the loop
    )
    return httpx.AsyncClient(
        base_url=base_url or "",
        transport=guards.transport(platform, inner, display=display),
        timeout=timeout,
        follow_redirects=False,
    )
