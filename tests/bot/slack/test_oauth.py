"""Multi-workspace Slack: install through OAuth, encrypted bot tokens, token rotation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from bot.slack.adapter import BOT_SCOPES
from storage.crypto import Location
from tests.bot.slack.conftest import SlackHarness


async def _install(slack: SlackHarness, team: str, code: str) -> None:
    start = await slack.http.get("/slack/install")
    assert start.status_code == 302
    location = urlsplit(start.headers["location"])
    query = parse_qs(location.query)
    assert location.netloc == "slack.com" and location.path == "/oauth/v2/authorize"
    assert query["client_id"] == ["1111.2222"]
    assert set(query["scope"][0].split(",")) == set(BOT_SCOPES)
    assert query["redirect_uri"] == ["http://localhost:8000/slack/oauth_redirect"]
    slack.fake.oauth_codes[code] = team
    done = await slack.http.get(
        "/slack/oauth_redirect", params={"code": code, "state": query["state"][0]}
    )
    assert done.status_code == 200, done.text


async def test_install_stores_an_encrypted_bot_token_and_serves_the_workspace(
    slack_multi: SlackHarness,
) -> None:
    slack = slack_multi
    await _install(slack, "TOA1", "code-oa1")

    (grant,) = slack.fake.calls_of("oauth.v2.access")
    assert grant.args["code"] == "code-oa1"
    token = "xoxb-TOA1-1"
    pool = slack.services.db.pool
    row = await pool.fetchrow(
        "SELECT id, bot_token, bot_token_kid, bot_user_id FROM slack_bots WHERE team_id = 'TOA1'"
    )
    assert row is not None
    stored = bytes(row["bot_token"])
    assert token.encode() not in stored
    assert row["bot_token_kid"] == slack.services.cipher.primary_kid
    where = Location("slack_bots", str(row["id"]), "bot_token")
    assert slack.services.cipher.decrypt_str(stored, where) == token
    assert row["bot_user_id"] == "UTOA1BOT"
    installer = await pool.fetchval(
        "SELECT installer_user_id FROM slack_installations WHERE team_id = 'TOA1'"
    )
    assert installer == "UINSTALLER"

    # The installed workspace's commands are answered with its own token.
    await slack.command("echo installed", team_id="TOA1")
    await slack.settle()
    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.token == token


async def test_events_from_an_installed_workspace_use_its_token(slack_multi: SlackHarness) -> None:
    slack = slack_multi
    await _install(slack, "TOA2", "code-oa2")
    event = {
        "type": "app_mention",
        "user": "UALICE",
        "channel": "C9",
        "ts": "1.1",
        "text": "<@UTOA2BOT> echo hi",
    }
    await slack.event(event, event_id="EvOA2", team="TOA2")
    await slack.settle()

    (message,) = slack.core.messages
    assert message.workspace_id == "TOA2" and message.text == "echo hi"
    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.token == "xoxb-TOA2-1"


async def test_a_reused_or_unknown_state_is_refused(slack_multi: SlackHarness) -> None:
    slack = slack_multi
    start = await slack.http.get("/slack/install")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    slack.fake.oauth_codes["code-x"] = "TOA3"
    first = await slack.http.get("/slack/oauth_redirect", params={"code": "code-x", "state": state})
    assert first.status_code == 200
    slack.fake.oauth_codes["code-y"] = "TOA3"
    again = await slack.http.get("/slack/oauth_redirect", params={"code": "code-y", "state": state})
    forged = await slack.http.get(
        "/slack/oauth_redirect", params={"code": "code-y", "state": "made-up"}
    )

    assert again.status_code >= 400 and forged.status_code >= 400
    assert len(slack.fake.calls_of("oauth.v2.access")) == 1


async def test_command_from_a_workspace_without_installation_gets_no_reply(
    slack_multi: SlackHarness,
) -> None:
    slack = slack_multi
    response = await slack.command("echo anyone?", team_id="TNOPE")
    await slack.settle()

    assert response.status_code == 200
    assert slack.core.messages == []
    assert slack.fake.calls_of("chat.postMessage") == []


async def test_expiring_bot_token_is_rotated_and_the_new_one_stored(
    slack_multi: SlackHarness,
) -> None:
    slack = slack_multi
    slack.fake.token_expires_in = 60  # well inside bolt's rotation window
    await _install(slack, "TOA4", "code-oa4")

    await slack.command("echo rotate", team_id="TOA4")
    await slack.settle()

    refresh = [
        c
        for c in slack.fake.calls_of("oauth.v2.access")
        if c.args.get("grant_type") == "refresh_token"
    ]
    assert len(refresh) == 1 and refresh[0].args["refresh_token"] == "xoxe-TOA4-1"
    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.token == "xoxb-TOA4-2"
    row = await slack.services.db.pool.fetchrow(
        "SELECT id, bot_token, bot_refresh_token FROM slack_bots WHERE team_id = 'TOA4'"
    )
    cipher = slack.services.cipher
    assert (
        cipher.decrypt_str(
            bytes(row["bot_token"]), Location("slack_bots", str(row["id"]), "bot_token")
        )
        == "xoxb-TOA4-2"
    )
    assert b"xoxe-" not in bytes(row["bot_refresh_token"])


async def test_uninstall_forgets_the_workspace_bot(slack_multi: SlackHarness) -> None:
    slack = slack_multi
    await _install(slack, "TOA5", "code-oa5")
    event = {"type": "app_uninstalled"}
    response = await slack.event(event, event_id="EvUninstall", team="TOA5")
    await slack.settle()

    assert response.status_code == 200
    gone = await slack.services.db.pool.fetchval(
        "SELECT count(*) FROM slack_bots WHERE team_id = 'TOA5'"
    )
    assert gone == 0
