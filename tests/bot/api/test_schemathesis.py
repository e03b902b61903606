"""A property-based run over the published OpenAPI: no 5xx, every response as documented.

The API is served on loopback by a real server in the test's event loop; schemathesis
(synchronous) runs in a thread against it, as a connected app user with a linked account,
a time zone and a scheduled post.
`POST /uploads` is left out: its generated https links would be looked up in DNS (the
link checks have their own tests in test_routes).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent.actions import app_link, schedule
from agent.ports import MetricsReport
from bot.api.auth import SupabaseVerifier
from bot.api.routes import build_router
from bot.api.uploads import UploadStore
from tests.bot.api.conftest import PROJECT, SECRET, sign_hs
from tests.chat_fixtures import action_ctx
from tests.fakes.chatops import FakeOps
from tests.fakes.server import serve_asgi

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Disconnecting ends the app user's tie to chat: every operation after it would only
# meet the 403 of an unconnected user, so it runs last.
LAST = "DELETE /api/v1/identity"


def fuzz(base_url: str, headers: dict[str, str]) -> dict[str, set[int]]:
    """Every operation (but uploads) with generated inputs; the statuses each answered."""
    schema = schemathesis.openapi.from_url(base_url + "/api/v1/openapi.json")
    statuses: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in sorted(operations, key=lambda op: op.label == LAST):
        if operation.path == "/api/v1/uploads":
            continue
        seen = statuses.setdefault(operation.label, set())

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers)
            case.validate_response(response, checks=CHECKS)
            seen.add(response.status_code)

        run()
    return statuses


@pytest.mark.timeout(600)
async def test_published_openapi_holds_under_generated_requests(
    make_deps, new_identity, link, tmp_path
):
    ops = FakeOps(allow={"unlink", "metrics", "upload"})
    ops.report = MetricsReport(as_of=datetime(2026, 11, 30, tzinfo=UTC))
    deps = make_deps(ops=ops)
    me = await new_identity()
    await link(me, "youtube", "creator")
    app = FastAPI()
    verifier = SupabaseVerifier(supabase_url=PROJECT, jwt_secret=SECRET, jwks=None)
    store = UploadStore(directory=tmp_path / "uploads", max_bytes=1024 * 1024)
    app.include_router(build_router(deps=lambda: deps, verifier=verifier, upload_store=store))
    headers = {"Authorization": f"Bearer {sign_hs(sub=f'fuzz-{secrets.token_hex(4)}')}"}
    async with serve_asgi(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url + "/api/v1") as api:
            outcome = await app_link.connect_app(action_ctx(me, deps))
            code = re.search(r"code for the app: ([A-Z0-9-]+)", outcome.private or "")
            assert code is not None
            claimed = await api.post("/identity/claim", json={"code": code[1]}, headers=headers)
            assert claimed.status_code == 200, claimed.text
            await schedule.set_timezone(action_ctx(me, deps), "Europe/Paris")
            at = datetime.now(UTC) + timedelta(days=2)
            asked = await api.post(
                "/uploads",
                files={"file": ("clip.mp4", b"video", "video/mp4")},
                data={"publish_at": at.isoformat(timespec="seconds")},
                headers=headers,
            )
            assert asked.status_code == 202, asked.text
            approval = f"/approvals/{asked.json()['approval_id']}"
            decided = await api.post(approval, json={"approve": True}, headers=headers)
            assert decided.status_code == 200, decided.text
        ran = await asyncio.to_thread(fuzz, base_url, headers)
    assert len(ran) >= 12 and list(ran)[-1] == LAST
    # The generated requests reached the routes as the connected user, not only refusals.
    for label in ("GET /api/v1/accounts", "GET /api/v1/queue", "GET /api/v1/best-time"):
        assert 200 in ran[label], (label, ran[label])
    assert 404 in ran["DELETE /api/v1/queue/{number}"], ran["DELETE /api/v1/queue/{number}"]
    assert ran["PATCH /api/v1/queue/{number}"] & {400, 404, 422}
