"""What every platform call does, counted for Prometheus (labels: platform and outcome
only; never a user, a workspace or a post, so the series stay few)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import Counter, Gauge, Histogram

PLATFORM_CALLS = Counter(
    "socialops_platform_calls",
    "Platform API calls (a request and its retries), by outcome.",
    ["platform", "outcome"],
)
PLATFORM_SECONDS = Histogram(
    "socialops_platform_call_seconds",
    "Time of one platform API call, retries and their waits included.",
    ["platform"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
BREAKER_OPEN = Gauge(
    "socialops_breaker_open",
    "1 while a platform's circuit breaker refuses calls, else 0.",
    ["platform"],
)


def outcome_of(status: int) -> str:
    """ok (2xx/3xx), refused (4xx but 408), limited (429), error (408, 5xx)."""
    if status == 429:
        return "limited"
    if status == 408 or status >= 500:
        return "error"
    return "refused" if status >= 400 else "ok"


UPLOAD_INTERRUPTIONS = Counter(
    "socialops_upload_interruptions",
    "Uploads interrupted within a call (a cut or unkept chunk), by platform and what "
    "followed: resumed (from the platform's offset, in the same call) or gave_up (the "
    "call fails; a later job resumes from the saved session).",
    ["platform", "outcome"],
)


SpanEvent = Callable[[str, Mapping[str, str | int]], None]
_span_event: SpanEvent | None = None


def set_span_events(add: SpanEvent | None) -> None:
    """Called by the process's tracing when it starts (None when it stops): how to note
    an event on the current span. Off, nothing here touches OpenTelemetry."""
    global _span_event
    _span_event = add


def upload_interrupted(platform: str, outcome: str, *, attempt: int, reason: str) -> None:
    """Count an interruption, and note it on the current span when tracing is on.

    `reason` is an error code or type (bounded, never a message).
    """
    UPLOAD_INTERRUPTIONS.labels(platform, outcome).inc()
    add = _span_event
    if add is not None:
        add(
            "upload.interrupted",
            {
                "socialops.platform": platform,
                "socialops.outcome": outcome,
                "socialops.attempt": attempt,
                "error.type": reason,
            },
        )
