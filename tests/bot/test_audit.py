"""The `audit` command: admins only, their own workspace only, filters, retention;
Slack's admin check over the fake Slack Web API."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from slack_sdk.web.async_client import AsyncWebClient

from agent import commands
from agent.actions import app_link, approvals
from agent.actions.audit import NOT_ADMIN
from agent.context import ActionContext
from bot.admins import ADMINISTRATOR as DISCORD_ADMINISTRATOR
from bot.admins import MANAGE_GUILD as DISCORD_MANAGE_GUILD
from bot.admins import Admins, DiscordAdmins, local_operator
from bot.api.auth import SupabaseVerifier
from bot.api.routes import build_router
from bot.api.uploads import UploadStore
from bot.core.messages import IncomingMessage
from bot.core.service import ChatOpsService
from bot.discord.convert import admin_check as discord_admin
from bot.slack.admin import admin_check as slack_admin
from storage import audit
from storage.identity import Identity
from tests.bot.api.conftest import PROJECT, SECRET, sign_hs
from tests.bot.slack.conftest import BOT_TOKEN
from tests.fakes.chatops import FakeOps, RecordingSink
from tests.fakes.discord import FakeDiscord
from tests.fakes.platforms import directory
from tests.fakes.server import serve_asgi


async def _yes() -> bool:
    return True


async def _no() -> bool:
    return False


def _say(ident, text: str, admin=None) -> IncomingMessage:
    return IncomingMessage(
        frontend="slack",
        workspace_id=ident.workspace_external_id,
        channel_id="C1",
        user_id=ident.user_external_id,
        user_name=None,
        text=text,
        is_command=True,
        admin_check=admin,
    )


@pytest.fixture
def service(make_deps) -> ChatOpsService:
    return ChatOpsService(deps=make_deps(ops=FakeOps()))


async def test_a_member_who_is_not_an_admin_is_refused(service, new_identity, pool) -> None:
    ident = await new_identity()
    marker = "tgt-" + secrets.token_hex(4)
    await audit.record(
        pool, action="upload", outcome="ok", workspace_id=ident.workspace_id, target=marker
    )
    for check in (_no, None):  # said no, or a front-end with no admins
        sink = RecordingSink()
        await service.handle(_say(ident, "audit", check), sink)
        # A slash command's refusal goes to the asker alone, and shows nothing.
        assert sink.private == [NOT_ADMIN]
        assert not sink.sent and marker not in "\n".join(sink.private)


async def test_an_admin_sees_who_asked_what_in_their_workspace_only(
    service, new_identity, make_deps, pool
) -> None:
    admin = await new_identity()
    asker = await new_identity(workspace=admin.workspace_external_id)
    stranger = await new_identity()  # another workspace
    deps = make_deps(ops=FakeOps())
    # A real request and its decision: who asked and who decided are both recorded.
    proposed = await approvals.propose(
        ActionContext(identity=asker, deps=deps), "cancel", {"job": "x"}, "Cancel job x"
    )
    assert proposed.approval is not None
    await approvals.resolve(
        ActionContext(identity=asker, deps=deps), proposed.approval.action_id, approved=False
    )
    foreign = "foreign-" + secrets.token_hex(4)
    await audit.record(
        pool,
        action="cancel",
        outcome="ok",
        workspace_id=stranger.workspace_id,
        chat_user_id=stranger.chat_user_id,
        target=foreign,
    )
    sink = RecordingSink()

    await service.handle(_say(admin, "audit", _yes), sink)

    assert not sink.sent  # nothing of it in the channel
    note, listing = sink.private
    assert note == "I sent you the audit log privately (2 entries)."
    action_id = proposed.approval.action_id
    lines = listing.splitlines()[1:]
    assert lines[0].endswith(
        f"{asker.user_external_id}  approval:cancel {action_id}: rejected"
        f" (asked by {asker.user_external_id})"
    )
    assert lines[1].endswith(f"{asker.user_external_id}  request:cancel {action_id}: pending")
    assert foreign not in listing and stranger.user_external_id not in listing
    # The stranger, an admin of their own workspace, sees nothing of this one.
    theirs = RecordingSink()
    await service.handle(_say(stranger, "audit", _yes), theirs)
    assert action_id not in "\n".join(theirs.private) and foreign in "\n".join(theirs.private)


async def test_filters_by_user_action_and_date(service, new_identity, pool) -> None:
    admin = await new_identity()
    ada = await new_identity(workspace=admin.workspace_external_id)
    ws = admin.workspace_id
    rows = [
        ("upload", ada.chat_user_id, "now()"),
        ("link", ada.chat_user_id, "now()"),
        ("upload", admin.chat_user_id, "now()"),
        ("upload", ada.chat_user_id, "now() - interval '40 days'"),
    ]
    for i, (action, who, at) in enumerate(rows):
        await pool.execute(
            f"INSERT INTO audit_log (workspace_id, chat_user_id, action, target, outcome, at)"
            f" VALUES ($1, $2, $3, $4, 'ok', {at})",
            ws,
            who,
            action,
            f"row{i}",
        )
    since = date.today().toordinal() - 10
    day = date.fromordinal(since).isoformat()
    sink = RecordingSink()
    mention = f"<@{ada.user_external_id}>"
    await service.handle(_say(admin, f"audit user {mention} action upload since {day}", _yes), sink)
    _note, listing = sink.private
    assert "row0" in listing
    for other in ("row1", "row2", "row3"):
        assert other not in listing
    unknown = RecordingSink()
    await service.handle(_say(admin, "audit user @nobody-here", _yes), unknown)
    assert "No member @nobody-here" in "\n".join(unknown.private)


def test_the_grammar_reads_filters_and_refuses_bad_ones() -> None:
    platforms = directory()
    parsed = commands.parse("audit user @x action Upload since 2026-11-01", platforms)
    assert parsed == commands.Command(
        "audit", {"user": "@x", "action": "upload", "since": date(2026, 11, 1)}
    )
    for bad in ("audit since 2026-13-01", "audit action", "audit colour red", "audit action a.b"):
        assert isinstance(commands.parse(bad, platforms), commands.Usage), bad


async def test_retention_purges_only_old_rows(new_identity, pool) -> None:
    ident = await new_identity()
    for age in (400, 10):
        await pool.execute(
            "INSERT INTO audit_log (workspace_id, action, target, outcome, at)"
            " VALUES ($1, 'upload', $2, 'ok', now() - make_interval(days => $3))",
            ident.workspace_id,
            f"age{age}",
            age,
        )
    assert await audit.purge_older_than(pool, days=365) >= 1
    kept = await pool.fetch(
        "SELECT target FROM audit_log WHERE workspace_id = $1", ident.workspace_id
    )
    assert [r["target"] for r in kept] == ["age10"]


async def test_slack_admins_and_owners_come_from_users_info(fake_slack) -> None:
    fake_slack.users.update(
        {"UADMIN": {"is_admin": True}, "UOWNER": {"is_owner": True}, "UPLAIN": {}}
    )
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_base)
    assert await slack_admin(client, "UADMIN")()
    assert await slack_admin(client, "UOWNER")()
    assert not await slack_admin(client, "UPLAIN")()
    assert not await slack_admin(client, "UGONE")()  # user_not_found: refused, not raised
    assert [c.args.get("user") for c in fake_slack.calls_of("users.info")] == [
        "UADMIN",
        "UOWNER",
        "UPLAIN",
        "UGONE",
    ]
    assert await discord_admin(True)() and not await discord_admin(False)()


async def _connected_api(deps, ident, subject: str, tmp_path) -> httpx.AsyncClient:
    """The API over `deps`, with `subject` connected (as `connect app` does) to `ident`."""
    app = FastAPI()
    verifier = SupabaseVerifier(supabase_url=PROJECT, jwt_secret=SECRET, jwks=None)
    store = UploadStore(directory=tmp_path / "uploads", max_bytes=1024)
    app.include_router(build_router(deps=lambda: deps, verifier=verifier, upload_store=store))
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver/api/v1"
    )
    outcome = await app_link.connect_app(ActionContext(identity=ident, deps=deps))
    code = re.search(r"code for the app: ([A-Z0-9-]+)", outcome.private or "")
    assert code is not None
    claimed = await api.post(
        "/identity/claim",
        json={"code": code[1]},
        headers={"Authorization": f"Bearer {sign_hs(sub=subject)}"},
    )
    assert claimed.status_code == 200, claimed.text
    return api


async def test_the_api_audit_is_for_admins_and_their_workspace(
    make_deps, new_identity, pool, tmp_path
) -> None:
    admin = await new_identity()
    member = await new_identity(workspace=admin.workspace_external_id)
    stranger = await new_identity()
    mine, theirs = "mine-" + secrets.token_hex(4), "theirs-" + secrets.token_hex(4)
    for ident, target in ((member, mine), (stranger, theirs)):
        await audit.record(
            pool,
            action="upload",
            outcome="ok",
            workspace_id=ident.workspace_id,
            chat_user_id=ident.chat_user_id,
            target=target,
        )

    async def only_the_admin(identity) -> bool:
        return identity.chat_user_id == admin.chat_user_id

    deps = replace(make_deps(ops=FakeOps()), is_admin=only_the_admin)
    subject = "audit-app-" + secrets.token_hex(4)
    headers = {"Authorization": f"Bearer {sign_hs(sub=subject)}"}
    api = await _connected_api(deps, admin, subject, tmp_path)
    try:
        page = await api.get("/audit", params={"action": "upload"}, headers=headers)
    finally:
        await api.aclose()
    assert page.status_code == 200, page.text
    [entry] = page.json()["entries"]
    assert entry["target"] == mine and entry["actor"] == member.user_external_id
    assert theirs not in page.text

    other = "audit-app-" + secrets.token_hex(4)
    api = await _connected_api(deps, member, other, tmp_path)
    try:
        refused = await api.get("/audit", headers={"Authorization": f"Bearer {sign_hs(sub=other)}"})
    finally:
        await api.aclose()
    assert refused.status_code == 403
    assert mine not in refused.text


async def test_admin_checks_by_front_end() -> None:
    admins = Admins()
    ident = Identity(
        workspace_id=1,
        chat_user_id=2,
        frontend="slack",
        workspace_external_id="T1",
        user_external_id="U1",
    )
    assert not await admins.is_admin(ident)  # no check registered: no

    async def broken(identity: Identity) -> bool:
        raise RuntimeError("slack down")

    admins.register("slack", broken)
    assert not await admins.is_admin(ident)  # a failing check: no, never an exception
    admins.register("local", local_operator)
    assert await admins.is_admin(replace(ident, frontend="local"))


async def test_discord_admins_are_the_owner_and_manage_server_members() -> None:
    fake = FakeDiscord()
    guild = fake.add_guild()
    fake.add_member(guild, "1001", permissions=DISCORD_MANAGE_GUILD)
    fake.add_member(guild, "1002", permissions=DISCORD_ADMINISTRATOR)
    fake.add_member(guild, "1003", permissions=1 << 11)  # send messages only
    async with serve_asgi(fake.app) as base, httpx.AsyncClient() as http:
        admins = DiscordAdmins(http=http, api_base=base + "/api/v10", token=fake.token)

        def who(user: str, workspace: str = guild["id"]) -> Identity:
            return Identity(
                workspace_id=1,
                chat_user_id=1,
                frontend="discord",
                workspace_external_id=workspace,
                user_external_id=user,
            )

        assert await admins.is_admin(who(fake.owner["id"]))
        assert await admins.is_admin(who("1001"))
        assert await admins.is_admin(who("1002"))
        assert not await admins.is_admin(who("1003"))
        assert not await admins.is_admin(who("999999"))  # not a member
        assert not await admins.is_admin(who("1001", workspace="dm:1001"))
        wrong = DiscordAdmins(http=http, api_base=base + "/api/v10", token="not-the-token")
        assert not await wrong.is_admin(who(fake.owner["id"]))
