"""`/slack/events` is served ahead of the app (bot.web.ExactPaths): it still answers like
a route of the app, is traced like one, and keeps the app's other routes reachable."""

from __future__ import annotations

import json
import secrets
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot import telemetry
from tests.bot.slack.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
    RecordingCore,
    SlackHarness,
    _harness,
)
from tests.fakes.slack import FakeSlack


async def test_other_methods_are_a_405_and_other_paths_reach_the_app(slack: SlackHarness) -> None:
    response = await slack.http.get("/slack/events")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert (await slack.http.get("/healthz")).json() == {"status": "ok"}
    assert (await slack.http.post("/slack/events/")).status_code == 404  # exact path only
    assert slack.core.messages == []


async def test_a_slack_request_is_one_server_span_with_its_route(
    make_settings: Any, fake_slack: FakeSlack, core: RecordingCore, redis: Any
) -> None:
    exporter = InMemorySpanExporter()
    tracing = telemetry.install(SimpleSpanProcessor(exporter), role="test")
    marker = secrets.token_hex(8)
    try:
        async for harness in _harness(make_settings, fake_slack, core, slack_bot_token=BOT_TOKEN):
            response = await harness.command(f"echo {marker}")
            assert response.status_code == 200
            await harness.settle()
            assert [m.text for m in harness.core.messages] == [f"echo {marker}"]
    finally:
        tracing.shutdown()
    found = exporter.get_finished_spans()
    # (The fake Slack API, a FastAPI app in this process, makes server spans of its own.)
    [server] = [
        s
        for s in found
        if s.kind == trace.SpanKind.SERVER and "/slack/" in str((s.attributes or {})["http.route"])
    ]
    attributes = dict(server.attributes or {})
    assert server.name == "POST /slack/events"
    assert attributes["http.route"] == "/slack/events"
    assert 200 in (attributes.get("http.status_code"), attributes.get("http.response.status_code"))
    exported = json.dumps([dict(s.attributes or {}) for s in found], default=str)
    assert marker not in exported and SIGNING_SECRET not in exported
