"""A post id reaches the platforms only in the shape platform ids have.

Instagram reads a single post at `graph/{version}/{post id}`, so a model-written id
such as `me/accounts` or `1?fields=x` would otherwise steer which Graph path or
query is read with the person's token (the grammar already refuses such ids).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.actions.base import ActionError
from agent.actions.metrics import get_metrics
from agent.context import ActionContext
from agent.ports import MetricsReport
from tests.fakes.chatops import FakeOps


@pytest.mark.parametrize(
    "post", ["me/accounts", "../oauth/access_token", "1?fields=x", "1,2", "a b", "x" * 65]
)
async def test_a_post_id_that_is_not_an_id_is_refused(make_deps, new_identity, link, post):
    ident = await new_identity()
    await link(ident, "instagram", "shop")
    ops = FakeOps(allow={"metrics"}, report=MetricsReport(as_of=datetime.now(UTC)))
    ctx = ActionContext(identity=ident, deps=make_deps(ops=ops))
    with pytest.raises(ActionError, match="post id"):
        await get_metrics(ctx, platform="instagram", post=post)
    assert ops.calls == []


async def test_platform_post_ids_pass(make_deps, new_identity, link):
    ident = await new_identity()
    await link(ident, "youtube", "chan")
    ops = FakeOps(allow={"metrics"}, report=MetricsReport(as_of=datetime.now(UTC)))
    ctx = ActionContext(identity=ident, deps=make_deps(ops=ops))
    for post in ("dQw4w9WgXcQ", "17895695668004550", "a-b_c1"):
        await get_metrics(ctx, post=post)
    assert [c[1]["post_id"] for c in ops.calls] == ["dQw4w9WgXcQ", "17895695668004550", "a-b_c1"]
