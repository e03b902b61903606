"""Digests show only the accounts of members who opted in to that channel's digest,
are managed by their creator, and are set up only from inside the channel."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.actions import approvals, digest
from agent.actions.base import ActionError
from agent.context import ActionContext
from agent.digests import build_digest
from agent.ports import MetricsReport
from storage import digests
from tests.fakes.chatops import FakeOps

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


async def _approve(ctx: ActionContext, outcome) -> str:
    assert outcome.approval is not None, outcome.text
    return await approvals.resolve(ctx, outcome.approval.action_id, approved=True)


async def test_a_digest_shows_only_opted_in_members_and_only_its_creator_manages_it(
    make_deps, new_identity, link, pool
):
    ops = FakeOps(allow={"metrics"}, report=MetricsReport(as_of=NOW))
    deps = make_deps(ops=ops)
    ada = await new_identity(workspace="T-digest", user="U-ada")
    bob = await new_identity(workspace="T-digest", user="U-bob")
    await link(ada, "youtube", "ada")
    await link(bob, "youtube", "bob")
    as_ada, as_bob = ActionContext(ada, deps), ActionContext(bob, deps)

    # Ada turns it on in #team, from #team.
    await _approve(
        as_ada,
        await digest.request_change(as_ada, enabled=True, channel=None, current_channel="C-team"),
    )
    sub = await digests.get(pool, workspace_id=ada.workspace_id, channel_id="C-team")
    assert sub is not None
    workspace = await digests.get_workspace(pool, ada.workspace_id)
    ops.calls.clear()
    await build_digest(deps, workspace, sub, now=NOW)
    assert {c[1]["identity"].chat_user_id for c in ops.calls} == {ada.chat_user_id}

    # Bob can neither stop nor move Ada's digest...
    with pytest.raises(ActionError, match="Only the person who set up"):
        await digest.request_change(as_bob, enabled=False, channel=None, current_channel="C-team")
    # ...nor point a digest at a channel he is not writing from.
    with pytest.raises(ActionError, match="from inside that channel"):
        await digest.request_change(
            as_bob, enabled=True, channel="<#CSECRET|secret>", current_channel="C-team"
        )

    # Bob opts his own accounts in (with his approval), and then they are in it.
    said = await _approve(
        as_bob,
        await digest.request_membership(as_bob, join=True, channel=None, current_channel="C-team"),
    )
    assert "in <#C-team>'s daily digest" in said  # a mention, shown by the front-end
    ops.calls.clear()
    await build_digest(deps, workspace, sub, now=NOW)
    assert {c[1]["identity"].chat_user_id for c in ops.calls} == {
        ada.chat_user_id,
        bob.chat_user_id,
    }
    await _approve(
        as_bob,
        await digest.request_membership(as_bob, join=False, channel=None, current_channel="C-team"),
    )
    assert await digests.members(pool, subscription_id=sub.id) == [ada.chat_user_id]


async def test_digest_on_without_a_zone_takes_the_requesters_own(make_deps, new_identity, pool):
    """`digest on` names no zone: the requester's `timezone` setting, else UTC."""
    from storage import user_settings

    deps = make_deps(ops=FakeOps())
    ada = await new_identity(workspace="T-zone", user="U-ada")
    as_ada = ActionContext(ada, deps)
    asked = await digest.request_change(as_ada, enabled=True, channel=None, current_channel="C1")
    assert asked.approval is not None and "09:00 UTC" in asked.approval.summary
    await user_settings.set_time_zone(pool, chat_user_id=ada.chat_user_id, zone="Asia/Tokyo")
    asked = await digest.request_change(as_ada, enabled=True, channel=None, current_channel="C1")
    assert asked.approval is not None and "09:00 Asia/Tokyo" in asked.approval.summary
    # A zone named in the command still wins.
    asked = await digest.request_change(
        as_ada, enabled=True, channel=None, current_channel="C1", zone="Europe/Paris"
    )
    assert asked.approval is not None and "Europe/Paris" in asked.approval.summary
