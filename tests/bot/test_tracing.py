"""Tracing: the trace tree of one chat message, job links, log ids, and the leak scan.

Spans go to an in-memory exporter; everything else is real (Postgres, Redis, the
fake OpenAI and Google servers over loopback, the production HTTP client).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import grpc
import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent.runner import AgentRunner, RunnerConfig, build_model
from bot import telemetry
from bot.assembly import Assembly
from bot.core.messages import IncomingMessage
from bot.core.service import ChatOpsService
from bot.logs import JsonFormatter
from bot.services import Services
from storage import queue
from tests.chat_fixtures import ops_for
from tests.fakes import openai as fake
from tests.fakes.chatops import RecordingSink
from tests.fakes.server import serve_asgi
from tests.wiring import ask_twice_in_a_thread, script_replies_summary_and_digest

LLM_KEY = "sk-test-" + secrets.token_hex(8)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing = telemetry.install(SimpleSpanProcessor(exporter), role="test")
    try:
        yield exporter
    finally:
        tracing.shutdown()


@pytest.fixture
async def llm() -> AsyncIterator[tuple[fake.ScriptedOpenAI, str]]:
    server = fake.ScriptedOpenAI()
    async with serve_asgi(server.app) as base:
        yield server, base + "/v1"


def _by_id(found: tuple[ReadableSpan, ...]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in found}


def _ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in index:
        above = index[parent.span_id]
        names.append(above.name)
        parent = above.parent
    return names


def _everything(found: tuple[ReadableSpan, ...]) -> str:
    """Every exported string: names, attributes, events, links and resources."""
    out = []
    for s in found:
        out.append(s.name)
        out.append(json.dumps(dict(s.attributes or {}), default=str))
        out.append(json.dumps(dict(s.resource.attributes), default=str))
        for event in s.events:
            out.append(event.name + json.dumps(dict(event.attributes or {}), default=str))
        for link in s.links:
            out.append(json.dumps(dict(link.attributes or {}), default=str))
        out.append(str(s.status.description or ""))
    return "\n".join(out)


async def test_a_metrics_request_is_one_trace_from_chat_to_database(
    spans, llm, deps, google, identity, link_account
):
    server, base = llm
    _, channel, raw = await link_account(identity)
    google.add_video(channel, title="launch", views=42)
    config = RunnerConfig(model="openai:fake-model", base_url=base, api_key=LLM_KEY)
    service = ChatOpsService(
        deps=replace(deps, ops=ops_for(deps)),
        runner=AgentRunner(model=build_model(config), config=config),
    )
    text = "how many views did my launch video get? " + secrets.token_hex(6)
    server.script(fake.tool_call("get_metrics", {"period": "7d"}), fake.text("42 views."))
    sink = RecordingSink()
    spans.clear()  # the setup's own queries

    await service.handle(
        IncomingMessage(
            frontend="local",
            workspace_id=identity.workspace_external_id,
            channel_id="C1",
            user_id=identity.user_external_id,
            text=text,
        ),
        sink,
    )

    assert sink.sent == ["42 views."]
    found = spans.get_finished_spans()
    index = _by_id(found)
    [root] = [s for s in found if s.name == "chat.message"]
    assert root.attributes is not None and root.attributes["socialops.frontend"] == "local"
    assert len({s.context.trace_id for s in found}) == 1  # one trace for the whole message
    [tool] = [s for s in found if s.name == "tool get_metrics"]
    assert _ancestors(tool, index)[-1] == "chat.message"
    model_calls = [s for s in found if s.name == "llm.call"]
    assert len(model_calls) == 2
    for call in model_calls:
        attrs = dict(call.attributes or {})
        assert attrs["gen_ai.request.model"] == "openai:fake-model"
        assert attrs["socialops.purpose"] == "agent"
        assert attrs["gen_ai.usage.input_tokens"] == 100  # the fake's reported usage
        assert attrs["gen_ai.usage.output_tokens"] == 20
    google_host = httpx.URL(google.base).netloc.decode()
    platform_calls = [
        s
        for s in found
        if s.kind == trace.SpanKind.CLIENT
        and google_host in str((s.attributes or {}).get("http.url", ""))
    ]
    assert platform_calls, [s.name for s in found]
    for call in platform_calls:
        assert "tool get_metrics" in _ancestors(call, index)
        attrs = dict(call.attributes or {})
        # Named like the Prometheus platform series, with the endpoint's template.
        assert attrs["socialops.platform"] == "youtube"
        template = str(attrs["url.template"])
        assert template.startswith("/") and call.name.endswith(" " + template)
    queries = [s for s in found if (s.attributes or {}).get("db.system") == "postgresql"]
    under_tool = [q for q in queries if "tool get_metrics" in _ancestors(q, index)]
    assert under_tool, "the tool's snapshot writes are spans under it"
    for query in queries:  # the statement's kind, never its text
        assert query.name == (query.attributes or {})["db.operation.name"]
        assert "db.statement" not in (query.attributes or {})
    # Nothing people wrote or platforms hold reaches the exporter.
    exported = _everything(found)
    for secret in (
        raw["access_token"],
        raw["refresh_token"],
        LLM_KEY,
        text,
        text.split()[-1],
        "launch",
    ):
        assert secret not in exported


async def test_summary_and_digest_model_calls_are_spans_like_the_agents(
    spans, llm, make_settings, new_identity
):
    """The thread summary's and the digest commentary's model calls, as the assembly
    wires them, are `llm.call` spans with the model, their purpose and the tokens; the
    summary's sits in the trace of the message whose history write made it due, the
    digest's under its job's span."""
    server, base = llm
    settings = make_settings(
        llm_model="openai:fake-model",
        llm_base_url=base,
        llm_api_key=LLM_KEY,
        llm_history_turns=1,  # a window of 2 messages
        llm_summary_batch=2,  # a summary due once 2 messages are past it
    )
    services = Services(settings=settings)
    await services.initialize()
    try:
        assembly = Assembly(services)
        ident = await new_identity(frontend="local")
        script_replies_summary_and_digest(server)
        spans.clear()
        await ask_twice_in_a_thread(
            assembly, ident, RecordingSink(), channel="C1", thread="t-traced"
        )
        commentary = assembly.deps.commentary
        assert commentary is not None
        with telemetry.job_span(queue.DIGEST, {}):  # as the worker runs a digest job
            said = await commentary(
                "Views: 1,250.", budgets=services.budgets, workspace_id=ident.workspace_id
            )
        assert said is not None
    finally:
        await services.shutdown()
    found = spans.get_finished_spans()
    index = _by_id(found)
    calls = {}
    for span in found:
        if span.name == "llm.call":
            attrs = dict(span.attributes or {})
            assert attrs["gen_ai.request.model"] == "openai:fake-model"
            assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (
                100,
                20,
            )
            calls.setdefault(attrs["socialops.purpose"], []).append(span)
    assert {p: len(c) for p, c in calls.items()} == {"agent": 2, "summary": 1, "digest": 1}
    [summary], [digest] = calls["summary"], calls["digest"]
    assert _ancestors(summary, index)[-1] == "chat.message"
    second = [s for s in found if s.name == "chat.message"][-1]
    assert summary.context.trace_id == second.context.trace_id
    assert _ancestors(digest, index) == [f"job {queue.DIGEST}"]
    assert LLM_KEY not in _everything(found)


async def test_a_query_is_one_span_and_the_pools_bookkeeping_none(spans, pool):
    """Only queries within traced work are spans: not the pool's reset of a connection
    it takes back, not a query outside any trace; Redis commands likewise."""
    await pool.fetchval("SELECT 1")  # outside any trace
    with trace.get_tracer("test").start_as_current_span("work"):
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 2") == 2
        failed = None
        try:
            await pool.execute("INSERT INTO no_such_table_x VALUES ('" + LLM_KEY + "')")
        except Exception as exc:
            failed = type(exc).__qualname__
    await asyncio.sleep(0)  # the release (and its reset) has run
    found = [s for s in spans.get_finished_spans() if s.name != "work"]
    assert [(s.name, s.kind) for s in found] == [
        ("SELECT", trace.SpanKind.CLIENT),
        ("INSERT", trace.SpanKind.CLIENT),
    ]
    assert not found[0].status.status_code == trace.StatusCode.ERROR
    assert found[1].status.status_code == trace.StatusCode.ERROR
    assert (found[1].attributes or {})["error.type"] == failed
    assert LLM_KEY not in _everything(tuple(found))  # not the text, not the error message


async def test_redis_commands_are_spans_within_work_only(spans, redis):
    key = redis.key("trace-" + secrets.token_hex(4))
    await redis.client.set(key, "outside")
    with trace.get_tracer("test").start_as_current_span("work"):
        await redis.client.set(key, LLM_KEY)
        async with redis.client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.delete(key)
            await pipe.execute()
        # The rate limiter's script client too.
        assert await redis.scripts.call("EVAL", "return ARGV[1]", 0, LLM_KEY) == LLM_KEY.encode()
    await redis.scripts.call("EVAL", "return 1", 0)  # outside any trace
    found = [s for s in spans.get_finished_spans() if s.name != "work"]
    assert [s.name for s in found] == ["SET", "PIPELINE", "EVAL"]
    assert {(s.attributes or {})["db.system"] for s in found} == {"redis"}
    assert LLM_KEY not in _everything(tuple(found))


async def test_query_strings_never_reach_a_span(spans, google):
    marker = "tok" + secrets.token_hex(8)
    app = FastAPI()

    @app.get("/oauth/callback")
    async def callback() -> dict[str, str]:
        return {"ok": "yes"}

    telemetry.instrument_app(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://web"
    ) as client:
        assert (
            await client.get(f"/oauth/callback?code={marker}&state={marker}")
        ).status_code == 200
    async with httpx.AsyncClient() as client:  # the real transport: instrumented
        with trace.get_tracer("test").start_as_current_span("work"):
            await client.get(f"{google.base}/nowhere?access_token={marker}")
        await client.get(f"{google.base}/orphan")  # a client call outside any work
    found = spans.get_finished_spans()
    kinds = {s.kind for s in found}
    assert trace.SpanKind.SERVER in kinds and trace.SpanKind.CLIENT in kinds
    # A client span with no parent (job engine polls, pool pings) starts no trace.
    assert not [s for s in found if "orphan" in str((s.attributes or {}).get("http.url"))]
    assert marker not in _everything(found)


async def test_a_job_is_linked_to_the_request_that_queued_it(spans, pool):
    tracer = trace.get_tracer("test")
    key = "trace-test-" + secrets.token_hex(4)
    with tracer.start_as_current_span("request") as request:
        async with pool.acquire() as conn:
            job_id = await queue.enqueue(conn, queue.PURGE, {"x": 1}, dedupe_key=key)
    try:
        stored = await pool.fetchval("SELECT payload FROM pgqueuer WHERE id = $1", job_id)
    finally:
        await pool.execute("DELETE FROM pgqueuer WHERE id = $1", job_id)
    payload = queue.decode(stored)
    assert queue.TRACE_KEY in payload

    with telemetry.job_span(queue.PURGE, payload):
        pass

    assert payload == {"x": 1}  # the handler never sees the carried context
    [job] = [s for s in spans.get_finished_spans() if s.name == "job purge"]
    assert job.context.trace_id != request.get_span_context().trace_id
    assert [link.context.span_id for link in job.links] == [request.get_span_context().span_id]


def test_log_lines_carry_the_trace_and_span_ids(spans):
    formatter = JsonFormatter()
    with telemetry.install(SimpleSpanProcessor(spans), role="test").tracer.start_as_current_span(
        "work"
    ) as span:
        line = json.loads(formatter.format(logging.makeLogRecord({"msg": "hello"})))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    outside = json.loads(formatter.format(logging.makeLogRecord({"msg": "hello"})))
    assert "trace_id" not in outside


def test_tracing_off_costs_no_ids_and_strips_carried_context():
    assert telemetry.current_ids() is None
    payload = {"a": 1, queue.TRACE_KEY: {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}}
    with telemetry.job_span("upload", payload):
        assert telemetry.current_ids() is None
    assert payload == {"a": 1}


async def test_an_otlp_endpoint_receives_the_spans_with_the_collector_key(make_settings):
    """`configure` from settings alone: OTLP over http/protobuf to a fake collector."""
    received: list[tuple[dict[str, str], bytes]] = []
    collector = FastAPI()

    @collector.post("/v1/traces")
    async def traces(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(ExportTraceServiceResponse().SerializeToString())

    assert telemetry.configure(make_settings(), role="test") is None  # unset: off
    async with serve_asgi(collector) as base:
        settings = make_settings(
            otel_exporter_otlp_endpoint=base,
            otel_exporter_otlp_headers="x-collector-key=key-" + secrets.token_hex(4),
            otel_service_name="socialops-test",
        )
        tracing = telemetry.configure(settings, role="worker")
        assert tracing is not None
        try:
            with tracing.tracer.start_as_current_span("exported"):
                pass
        finally:
            # The exporter posts from its own thread; the loop must keep serving meanwhile.
            await asyncio.to_thread(tracing.shutdown)
    [(headers, body)] = received
    assert headers["x-collector-key"].startswith("key-")
    assert headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "socialops-test" and resource["socialops.role"] == "worker"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["exported"]
    assert telemetry.current_ids() is None  # shut down: off again


async def test_grpc_is_the_other_otlp_protocol(make_settings):
    received: list[ExportTraceServiceRequest] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request, context):
            received.append(request)
            return ExportTraceServiceResponse()

    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        settings = make_settings(
            otel_exporter_otlp_endpoint=f"http://127.0.0.1:{port}",
            otel_exporter_otlp_protocol="grpc",
        )
        tracing = telemetry.configure(settings, role="discord")
        assert tracing is not None
        with tracing.tracer.start_as_current_span("over-grpc"):
            pass
        await asyncio.to_thread(tracing.shutdown)
    finally:
        await server.stop(None)
    names = [
        s.name
        for request in received
        for rs in request.resource_spans
        for scope in rs.scope_spans
        for s in scope.spans
    ]
    assert names == ["over-grpc"]
