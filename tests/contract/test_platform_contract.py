"""The contract every registered platform meets, run against each platform's fake.

Each platform is built by its plug-in with the production HTTP client factory, and
driven through the production PlatformOps on real Postgres and Redis: link (consent,
code exchange, profile), refresh, metrics (batched as declared, missing posts left
out, quota charged), upload (a transient failure mid-upload is absorbed in the same
call, exactly one post, quota charged as declared) and capabilities honoured before
any approval is offered.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.actions import EXECUTORS
from agent.actions.base import ActionError
from agent.actions.metrics import days_text, get_metrics
from agent.actions.upload import request_upload
from agent.context import ActionContext, AgentConfig, Deps
from agent.ops import PlatformOps
from agent.ports import Linked
from integrations.base import SocialPlatform, UploadRequest
from integrations.capabilities import PRIVACY_WORDS
from integrations.http import Guards, make_client
from integrations.registry import PLUGINS, Platforms
from storage import approvals
from storage.identity import Identity
from tests.chat_fixtures import real_budgets, upload_now, used
from tests.contract.harnesses import HARNESSES, Harness
from tests.fakes.platforms import build, directory

NAMES = [p.name for p in PLUGINS]


def test_every_registered_platform_has_a_harness() -> None:
    assert sorted(HARNESSES) == sorted(NAMES)


@dataclass
class World:
    harness: Harness
    platform: SocialPlatform
    platforms: Platforms
    ops: PlatformOps
    deps: Deps
    who: Identity


@pytest.fixture(params=NAMES)
async def world(request, pool, redis, cipher, new_identity) -> AsyncIterator[World]:
    async with HARNESSES[request.param]() as harness:
        guards = Guards(max_concurrency=4, failure_threshold=5, cooldown=1.0)
        http = make_client(platform=request.param, guards=guards)
        async with http:
            platform = build(harness.plugin, http, **harness.settings)
            harness.attach(platform)
            platforms = directory(platform)
            config = AgentConfig(public_base_url="https://bot.example.com")
            budgets = real_budgets(redis, platforms)
            ops = PlatformOps(
                pool=pool, cipher=cipher, platforms=platforms, budgets=budgets, config=config
            )
            deps = Deps(
                pool=pool,
                redis=redis,
                cipher=cipher,
                config=config,
                platforms=platforms,
                budgets=budgets,
                ops=ops,
                executors=EXECUTORS,
            )
            # A shell user: no chat sign-in applies, so the link completes in one browser.
            who = await new_identity(frontend="local")
            yield World(harness, platform, platforms, ops, deps, who)


async def _link(world: World) -> str:
    """The OAuth link as a person does it; returns the new account's ref."""
    name = world.platform.capabilities.name
    url = await world.ops.start_link(world.who, name, reply_to={})
    state = url.rsplit("s=", 1)[1]
    browser = await world.ops.bind_browser(name, state)
    consent = await world.ops.consent_url(name, state)
    code = await world.harness.consent(consent)
    done = await world.ops.complete_link(
        name, state=state, code=code, error=None, browser_secret=browser.browser_secret
    )
    assert isinstance(done.outcome, Linked), done.outcome
    assert done.outcome.account.external_id == world.harness.account_external_id
    return done.outcome.account.ref


async def test_link_and_refresh(world: World, pool, cipher) -> None:
    ref = await _link(world)
    caps = world.platform.capabilities
    assert ref.startswith(f"{caps.account_prefix}-")
    from storage import accounts

    account = await accounts.get_by_ref(
        pool, workspace_id=world.who.workspace_id, ref=ref, owner_id=world.who.chat_user_id
    )
    assert account is not None and not account.handle.startswith("@")
    stale = await world.ops.credentials.fresh_token(account)
    fresh = await world.platform.refresh(stale)
    assert fresh.access_token and fresh.access_token != stale.access_token
    profile = await world.platform.profile(fresh)
    assert profile.external_id == world.harness.account_external_id


async def test_metrics_are_batched_skip_missing_posts_and_charge_the_declared_cost(
    world: World,
) -> None:
    ref = await _link(world)
    limits = world.platform.capabilities.metrics
    n = 2 * limits.max_ids_per_call + 1
    ids = world.harness.add_posts(n)
    before = world.harness.figure_reads()
    token = await world.ops.credentials.fresh_token(
        await world.ops._account(world.who, ref)  # the same token PlatformOps would use
    )
    found = await world.platform.post_metrics(token, ids)
    assert sorted(m.post_id for m in found) == sorted(ids)
    batches = math.ceil(n / limits.max_ids_per_call)
    assert world.harness.figure_reads() - before <= batches * world.harness.reads_per_batch

    gone = await world.platform.post_metrics(token, [ids[0], "0" * 17])
    assert [m.post_id for m in gone] == [ids[0]]

    report = await world.ops.metrics(world.who, days=min(7, limits.max_period_days))
    assert not report.unavailable, report.unavailable
    [(account_ref, _)] = report.accounts
    assert account_ref == ref
    spec = world.platform.capabilities.quota
    per_app = {c.name for c in spec.counters if not c.per_account}
    expected: dict[str, int] = {}
    recent = math.ceil(world.ops.recent_posts_limit / limits.recent_page_size)
    posts_read = min(world.ops.recent_posts_limit, n)
    for op, times in (
        ("recent_posts", recent),
        ("post_metrics", math.ceil(posts_read / limits.max_ids_per_call)),
        ("account_metrics", 1),
    ):
        for counter, amount in spec.cost(op, times).items():
            if counter in per_app:
                expected[counter] = expected.get(counter, 0) + amount
    charged = await used(world.deps.budgets, world.platform.capabilities.name)
    assert {k: v for k, v in charged.items() if v} == expected


async def test_upload_survives_a_transient_failure_in_the_same_call_exactly_once(
    world: World, tmp_path: Path
) -> None:
    ref = await _link(world)
    caps = world.platform.capabilities
    path = tmp_path / "clip.mp4"
    data = os.urandom(700 * 1024)
    path.write_bytes(data)
    world.harness.cut_next_upload()
    request = UploadRequest(title="Contract clip", privacy=caps.privacy.default)
    key = "contract-" + secrets.token_hex(4)
    outcome = await upload_now(
        world.ops,
        world.who,
        account_ref=ref,
        source={"kind": "file", "path": str(path)},
        request=request,
        idempotency_key=key,
    )
    assert world.harness.published() == [outcome.result.post_id]
    again = await upload_now(
        world.ops,
        world.who,
        account_ref=ref,
        source={"kind": "file", "path": str(path)},
        request=request,
        idempotency_key=key,
    )
    assert again.result.post_id == outcome.result.post_id
    assert len(world.harness.published()) == 1
    charged = await used(world.deps.budgets, caps.name)
    per_app = {c.name for c in caps.quota.counters if not c.per_account}
    upload_cost = {k: v for k, v in caps.quota.cost("upload").items() if k in per_app}
    assert {k: v for k, v in charged.items() if v and k in upload_cost} == upload_cost


async def test_capabilities_are_honoured_before_any_approval(world: World, pool) -> None:
    ref = await _link(world)
    caps = world.platform.capabilities
    ctx = ActionContext(identity=world.who, deps=world.deps)
    source = {"kind": "file", "path": "/nowhere/clip.mp4", "size": 10}
    refused_privacy = next(w for w in PRIVACY_WORDS if w not in caps.privacy.values)
    with pytest.raises(ActionError, match=caps.display_name):
        await request_upload(
            ctx,
            platform=caps.name,
            account=ref,
            source=source,
            source_name="clip.mp4",
            title="Fine",
            privacy=refused_privacy,
        )
    limit = caps.caption_rules.body_max_chars
    assert limit is not None
    with pytest.raises(ActionError, match="problems"):
        await request_upload(
            ctx,
            platform=caps.name,
            account=ref,
            source=source,
            source_name="clip.mp4",
            title="Fine",
            description="x" * (limit + 1),
        )
    pending = await pool.fetchval(
        "SELECT count(*) FROM pending_actions WHERE chat_user_id = $1", world.who.chat_user_id
    )
    assert pending == 0  # nothing was offered for approval
    if caps.metrics.max_period_days < 90:
        reads = world.harness.figure_reads()
        longest = days_text(caps.metrics.max_period_days)
        with pytest.raises(ActionError, match=f"at most {longest}"):
            await get_metrics(ctx, platform=caps.name, period="90d")
        assert world.harness.figure_reads() == reads
    # Asked for no period: every platform answers, as far back as it reports.
    answer = await get_metrics(ctx, platform=caps.name)
    assert "unavailable" not in answer.text and caps.display_name in answer.text, answer.text
    # The request the platform can carry out is offered, with its default privacy.
    offered = await request_upload(
        ctx,
        platform=caps.name,
        account=ref,
        source=source,
        source_name="clip.mp4",
        title="Fine",
    )
    assert offered.approval is not None
    stored = await approvals.get(pool, action_id=offered.approval.action_id)
    assert stored is not None and stored.args["privacy"] == caps.privacy.default
