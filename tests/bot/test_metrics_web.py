"""`/metrics`: Prometheus text behind a bearer token, with bounded labels."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.assembly import Assembly
from bot.services import Services
from bot.web import create_app
from integrations.http import Guards, make_client
from tests.fakes.google import FakeGoogle
from tests.fakes.server import serve_asgi


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


async def test_metrics_need_the_token_and_count_platform_calls(make_settings) -> None:
    services = Services(settings=make_settings(metrics_token="scrape-secret-1"))
    await services.initialize()
    try:
        app = create_app(services, routers=Assembly(services).web_routers())
        fake = FakeGoogle()
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as web,
            serve_asgi(fake) as base,
            make_client(platform="metricsdemo", guards=Guards(), base_url=base) as client,
        ):
            assert (await web.get("/metrics")).status_code == 401
            bad = await web.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert bad.status_code == 401
            before = _samples(
                (
                    await web.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
                ).text,
                "socialops_platform_calls_total",
            )
            await client.get("/nowhere")  # the fake answers 404: a refused call
            page = await web.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
        assert page.status_code == 200
        after = _samples(page.text, "socialops_platform_calls_total")
        key = (("outcome", "refused"), ("platform", "metricsdemo"))
        assert after[key] == before.get(key, 0) + 1
        assert _samples(page.text, "socialops_redis_fallback") == {(): 0.0}
        labels = {k for sample in after for k, _ in sample}
        assert labels == {"outcome", "platform"}  # no user, workspace or post ids
    finally:
        await services.shutdown()


async def test_metrics_are_off_without_a_token(make_settings) -> None:
    services = Services(settings=make_settings())
    await services.initialize()
    try:
        app = create_app(services, routers=Assembly(services).web_routers())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
            assert (await web.get("/metrics")).status_code == 404
    finally:
        await services.shutdown()


async def test_jobs_are_counted_by_kind_and_outcome(fresh_pool) -> None:
    from prometheus_client import REGISTRY

    from bot.worker import JobKind
    from storage import queue
    from tests.jobs_fixtures import queue_is_empty, run_worker_until

    ran: list[dict] = []

    async def handler(payload: dict) -> None:
        ran.append(payload)

    def done_count() -> float:
        value = REGISTRY.get_sample_value(
            "socialops_jobs_total", {"kind": queue.PURGE, "outcome": "done"}
        )
        return value or 0.0

    before = done_count()
    async with fresh_pool.acquire() as conn:
        await queue.enqueue(conn, queue.PURGE, {"n": 1}, dedupe_key="metrics-test")

    async def finished() -> bool:
        return bool(ran) and await queue_is_empty(fresh_pool)

    await run_worker_until(fresh_pool, {queue.PURGE: JobKind(handler)}, finished)
    assert ran == [{"n": 1}]
    assert done_count() == before + 1
    assert REGISTRY.get_sample_value("socialops_job_queue_seconds_count", {"kind": "purge"})
