"""What the agent does, counted for Prometheus and (when tracing is on) traced.

Every model the product calls carries `model_telemetry`, a callback handler on the
model itself, put there by `observed` with the call's purpose: the agent's runs
(`agent.runner`), a thread's rolling summary and a digest's commentary (`bot.assembly`,
through `agent.metered`). Each tool is wrapped by `counted_tool`
(`agent.tools.build_tools`), so no tool or action carries instrumentation of its own.
A model call's span holds the model's name, the purpose and its token counts; a tool
call's span holds the tool's name and its outcome, and is the current span while the
tool runs (platform and database spans nest under it).
Never the prompt, the arguments or the result: those hold what people wrote and what
platforms returned.

Why not an agent middleware (`wrap_model_call`/`wrap_tool_call`), as this was at
first: `create_agent` wraps every middleware hook in LangSmith's `traceable`, which
sets up and closes a run for each call even with LangSmith off, about 0.4 ms of a
2.8 ms turn on this machine (bench/conversation.py); a callback on the model costs
about 15 µs a call, the tool wrapper one function call.

`counted_command` does the same for the deterministic command grammar.

Labels are bounded: model names come from configuration, purposes, tool and command
names from our own code; never a user, a workspace or a post.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar
from uuid import UUID

from prometheus_client import Counter

from agent.actions.base import USER_ERRORS

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage
    from langchain_core.tools import BaseTool
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
# What a model call is for: an agent run's step, a thread's summary, a digest's commentary.
Purpose = Literal["agent", "summary", "digest"]

LLM_TOKENS = Counter(
    "socialops_llm_tokens",
    "Model tokens reported used, by model, purpose (agent, summary, digest) and direction"
    " (input, output).",
    ["model", "purpose", "direction"],
)
LLM_CALLS = Counter(
    "socialops_llm_calls",
    "Model calls, by model, purpose (agent, summary, digest) and outcome (ok, error).",
    ["model", "purpose", "outcome"],
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


def observed(model: BaseChatModel, *, name: str, purpose: Purpose) -> BaseChatModel:
    """A copy of `model` that counts and spans each of its calls (`model_telemetry`)
    under `name` (the configured model, the label) and `purpose`.

    The handler is the copy's only callback: the models the product builds
    (`agent.runner.build_model`) carry none of their own (LangSmith, when on, joins
    each call from the environment, not from the model).
    """
    handler = model_telemetry(model=name, purpose=purpose)
    return model.model_copy(update={"callbacks": [handler]})


def model_telemetry(*, model: str, purpose: Purpose) -> BaseCallbackHandler:
    """A callback handler for a model (`model`: the configured name, the label; `purpose`:
    what its calls are for): counts each call and its tokens, and spans it when tracing
    is on.

    Built here (LangChain imported on call) so that modules importing this one for
    `counted_command` stay free of LangChain.
    """
    from langchain_core.callbacks import BaseCallbackHandler

    # Labelled once: a label lookup costs a few microseconds, on every call.
    calls_ok = LLM_CALLS.labels(model, purpose, "ok")
    calls_failed = LLM_CALLS.labels(model, purpose, "error")
    tokens_in = LLM_TOKENS.labels(model, purpose, "input")
    tokens_out = LLM_TOKENS.labels(model, purpose, "output")

    class ModelTelemetry(BaseCallbackHandler):
        # A counter and a span: nothing worth the callback manager's hop to a thread.
        run_inline = True

        def __init__(self) -> None:
            self._spans: dict[UUID, Any] = {}

        def on_chat_model_start(
            self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any
        ) -> None:
            tracer = _tracer
            if tracer is not None:  # a child of the current span; not current itself
                attributes = {"gen_ai.request.model": model, "socialops.purpose": purpose}
                self._spans[run_id] = tracer.start_span("llm.call", attributes=attributes)

        def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
            sent = received = 0
            for generations in response.generations:
                for generation in generations:
                    usage = getattr(generation, "message", None)
                    metadata = usage.usage_metadata if usage is not None else None
                    if metadata:
                        sent += int(metadata.get("input_tokens", 0))
                        received += int(metadata.get("output_tokens", 0))
            calls_ok.inc()
            tokens_in.inc(sent)
            tokens_out.inc(received)
            span = self._spans.pop(run_id, None)
            if span is not None:
                span.set_attribute("gen_ai.usage.input_tokens", sent)
                span.set_attribute("gen_ai.usage.output_tokens", received)
                span.end()

        def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            calls_failed.inc()
            span = self._spans.pop(run_id, None)
            if span is not None:
                from opentelemetry.trace import Status, StatusCode

                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                span.end()

    return ModelTelemetry()


def counted_tool(tool: BaseTool) -> BaseTool:
    """`tool`, counted by name and outcome (ok, error) and spanned while it runs."""
    from langchain_core.tools import StructuredTool

    run = tool.coroutine if isinstance(tool, StructuredTool) else None
    if run is None:
        raise TypeError(f"tool {tool.name} has no coroutine to count")
    name = tool.name
    ok, failed = TOOL_CALLS.labels(name, "ok"), TOOL_CALLS.labels(name, "error")

    @functools.wraps(run)
    async def counted(*args: Any, **kwargs: Any) -> Any:
        count = failed
        try:
            with _span(f"tool {name}", {"gen_ai.tool.name": name}) as span:
                result = await run(*args, **kwargs)
                count = ok
                span.set_attribute("socialops.outcome", "ok")
                return result
        finally:
            count.inc()

    return tool.model_copy(update={"coroutine": counted})


def count_refused_tool_calls(messages: Sequence[BaseMessage], known: Collection[str]) -> None:
    """Count the tool calls a run's `messages` show refused before the tool ran (the
    model's arguments did not fit the tool's schema: LangChain answers those itself with
    an error result). Names outside `known` (a tool the model made up) are not labels."""
    from langchain_core.messages import ToolMessage

    for message in messages:
        if isinstance(message, ToolMessage) and message.status == "error":
            if message.name in known:
                TOOL_CALLS.labels(message.name, "error").inc()


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
