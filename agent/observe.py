"""What the agent does, counted for Prometheus and (when tracing is on) traced.

`AgentTelemetry` is a LangChain agent middleware: it wraps each model call and each
tool call, so no tool or action carries instrumentation of its own. A model call's
span holds the model's name and its token counts; a tool call's span holds the
tool's name and its outcome. Never the prompt, the arguments or the result: those
hold what people wrote and what platforms returned.

`counted_command` does the same for the deterministic command grammar.

Labels are bounded: model names come from configuration, tool and command names
from our own code; never a user, a workspace or a post.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from prometheus_client import Counter

from agent.actions.base import USER_ERRORS

if TYPE_CHECKING:
    from langchain.agents.middleware import AgentMiddleware
    from opentelemetry.trace import Tracer

TOOL_CALLS = Counter(
    "socialops_tool_calls",
    "Agent tool calls, by tool and outcome (ok, error).",
    ["tool", "outcome"],
)
COMMAND_CALLS = Counter(
    "socialops_command_calls",
    "Command grammar runs, by command and outcome (ok, refused, error).",
    ["command", "outcome"],
)
LLM_TOKENS = Counter(
    "socialops_llm_tokens",
    "Model tokens reported used, by model and direction (input, output).",
    ["model", "direction"],
)
LLM_CALLS = Counter(
    "socialops_llm_calls",
    "Model calls, by model and outcome (ok, error).",
    ["model", "outcome"],
)

UPLOAD_BYTES = Counter(
    "socialops_upload_bytes",
    "Bytes of videos uploaded and published, by platform.",
    ["platform"],
)
UPLOAD_RESUMES = Counter(
    "socialops_upload_resumes",
    "Uploads picked up again from the platform's offset (an earlier attempt's session).",
    ["platform"],
)
DIGEST_DELIVERIES = Counter(
    "socialops_digest_deliveries",
    "Digest delivery jobs, by outcome (posted, skipped: not this job's to post, failed).",
    ["outcome"],
)

P = ParamSpec("P")
R = TypeVar("R")


def agent_middleware(*, model: str) -> AgentMiddleware[Any, Any]:
    """The middleware for `create_agent` (`model`: the configured name, the label).

    Built here (LangChain imported on call) so that modules importing this one for
    `counted_command` stay free of LangChain.
    """
    from langchain.agents.middleware import AgentMiddleware, ModelResponse
    from langchain_core.messages import AIMessage, ToolMessage

    def usage(response: Any) -> tuple[int, int]:
        messages = response.result if isinstance(response, ModelResponse) else [response]
        sent = received = 0
        for message in messages:
            if isinstance(message, AIMessage) and message.usage_metadata:
                sent += int(message.usage_metadata.get("input_tokens", 0))
                received += int(message.usage_metadata.get("output_tokens", 0))
        return sent, received

    class AgentTelemetry(AgentMiddleware[Any, Any]):
        """Counts (and traces) each model call and each tool call."""

        async def awrap_model_call(self, request: Any, handler: Any) -> Any:
            with _span("llm.call", {"gen_ai.request.model": model}) as span:
                try:
                    response = await handler(request)
                except Exception:
                    LLM_CALLS.labels(model, "error").inc()
                    raise
                sent, received = usage(response)
                LLM_CALLS.labels(model, "ok").inc()
                LLM_TOKENS.labels(model, "input").inc(sent)
                LLM_TOKENS.labels(model, "output").inc(received)
                span.set_attribute("gen_ai.usage.input_tokens", sent)
                span.set_attribute("gen_ai.usage.output_tokens", received)
                return response

        async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
            name = str(request.tool_call["name"])
            with _span(f"tool {name}", {"gen_ai.tool.name": name}) as span:
                result = await handler(request)
                failed = isinstance(result, ToolMessage) and result.status == "error"
                outcome = "error" if failed else "ok"
                TOOL_CALLS.labels(name, outcome).inc()
                span.set_attribute("socialops.outcome", outcome)
                return result

    return AgentTelemetry()


def counted_command(
    name_of: Callable[..., str],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Count each run of a command by its name (from `name_of(*args)`) and outcome,
    in a span when tracing is on."""

    def wrap(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            name = name_of(*args)
            outcome = "error"
            try:
                with _span(f"command {name}", {"socialops.command": name}) as span:
                    result = await func(*args, **kwargs)
                    outcome = "ok"
                    span.set_attribute("socialops.outcome", outcome)
                return result
            except USER_ERRORS:
                outcome = "refused"
                raise
            finally:
                COMMAND_CALLS.labels(name, outcome).inc()

        return run

    return wrap


def counted_delivery(func: Callable[P, Awaitable[bool]]) -> Callable[P, Awaitable[bool]]:
    """Count a digest delivery by outcome: True posted, False skipped, raised failed."""

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> bool:
        outcome = "failed"
        try:
            posted = await func(*args, **kwargs)
            outcome = "posted" if posted else "skipped"
            return posted
        finally:
            DIGEST_DELIVERIES.labels(outcome).inc()

    return run


class _NoSpan:
    """Stands in for a span while tracing is off (no OpenTelemetry import, no allocation)."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: object) -> None:
        return None


_NO_SPAN = _NoSpan()
_tracer: Tracer | None = None


def install_tracer(tracer: Tracer | None) -> None:
    """Called by the process's telemetry setup when tracing is on (None: off again)."""
    global _tracer
    _tracer = tracer


def _span(name: str, attributes: dict[str, str]) -> Any:
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, attributes=attributes)
