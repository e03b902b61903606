"""OpenTelemetry tracing: one trace per chat message, API request and background job.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set
and OTEL_SDK_DISABLED is not: then `configure` installs a tracer provider exporting
over OTLP (OTEL_EXPORTER_OTLP_PROTOCOL `http/protobuf`, the default, or `grpc`) and
the instrumentation libraries for FastAPI (each API and Slack request), httpx (each
platform and model HTTP call: a platform's carries its name and endpoint template),
asyncpg (each query) and Redis (each command; both through the lean hooks of
`bot.trace_stores`). Our own
spans cover the conversation core (`chat.message`), each command, each model call
(model name and token counts) and each tool call (`agent.observe`). Jobs start a
trace of their own with a span link to the request that queued them (its trace
context rides in the job's payload).

Off, nothing here imports OpenTelemetry: a message costs one `if`, and log lines
carry no ids. The standard variables the SDK reads itself keep their meaning
(OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and _ARG,
OTEL_EXPORTER_OTLP_TIMEOUT / _COMPRESSION / _CERTIFICATE).

What spans never hold: prompt or message text, tool arguments or results, query
parameters, or the query string of any URL (OAuth codes, state, access tokens ride
there); the hooks below cut the query off every URL attribute.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Coroutine, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import Counter

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span, Tracer
    from starlette.types import ASGIApp

    from bot.core.messages import IncomingMessage, ReplySink
    from bot.settings import Settings

MESSAGES = Counter(
    "socialops_messages",
    "Chat messages handled, by front-end and outcome (ok, error).",
    ["frontend", "outcome"],
)

# URL attributes (old and stable HTTP semantic conventions) whose query string is cut.
_URL_KEYS = ("http.url", "url.full", "http.target")
_QUERY_KEYS = ("url.query",)
_UNTRACED_ROUTES = "/healthz,/readyz,/metrics"

S = TypeVar("S")


@dataclass(slots=True)
class Tracing:
    """The process's tracer provider and the instrumentation it installed."""

    provider: TracerProvider
    tracer: Tracer
    _instrumentors: tuple[Any, ...] = ()

    def shutdown(self) -> None:
        """Flush pending spans, remove the instrumentation, and turn our spans off."""
        global _active
        from agent import observe
        from integrations import metrics
        from storage import queue

        for instrumentor in self._instrumentors:
            instrumentor.uninstrument()
        observe.install_tracer(None)
        queue.set_trace_carrier(None)
        metrics.set_span_events(None)
        _active = None
        self.provider.shutdown()


_active: Tracing | None = None


def enabled(settings: Settings) -> bool:
    """Tracing is on when an OTLP endpoint is configured and the SDK not disabled."""
    endpoint = settings.otel_exporter_otlp_traces_endpoint or settings.otel_exporter_otlp_endpoint
    return endpoint is not None and not settings.otel_sdk_disabled


def configure(settings: Settings, *, role: str) -> Tracing | None:
    """Install tracing for this process when the settings ask for it (else None)."""
    if not enabled(settings):
        return None
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return install(
        BatchSpanProcessor(_exporter(settings)),
        service=settings.otel_service_name,
        role=role,
        sampler=_sampler(settings.otel_traces_sampler, settings.otel_traces_sampler_arg),
    )


def _sampler(name: str, arg: float) -> Sampler:
    """The standard OTEL_TRACES_SAMPLER names, read by Settings."""
    from opentelemetry.sdk.trace import sampling

    root: Sampler
    if name.endswith("traceidratio"):
        root = sampling.TraceIdRatioBased(arg)
    elif name.endswith("always_off"):
        root = sampling.ALWAYS_OFF
    else:
        root = sampling.ALWAYS_ON
    return sampling.ParentBased(root) if name.startswith("parentbased_") else root


def _exporter(settings: Settings) -> SpanExporter:
    headers = None
    if settings.otel_exporter_otlp_headers is not None:
        from opentelemetry.util.re import parse_env_headers

        headers = dict(
            parse_env_headers(settings.otel_exporter_otlp_headers.get_secret_value(), liberal=True)
        )
    traces = settings.otel_exporter_otlp_traces_endpoint
    base = settings.otel_exporter_otlp_endpoint or ""
    if settings.otel_exporter_otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=traces or base, headers=headers)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    # The specification's rule: the general endpoint gets the signal's path appended.
    return HttpExporter(endpoint=traces or base.rstrip("/") + "/v1/traces", headers=headers)


def install(
    processor: SpanProcessor,
    *,
    service: str = "socialops",
    role: str = "",
    sampler: Sampler | None = None,
) -> Tracing:
    """Set the global tracer provider with `processor` and instrument the libraries.

    `sampler` (default: every trace) decides for the roots we start; a client span
    with no parent (the job engine's polls and heartbeats, a pool's pings) starts no
    trace at all (`_WithinWork`). The global provider can be set once per process; `Tracing.shutdown` removes the
    instrumentation and our spans, and a later `install` (tests, the bench) builds a
    new provider that our spans and the instrumentation use.
    """
    global _active
    from opentelemetry import trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from agent import observe
    from bot.trace_stores import LeanAsyncPGInstrumentor, LeanRedisInstrumentor
    from integrations import metrics
    from storage import queue

    if _active is not None:
        _active.shutdown()
    resource = Resource.create({"service.name": service, "socialops.role": role})
    provider = TracerProvider(resource=resource, sampler=_within_work(sampler))
    provider.add_span_processor(processor)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # Only the first provider becomes the global one (libraries' own spans); ours
        # and the instrumentation's always use this one.
        trace.set_tracer_provider(provider)
    instrumentors = (
        LeanAsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
        LeanRedisInstrumentor(),
        HTTPXClientInstrumentor(),
    )
    instrumentors[0].instrument(tracer_provider=provider)
    instrumentors[1].instrument(tracer_provider=provider)
    instrumentors[2].instrument(tracer_provider=provider, async_request_hook=_redact_client_span)
    tracer = provider.get_tracer("socialops")
    observe.install_tracer(tracer)
    queue.set_trace_carrier(_carrier)
    metrics.set_span_events(_span_event)
    _active = Tracing(
        provider=provider,
        tracer=tracer,
        _instrumentors=instrumentors,
    )
    return _active


def instrument_app(app: FastAPI) -> None:
    """Trace each request of `app` (health, readiness and metrics excepted) when on."""
    tracing = _active
    if tracing is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracing.provider,
        server_request_hook=_redact_server_span,
        excluded_urls=_UNTRACED_ROUTES,
        exclude_spans=["receive", "send"],
    )


def instrument_endpoint(path: str, endpoint: ASGIApp) -> ASGIApp:
    """`endpoint` (pure ASGI, served at exactly `path` ahead of the app: `bot.web.ExactPaths`)
    traced like the app's routes when on: the same middleware, span name and hook."""
    tracing = _active
    if tracing is None:
        return endpoint
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def details(scope: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        return f"{scope.get('method', 'HTTP')} {path}", {"http.route": path}

    return OpenTelemetryMiddleware(  # type: ignore[no-any-return]
        endpoint,
        default_span_details=details,
        server_request_hook=_redact_server_span,
        tracer_provider=tracing.provider,
        exclude_spans=["receive", "send"],
    )


def _within_work(inner: Sampler | None) -> Sampler:
    """Wrap `inner` so that a client span (an HTTP call) never starts a trace.

    (Queries and Redis commands outside a trace, and the pool's resets, make no span
    at all: see `bot.trace_stores`.)"""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import sampling

    chosen = inner if inner is not None else sampling.ParentBased(sampling.ALWAYS_ON)

    class WithinWork(sampling.Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> sampling.SamplingResult:
            if (
                kind == trace.SpanKind.CLIENT
                and not trace.get_current_span(parent_context).get_span_context().is_valid
            ):
                return sampling.SamplingResult(sampling.Decision.DROP)
            return chosen.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"WithinWork{{{chosen.get_description()}}}"

    return WithinWork()


# -- the conversation core ----------------------------------------------------------------


def traced_message(
    func: Callable[[S, IncomingMessage, ReplySink], Coroutine[Any, Any, None]],
) -> Callable[[S, IncomingMessage, ReplySink], Coroutine[Any, Any, None]]:
    """Wrap the conversation core's handler: the `chat.message` span and the counter.

    A span names the front-end and whether the message was a command; never its text.
    """

    @functools.wraps(func)
    async def handle(self: S, message: IncomingMessage, sink: ReplySink) -> None:
        outcome = "error"
        try:
            tracing = _active
            if tracing is None:
                await func(self, message, sink)
            else:
                with tracing.tracer.start_as_current_span(
                    "chat.message",
                    attributes={
                        "socialops.frontend": message.frontend,
                        "socialops.is_command": message.is_command,
                    },
                ):
                    await func(self, message, sink)
            outcome = "ok"
        finally:
            MESSAGES.labels(message.frontend, outcome).inc()

    return handle


# -- jobs ----------------------------------------------------------------------------------


def _span_event(name: str, attributes: Mapping[str, str | int]) -> None:
    from opentelemetry import trace

    trace.get_current_span().add_event(name, attributes)


def _carrier() -> dict[str, str]:
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def job_span(kind: str, payload: MutableMapping[str, Any]) -> Iterator[None]:
    """Run a job in a trace of its own, linked to the request that queued it.

    The trace context is taken out of `payload` whether tracing is on or not, so a
    handler never sees it (a job queued by a traced process may run on one that is not).
    """
    from storage.queue import take_trace_carrier

    carried = take_trace_carrier(payload)
    tracing = _active
    if tracing is None:
        yield
        return
    from opentelemetry import propagate, trace

    links = []
    if carried:
        origin = trace.get_current_span(propagate.extract(carried)).get_span_context()
        if origin.is_valid:
            links.append(trace.Link(origin))
    with tracing.tracer.start_as_current_span(
        f"job {kind}",
        context=trace.set_span_in_context(trace.INVALID_SPAN),  # a new trace, not a child
        links=links,
        kind=trace.SpanKind.CONSUMER,
        attributes={"socialops.job.kind": kind},
    ):
        yield


# -- logs ----------------------------------------------------------------------------------


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids (hex), for log lines; None when not in a span."""
    if _active is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


# -- redaction hooks -----------------------------------------------------------------------


def _cut_query(value: object) -> str:
    text = str(value)
    return text.split("?", 1)[0]


def _redact(span: Span) -> None:
    from opentelemetry.sdk.trace import Span as SdkSpan

    if not isinstance(span, SdkSpan) or not span.is_recording():
        return
    recorded = span.attributes or {}
    for key in _URL_KEYS:
        if key in recorded:
            span.set_attribute(key, _cut_query(recorded[key]))
    for key in _QUERY_KEYS:
        if key in recorded:
            span.set_attribute(key, "[redacted]")


async def _redact_client_span(span: Span, request: Any) -> None:
    """Cut the query string; on a platform call, add the platform and the endpoint's
    template the platform client put on the request (`integrations.http`)."""
    from integrations.http import SPAN_ATTRIBUTES

    _redact(span)
    extensions = request.extensions
    described = extensions.get(SPAN_ATTRIBUTES) if extensions else None
    if described and span.is_recording():
        span.set_attributes(described)
        span.update_name(f"{request.method.decode()} {described['url.template']}")


def _redact_server_span(span: Span, scope: dict[str, Any]) -> None:
    _redact(span)
