"""Wiring: the manifest matches what the adapter uses; assembly mounts and builds the parts."""

from __future__ import annotations

from importlib import resources
from typing import Any

import httpx
import pytest
import yaml

from bot.assembly import PartUnavailable, build_part
from bot.services import Services
from bot.slack.adapter import BOT_SCOPES
from bot.slack.socket import SlackSocketPart


def test_manifest_asks_for_exactly_the_scopes_and_events_used() -> None:
    text = resources.files("bot.slack").joinpath("manifest.yaml").read_text(encoding="utf-8")
    manifest = yaml.safe_load(text)
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert manifest["oauth_config"]["scopes"].get("user") is None
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",
        "app_uninstalled",
        "tokens_revoked",
    }
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/social"]


async def _status(part: Any, method: str, path: str) -> int:
    app = part._server.config.app
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        return (await http.request(method, path)).status_code


async def test_web_part_mounts_slack_routes_only_when_configured(make_settings: Any) -> None:
    plain = build_part(Services(settings=make_settings()), "web")
    assert await _status(plain, "POST", "/slack/events") == 404

    single = build_part(
        Services(settings=make_settings(slack_bot_token="xoxb-1", slack_signing_secret="s" * 10)),
        "web",
    )
    assert await _status(single, "POST", "/slack/events") == 401  # mounted, and unsigned
    assert await _status(single, "GET", "/slack/install") == 404

    multi = build_part(
        Services(
            settings=make_settings(
                slack_client_id="1.2",
                slack_client_secret="cs-123456",
                slack_signing_secret="s" * 10,
            )
        ),
        "web",
    )
    assert await _status(multi, "POST", "/slack/events") == 401
    assert await _status(multi, "GET", "/slack/install") != 404
    assert await _status(multi, "GET", "/slack/oauth_redirect") != 404


async def test_socket_part_needs_an_app_token(make_settings: Any) -> None:
    with pytest.raises(PartUnavailable):
        build_part(
            Services(
                settings=make_settings(slack_bot_token="xoxb-1", slack_signing_secret="s" * 10)
            ),
            "slack-socket",
        )
    part = build_part(
        Services(settings=make_settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1-abc")),
        "slack-socket",
    )
    assert isinstance(part, SlackSocketPart) and part.name == "slack-socket"
