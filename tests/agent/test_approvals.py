"""Approvals: only the requester, only once, only in time, only the exact arguments."""

from __future__ import annotations

import json
import re

import pytest

from agent.actions import accounts, approvals, upload
from agent.actions.base import ActionError
from tests.chat_fixtures import action_ctx
from tests.fakes.chatops import FakeOps


async def _propose_upload(make_deps, new_identity, link, ops):
    ident = await new_identity()
    acct = await link(ident, "youtube", "me")
    deps = make_deps(ops=ops)
    ctx = action_ctx(ident, deps)
    outcome = await upload.request_upload(
        ctx,
        platform="youtube",
        account=None,
        source={"kind": "file", "path": "/tmp/clip.mp4", "token": "leak"},
        source_name="clip.mp4",
        title="My clip",
    )
    assert outcome.approval is not None
    return ident, acct, deps, ctx, outcome.approval.action_id


async def test_approve_runs_the_stored_action_once(make_deps, new_identity, link, pool):
    ops = FakeOps(allow={"upload"})
    _ident, acct, _deps, ctx, action_id = await _propose_upload(make_deps, new_identity, link, ops)
    assert ops.calls == []  # proposing executes nothing

    first = await approvals.resolve(ctx, action_id, approved=True)
    second = await approvals.resolve(ctx, action_id, approved=True)

    assert first.startswith("Queued as job")
    assert second == approvals.REFUSALS["already_decided"]
    assert ops.names() == ["upload"]
    call = ops.calls[0][1]
    assert call["account_ref"] == acct.ref
    assert call["source"] == {
        "kind": "file",
        "path": "/tmp/clip.mp4",
    }  # credential-like key dropped
    assert call["request"].title == "My clip" and call["request"].privacy == "private"
    assert call["idempotency_key"] == f"approval:{action_id}"
    status = await pool.fetchval(
        "SELECT status FROM pending_actions WHERE id = $1::uuid", action_id
    )
    assert status == "done"
    # The post row, the job's row and the engine's job were written together.
    run = await pool.fetchrow(
        "SELECT r.id, r.state, r.post_id, p.idempotency_key FROM job_runs r"
        " JOIN posts p ON p.id = r.post_id WHERE p.idempotency_key = $1",
        f"approval:{action_id}",
    )
    assert run["state"] == "queued" and f"job {run['id']}" in first
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pgqueuer WHERE dedupe_key = $1", f"upload:{run['post_id']}"
        )
        == 1
    )


async def test_wrong_user_cannot_approve(make_deps, new_identity, link, pool):
    ops = FakeOps()
    ident, _, deps, _, action_id = await _propose_upload(make_deps, new_identity, link, ops)
    other = await new_identity(workspace=ident.workspace_external_id)
    assert other.workspace_id == ident.workspace_id and other.chat_user_id != ident.chat_user_id

    text = await approvals.resolve(action_ctx(other, deps), action_id, approved=True)

    assert text == approvals.REFUSALS["wrong_user"]
    assert ops.calls == []
    assert (
        await pool.fetchval("SELECT status FROM pending_actions WHERE id = $1::uuid", action_id)
        == "pending"
    )


async def test_other_workspace_sees_not_found(make_deps, new_identity, link):
    ops = FakeOps()
    _, _, deps, _, action_id = await _propose_upload(make_deps, new_identity, link, ops)
    stranger = await new_identity()
    text = await approvals.resolve(action_ctx(stranger, deps), action_id, approved=True)
    assert text == approvals.REFUSALS["not_found"]
    assert ops.calls == []


async def test_expired_is_refused(make_deps, new_identity, link, pool):
    ops = FakeOps()
    _, _, _, ctx, action_id = await _propose_upload(make_deps, new_identity, link, ops)
    await pool.execute(
        "UPDATE pending_actions SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
        action_id,
    )
    assert await approvals.resolve(ctx, action_id, approved=True) == approvals.REFUSALS["expired"]
    assert ops.calls == []


async def test_changed_arguments_are_refused(make_deps, new_identity, link, pool):
    ops = FakeOps()
    _, _, _, ctx, action_id = await _propose_upload(make_deps, new_identity, link, ops)
    row = await pool.fetchval("SELECT args FROM pending_actions WHERE id = $1::uuid", action_id)
    args = json.loads(row)
    args["privacy"] = "public"
    await pool.execute(
        "UPDATE pending_actions SET args = $2::jsonb WHERE id = $1::uuid",
        action_id,
        json.dumps(args),
    )

    text = await approvals.resolve(ctx, action_id, approved=True)

    assert "changed" in text and "nothing was done" in text
    assert ops.calls == []
    assert (
        await pool.fetchval("SELECT status FROM pending_actions WHERE id = $1::uuid", action_id)
        == "failed"
    )


async def test_reject_then_approve_executes_nothing(make_deps, new_identity, link):
    ops = FakeOps()
    _, _, _, ctx, action_id = await _propose_upload(make_deps, new_identity, link, ops)
    assert (await approvals.resolve(ctx, action_id, approved=False)).startswith("Cancelled")
    assert (
        await approvals.resolve(ctx, action_id, approved=True)
        == approvals.REFUSALS["already_decided"]
    )
    assert ops.calls == []


async def test_garbage_action_id_is_not_found(make_deps, new_identity):
    ident = await new_identity()
    ctx = action_ctx(ident, make_deps(ops=FakeOps()))
    assert (
        await approvals.resolve(ctx, "not-a-uuid", approved=True) == approvals.REFUSALS["not_found"]
    )


async def test_unlink_requires_approval_then_unlinks(make_deps, new_identity, link):
    ops = FakeOps(allow={"unlink"})
    ident = await new_identity()
    acct = await link(ident, "instagram", "insta_me")
    ctx = action_ctx(ident, make_deps(ops=ops))
    outcome = await accounts.request_unlink(ctx, platform="instagram", account=None)
    assert outcome.approval is not None and ops.calls == []
    text = await approvals.resolve(ctx, outcome.approval.action_id, approved=True)
    assert "Unlinked Instagram" in text
    assert ops.calls == [("unlink", {"identity": ident, "account_ref": acct.ref})]


async def test_upload_checks_platform_limits_before_asking(make_deps, new_identity, link, pool):
    ident = await new_identity()
    await link(ident, "youtube", "me")
    ctx = action_ctx(ident, make_deps(ops=FakeOps()))
    src = {"kind": "file", "path": "/tmp/c.mp4"}
    cases = [
        ({"title": "x" * 101}, "title over 100 characters"),
        ({"title": "ok", "tags": ["t" * 60] * 10}, "tags over 500 characters"),
        ({"title": "a <b> title"}, "contains '<'"),
        ({"title": "ok", "privacy": "secret"}, "YouTube privacy must be one of"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(ActionError, match=re.escape(expected)):
            await upload.request_upload(
                ctx, platform="youtube", account=None, source=src, source_name="c.mp4", **kwargs
            )
    count = await pool.fetchval(
        "SELECT count(*) FROM pending_actions WHERE workspace_id = $1", ident.workspace_id
    )
    assert count == 0
