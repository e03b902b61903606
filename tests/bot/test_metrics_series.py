"""The Prometheus series beyond platform calls: messages, commands, tools, tokens, quota,
digest deliveries; METRICS_PORT for roles with no web server. Scraped over HTTP and
parsed with prometheus_client's parser."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from agent.observe import counted_delivery
from agent.runner import AgentRunner, RunnerConfig, build_model
from bot.assembly import Assembly
from bot.cli import with_metrics
from bot.core.messages import IncomingMessage
from bot.core.service import ChatOpsService
from bot.metrics_web import metrics_app
from bot.services import Services
from bot.web import create_app
from tests.fakes import openai as fake
from tests.fakes.chatops import FakeOps, RecordingSink
from tests.fakes.server import serve_asgi
from tests.wiring import ask_twice_in_a_thread, script_replies_summary_and_digest

# Every label any socialops_ series may carry: none names a user, a workspace or a post.
BOUNDED = {"platform", "outcome", "kind", "frontend", "command", "tool", "model", "direction"}
BOUNDED |= {"counter", "le", "purpose"}


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_scrape_shows_messages_commands_and_quota(make_settings, new_identity) -> None:
    services = Services(settings=make_settings(metrics_token="scrape-secret-2"))
    await services.initialize()
    try:
        assembly = Assembly(services)
        app = create_app(services, routers=assembly.web_routers())
        ident = await new_identity(frontend="local")
        auth = {"Authorization": "Bearer scrape-secret-2"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as web:
            before = _families((await web.get("/metrics", headers=auth)).text)
            await assembly.chatops.handle(
                IncomingMessage(
                    frontend="local",
                    workspace_id=ident.workspace_external_id,
                    channel_id="c",
                    user_id=ident.user_external_id,
                    text="help",
                ),
                RecordingSink(),
            )
            page = await web.get("/metrics", headers=auth)
        assert page.status_code == 200
        after = _families(page.text)
    finally:
        await services.shutdown()

    def grew(name: str, **labels: str) -> float:
        key = tuple(sorted(labels.items()))
        return after[name][key] - before.get(name, {}).get(key, 0.0)

    assert grew("socialops_messages_total", frontend="local", outcome="ok") == 1
    assert grew("socialops_command_calls_total", command="help", outcome="ok") == 1
    # Every platform's per-app quota counters, used and left, read at the scrape.
    declared = {
        (cap.name, c.name)
        for cap in services.platforms
        for c in cap.quota.counters
        if not c.per_account
    }
    assert declared
    for platform, counter in declared:
        used = after["socialops_quota_used"][(("counter", counter), ("platform", platform))]
        left = after["socialops_quota_left"][(("counter", counter), ("platform", platform))]
        assert used >= 0 and left >= 0
    for name, samples in after.items():
        if name.startswith("socialops_"):
            for labels in samples:
                assert {k for k, _ in labels} <= BOUNDED, (name, labels)


@pytest.fixture
async def llm() -> AsyncIterator[tuple[fake.ScriptedOpenAI, str]]:
    server = fake.ScriptedOpenAI()
    async with serve_asgi(server.app) as base:
        yield server, base + "/v1"


async def test_tool_calls_and_tokens_are_counted_by_name_and_model(
    llm, make_deps, new_identity
) -> None:
    server, base = llm
    ident = await new_identity()
    config = RunnerConfig(model="openai:counted-model", base_url=base, api_key="sk-test")
    service = ChatOpsService(
        deps=make_deps(ops=FakeOps()), runner=AgentRunner(model=build_model(config), config=config)
    )
    server.script(fake.tool_call("list_accounts", {}), fake.text("None yet."))
    tools = _value("socialops_tool_calls_total", tool="list_accounts", outcome="ok")
    model = {"model": "openai:counted-model", "purpose": "agent"}
    sent = _value("socialops_llm_tokens_total", **model, direction="input")
    got = _value("socialops_llm_tokens_total", **model, direction="output")
    calls = _value("socialops_llm_calls_total", **model, outcome="ok")

    await service.handle(
        IncomingMessage(
            frontend="slack",
            workspace_id=ident.workspace_external_id,
            channel_id="c",
            user_id=ident.user_external_id,
            text="which accounts?",
        ),
        RecordingSink(),
    )

    assert _value("socialops_tool_calls_total", tool="list_accounts", outcome="ok") == tools + 1
    # Two model calls; the fake reports 100 prompt and 20 completion tokens each.
    assert _value("socialops_llm_tokens_total", **model, direction="input") == sent + 200
    assert _value("socialops_llm_tokens_total", **model, direction="output") == got + 40
    assert _value("socialops_llm_calls_total", **model, outcome="ok") == calls + 2


def _llm_counts(model: str, purpose: str) -> tuple[float, float, float]:
    """(ok calls, input tokens, output tokens) counted for `model` and `purpose`."""
    labels = {"model": model, "purpose": purpose}
    return (
        _value("socialops_llm_calls_total", **labels, outcome="ok"),
        _value("socialops_llm_tokens_total", **labels, direction="input"),
        _value("socialops_llm_tokens_total", **labels, direction="output"),
    )


async def test_a_summary_fold_and_a_digest_insight_are_counted_by_purpose(
    llm, make_settings, new_identity
) -> None:
    """The models the assembly hands the thread summaries and the digest commentary are
    counted like the agent's, each under its own purpose; the agent's count holds only
    the agent's calls."""
    server, base = llm
    name = "openai:purpose-model"
    settings = make_settings(
        llm_model=name,
        llm_base_url=base,
        llm_api_key="sk-test",
        llm_history_turns=1,  # a window of 2 messages
        llm_summary_batch=2,  # a summary due once 2 messages are past it
    )
    services = Services(settings=settings)
    await services.initialize()
    try:
        assembly = Assembly(services)
        ident = await new_identity(frontend="local")
        before = {p: _llm_counts(name, p) for p in ("agent", "summary", "digest")}
        sink = RecordingSink()
        script_replies_summary_and_digest(server)
        await ask_twice_in_a_thread(assembly, ident, sink, channel="c", thread="t-purpose")
        assert sink.sent == ["reply 1", "reply 2"]
        assert len(server.requests) == 3  # two replies, then the summary
        commentary = assembly.deps.commentary
        assert commentary is not None
        said = await commentary(
            "Views: 1,250. Likes: 80.", budgets=services.budgets, workspace_id=ident.workspace_id
        )
        assert said is not None and said.startswith("- Views reached 1,250.")
    finally:
        await services.shutdown()

    # Each call: the fake's 100 prompt and 20 completion tokens.
    grew = {
        p: tuple(a - b for a, b in zip(_llm_counts(name, p), before[p], strict=True))
        for p in before
    }
    assert grew == {
        "agent": (2, 200, 40),
        "summary": (1, 100, 20),
        "digest": (1, 100, 20),
    }


async def test_digest_deliveries_are_counted_by_outcome() -> None:
    @counted_delivery
    async def deliver(result: bool | None) -> bool:
        if result is None:
            raise RuntimeError("chat API down")
        return result

    names = ("posted", "skipped", "failed")
    before = {o: _value("socialops_digest_deliveries_total", outcome=o) for o in names}
    assert await deliver(True) is True
    assert await deliver(False) is False
    with pytest.raises(RuntimeError):
        await deliver(None)
    for outcome in names:
        assert _value("socialops_digest_deliveries_total", outcome=outcome) == before[outcome] + 1


async def test_a_worker_serves_metrics_on_its_own_port(make_settings) -> None:
    port = _free_port()
    services = Services(settings=make_settings(metrics_port=port, metrics_token="port-secret"))
    await services.initialize()
    part = Assembly(services).build_part("metrics")
    await part.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/metrics")).status_code == 401
            page = await client.get("/metrics", headers={"Authorization": "Bearer port-secret"})
            assert page.status_code == 200
            assert "socialops_redis_fallback" in _families(page.text)
            assert (await client.get("/healthz")).status_code == 404  # /metrics only
    finally:
        await part.stop(1.0)
        await services.shutdown()


async def test_the_metrics_port_without_a_token_stays_on_loopback(make_settings) -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        metrics_app(host="0.0.0.0", token=None, refresh=nothing)
    app = metrics_app(host="127.0.0.1", token=None, refresh=nothing)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        assert (await client.get("/metrics")).status_code == 200
    settings = make_settings(metrics_port=9464)
    assert with_metrics(settings, ["worker"]) == ["worker", "metrics"]
    assert with_metrics(settings, ["discord"]) == ["discord", "metrics"]
    assert with_metrics(settings, ["web", "worker"]) == ["web", "worker"]  # the web role has it
    assert with_metrics(settings, ["shell"]) == ["shell"]
    assert with_metrics(make_settings(), ["worker"]) == ["worker"]
