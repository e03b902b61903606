"""PlatformOps: linking URLs, unlink with revoke, metrics with snapshots and quota."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.base import Metric
from integrations.errors import NotConfigured
from storage import accounts, metrics, oauth_states
from tests.chat_fixtures import ops_for, real_budgets, upload_now, used


async def test_configured_lists_platforms(deps):
    assert ops_for(deps).configured() == ["youtube"]


async def test_start_link_stores_a_hashed_state(deps, identity, pool):
    url = await ops_for(deps).start_link(identity, "youtube", reply_to={"channel": "C1"})
    assert url.startswith("http://testserver/oauth/youtube/start?s=")
    state = parse_qs(urlsplit(url).query)["s"][0]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM oauth_states WHERE state_hash = $1", state.encode()
        )
        == 0
    )  # never stored raw
    pending = await oauth_states.peek(pool, state=state, platform="youtube")
    assert pending is not None and pending.chat_user_id == identity.chat_user_id
    assert pending.reply_to == {"channel": "C1"}
    ttl = (pending.expires_at - await pool.fetchval("SELECT now()")).total_seconds()
    assert 590 < ttl <= 600


async def test_start_link_for_unconfigured_platform(deps, identity):
    with pytest.raises(NotConfigured):
        await ops_for(deps).start_link(identity, "instagram", reply_to={})


async def test_unlink_revokes_and_deletes(deps, google, identity, link_account, pool):
    account, _, raw = await link_account(identity)
    handle = await ops_for(deps).unlink(identity, account.ref)
    assert handle == account.handle
    assert google.revoked == [raw["refresh_token"]]
    assert await accounts.get_by_id(pool, account.id) is None


async def test_metrics_batches_calls_stores_snapshots_and_charges(
    deps, google, identity, link_account, pool, redis
):
    account, channel, _ = await link_account(identity)
    for i in range(12):
        google.add_video(channel, title=f"v{i}", views=10 * i)
    deps = replace(deps, budgets=real_budgets(redis, deps.platforms))
    report = await ops_for(deps).metrics(identity, days=7)
    assert not report.unavailable
    [(ref, acct)] = report.accounts
    assert ref == account.ref
    assert acct.value(Metric.VIEWS) == sum(10 * (i + 1) for i in range(7))
    assert len(acct.series) == 7
    assert len(report.posts) == 10  # the 10 most recent uploads
    assert len(google.calls_to("/videos")) == 1  # one batched statistics call
    assert len(google.calls_to("/playlistItems")) == 1
    assert await used(deps.budgets, "youtube") == {"units": 2, "uploads": 0}
    source = await pool.fetchval(
        "SELECT metrics->'views'->>'source' FROM metric_snapshots"
        " WHERE account_id = $1 AND platform_post_id = $2",
        account.id,
        report.posts[0][1].post_id,
    )
    assert source == "statistics.viewCount"
    period_rows = await pool.fetchval(
        "SELECT count(*) FROM metric_snapshots WHERE account_id = $1 AND platform_post_id IS NULL",
        account.id,
    )
    assert period_rows == 1
    # Each day of the series is kept for digests' deltas and chart; a second read of
    # one day keeps the days it does not cover.
    days = await metrics.days_between(
        pool, account_ids=[account.id], first=acct.start, last=acct.end
    )
    assert [(d.day, d.metrics["views"]["value"]) for d in days] == [
        (day, figures[Metric.VIEWS].value) for day, figures in acct.series
    ]
    one = await ops_for(deps).metrics(identity, days=1)
    [(_, yesterday)] = one.accounts
    stored = await metrics.days_between(
        pool, account_ids=[account.id], first=acct.start, last=acct.end
    )
    assert len(stored) == 7
    assert stored[-1].day == yesterday.end
    assert stored[-1].metrics["views"]["value"] == yesterday.value(Metric.VIEWS)


async def test_metrics_partial_when_quota_is_spent(deps, google, identity, link_account, redis):
    await link_account(identity)
    deps = replace(deps, budgets=real_budgets(redis, deps.platforms, youtube={"units": 1}))
    assert (await deps.budgets.reserve("youtube", None, {"units": 1})).allowed  # spent
    report = await ops_for(deps).metrics(identity)
    assert report.accounts == []
    assert "quota" in report.unavailable["youtube"]
    assert not google.calls_to("/playlistItems")


async def test_metrics_for_one_post(deps, google, identity, link_account):
    _, channel, _ = await link_account(identity)
    video = google.add_video(channel, views=42)
    report = await ops_for(deps).metrics(identity, post_id=video)
    assert [m.post_id for _, m in report.posts] == [video]
    assert report.posts[0][1].value(Metric.VIEWS) == 42
    assert not google.calls_to("/playlistItems")


async def test_metrics_rejects_silly_periods(deps, identity):
    from integrations.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        await ops_for(deps).metrics(identity, days=0)


async def test_needs_relink_account_is_reported_not_called(
    deps, google, identity, link_account, pool
):
    account, _, _ = await link_account(identity)
    await accounts.mark_needs_relink(pool, account.id)
    report = await ops_for(deps).metrics(identity)
    assert "link youtube" in report.unavailable["youtube"]
    assert not google.calls


async def test_a_ref_from_another_workspace_is_not_found_for_every_operation(
    deps, google, make_identity, link_account, pool, tmp_path
):
    """PlatformOps re-checks tenancy itself (workspace and owner), whatever the caller did:
    another workspace's ref, or another user's in the same workspace, reaches no platform."""
    from integrations.base import UploadRequest
    from integrations.errors import NotFound

    owner = await make_identity()
    account, _, _ = await link_account(owner)
    intruders = [
        await make_identity(),  # another workspace
        await make_identity(workspace=owner.workspace_external_id),  # same one, another user
    ]
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 1024)
    ops = ops_for(deps)
    calls_before = len(google.calls)
    for intruder in intruders:
        with pytest.raises(NotFound):
            await ops.unlink(intruder, account.ref)
        with pytest.raises(NotFound):
            await ops.metrics(intruder, account_ref=account.ref)
        with pytest.raises(NotFound):
            await upload_now(
                ops,
                intruder,
                account_ref=account.ref,
                source={"kind": "file", "path": str(clip), "size": 1024},
                request=UploadRequest(title="x", privacy="private"),
                idempotency_key=f"tenancy-{intruder.chat_user_id}",
            )
    assert len(google.calls) == calls_before and google.revoked == []
    assert await accounts.get_by_id(pool, account.id) is not None
    assert await pool.fetchval("SELECT count(*) FROM posts WHERE account_id = $1", account.id) == 0
