"""ChatOpsService through the grammar: routing, tenancy, limits, errors."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.messages import Attachment, IncomingMessage
from bot.core.service import INTERNAL, NO_MODEL, ChatOpsService
from integrations.errors import QuotaExceeded
from storage.accounts import TokenUnavailable
from tests.fakes.chatops import FakeOps, RecordingBudgets, RecordingSink


def msg(
    ident, text: str, *, is_command: bool = False, channel: str = "C1", **kw
) -> IncomingMessage:
    return IncomingMessage(
        frontend=ident.frontend,  # type: ignore[arg-type]
        workspace_id=ident.workspace_external_id,
        channel_id=channel,
        user_id=ident.user_external_id,
        text=text,
        is_command=is_command,
        **kw,
    )


async def test_grammar_commands_without_a_model(make_deps, new_identity, link):
    ident = await new_identity()
    acct = await link(ident, "youtube", "chan")
    ops = FakeOps(allow={"start_link"})
    service = ChatOpsService(deps=make_deps(ops=ops))
    sink = RecordingSink()

    await service.handle(msg(ident, "accounts", is_command=True), sink)
    await service.handle(msg(ident, "link youtube"), sink)
    await service.handle(msg(ident, "hello, what can you do?"), sink)
    await service.handle(msg(ident, "lnk youtube", is_command=True), sink)

    # The slash command's answer and its usage hint are the asker's alone.
    assert "@chan" in sink.private[0] and acct.ref in sink.private[0]
    assert sink.sent[0] == "I sent you a private link to connect YouTube."
    assert len(sink.private) == 3 and "oauth/youtube/start" in sink.private[1]
    assert "oauth" not in sink.text  # the link never goes to the channel
    assert sink.sent[1] == NO_MODEL
    assert sink.private[2].startswith("Did you mean `link`?")
    assert len(sink.sent) == 2
    assert ops.names() == ["start_link"]
    reply_to = ops.calls[0][1]["reply_to"]
    assert reply_to["user_id"] == ident.user_external_id and reply_to["channel_id"] == "C1"


async def test_tenancy_other_workspace_account_is_not_found(make_deps, new_identity, link, pool):
    owner = await new_identity()
    theirs = await link(owner, "youtube", "victim")
    intruder = await new_identity()
    ops = FakeOps()  # nothing allowed: any platform call fails the test
    service = ChatOpsService(deps=make_deps(ops=ops))
    sink = RecordingSink()

    await service.handle(msg(intruder, f"unlink youtube {theirs.ref}", is_command=True), sink)
    await service.handle(msg(intruder, "metrics youtube 7d", is_command=True), sink)

    # Errors about someone's own accounts go to them only, with no share button.
    assert sink.sent == []
    assert "not found" in sink.private[0]
    assert "no linked YouTube account" in sink.private[1]
    assert all(reply.share_id is None for _, reply in sink.replies)
    assert sink.approvals == [] and ops.calls == []
    pending = await pool.fetchval(
        "SELECT count(*) FROM pending_actions WHERE workspace_id = $1", intruder.workspace_id
    )
    assert pending == 0
    touched = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE target = $1 OR workspace_id = $2",
        theirs.ref,
        owner.workspace_id,
    )
    assert touched == 0


async def test_same_workspace_other_users_account_is_not_found(make_deps, new_identity, link):
    owner = await new_identity()
    theirs = await link(owner, "instagram", "teammate")
    colleague = await new_identity(workspace=owner.workspace_external_id)
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    await service.handle(msg(colleague, f"unlink instagram {theirs.ref}"), sink)
    assert "not found" in sink.sent[0] and sink.approvals == []


async def test_upload_from_slack_attachment_then_approve(make_deps, new_identity, link):
    ident = await new_identity()
    acct = await link(ident, "youtube", "chan")
    ops = FakeOps(allow={"upload"})
    service = ChatOpsService(deps=make_deps(ops=ops))
    sink = RecordingSink()

    async def no_bytes():  # the upload itself is PlatformOps' job
        if False:
            yield b""

    att = Attachment(
        name="clip.mp4",
        size=1000,
        mime_type="video/mp4",
        open=no_bytes,
        locator={"kind": "slack", "url": "https://files.slack.test/F1/clip.mp4"},
    )
    await service.handle(msg(ident, 'upload youtube "Launch day"', attachments=(att,)), sink)
    assert ops.calls == [] and len(sink.approvals) == 1
    request = sink.approvals[0]
    assert request.requester_user_id == ident.user_external_id
    assert "Launch day" in request.summary and acct.handle in request.summary

    await service.resolve_approval(
        frontend="slack",
        workspace_id=ident.workspace_external_id,
        user_id=ident.user_external_id,
        action_id=request.action_id,
        approved=True,
        sink=sink,
    )
    assert ops.names() == ["upload"]
    assert ops.calls[0][1]["source"] == {
        "kind": "slack",
        "url": "https://files.slack.test/F1/clip.mp4",
    }
    # The web role only queues: the worker runs the upload and tells its progress.
    assert sink.sent[-1].startswith("Queued as job")
    assert sink.updates == []


async def test_file_paths_are_refused_outside_the_shell(make_deps, new_identity, link, tmp_path):
    ident = await new_identity()
    await link(ident, "youtube", "chan")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 10)
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    await service.handle(msg(ident, f"upload youtube {clip} Title"), sink)
    assert "only in the local shell" in sink.sent[0] and sink.approvals == []


async def test_digest_on_needs_approval_then_show(make_deps, new_identity):
    ident = await new_identity()
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    await service.handle(msg(ident, "digest on #general at 08:30 Europe/Paris"), sink)
    assert "from inside that channel" in sink.sent[-1]  # asked from C1, about #general
    await service.handle(msg(ident, "digest on at 08:30 Europe/Paris", channel="general"), sink)
    await service.handle(msg(ident, "digest show"), sink)
    assert sink.sent[-1].startswith("No channel gets a daily digest")
    await service.resolve_approval(
        frontend="slack",
        workspace_id=ident.workspace_external_id,
        user_id=ident.user_external_id,
        action_id=sink.approvals[0].action_id,
        approved=True,
        sink=sink,
    )
    await service.handle(msg(ident, "digest show"), sink)
    assert sink.sent[-2] == "Daily digest on for <#general> at 08:30 Europe/Paris."
    assert "- <#general> at 08:30 Europe/Paris" in sink.sent[-1]
    await service.handle(msg(ident, "digest on at 25:00"), sink)
    assert "HH:MM" in sink.sent[-1] or "Usage" in sink.sent[-1]
    await service.handle(msg(ident, "digest on Mars/Olympus"), sink)
    assert "Unknown time zone" in sink.sent[-1]


async def test_caption_respects_limits(make_deps, new_identity):
    ident = await new_identity()
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    long_desc = "A very long trip " + " ".join(f"word{i}" for i in range(900))
    await service.handle(msg(ident, f"caption instagram {long_desc}"), sink)
    await service.handle(msg(ident, f"caption youtube {long_desc}"), sink)
    insta, yt = sink.sent
    assert insta.startswith("Instagram caption ideas")
    for block in insta.split("\n1.\n")[1:] + insta.split("\n2.\n")[1:]:
        assert block.count("#") <= 30
    titles = [line.split("Title: ", 1)[1] for line in yt.splitlines() if "Title: " in line]
    assert titles and all(len(t) <= 100 for t in titles)


async def test_rate_limited_message_is_refused(make_deps, new_identity):
    ident = await new_identity()
    service = ChatOpsService(
        deps=make_deps(ops=FakeOps(), budgets=RecordingBudgets(allow_messages=False))
    )
    sink = RecordingSink()
    await service.handle(msg(ident, "accounts"), sink)
    assert sink.sent == ["Too many messages; please wait 13 s and try again."]
    # The same refusal to a slash command is for its sender alone.
    await service.handle(msg(ident, "accounts", is_command=True), sink)
    assert sink.private == ["Too many messages; please wait 13 s and try again."]
    assert len(sink.sent) == 1


async def test_quota_reports_budgets(make_deps, new_identity):
    ident = await new_identity()
    service = ChatOpsService(deps=make_deps(ops=FakeOps(), budgets=RecordingBudgets()))
    sink = RecordingSink()
    await service.handle(msg(ident, "quota"), sink)
    assert "Your LLM tokens today (UTC): 0 of 1,000 used, 1,000 left" in sink.sent[0]


async def test_handle_never_raises(new_identity):
    ident = await new_identity()

    def broken():
        raise RuntimeError("database is gone")

    service = ChatOpsService(deps=broken)
    sink = RecordingSink()
    await service.handle(msg(ident, "accounts"), sink)
    await service.resolve_approval(
        frontend="slack", workspace_id="T", user_id="U", action_id="x", approved=True, sink=sink
    )
    assert sink.sent == [INTERNAL, INTERNAL]


async def test_unconfigured_platform_says_so(make_deps, new_identity):
    ident = await new_identity()
    service = ChatOpsService(deps=make_deps(ops=FakeOps(platforms=("youtube",))))
    sink = RecordingSink()
    await service.handle(msg(ident, "link instagram"), sink)
    assert sink.sent == ["Instagram is not configured on this bot."]


@pytest.mark.parametrize("text", ["upload", "metrics nonsense words here", "digest", 'caption "x'])
async def test_bad_command_gets_usage(make_deps, new_identity, text):
    ident = await new_identity()
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    await service.handle(msg(ident, text, is_command=True), sink)
    assert "Usage:" in sink.private[0] and sink.sent == []


async def test_platform_errors_become_clear_replies(make_deps, new_identity, link):
    ident = await new_identity()
    acct = await link(ident, "youtube", "chan")
    ops = FakeOps(
        allow={"metrics", "unlink"},
        fail={
            "metrics": QuotaExceeded(
                "YouTube's daily quota is spent; try after midnight Pacific.", platform="youtube"
            ),
            "unlink": TokenUnavailable(acct.ref),
        },
    )
    service = ChatOpsService(deps=make_deps(ops=ops))
    sink = RecordingSink()
    await service.handle(msg(ident, "<@UBOT> metrics youtube"), sink)
    await service.handle(msg(ident, "unlink youtube"), sink)
    await service.resolve_approval(
        frontend="slack",
        workspace_id=ident.workspace_external_id,
        user_id=ident.user_external_id,
        action_id=sink.approvals[0].action_id,
        approved=True,
        sink=sink,
    )
    assert sink.sent[0] == "YouTube's daily quota is spent; try after midnight Pacific."
    assert sink.sent[-1].startswith("Could not unlink YouTube @chan")
    assert f"Account {acct.ref} needs to be linked again" in sink.sent[-1]
    assert "secret-access-token" not in sink.text


async def test_drain_cancels_history_writes_still_running_after_the_grace(
    make_deps, new_identity, monkeypatch
):
    """Shutdown closes the pool right after drain: a write left running would fail or be
    destroyed while pending ("Task was destroyed but it is pending!")."""
    import bot.core.service as service_module

    started = asyncio.Event()

    async def stuck_write(*args, **kwargs):
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(service_module.conversations, "append_exchange", stuck_write)
    ident = await new_identity()
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    await service.handle(msg(ident, "help", is_command=True), RecordingSink())
    await started.wait()
    [write] = list(service._writes.values())

    await service.drain(grace=0.05)

    assert write.cancelled()
    assert service._writes == {}


async def test_nul_characters_in_input_get_an_answer_not_an_internal_error(
    make_deps, new_identity, link, pool, tmp_path
):
    """Postgres text and jsonb cannot hold U+0000: a NUL typed (or written by the model)
    must not turn a request into "something went wrong" or lose the history."""
    ident = await new_identity(frontend="local")
    await link(ident, "youtube", "chan")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 10)
    service = ChatOpsService(deps=make_deps(ops=FakeOps()))
    sink = RecordingSink()
    await service.handle(msg(ident, f'upload youtube {clip} "Our\x00 trip"'), sink)
    await service.drain()

    assert INTERNAL not in sink.sent
    [approval] = sink.approvals
    assert "'Our trip'" in approval.summary
    stored = await pool.fetchval(
        "SELECT count(*) FROM conversation_messages WHERE workspace_id = $1", ident.workspace_id
    )
    assert stored == 2


async def test_nul_characters_in_model_written_arguments_are_dropped(make_deps, new_identity):
    from agent.actions import approvals
    from agent.context import ActionContext

    ident = await new_identity()
    ctx = ActionContext(identity=ident, deps=make_deps(ops=FakeOps()))
    outcome = await approvals.propose(
        ctx, "digest", {"channel": "gen\x00eral", "tags": ["a\x00"]}, "Digest in #gen\x00eral"
    )
    assert outcome.approval is not None and "\x00" not in outcome.text
