"""/api/v1 end to end in-process: real Postgres and Redis, the same actions as chat.

Tokens are legacy HS256 here (the verifier's own tests cover JWKS keys); platform
work is the recording FakeOps, so nothing reaches the internet.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agent import commands
from agent.actions import app_link
from agent.ports import MetricsReport
from agent.session import ChatContext
from bot.api.auth import SupabaseVerifier
from bot.api.routes import build_router
from bot.api.uploads import UploadStore
from integrations.base import AccountMetrics, Figure, Metric
from storage import accounts as account_store
from storage import approvals as approval_store
from storage import upload_files
from tests.bot.api.conftest import PROJECT, SECRET, sign_hs
from tests.chat_fixtures import action_ctx, real_budgets
from tests.fakes.chatops import FakeOps

PROBLEM = "application/problem+json"


_SUBJECT = {"base": ""}


@pytest.fixture(autouse=True)
def fresh_subjects() -> None:
    """App user ids unique to each test (the database lives for the whole session)."""
    _SUBJECT["base"] = f"app-user-{secrets.token_hex(4)}"


def subject_of(name: str | None = None) -> str:
    return _SUBJECT["base"] + (f"-{name}" if name else "")


def auth(name: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_hs(sub=subject_of(name))}"}


@pytest.fixture
def ops() -> FakeOps:
    return FakeOps(allow={"unlink", "metrics"})


@pytest.fixture
def deps(make_deps, ops):
    return make_deps(ops=ops)


UPLOAD_CAP = 4 * 1024 * 1024


@pytest.fixture
def upload_dir(tmp_path):
    return tmp_path / "uploads"


@pytest.fixture
def make_client(deps, upload_dir):
    """An httpx client on an app with only the API mounted, over `deps`."""

    def build(d: Any = None) -> httpx.AsyncClient:
        app = FastAPI()
        verifier = SupabaseVerifier(supabase_url=PROJECT, jwt_secret=SECRET, jwks=None)
        store = UploadStore(directory=upload_dir, max_bytes=UPLOAD_CAP)
        app.include_router(
            build_router(deps=lambda: d or deps, verifier=verifier, upload_store=store)
        )
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver/api/v1"
        )

    return build


@pytest.fixture
async def api(make_client):
    async with make_client() as client:
        yield client


async def connect(deps, ident, api, subject: str | None = None) -> httpx.Response:
    """`connect app` in chat, then the code entered in the app."""
    outcome = await app_link.connect_app(action_ctx(ident, deps))
    assert outcome.private is not None and outcome.private not in outcome.text
    code = re.search(r"code for the app: ([A-Z0-9-]+)", outcome.private)
    assert code is not None
    return await api.post("/identity/claim", json={"code": code[1]}, headers=auth(subject))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["title"] and isinstance(body["detail"], str) and body["detail"]
    return body


def test_connect_app_is_in_the_grammar(deps):
    assert commands.parse("connect app", deps.platforms) == commands.Command("connect_app")
    assert isinstance(commands.parse("connect", deps.platforms), commands.Usage)
    assert "connect app" in commands.help_text()


async def test_disconnect_app_in_chat_or_in_the_app_ends_the_tie(api, deps, new_identity):
    me = await new_identity()
    await connect(deps, me, api)
    assert (await api.get("/accounts", headers=auth())).status_code == 200
    said = await commands.execute(
        commands.Command("disconnect_app"),
        ChatContext(action=action_ctx(me, deps), channel_id="D1"),
    )
    assert said.text == "The companion app is no longer connected to your account here."
    assert_problem(await api.get("/accounts", headers=auth()), 403)
    await connect(deps, me, api)
    gone = await api.delete("/identity", headers=auth())
    assert gone.json() == {
        "message": "The companion app is no longer connected to your account here."
    }
    assert_problem(await api.delete("/identity", headers=auth()), 403)
    assert isinstance(commands.parse("disconnect app", deps.platforms), commands.Command)


async def test_every_route_needs_a_valid_token(api):
    for method, path in [("GET", "/accounts"), ("GET", "/identity"), ("POST", "/captions")]:
        body = assert_problem(await api.request(method, path), 401)
        assert "Bearer" in (await api.request(method, path)).headers["www-authenticate"]
        assert "token" in body["detail"]
    expired = {"Authorization": f"Bearer {sign_hs(exp=1)}"}
    assert_problem(await api.get("/accounts", headers=expired), 401)


async def test_an_unconnected_app_user_is_refused(api):
    body = assert_problem(await api.get("/accounts", headers=auth("nobody")), 403)
    assert "connect app" in body["detail"]


async def test_claim_ties_once_and_refuses_wrong_used_and_expired_codes(
    make_client, deps, new_identity, pool
):
    told: list[tuple[str, dict[str, Any], str]] = []

    async def notify(frontend: str, reply_to: dict[str, Any], text: str) -> bool:
        told.append((frontend, reply_to, text))
        return True

    deps = replace(deps, notify=notify)
    async with make_client(deps) as api:
        ident = await new_identity()
        assert_problem(
            await api.post("/identity/claim", json={"code": "ABCDE-23456"}, headers=auth()), 400
        )
        outcome = await app_link.connect_app(action_ctx(ident, deps))
        code = re.search(r"code for the app: ([A-Z0-9-]+)", outcome.private or "")[1]
        # Stored only as an HMAC.
        stored = await pool.fetch(
            "SELECT code_hash FROM app_connect_codes WHERE chat_user_id = $1", ident.chat_user_id
        )
        assert len(stored) == 1 and code.replace("-", "").encode() not in stored[0]["code_hash"]
        ok = await api.post("/identity/claim", json={"code": code.lower()}, headers=auth())
        assert ok.status_code == 200, ok.text
        assert ok.json()["workspace"] == ident.workspace_id
        assert [(f, to["user_id"]) for f, to, _ in told] == [("slack", ident.user_external_id)]
        assert "companion app is now connected" in told[0][2]
        again = await api.post("/identity/claim", json={"code": code}, headers=auth("app-user-2"))
        assert_problem(again, 400)  # single use
        # Expired: a fresh code whose time has passed.
        outcome = await app_link.connect_app(action_ctx(ident, deps))
        late = re.search(r"code for the app: ([A-Z0-9-]+)", outcome.private or "")[1]
        await pool.execute(
            "UPDATE app_connect_codes SET expires_at = now() - interval '1 second'"
            " WHERE chat_user_id = $1",
            ident.chat_user_id,
        )
        assert_problem(
            await api.post("/identity/claim", json={"code": late}, headers=auth("app-user-3")), 400
        )
        links = await pool.fetch(
            "SELECT subject FROM app_identities WHERE chat_user_id = $1", ident.chat_user_id
        )
        assert [r["subject"] for r in links] == [subject_of()]


async def test_wrong_codes_are_limited_per_app_user(api, deps, new_identity):
    ident = await new_identity()
    for _ in range(app_link.MAX_FAILED_CLAIMS):
        wrong = await api.post(
            "/identity/claim", json={"code": "ZZZZZ-ZZZZZ"}, headers=auth("guesser")
        )
        assert_problem(wrong, 400)
    outcome = await app_link.connect_app(action_ctx(ident, deps))
    code = re.search(r"code for the app: ([A-Z0-9-]+)", outcome.private or "")[1]
    refused = await api.post("/identity/claim", json={"code": code}, headers=auth("guesser"))
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    # Even the right code waits: nothing was tied.
    assert (await api.get("/identity", headers=auth("guesser"))).json() == {"workspaces": []}


async def test_accounts_are_the_connected_chat_users_own(api, deps, new_identity, link):
    me, other = await new_identity(), await new_identity()
    mine = await link(me, "youtube", "me-creator")
    await link(other, "youtube", "not-mine")
    assert (await connect(deps, me, api)).status_code == 200
    body = (await api.get("/accounts", headers=auth())).json()
    assert body == {
        "accounts": [
            {"id": mine.ref, "platform": "youtube", "handle": "me-creator", "status": "ok"}
        ]
    }


async def test_unlink_waits_for_approval_then_runs_once(api, deps, ops, new_identity, link, pool):
    me = await new_identity()
    account = await link(me, "youtube", "creator")
    await connect(deps, me, api)
    asked = await api.delete(f"/accounts/{account.ref}", headers=auth())
    assert asked.status_code == 202, asked.text
    approval = asked.json()
    assert (
        approval["summary"].startswith("You asked: Unlink") and approval["expires_in_seconds"] > 0
    )
    assert ops.names() == []  # nothing unlinked yet
    pending = await approval_store.get(pool, action_id=approval["approval_id"])
    assert pending is not None and pending.status == "pending"
    assert pending.chat_user_id == me.chat_user_id  # the same approval chat would make
    done = await api.post(
        f"/approvals/{approval['approval_id']}", json={"approve": True}, headers=auth()
    )
    assert done.status_code == 200, done.text
    assert done.json()["message"].startswith("Unlinked")
    assert ops.names() == ["unlink"]
    twice = await api.post(
        f"/approvals/{approval['approval_id']}", json={"approve": True}, headers=auth()
    )
    assert_problem(twice, 409)
    assert ops.names() == ["unlink"]


async def test_someone_elses_approval_or_account_is_not_found(
    api, deps, ops, new_identity, link, pool
):
    me, other = await new_identity(), await new_identity()
    theirs = await link(other, "youtube", "theirs")
    await connect(deps, me, api)
    assert_problem(await api.delete(f"/accounts/{theirs.ref}", headers=auth()), 400)
    await connect(deps, other, api, subject="app-user-other")
    asked = await api.delete(f"/accounts/{theirs.ref}", headers=auth("app-user-other"))
    approval_id = asked.json()["approval_id"]
    stolen = await api.post(f"/approvals/{approval_id}", json={"approve": True}, headers=auth())
    assert_problem(stolen, 404)
    assert ops.names() == []
    assert await account_store.list_for_owner(
        pool, workspace_id=other.workspace_id, owner_id=other.chat_user_id
    )


async def test_several_workspaces_need_the_workspace_parameter(api, deps, new_identity, link):
    first, second = await new_identity(), await new_identity()
    await link(second, "youtube", "second-ws")
    await connect(deps, first, api)
    await connect(deps, second, api)
    listed = (await api.get("/identity", headers=auth())).json()["workspaces"]
    assert {w["workspace"] for w in listed} == {first.workspace_id, second.workspace_id}
    body = assert_problem(await api.get("/accounts", headers=auth()), 400)
    assert "workspace" in body["detail"]
    chosen = await api.get(f"/accounts?workspace={second.workspace_id}", headers=auth())
    assert [a["handle"] for a in chosen.json()["accounts"]] == ["second-ws"]
    assert_problem(await api.get("/accounts?workspace=999999999", headers=auth()), 403)


async def test_rate_limit_answers_429_with_retry_after(make_client, deps, redis, new_identity):
    limited = replace(deps, budgets=real_budgets(redis, deps.platforms))
    me = await new_identity()
    async with make_client(limited) as api:
        await connect(limited, me, api)
        statuses = [(await api.get("/posts", headers=auth())).status_code for _ in range(21)]
        assert statuses[:20] == [200] * 20  # the chat limit: 20 messages a minute
        refused = await api.get("/posts", headers=auth())
    body = assert_problem(refused, 429)
    assert "slow down" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_metrics_are_the_normalized_figures(api, deps, ops, new_identity, link):
    me = await new_identity()
    account = await link(me, "youtube", "creator")
    as_of = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    figures = {Metric.VIEWS: Figure(1204.0, "views"), Metric.LIKES: Figure(31.0, "likes")}
    ops.report = MetricsReport(
        as_of=as_of,
        accounts=[
            (
                account.ref,
                AccountMetrics(
                    "youtube", "ext", date(2026, 11, 23), date(2026, 11, 29), as_of, figures
                ),
            )
        ],
    )
    await connect(deps, me, api)
    got = await api.get("/metrics?platform=youtube&period=7d", headers=auth())
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["accounts"] == [
        {
            "platform": "youtube",
            "account": account.ref,
            "as_of": "2026-11-30T06:00:00Z",
            "figures": {Metric.VIEWS.value: 1204.0, Metric.LIKES.value: 31.0},
        }
    ]
    assert ops.calls[-1][1]["days"] == 7
    bad = assert_problem(await api.get("/metrics?period=1y", headers=auth()), 400)
    assert "Period must be one of" in bad["detail"]  # the action's own refusal


async def test_posts_quota_captions_and_digests(api, deps, new_identity, link, pool):
    me = await new_identity()
    await connect(deps, me, api)
    assert (await api.get("/posts", headers=auth())).json() == {"posts": []}
    assert (await api.get("/quota", headers=auth())).json() == {"budgets": []}  # NoLimits
    ideas = await api.post(
        "/captions",
        json={"platform": "youtube", "description": "a timelapse of a city at night"},
        headers=auth(),
    )
    assert ideas.status_code == 200, ideas.text
    assert ideas.json()["platform"] == "YouTube" and len(ideas.json()["captions"]) == 3
    assert_problem(
        await api.post(
            "/captions", json={"platform": "nowhere", "description": "x"}, headers=auth()
        ),
        400,
    )
    assert (await api.get("/digests", headers=auth())).json() == {"digests": []}
    refused = await api.put("/digests/general", json={"time": "08:30"}, headers=auth())
    assert "from inside that channel" in assert_problem(refused, 400)["detail"]
    assert_problem(await api.delete("/digests/general", headers=auth()), 400)


async def test_digest_set_up_in_chat_can_be_retimed_after_approval(api, deps, new_identity, pool):
    from storage import digests as digest_store

    me = await new_identity()
    await connect(deps, me, api)
    await digest_store.upsert(
        pool,
        workspace_id=me.workspace_id,
        channel_id="general",
        local_time=datetime(2026, 1, 1, 9, 0).time(),
        time_zone="UTC",
        created_by=me.chat_user_id,
    )
    asked = await api.put(
        "/digests/general", json={"time": "07:15", "zone": "Europe/Paris"}, headers=auth()
    )
    assert asked.status_code == 202, asked.text
    listed = (await api.get("/digests", headers=auth())).json()["digests"]
    assert listed == [{"channel": "general", "time": "09:00", "zone": "UTC"}]  # not yet
    approve = {"approve": True}
    await api.post(f"/approvals/{asked.json()['approval_id']}", json=approve, headers=auth())
    listed = (await api.get("/digests", headers=auth())).json()["digests"]
    assert listed == [{"channel": "general", "time": "07:15", "zone": "Europe/Paris"}]


async def test_uploads_take_only_public_https_links(api, deps, new_identity, link):
    me = await new_identity()
    await link(me, "youtube", "creator")
    await connect(deps, me, api)
    for url, status in [
        ("http://example.com/clip.mp4", 400),
        ("file:///etc/passwd", 400),
        ("https://127.0.0.1/clip.mp4", 422),
        ("https://[::1]/clip.mp4", 422),
        ("https://169.254.169.254/latest/meta-data", 422),
    ]:
        answer = await api.post("/uploads", json={"url": url, "title": "T"}, headers=auth())
        assert_problem(answer, status)
    assert (
        await approval_store.list_waiting(
            deps.pool, workspace_id=me.workspace_id, chat_user_id=me.chat_user_id, action="upload"
        )
        == []
    )


async def test_validation_errors_are_problems_too(api, deps, new_identity):
    me = await new_identity()
    await connect(deps, me, api)
    body = assert_problem(await api.post("/captions", json={"description": 5}, headers=auth()), 422)
    assert "platform" in body["detail"]


async def test_openapi_describes_real_schemas(api):
    doc = (await api.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in [
        "/api/v1/accounts",
        "/api/v1/accounts/{account_id}",
        "/api/v1/approvals/{approval_id}",
        "/api/v1/metrics",
        "/api/v1/posts",
        "/api/v1/uploads",
        "/api/v1/digests",
        "/api/v1/digests/{channel}",
        "/api/v1/quota",
        "/api/v1/captions",
        "/api/v1/identity/claim",
    ]:
        assert path in paths, path
    schemas = doc["components"]["schemas"]
    assert {"Accounts", "Approval", "Metrics", "Posts", "Problem", "Quota", "Captions"} <= set(
        schemas
    )
    ok = paths["/api/v1/accounts"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/Accounts"}
    assert (
        "application/problem+json"
        in paths["/api/v1/accounts"]["get"]["responses"]["401"]["content"]
    )
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    page = await api.get("/docs")
    assert page.status_code == 200 and "/api/v1/openapi.json" in page.text


def form_body(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart/form-data body: (field, file name or None, content) parts."""
    out = bytearray()
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: video/mp4\r\n"
        out += b"\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


async def chunked(data: bytes, size: int = 64 * 1024) -> Any:
    """`data` as a streamed body with no Content-Length (chunked)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def waiting_uploads(deps, me) -> list[Any]:
    return await approval_store.list_waiting(
        deps.pool, workspace_id=me.workspace_id, chat_user_id=me.chat_user_id, action="upload"
    )


async def test_a_file_in_the_request_is_written_to_disk_and_waits_for_approval(
    api, deps, ops, new_identity, link, upload_dir
):
    me = await new_identity()
    account = await link(me, "youtube", "creator")
    await connect(deps, me, api)
    video = secrets.token_bytes(700_000)
    answer = await api.post(
        "/uploads",
        files={"file": ("../../etc/My clip.mp4", video, "video/mp4")},
        data={"title": "From the app", "tags": "one, two", "privacy": "private"},
        headers=auth(),
    )
    assert answer.status_code == 202, answer.text
    approval = answer.json()
    assert "Upload 'My clip.mp4'" in approval["summary"] and "From the app" in approval["summary"]
    [pending] = await waiting_uploads(deps, me)
    source = pending.args["source"]
    assert source["kind"] == "file" and source["size"] == len(video)
    assert source["mime_type"] == "video/mp4"
    [stored] = list(upload_dir.iterdir())
    assert str(stored) == source["path"] and stored.read_bytes() == video
    assert pending.args["account"] == account.ref and pending.args["tags"] == ["one", "two"]
    assert ops.names() == []  # nothing uploaded before the approval


async def test_a_file_over_the_cap_is_413_with_or_without_a_length_and_leaves_nothing(
    api, deps, new_identity, link, upload_dir
):
    me = await new_identity()
    await link(me, "youtube", "creator")
    await connect(deps, me, api)
    boundary = "b" + secrets.token_hex(8)
    body = form_body(
        boundary,
        [("title", None, b"Too big"), ("file", "big.mp4", secrets.token_bytes(UPLOAD_CAP + 1))],
    )
    # Far over: refused from Content-Length alone; just over: refused as the bytes arrive.
    far_over = form_body(boundary, [("file", "huge.mp4", bytes(2 * UPLOAD_CAP))])
    headers = {**auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    for sent in (far_over, body):  # with a Content-Length
        answer = await api.post("/uploads", content=sent, headers=headers)
        assert "MB this server accepts" in assert_problem(answer, 413)["detail"]
    streamed = await api.post("/uploads", content=chunked(body), headers=headers)  # no length
    assert "MB this server accepts" in assert_problem(streamed, 413)["detail"]
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []
    assert await waiting_uploads(deps, me) == []
    just_fits = form_body(boundary, [("file", "ok.mp4", secrets.token_bytes(UPLOAD_CAP))])
    fits = await api.post("/uploads", content=chunked(just_fits), headers=headers)
    assert fits.status_code == 202, fits.text


async def test_a_refused_file_upload_leaves_no_file_and_no_approval(
    api, deps, new_identity, link, upload_dir
):
    me = await new_identity()
    await link(me, "youtube", "creator")
    boundary = "b" + secrets.token_hex(8)
    headers = {**auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    video = ("file", "clip.mp4", b"\x00" * 1000)
    # Not connected yet: refused before the body is read.
    assert_problem(
        await api.post("/uploads", content=form_body(boundary, [video]), headers=headers), 403
    )
    await connect(deps, me, api)
    cases = [
        (form_body(boundary, [("title", None, b"no file")]), 400),
        (form_body(boundary, [("file", "empty.mp4", b"")]), 400),
        (form_body(boundary, [video, ("file", "second.mp4", b"x")]), 400),
        (form_body(boundary, [video, ("privacy", None, b"everyone")]), 400),  # YouTube refuses
        (form_body(boundary, [video, ("account", None, b"nobody")]), 400),
        (form_body(boundary, [video, ("title", None, b"x" * 501)]), 422),
        (form_body(boundary, [video])[:-40], 400),  # cut short
    ]
    for body, status in cases:
        assert_problem(await api.post("/uploads", content=body, headers=headers), status)
    other = await api.post(
        "/uploads", content=b"raw bytes", headers={**auth(), "Content-Type": "video/mp4"}
    )
    assert_problem(other, 415)
    assert not upload_dir.exists() or list(upload_dir.iterdir()) == []
    assert await waiting_uploads(deps, me) == []


async def test_a_streamed_upload_never_holds_the_file_in_memory(tmp_path):
    """32 MB through UploadStore with Python's allocations traced: the peak stays far
    below the file's size (pieces go to disk as they arrive)."""
    size = 32 * 1024 * 1024
    boundary = b"xyzzy"

    async def body() -> Any:
        yield b'--xyzzy\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        piece = b"v" * (64 * 1024)
        for _ in range(size // len(piece)):
            yield bytes(piece)
        yield b"\r\n--xyzzy--\r\n"

    store = UploadStore(directory=tmp_path / "up", max_bytes=size)
    tracemalloc.start()
    try:
        received = await store.receive(boundary=boundary, body=body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received.size == size and received.path.stat().st_size == size
    assert peak < size // 8, peak


async def test_the_purge_sweeps_received_files_nothing_needs(
    api, deps, new_identity, link, upload_dir, pool
):
    me = await new_identity()
    await link(me, "youtube", "creator")
    await connect(deps, me, api)
    answer = await api.post(
        "/uploads", files={"file": ("clip.mp4", b"v" * 5000, "video/mp4")}, headers=auth()
    )
    assert answer.status_code == 202, answer.text
    [kept] = list(upload_dir.iterdir())
    orphan, fresh = upload_dir / "orphan.upload", upload_dir / "fresh.upload"
    orphan.write_bytes(b"x")
    fresh.write_bytes(b"y")
    hours_ago = time.time() - 7200
    for path in (kept, orphan):
        os.utime(path, (hours_ago, hours_ago))
    store = UploadStore(directory=upload_dir, max_bytes=UPLOAD_CAP)

    async def sweep() -> int:
        in_use = await upload_files.paths_in_use(pool, under=str(upload_dir))
        return await store.sweep(in_use, older_than=3600)

    assert await sweep() == 1  # the old orphan; the awaited approval's file and a new one stay
    assert sorted(p.name for p in upload_dir.iterdir()) == sorted([kept.name, fresh.name])
    rejected = await api.post(
        f"/approvals/{answer.json()['approval_id']}", json={"approve": False}, headers=auth()
    )
    assert rejected.status_code == 200, rejected.text
    assert await sweep() == 1 and [p.name for p in upload_dir.iterdir()] == [fresh.name]


async def test_uploads_are_documented_as_json_or_a_form_and_json_is_capped(api, deps, new_identity):
    doc = (await api.get("/openapi.json")).json()
    body = doc["paths"]["/api/v1/uploads"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["required"] == ["url"]
    form = body["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    assert "413" in doc["paths"]["/api/v1/uploads"]["post"]["responses"]
    me = await new_identity()
    await connect(deps, me, api)
    huge = {"url": "https://example.com/clip.mp4", "description": "x" * 70_000}
    assert_problem(await api.post("/uploads", json=huge, headers=auth()), 413)
    assert_problem(
        await api.post(
            "/uploads", content=b"{nope", headers={**auth(), "Content-Type": "application/json"}
        ),
        422,
    )
