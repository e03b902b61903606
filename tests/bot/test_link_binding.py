"""Account links bound to the person who asked: sign-ins, the browser cookie, codes, owners.

Our web app in-process; Google, Slack (Sign in with Slack) and Discord (OAuth2) as
loopback fakes; real Postgres. Each test drives a browser through the start page,
"Continue", the chat sign-in where one is configured, consent and the callback.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from agent.actions.accounts import resolve_account
from agent.actions.base import ActionError
from agent.context import ActionContext, Deps
from bot.core.messages import IncomingMessage
from bot.core.service import ChatOpsService
from bot.notify import Notifiers
from bot.oauth_web import build_oauth_router
from bot.signin import DiscordSignIn, SignIn, SlackSignIn
from storage import accounts, digests, identity, pending_links
from storage.identity import Identity
from tests.chat_fixtures import ops_for
from tests.fakes.chatops import RecordingSink
from tests.fakes.discord import FakeDiscord
from tests.fakes.google import FakeGoogle
from tests.fakes.slack import FakeSlack

BASE = "http://testserver"
CODE = re.compile(r"<code>([A-Z2-9]{8})</code>")


@dataclass
class World:
    """One bot: its web app (a browser with a cookie jar), its deps, what it told people."""

    web: httpx.AsyncClient
    deps: Deps
    notified: list[tuple[str, dict[str, Any], str]]
    chat: ChatOpsService

    async def open_link(self, who: Identity) -> tuple[str, httpx.Response]:
        """The requester's link: the start page, then "Continue"; returns (state, answer)."""
        link = await ops_for(self.deps).start_link(who, "youtube", reply_to={"user_id": "x"})
        page = await self.web.get(_path(link))
        assert page.status_code == 200, page.text
        state = parse_qs(urlsplit(link).query)["s"][0]
        answer = await self.web.post("/oauth/youtube/start", data={"s": state})
        assert answer.status_code == 303, answer.text
        return state, answer

    async def via(self, browser: httpx.AsyncClient, url: str) -> httpx.Response:
        """A page on another site that redirects straight back: our app's answer there."""
        return await self.web.get(_path(await _follow(browser, url)))

    async def say(self, who: Identity, text: str) -> RecordingSink:
        sink = RecordingSink()
        message = IncomingMessage(
            frontend=who.frontend,  # type: ignore[arg-type]
            workspace_id=who.workspace_external_id,
            channel_id="C1",
            user_id=who.user_external_id,
            text=text,
            is_dm=True,
        )
        await self.chat.handle(message, sink)
        return sink


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _follow(browser: httpx.AsyncClient, url: str) -> str:
    """A page on another site that redirects straight back to us: where it sends the browser."""
    response = await browser.get(url)
    assert response.status_code in (302, 307), response.text
    location: str = response.headers["location"]
    assert location.startswith(BASE)
    return location


async def _accounts_of(pool: Any, who: Identity) -> list[accounts.LinkedAccount]:
    return await accounts.list_for_owner(
        pool, workspace_id=who.workspace_id, owner_id=who.chat_user_id
    )


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    async with fake.running():
        yield fake


@pytest.fixture
async def make_world(deps: Deps, http: httpx.AsyncClient) -> AsyncIterator[Any]:
    """A bot with these chat sign-ins configured (none: links wait for a code)."""
    clients: list[httpx.AsyncClient] = []

    def build(signins: dict[str, SignIn]) -> World:
        notified: list[tuple[str, dict[str, Any], str]] = []
        notifiers = Notifiers()
        for frontend in ("slack", "discord", "local"):

            async def record(reply_to: dict[str, Any], text: str, frontend: str = frontend) -> None:
                notified.append((frontend, reply_to, text))

            notifiers.register(frontend, record)
        config = replace(deps.config, signin_frontends=frozenset(signins))
        bot_deps = replace(deps, config=config, notify=notifiers.notify)
        bot_deps = replace(bot_deps, ops=ops_for(bot_deps))
        app = FastAPI()
        app.include_router(
            build_oauth_router(
                linking=lambda: ops_for(bot_deps),
                platforms=bot_deps.platforms,
                notifiers=notifiers,
                public_base_url=BASE,
                signins=signins,
            )
        )
        web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        clients.append(web)
        return World(web, bot_deps, notified, ChatOpsService(deps=bot_deps, history_turns=4))

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def slack_signin(fake_slack: FakeSlack, http: httpx.AsyncClient) -> SlackSignIn:
    return SlackSignIn(
        client_id=fake_slack.client_id,
        client_secret=fake_slack.client_secret,
        authorize_url=f"{fake_slack.base_url}/openid/connect/authorize",
        api_base=fake_slack.api_base,
        public_base_url=BASE,
        http=http,
    )


@pytest.fixture
def discord_signin(discord: FakeDiscord, http: httpx.AsyncClient) -> DiscordSignIn:
    return DiscordSignIn(
        client_id=discord.client_id,
        client_secret=discord.client_secret,
        authorize_url=f"{discord.base_url}/oauth2/authorize",
        api_base=discord.api_base,
        public_base_url=BASE,
        http=http,
    )


async def _slack_user(pool: Any, team: str | None = None, user: str | None = None) -> Identity:
    return await identity.resolve(
        pool,
        frontend="slack",
        workspace_external_id=team or f"T{secrets.token_hex(4).upper()}",
        user_external_id=user or f"U{secrets.token_hex(4).upper()}",
        user_display_name="Ada",
    )


# --- Sign in with Slack -------------------------------------------------------------


async def test_slack_requester_signs_in_and_links(
    make_world, slack_signin, fake_slack, google: FakeGoogle, http, pool
) -> None:
    world = make_world({"slack": slack_signin})
    who = await _slack_user(pool)
    google.login_channel = google.add_channel("Ada Cooks").id
    fake_slack.signin_as = (who.user_external_id, who.workspace_external_id)

    _, answer = await world.open_link(who)
    signin_url = answer.headers["location"]
    query = parse_qs(urlsplit(signin_url).query)
    assert signin_url.startswith(f"{fake_slack.base_url}/openid/connect/authorize?")
    assert query["scope"] == ["openid"] and query["team"] == [who.workspace_external_id]
    assert query["client_id"] == [fake_slack.client_id] and query["nonce"][0]
    assert query["redirect_uri"] == [f"{BASE}/oauth/identity/slack/callback"]
    assert google.calls == []  # no consent before the sign-in

    back = await world.via(http, signin_url)
    assert back.status_code == 303, back.text
    assert back.headers["location"].startswith(google.base)
    assert await pool.fetchval(
        "SELECT verified_at IS NOT NULL FROM oauth_states WHERE workspace_id = $1",
        who.workspace_id,
    )
    page = await world.via(http, back.headers["location"])
    assert page.status_code == 200, page.text
    assert "YouTube linked" in page.text and "Ada Cooks" in page.text
    [account] = await _accounts_of(pool, who)
    assert account.owner_id == who.chat_user_id and account.status == "ok"
    assert [n[2] for n in world.notified] == [
        f"Linked YouTube Ada Cooks (@adacooks) as {account.ref}."
    ]


async def test_slack_link_opened_by_another_slack_user_links_nothing(
    make_world, slack_signin, fake_slack, google: FakeGoogle, http, pool
) -> None:
    world = make_world({"slack": slack_signin})
    who = await _slack_user(pool)
    fake_slack.signin_as = ("UOTHERPERSON", who.workspace_external_id)  # same workspace

    state, answer = await world.open_link(who)
    page = await world.via(http, answer.headers["location"])
    assert page.status_code == 400 and "someone other than" in page.text
    assert google.calls == [] and await _accounts_of(pool, who) == []
    # The link is cancelled: its state is gone, so nothing can finish it later.
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM oauth_states WHERE workspace_id = $1", who.workspace_id
        )
        == 0
    )
    again = await world.web.get(f"/oauth/youtube/start?s={state}")
    assert again.status_code == 400 and "not valid" in again.text
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND outcome = 'refused:other_person'",
            who.workspace_id,
        )
        == 1
    )


async def test_slack_link_opened_by_a_user_of_another_workspace_links_nothing(
    make_world, slack_signin, fake_slack, google: FakeGoogle, http, pool
) -> None:
    world = make_world({"slack": slack_signin})
    who = await _slack_user(pool)
    # Same user id, other workspace: Slack ids are per workspace, so this is someone else.
    fake_slack.signin_as = (who.user_external_id, "TELSEWHERE")

    _, answer = await world.open_link(who)
    page = await world.via(http, answer.headers["location"])
    assert page.status_code == 400 and "someone other than" in page.text
    assert google.calls == [] and await _accounts_of(pool, who) == []


async def test_sign_in_or_consent_in_a_browser_without_the_cookie_links_nothing(
    make_world, slack_signin, fake_slack, google: FakeGoogle, http, pool
) -> None:
    world = make_world({"slack": slack_signin})
    who = await _slack_user(pool)
    fake_slack.signin_as = (who.user_external_id, who.workspace_external_id)

    # The sign-in's answer reaching a browser that never pressed "Continue".
    _, answer = await world.open_link(who)
    comeback = await _follow(http, answer.headers["location"])
    jar = dict(world.web.cookies)
    world.web.cookies.clear()
    refused = await world.web.get(_path(comeback))
    assert refused.status_code == 400 and "different browser" in refused.text
    assert google.calls == []

    # The requester signs in properly, then the consent page is finished elsewhere.
    world.web.cookies.update(jar)
    _, answer = await world.open_link(who)
    back = await world.via(http, answer.headers["location"])
    assert back.status_code == 303
    callback = await _follow(http, back.headers["location"])
    world.web.cookies.clear()
    page = await world.web.get(_path(callback))
    assert page.status_code == 400 and "different browser" in page.text
    assert google.exchange_count == 0 and await _accounts_of(pool, who) == []


async def test_a_sign_in_answer_counts_once(
    make_world, slack_signin, fake_slack, google: FakeGoogle, http, pool
) -> None:
    world = make_world({"slack": slack_signin})
    who = await _slack_user(pool)
    fake_slack.signin_as = (who.user_external_id, who.workspace_external_id)
    _, answer = await world.open_link(who)
    comeback = _path(await _follow(http, answer.headers["location"]))
    assert (await world.web.get(comeback)).status_code == 303
    replay = await world.web.get(comeback)  # the same code and state again
    assert replay.status_code == 400


async def test_a_link_without_sign_in_cannot_skip_it(
    make_world, slack_signin, fake_slack, google: FakeGoogle, http, pool
) -> None:
    """Where a sign-in applies, a bound browser that skipped it links nothing."""
    world = make_world({"slack": slack_signin})
    who = await _slack_user(pool)
    state, _ = await world.open_link(who)
    consent = await ops_for(world.deps).consent_url("youtube", state)  # as if guessed
    page = await world.via(http, consent)
    assert page.status_code == 400 and "sign-in" in page.text
    assert google.exchange_count == 0 and await _accounts_of(pool, who) == []


# --- Discord OAuth2 -----------------------------------------------------------------


async def _discord_user(pool: Any, user_id: str) -> Identity:
    return await identity.resolve(
        pool,
        frontend="discord",
        workspace_external_id=f"9{secrets.randbelow(10**17)}",
        user_external_id=user_id,
    )


async def test_discord_requester_signs_in_and_links(
    make_world, discord_signin, discord: FakeDiscord, google: FakeGoogle, http, pool
) -> None:
    world = make_world({"discord": discord_signin})
    person = discord.user("ada")
    who = await _discord_user(pool, person["id"])
    discord.signin_user = person
    google.login_channel = google.add_channel("Ada On Discord").id

    _, answer = await world.open_link(who)
    signin_url = answer.headers["location"]
    query = parse_qs(urlsplit(signin_url).query)
    assert signin_url.startswith(f"{discord.base_url}/oauth2/authorize?")
    assert query["scope"] == ["identify"] and query["client_id"] == [discord.client_id]
    back = await world.via(http, signin_url)
    assert back.status_code == 303, back.text
    page = await world.via(http, back.headers["location"])
    assert page.status_code == 200 and "YouTube linked" in page.text
    [account] = await _accounts_of(pool, who)
    assert account.owner_id == who.chat_user_id
    assert discord.find("POST", "/oauth2/token") and discord.find("GET", "/users/@me")


async def test_discord_link_opened_by_someone_else_links_nothing(
    make_world, discord_signin, discord: FakeDiscord, google: FakeGoogle, http, pool
) -> None:
    world = make_world({"discord": discord_signin})
    who = await _discord_user(pool, discord.user("ada")["id"])
    discord.signin_user = discord.user("mallory")

    _, answer = await world.open_link(who)
    page = await world.via(http, answer.headers["location"])
    assert page.status_code == 400 and "someone other than" in page.text
    assert google.calls == [] and await _accounts_of(pool, who) == []


# --- no sign-in configured: a code typed in chat ------------------------------------


async def _link_with_code(world: World, who: Identity, google: FakeGoogle, http: Any) -> str:
    """Link a fresh channel where no sign-in applies; returns the code the page showed."""
    google.login_channel = google.add_channel("Chan " + secrets.token_hex(2)).id
    _, answer = await world.open_link(who)
    assert answer.headers["location"].startswith(google.base)  # straight to consent
    page = await world.via(http, answer.headers["location"])
    assert page.status_code == 200 and "One more step" in page.text, page.text
    found = CODE.search(page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_without_sign_in_the_link_waits_for_the_code(
    make_world, google: FakeGoogle, http, pool
) -> None:
    world = make_world({})
    who = await _slack_user(pool)
    link = await ops_for(world.deps).start_link(who, "youtube", reply_to={})
    start = await world.web.get(_path(link))
    assert "no sign-in is set up" in start.text and "link confirm" in start.text

    digest = await digests.upsert(
        pool,
        workspace_id=who.workspace_id,
        channel_id="C1",
        local_time=time(9, 0),
        time_zone="UTC",
        created_by=who.chat_user_id,
    )
    code = await _link_with_code(world, who, google, http)
    # Not usable anywhere: not an account, not in a digest, no metrics, no upload.
    assert await _accounts_of(pool, who) == []
    assert await accounts.list_for_workspace(pool, workspace_id=who.workspace_id) == []
    assert await digests.account_owners(pool, subscription_id=digest.id) == []
    report = await ops_for(world.deps).metrics(who)
    assert report.accounts == [] and report.posts == []
    with pytest.raises(ActionError):
        await resolve_account(ActionContext(who, world.deps), None, platform="youtube")
    listing = await world.say(who, "accounts")
    assert "Waiting (not usable yet)" in listing.text and "link confirm" in listing.text
    # The chat note says what to do, without the code.
    [(_, _, note)] = world.notified
    assert "link confirm <code>" in note and code not in note

    done = await world.say(who, f"link confirm {code[:4].lower()} {code[4:]}")
    [account] = await _accounts_of(pool, who)
    assert f"as {account.ref}" in done.text, done.text
    assert account.owner_id == who.chat_user_id and account.status == "ok"
    [member] = await digests.account_owners(pool, subscription_id=digest.id)
    assert member.chat_user_id == who.chat_user_id  # usable now, and only now
    # The code is not kept in the conversation history (written after the reply: wait).
    await world.chat.drain(5)
    history = await pool.fetch(
        "SELECT content FROM conversation_messages WHERE workspace_id = $1", who.workspace_id
    )
    assert history and all(code not in row["content"] for row in history)
    again = await world.say(who, f"link confirm {code}")
    assert "no link waiting" in again.text


async def test_a_wrong_code_or_another_users_code_is_refused(
    make_world, google: FakeGoogle, http, pool
) -> None:
    world = make_world({})
    team = f"T{secrets.token_hex(4).upper()}"
    ada, bob = await _slack_user(pool, team), await _slack_user(pool, team)
    ada_code = await _link_with_code(world, ada, google, http)
    bob_code = await _link_with_code(world, bob, google, http)

    stolen = await world.say(ada, f"link confirm {bob_code}")
    assert "not right" in stolen.text
    assert await _accounts_of(pool, ada) == [] and await _accounts_of(pool, bob) == []
    assert "Linked" in (await world.say(bob, f"link confirm {bob_code}")).text  # still Bob's

    for attempt in ("hello", "ZZZZZZZZ", "22222222"):
        assert "not right" in (await world.say(ada, f"link confirm {attempt}")).text
    last = await world.say(ada, "link confirm 33333333")  # the fifth miss
    assert "too many" in last.text
    late = await world.say(ada, f"link confirm {ada_code}")
    assert "no link waiting" in late.text and await _accounts_of(pool, ada) == []


async def test_pending_links_expire_and_are_purged(
    make_world, google: FakeGoogle, http, pool
) -> None:
    world = make_world({})
    who = await _slack_user(pool)
    code = await _link_with_code(world, who, google, http)
    await pool.execute(
        "UPDATE pending_links SET expires_at = now() - interval '1 second' WHERE requester_id = $1",
        who.chat_user_id,
    )
    late = await world.say(who, f"link confirm {code}")
    assert "no link waiting" in late.text and await _accounts_of(pool, who) == []
    assert await pending_links.purge_expired(pool) >= 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pending_links WHERE requester_id = $1", who.chat_user_id
        )
        == 0
    )


# --- an account another member owns -------------------------------------------------


async def _member(pool: Any, workspace: str, user: str, name: str) -> Identity:
    return await identity.resolve(
        pool,
        frontend="local",
        workspace_external_id=workspace,
        user_external_id=user,
        user_display_name=name,
    )


@dataclass
class Transfer:
    """Remy opened a link to a channel Olive (same workspace) owns and consented to it."""

    world: World
    workspace: str
    owner: Identity
    asker: Identity
    owned: accounts.LinkedAccount
    channel: Any
    token: dict[str, Any]  # the owner's grant
    page: httpx.Response  # what Remy's browser showed after consent

    async def answer(self, user_id: str, action_id: str, *, approved: bool) -> RecordingSink:
        """`user_id` presses approve or cancel on the request."""
        sink = RecordingSink()
        await self.world.chat.resolve_approval(
            frontend="local",
            workspace_id=self.workspace,
            user_id=user_id,
            action_id=action_id,
            approved=approved,
            sink=sink,
        )
        return sink


@pytest.fixture
async def transfer(make_world, google: FakeGoogle, link_account, http, pool) -> Transfer:
    world = make_world({})
    workspace = f"W{secrets.token_hex(4)}"
    owner = await _member(pool, workspace, "owner", "Olive")
    asker = await _member(pool, workspace, "asker", "Remy")
    owned, channel, raw = await link_account(owner)
    google.login_channel = channel.id
    _, answer = await world.open_link(asker)
    page = await world.via(http, answer.headers["location"])
    return Transfer(world, workspace, owner, asker, owned, channel, raw, page)


async def _pending_links_of(pool: Any, who: Identity) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM pending_links WHERE requester_id = $1", who.chat_user_id
        )
    )


async def test_relinking_someone_elses_channel_asks_the_current_owner(
    transfer: Transfer, pool, cipher
) -> None:
    world, owner, asker, owned = transfer.world, transfer.owner, transfer.asker, transfer.owned
    page = transfer.page
    assert page.status_code == 200 and "Waiting for approval" in page.text
    assert "Olive" not in page.text  # the page does not say who owns it
    # Nothing moved: same row, same owner, the owner's own token.
    [still] = await _accounts_of(pool, owner)
    assert still.id == owned.id and await _accounts_of(pool, asker) == []
    token = await accounts.load_token(pool, cipher=cipher, account=still)
    assert token["access_token"] == transfer.token["access_token"]
    # Both are told; the owner's approval waits, bound to the owner.
    told = {reply_to.get("user_id"): text for _, reply_to, text in world.notified}
    assert "asked them to approve" in told["x"]
    assert "Remy asked to take over" in told["owner"] and owned.ref in told["owner"]
    row = await pool.fetchrow(
        "SELECT chat_user_id, shown_at FROM pending_actions WHERE action = 'link_transfer'"
        " AND workspace_id = $1",
        owner.workspace_id,
    )
    assert row["chat_user_id"] == owner.chat_user_id and row["shown_at"] is None

    # The requester sees it waiting; the owner sees the request and gets the approval once.
    assert "current owner's approval" in (await world.say(asker, "accounts")).text
    listing = await world.say(owner, "accounts")
    assert "Requests waiting for your approval" in listing.text and "Remy" in listing.text
    [request] = listing.approvals
    assert request.requester_user_id == "owner"
    assert (await world.say(owner, "help")).approvals == []  # asked once

    # Only the owner can approve it.
    sink = await transfer.answer("asker", request.action_id, approved=True)
    assert "Only the person who asked" in sink.text
    assert [a.id for a in await _accounts_of(pool, owner)] == [owned.id]

    world.notified.clear()
    sink = await transfer.answer("owner", request.action_id, approved=True)
    assert "now belongs to Remy" in sink.text and "no longer yours" in sink.text
    assert await _accounts_of(pool, owner) == []
    [moved] = await _accounts_of(pool, asker)
    assert moved.id == owned.id and moved.external_id == transfer.channel.id
    fresh = await accounts.load_token(pool, cipher=cipher, account=moved)
    assert fresh["access_token"] != transfer.token["access_token"]  # the requester's own grant
    [(_, reply_to, text)] = world.notified
    assert reply_to == {"user_id": "x"} and "now linked to you" in text
    assert await _pending_links_of(pool, asker) == 0


async def test_the_owner_can_refuse_and_nothing_moves(transfer: Transfer, pool) -> None:
    world, owner, asker, owned = transfer.world, transfer.owner, transfer.asker, transfer.owned

    [request] = (await world.say(owner, "help")).approvals
    sink = await transfer.answer("owner", request.action_id, approved=False)
    assert "Cancelled" in sink.text
    assert [a.id for a in await _accounts_of(pool, owner)] == [owned.id]
    assert await _accounts_of(pool, asker) == []
    assert "Waiting" not in (await world.say(asker, "accounts")).text
    assert await pending_links.purge_expired(pool) >= 1
    assert await _pending_links_of(pool, asker) == 0


async def test_upsert_never_moves_an_account_to_another_owner(pool, cipher) -> None:
    workspace = f"W{secrets.token_hex(4)}"
    owner = await _member(pool, workspace, "o", "O")
    other = await _member(pool, workspace, "p", "P")
    fields: dict[str, Any] = {
        "cipher": cipher,
        "workspace_id": owner.workspace_id,
        "platform": "youtube",
        "external_id": "UC-shared",
        "handle": "shared",
        "scopes": [],
        "expires_at": None,
    }
    async with pool.acquire() as conn:
        first = await accounts.upsert_linked(
            conn, owner_id=owner.chat_user_id, token={"access_token": "mine"}, **fields
        )
        with pytest.raises(accounts.OwnedByAnother) as taken:
            await accounts.upsert_linked(
                conn, owner_id=other.chat_user_id, token={"access_token": "theirs"}, **fields
            )
    assert taken.value.account.id == first.id
    [kept] = await _accounts_of(pool, owner)
    assert (await accounts.load_token(pool, cipher=cipher, account=kept))["access_token"] == "mine"
