"""The OAuth link pages end to end: our app in-process, Google as a loopback fake.

These links come from the local shell (no chat sign-in applies): the start page,
"Continue" binding the browser, consent, and the callback in that same browser.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from bot.notify import Notifiers
from bot.oauth_web import build_oauth_router
from integrations.youtube import SCOPES
from storage import accounts
from tests.chat_fixtures import ops_for
from tests.fakes.platforms import directory


@pytest.fixture
def notified():
    return []


@pytest.fixture
async def web(deps, pool, cipher, notified):
    notifiers = Notifiers()

    async def local(reply_to, text):
        notified.append((reply_to, text))

    notifiers.register("local", local)
    app = FastAPI()
    app.include_router(
        build_oauth_router(
            linking=lambda: ops_for(deps),
            platforms=deps.platforms,
            notifiers=notifiers,
            public_base_url="http://testserver",
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def _to_google(web, deps, identity):
    """The requester's browser: the start page, then "Continue" (binds this browser)."""
    link = await ops_for(deps).start_link(identity, "youtube", reply_to={"thread": "T9"})
    page = await web.get(_path(link))
    assert page.status_code == 200, page.text
    assert "Continue" in page.text
    state = parse_qs(urlsplit(link).query)["s"][0]
    response = await web.post("/oauth/youtube/start", data={"s": state})
    assert response.status_code == 303, response.text
    return link, response.headers["location"]


async def _consent(url: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 302
    return response.headers["location"]


async def test_start_page_names_the_requester_and_continue_binds_the_browser(
    web, deps, google, identity, pool
):
    link = await ops_for(deps).start_link(identity, "youtube", reply_to={})
    page = await web.get(_path(link))
    assert page.status_code == 200
    assert "Ada" in page.text and "local shell" in page.text
    assert "<form method='post' action='start'>" in page.text
    headers = page.headers
    assert headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert google.calls == []  # nothing is sent to the platform before "Continue"
    assert await pool.fetchval(
        "SELECT browser_hash IS NULL FROM oauth_states WHERE workspace_id = $1",
        identity.workspace_id,
    )

    state = parse_qs(urlsplit(link).query)["s"][0]
    response = await web.post("/oauth/youtube/start", data={"s": state})
    assert response.status_code == 303
    assert response.headers["location"].startswith(google.base)
    cookie = response.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    secret = rest.split(";")[0]
    assert name.startswith("link_") and state not in cookie
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "max-age", "path"} <= attributes
    assert "secure" not in attributes  # PUBLIC_BASE_URL is http here
    assert "path=/oauth/" in cookie.lower() and "samesite=lax" in cookie.lower()
    stored = await pool.fetchval(
        "SELECT browser_hash FROM oauth_states WHERE workspace_id = $1", identity.workspace_id
    )
    assert bytes(stored) == hashlib.sha256(secret.encode()).digest()

    # Another site cannot post the form.
    foreign = await web.post(
        "/oauth/youtube/start", data={"s": state}, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403


async def test_full_link_flow(web, deps, google, identity, pool, cipher, notified):
    channel = google.add_channel("Cooking With Ada", custom_url="@adacooks")
    link, auth_url = await _to_google(web, deps, identity)
    query = {k: v[0] for k, v in parse_qs(urlsplit(auth_url).query).items()}
    assert auth_url.startswith(google.base)
    assert query["state"] == parse_qs(urlsplit(link).query)["s"][0]
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert set(query["scope"].split()) == set(SCOPES)
    assert query["redirect_uri"] == "http://testserver/oauth/youtube/callback"

    callback = await _consent(auth_url)
    page = await web.get(_path(callback))
    assert page.status_code == 200, page.text
    assert "Cooking With Ada" in page.text and "Ada" in page.text
    [account] = await accounts.list_for_owner(
        pool, workspace_id=identity.workspace_id, owner_id=identity.chat_user_id
    )
    assert (
        account.external_id == channel.id and account.handle == "adacooks"
    )  # stored once, without the "@"
    assert account.status == "ok" and set(account.scopes) == set(SCOPES)
    token = await accounts.load_token(pool, cipher=cipher, account=account)
    raw = await pool.fetchval("SELECT token FROM linked_accounts WHERE id = $1", account.id)
    assert token["access_token"].encode() not in bytes(raw)  # encrypted at rest
    assert token["refresh_token"]
    assert notified == [
        ({"thread": "T9"}, f"Linked YouTube Cooking With Ada (@adacooks) as {account.ref}.")
    ]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'link' AND target = $1", account.ref
        )
        == 1
    )

    # The same callback again: the state was consumed.
    again = await web.get(_path(callback))
    assert again.status_code == 400
    assert "already used" in again.text and "link youtube" in again.text
    assert google.exchange_count == 1


async def test_reused_start_link_after_callback_is_refused(web, deps, google, identity):
    google.add_channel()
    link, auth_url = await _to_google(web, deps, identity)
    await web.get(_path(await _consent(auth_url)))
    response = await web.get(_path(link))
    assert response.status_code == 400 and "already used" in response.text


async def test_expired_state(web, deps, google, identity, pool):
    google.add_channel()
    link, auth_url = await _to_google(web, deps, identity)
    callback = await _consent(auth_url)
    await pool.execute(
        "UPDATE oauth_states SET expires_at = now() - interval '1 second' WHERE workspace_id = $1",
        identity.workspace_id,
    )
    start = await web.get(_path(link))
    assert start.status_code == 400 and "expired" in start.text
    response = await web.get(_path(callback))
    assert response.status_code == 400 and "expired" in response.text
    assert google.exchange_count == 0


async def test_tampered_state(web, deps, google, identity):
    google.add_channel()
    link, auth_url = await _to_google(web, deps, identity)
    callback = await _consent(auth_url)
    tampered = callback.replace("state=", "state=x")
    response = await web.get(_path(tampered))
    assert response.status_code == 400 and "not valid" in response.text
    bad_start = await web.get(_path(link) + "x")
    assert bad_start.status_code == 400
    # The genuine state still works once.
    assert (await web.get(_path(callback))).status_code == 200


async def test_missing_or_damaged_verifier(web, deps, google, identity, pool):
    google.add_channel()
    link, auth_url = await _to_google(web, deps, identity)
    callback = await _consent(auth_url)
    before = await pool.fetchval(
        "SELECT code_verifier FROM oauth_states WHERE workspace_id = $1", identity.workspace_id
    )
    # Flip every bit of one byte (XOR 0xFF): writing a constant leaves a byte that already
    # holds it unchanged (1 run in 256), and then nothing is damaged.
    after = await pool.fetchval(
        "UPDATE oauth_states SET code_verifier = set_byte(code_verifier, 19,"
        " get_byte(code_verifier, 19) # 255) WHERE workspace_id = $1 RETURNING code_verifier",
        identity.workspace_id,
    )
    assert len(after) == len(before) and after != before
    start = await web.get(_path(link))
    assert start.status_code == 400 and "security check" in start.text
    response = await web.get(_path(callback))
    assert response.status_code == 400 and "security check" in response.text
    assert google.exchange_count == 0


async def test_declined_and_incomplete(web, deps, google, identity):
    google.add_channel()
    link, _ = await _to_google(web, deps, identity)
    state = parse_qs(urlsplit(link).query)["s"][0]
    declined = await web.get(f"/oauth/youtube/callback?state={state}&error=access_denied")
    assert declined.status_code == 400 and "declined" in declined.text
    assert (await web.get("/oauth/youtube/callback")).status_code == 400
    assert (await web.get("/oauth/youtube/start")).status_code == 400
    assert (await web.get("/oauth/myspace/start?s=abc")).status_code == 404


async def test_state_is_bound_to_its_platform(web, deps, google, identity, pool):
    google.add_channel()
    link, _ = await _to_google(web, deps, identity)
    await pool.execute(
        "UPDATE oauth_states SET platform = 'instagram' WHERE workspace_id = $1",
        identity.workspace_id,
    )
    response = await web.get(_path(link))
    assert response.status_code == 400


class _UnreadableProfile:
    """The real YouTube platform, except that reading the channel fails unexpectedly
    (as when Google answers 200 with a body that is not JSON)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    async def profile(self, tokens):
        raise ValueError("Expecting value: line 1 column 1 (char 0)")


async def test_unexpected_failure_is_a_readable_page_and_links_nothing(
    deps, google, identity, pool, cipher
):
    google.add_channel()
    deps = replace(deps, platforms=directory(_UnreadableProfile(deps.platforms.client("youtube"))))
    app = FastAPI()
    app.include_router(
        build_oauth_router(
            linking=lambda: ops_for(deps),
            platforms=deps.platforms,
            notifiers=Notifiers(),
            public_base_url="http://testserver",
        )
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
        _, auth_url = await _to_google(web, deps, identity)
        page = await web.get(_path(await _consent(auth_url)))
    assert page.status_code == 502
    assert page.headers["content-type"].startswith("text/html")
    assert "nothing was linked" in page.text and "link youtube" in page.text
    assert "Expecting value" not in page.text and "Traceback" not in page.text
    assert (
        await accounts.list_for_owner(
            pool, workspace_id=identity.workspace_id, owner_id=identity.chat_user_id
        )
        == []
    )


async def test_names_on_the_pages_are_escaped_and_the_error_is_not_echoed(web, deps, google, pool):
    """The chat user's display name and the channel title are other people's text;
    the `error` parameter is the caller's. None of them may become markup."""
    from storage import identity as identities

    evil = "<script>alert(1)</script>"
    who = await identities.resolve(
        pool,
        frontend="local",
        workspace_external_id="W-xss",
        user_external_id="U-xss",
        user_display_name=f"Eve {evil}",
    )
    google.login_channel = google.add_channel('Chan <img src=x onerror="alert(2)">').id
    link, auth_url = await _to_google(web, deps, who)
    start = await web.get(_path(link))  # the start page names the requester too
    assert "<script>" not in start.text and "&lt;script&gt;" in start.text
    page = await web.get(_path(await _consent(auth_url)))
    assert page.status_code == 200
    assert "<script>" not in page.text and "<img" not in page.text
    assert "&lt;script&gt;" in page.text and "&lt;img" in page.text

    link, _ = await _to_google(web, deps, who)
    state = parse_qs(urlsplit(link).query)["s"][0]
    declined = await web.get("/oauth/youtube/callback", params={"state": state, "error": evil})
    assert declined.status_code == 400 and "alert(1)" not in declined.text


async def test_the_callback_in_a_browser_without_the_cookie_links_nothing(
    web, deps, google, identity, pool
):
    """A consent page forwarded to someone else comes back in their browser: refused."""
    google.add_channel()
    _, auth_url = await _to_google(web, deps, identity)
    callback = await _consent(auth_url)
    web.cookies.clear()  # the same request, from a browser that never pressed "Continue"
    page = await web.get(_path(callback))
    assert page.status_code == 400 and "different browser" in page.text
    assert google.exchange_count == 0
    assert (
        await accounts.list_for_owner(
            pool, workspace_id=identity.workspace_id, owner_id=identity.chat_user_id
        )
        == []
    )
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND outcome = 'refused:other_browser'",
        identity.workspace_id,
    )


async def test_the_cookie_is_secure_when_the_bot_is_served_over_https(deps, google, identity):
    google.add_channel()
    app = FastAPI()
    app.include_router(
        build_oauth_router(
            linking=lambda: ops_for(deps),
            platforms=deps.platforms,
            notifiers=Notifiers(),
            public_base_url="https://bot.example.com",
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://bot.example.com") as web:
        link = await ops_for(deps).start_link(identity, "youtube", reply_to={})
        state = parse_qs(urlsplit(link).query)["s"][0]
        same_site = await web.post(
            "/oauth/youtube/start", data={"s": state}, headers={"origin": "https://bot.example.com"}
        )
    assert same_site.status_code == 303
    assert "secure" in same_site.headers["set-cookie"].lower()
