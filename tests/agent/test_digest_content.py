"""Digest content: changes since the latest earlier stored day (across a missing day),
the first digest, the chart's data, and the insight guard against invented numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from agent.context import AgentConfig, Deps
from agent.digest_insights import MAX_OUTPUT_TOKENS, ModelCommentary, guard, numbers
from agent.digests import build_digest
from agent.ports import MetricsReport
from agent.runner import RunnerConfig, build_model
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics
from storage import accounts, digests, identity, metrics
from storage.ratelimit import Budgets, LimitPolicy
from tests.fakes import openai as fake_llm
from tests.fakes.chatops import FakeOps
from tests.fakes.platforms import directory
from tests.fakes.server import serve_asgi

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DAY = date(2026, 11, 24)


async def _setup(pool, redis, cipher, *, commentary=None, relink=False, budgets=None):
    ident = await identity.resolve(
        pool, frontend="slack", workspace_external_id="T1", user_external_id="U1"
    )
    async with pool.acquire() as conn:
        for platform, handle in (("youtube", "chan"), ("instagram", "pics")):
            await accounts.upsert_linked(
                conn,
                cipher=cipher,
                workspace_id=ident.workspace_id,
                owner_id=ident.chat_user_id,
                platform=platform,
                external_id=f"{platform}-1",
                handle=handle,
                scopes=[],
                token={"access_token": "x"},
                expires_at=None,
            )
    owned = await accounts.list_for_owner(
        pool, workspace_id=ident.workspace_id, owner_id=ident.chat_user_id
    )
    yt = next(a for a in owned if a.platform == "youtube")
    ig = next(a for a in owned if a.platform == "instagram")
    if relink:
        await pool.execute(
            "UPDATE linked_accounts SET status = 'needs_relink' WHERE id = $1", ig.id
        )
    figures = {Metric.VIEWS: Figure(1250, "views"), Metric.LIKES: Figure(80, "likes")}
    posts = [
        PostMetrics("youtube", f"v{i}", NOW, {Metric.VIEWS: Figure(v, "views")}, title=f"Clip {i}")
        for i, v in enumerate((300, 900, 50, 700))
    ]
    report = MetricsReport(
        as_of=NOW,
        accounts=[(yt.ref, AccountMetrics("youtube", "youtube-1", DAY, DAY, NOW, figures))],
        posts=[(yt.ref, p) for p in posts],
        unavailable={"instagram": "Instagram did not answer in time"},
    )
    ops = FakeOps(allow={"metrics"}, report=report)
    deps = Deps(
        pool=pool,
        redis=redis,
        cipher=cipher,
        config=AgentConfig(),
        platforms=directory(configured=ops.platforms),
        ops=ops,
        commentary=commentary,
        **({} if budgets is None else {"budgets": budgets}),
    )
    sub = await digests.upsert(
        pool,
        workspace_id=ident.workspace_id,
        channel_id="C1",
        local_time=datetime(2026, 1, 1, 8).time(),
        time_zone="UTC",
        created_by=ident.chat_user_id,
    )
    workspace = await digests.get_workspace(pool, ident.workspace_id)
    assert workspace is not None
    return deps, workspace, sub, yt


def _day(views: float, likes: float) -> dict[str, object]:
    return {
        "views": {"value": views, "source": "views"},
        "likes": {"value": likes, "source": "likes"},
    }


async def test_first_digest_has_nothing_to_compare_with(fresh_pool, redis, cipher):
    deps, workspace, sub, _yt = await _setup(fresh_pool, redis, cipher)
    digest = await build_digest(deps, workspace, sub, now=NOW)
    [section] = digest.accounts
    assert digest.first and section.compared_with is None
    assert all(c.arrow() == "" for c in section.changes)
    assert "First digest: nothing to compare with yet." in digest.text()
    # A platform that is down is named as unavailable; the rest of the digest is there.
    assert ("Instagram", "Instagram did not answer in time") in digest.unavailable
    assert [p.post_id for p in digest.top_posts] == ["v1", "v3", "v0"]


async def test_changes_across_a_missing_day_compare_with_the_latest_earlier_day(
    fresh_pool, redis, cipher
):
    deps, workspace, sub, yt = await _setup(fresh_pool, redis, cipher)
    # Figures for Nov 20 and 21 are stored; none for Nov 22 and 23 (no digest ran).
    await metrics.record_days(
        fresh_pool,
        account_id=yt.id,
        days=[(date(2026, 11, 20), _day(700, 10)), (date(2026, 11, 21), _day(1000, 100))],
        captured_at=NOW - timedelta(days=3),
    )
    digest = await build_digest(deps, workspace, sub, now=NOW)
    [section] = digest.accounts
    assert not digest.first
    assert section.compared_with == date(2026, 11, 21)
    views, likes = section.changes
    assert (views.previous, views.value, views.arrow()) == (1000, 1250, "▲ 25 %")
    assert (likes.previous, likes.arrow()) == (100, "▼ 20 %")
    assert "vs Nov 21 (no figures for the days between)" in digest.text()
    # The chart draws every stored day of the last 14, the gap left as a gap.
    [line] = digest.chart
    assert line.points == [(date(2026, 11, 20), 700.0), (date(2026, 11, 21), 1000.0)]
    assert digest.chart_days == (DAY - timedelta(days=13), DAY)


async def test_a_relink_is_flagged_not_reported_as_an_outage(fresh_pool, redis, cipher):
    deps, workspace, sub, _yt = await _setup(fresh_pool, redis, cipher, relink=True)
    digest = await build_digest(deps, workspace, sub, now=NOW)
    [relink] = digest.relinks
    assert (relink.owner_external_id, relink.platform_title, relink.handle) == (
        "U1",
        "Instagram",
        "pics",
    )
    assert "link instagram" in relink.message
    assert digest.unavailable == []


def test_guard_keeps_numbers_from_the_facts_and_drops_an_invented_one():
    facts = "YouTube @chan: views 1,250 (previous 1,000, change +25.0 %)"
    good = "- Views rose 25 % to 1,250.\n- Up from 1,000.\n- A steady day."
    assert guard(good, facts) == ["Views rose 25 % to 1,250.", "Up from 1,000.", "A steady day."]
    assert guard(good.replace("1,000", "1,100"), facts) is None
    assert guard("- Only one point about 1,250.", facts) is None
    assert numbers("12.50 % of 1,204 and 3") == {"12.5", "1204", "3"}


async def test_model_insights_are_posted_and_an_invented_number_drops_them(
    fresh_pool, redis, cipher
):
    server = fake_llm.ScriptedOpenAI(
        [
            fake_llm.text("- Views rose 25 % to 1,250.\n- Likes fell to 80.\n- Clip 1 led."),
            fake_llm.text("- Views rose 31 % to 1,250.\n- Likes fell to 80.\n- Clip 1 led."),
        ]
    )
    async with serve_asgi(server.app) as base:
        config = RunnerConfig(model="openai:fake-model", base_url=base + "/v1", api_key="sk-t")
        commentary = ModelCommentary(lambda: build_model(config))
        deps, workspace, sub, yt = await _setup(fresh_pool, redis, cipher, commentary=commentary)
        await metrics.record_days(
            fresh_pool,
            account_id=yt.id,
            days=[(DAY - timedelta(days=1), _day(1000, 100))],
            captured_at=NOW,
        )
        kept = await build_digest(deps, workspace, sub, now=NOW)
        dropped = await build_digest(deps, workspace, sub, now=NOW)
    assert kept.insights == ["Views rose 25 % to 1,250.", "Likes fell to 80.", "Clip 1 led."]
    assert "Insights:" in kept.text()
    # The model saw the digest's numbers and nothing else of ours.
    prompt = server.requests[0]["messages"][-1]["content"]
    assert "Views: 1,250 (previous 1,000, change +25.0 %)" in prompt
    assert "sk-t" not in str(server.requests[0])
    assert dropped.insights == [] and "Insights" not in dropped.text()


async def test_insights_are_paid_from_the_workspace_budget_and_skipped_when_it_is_spent(
    fresh_pool, redis, cipher
):
    server = fake_llm.ScriptedOpenAI(
        [fake_llm.text("- Views reached 1,250.\n- Likes reached 80.\n- Clip 1 led.")]
    )
    policy = LimitPolicy("9/minute", "9/minute", 100, 1000)  # the user's day is not asked
    budgets = Budgets(redis=redis, policy=policy, call_timeout=5.0)
    async with serve_asgi(server.app) as base:
        config = RunnerConfig(model="openai:fake-model", base_url=base + "/v1", api_key="sk-t")
        commentary = ModelCommentary(lambda: build_model(config))
        deps, workspace, sub, _yt = await _setup(
            fresh_pool, redis, cipher, commentary=commentary, budgets=budgets
        )
        paid = await build_digest(deps, workspace, sub, now=NOW)
        assert len(paid.insights) == 3
        assert server.requests[0]["max_completion_tokens"] == MAX_OUTPUT_TOKENS
        rows = await budgets.report(workspace_id=workspace.id, chat_user_id=0)
        used = {r.scope: r.used for r in rows if r.counter == "llm_tokens"}
        assert used == {"user": 0, "workspace": 120}  # what the model reported
        # Spend the rest of the workspace's day: the next digest asks no model at all.
        left = await budgets.reserve_tokens(
            workspace_id=workspace.id, chat_user_id=None, tokens=880
        )
        assert left.allowed
        spent = await build_digest(deps, workspace, sub, now=NOW)
    assert spent.insights == [] and len(server.requests) == 1
    assert spent.accounts == paid.accounts  # the digest itself still posts


async def test_without_a_model_the_digest_says_nothing_about_insights(fresh_pool, redis, cipher):
    deps, workspace, sub, _yt = await _setup(fresh_pool, redis, cipher)
    digest = await build_digest(deps, workspace, sub, now=NOW)
    assert digest.insights == [] and "nsight" not in digest.text()


async def test_digest_preview_shows_the_channels_next_digest_privately(fresh_pool, redis, cipher):
    from agent.actions import digest as digest_action
    from agent.actions.base import ActionError
    from agent.commands import Command, parse
    from agent.context import ActionContext

    assert parse("digest preview", directory()) == Command("digest", {"verb": "preview"})
    deps, _workspace, _sub, _yt = await _setup(fresh_pool, redis, cipher)
    ident = await identity.resolve(
        fresh_pool, frontend="slack", workspace_external_id="T1", user_external_id="U1"
    )
    ctx = ActionContext(identity=ident, deps=deps)
    outcome = await digest_action.preview(ctx, current_channel="C1")
    assert "Views" not in outcome.text  # nothing of the figures in public
    assert outcome.private is not None
    assert outcome.private.startswith("Preview of this channel's next digest (Daily digest, ")
    assert "Views 1,250" in outcome.private
    assert "<#C1>" in outcome.text  # the channel as a mention, shown by the front-end
    shown = outcome.private_digest  # what the front-ends lay out as the real digest
    assert shown is not None and shown.text() == outcome.private
    assert shown.chart == [] and shown.notice is not None and "views chart" in shown.notice
    try:
        await digest_action.preview(ctx, current_channel="C2")
    except ActionError as exc:
        assert "<#C2> has no digest" in str(exc)
    else:
        raise AssertionError("a channel without a digest has nothing to preview")


async def test_posts_scheduled_for_the_next_day_are_listed_in_the_digests_zone(
    fresh_pool, redis, cipher
):
    """The members' posts due in the next 24 hours are listed with local times; a post
    due later, and one of an account outside the digest, are not."""
    from bot.digest_layout import discord_message, slack_blocks
    from storage import job_runs, posts

    deps, workspace, sub, yt = await _setup(fresh_pool, redis, cipher)
    await digests.upsert(
        fresh_pool,
        workspace_id=workspace.id,
        channel_id="C1",
        local_time=datetime(2026, 1, 1, 8).time(),
        time_zone="Asia/Tokyo",
        created_by=yt.owner_id,
    )
    sub = await digests.get_subscription(fresh_pool, sub.id)
    for title, due in (("Soon", NOW + timedelta(hours=3)), ("Later", NOW + timedelta(days=2))):
        post, _ = await posts.create_or_get(
            fresh_pool,
            account_id=yt.id,
            platform="youtube",
            idempotency_key=f"k-{title}",
            title=title,
            caption=None,
            source={},
            metadata={},
            bytes_total=None,
            publish_at=due,
        )
        await job_runs.create(
            fresh_pool,
            kind="upload",
            workspace_id=workspace.id,
            chat_user_id=yt.owner_id,
            label=f"upload '{title}'",
            reply_to={},
            post_id=post.id,
        )
    digest = await build_digest(deps, workspace, sub, now=NOW)
    [line] = digest.scheduled
    # 12:00 UTC is 21:00 in Tokyo, on Wednesday Nov 25.
    assert "Soon" in line and line.startswith("Wed 21:00") and "YouTube" in line
    assert "Scheduled for the next 24 hours:" in digest.text()
    slack = str(slack_blocks(digest, chart_attached=False))
    assert "Soon" in slack and "Later" not in slack
    embeds = discord_message(digest, chart_attached=False)["embeds"]
    assert any(f["name"].startswith("Scheduled") for f in embeds[0]["fields"])
