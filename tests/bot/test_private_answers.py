"""Private by default, shared on purpose: slash commands answer the asker alone, a
trailing `share` or the "Share to channel" button posts the same answer publicly."""

from __future__ import annotations

from bot.core.service import SHARE_GONE, ChatOpsService
from tests.bot.test_service import msg
from tests.fakes.chatops import FakeOps, RecordingSink


async def test_slash_answer_is_private_with_a_share_button(make_deps, new_identity, link):
    ident = await new_identity()
    acct = await link(ident, "youtube", "chan")
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()

    await service.handle(msg(ident, "accounts", is_command=True), sink)

    [(where, reply)] = sink.replies
    assert where == "private" and reply.share_id
    assert reply.layout is not None and acct.ref in reply.text

    clicks = RecordingSink()
    share = {
        "frontend": ident.frontend,
        "workspace_id": ident.workspace_external_id,
        "share_id": reply.share_id,
        "sink": clicks,
    }
    # Someone else cannot post another person's private answer.
    assert await service.share(user_id="U-somebody-else", **share) is False
    assert clicks.sent == [] and clicks.private == [SHARE_GONE]

    assert await service.share(user_id=ident.user_external_id, **share) is True
    [(where, shared)] = clicks.replies[1:]
    assert where == "public" and shared.shared_by == ident.user_external_id
    assert shared.text == reply.text and shared.layout == reply.layout

    # Once shared, the button does nothing more.
    assert await service.share(user_id=ident.user_external_id, **share) is False
    assert clicks.private[-1] == SHARE_GONE and len(clicks.sent) == 1


async def test_trailing_share_word_posts_publicly(make_deps, new_identity, link):
    ident = await new_identity()
    await link(ident, "youtube", "chan")
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()

    await service.handle(msg(ident, "accounts share", is_command=True), sink)

    [(where, reply)] = sink.replies
    assert where == "public" and reply.shared_by == ident.user_external_id
    assert reply.share_id is None and "@chan" in reply.text


async def test_errors_stay_private_even_when_shared(make_deps, new_identity):
    ident = await new_identity()
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    await service.handle(msg(ident, "metrics youtube 7d share", is_command=True), sink)
    [(where, reply)] = sink.replies
    assert where == "private" and "no linked YouTube account" in reply.text
    assert reply.share_id is None


async def test_mentions_answer_in_place_and_dms_get_no_share_button(make_deps, new_identity, link):
    ident = await new_identity()
    await link(ident, "youtube", "chan")
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()

    await service.handle(msg(ident, "accounts", is_mention=True), sink)
    await service.handle(msg(ident, "accounts", is_command=True, is_dm=True), sink)

    (first, mention), (second, dm) = sink.replies
    assert first == "public" and mention.shared_by is None and mention.share_id is None
    assert second == "private" and dm.share_id is None


async def test_approvals_stay_visible_where_asked(make_deps, new_identity, link):
    ident = await new_identity()
    acct = await link(ident, "youtube", "chan")
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    await service.handle(msg(ident, f"unlink youtube {acct.ref}", is_command=True), sink)
    [request] = sink.approvals
    assert request.requester_user_id == ident.user_external_id and acct.ref in request.summary
    assert sink.replies == []  # no second, private copy of the question
