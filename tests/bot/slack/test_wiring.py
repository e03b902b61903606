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
from bot.slack.socket import DrainingWebPart, SlackSocketPart


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
    web = part._web if isinstance(part, DrainingWebPart) else part
    app = web._server.config.app
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


class _StubWeb:
    """Stands in for the uvicorn part: records the order of calls."""

    name = "web"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def start(self) -> None:
        self.log.append("web start")

    async def wait(self) -> None:
        self.log.append("web wait")

    async def stop(self, grace: float) -> None:
        self.log.append("web stop")


async def test_stopping_the_web_part_lets_slack_work_finish(slack: Any) -> None:
    import asyncio

    from bot.core.messages import IncomingMessage, Reply, ReplySink

    log: list[str] = []
    release = asyncio.Event()
    original = slack.core.handle

    async def slow(message: IncomingMessage, sink: ReplySink) -> None:
        await release.wait()
        await sink.send(Reply("finished after the stop began"))
        log.append("work done")

    slack.core.handle = slow
    slack.adapter.accept_command(
        {"team_id": "T1", "channel_id": "C1", "user_id": "U1", "text": "x"}
    )
    part = DrainingWebPart(web=_StubWeb(log), adapter=slack.adapter)
    stopping = asyncio.create_task(part.stop(10))
    await asyncio.sleep(0.05)
    assert log == ["web stop"]
    release.set()
    await stopping
    slack.core.handle = original

    assert log == ["web stop", "work done"]
    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.args["text"] == "finished after the stop began"


async def test_no_unused_token_warning_when_bolt_is_built(
    make_settings, fake_slack, core, monkeypatch, caplog
) -> None:
    """bolt warns that SLACK_BOT_TOKEN "will be unused" when it is in the environment and a
    client is given; ours carries that token, so the warning is noise and is dropped."""
    import logging

    from bot.services import Services
    from bot.slack import build_slack_adapter
    from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    settings = make_settings(
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base=fake_slack.api_base,
        slack_bot_token=BOT_TOKEN,
    )
    services = Services(settings=settings)
    adapter = build_slack_adapter(services, handler=core)
    with caplog.at_level(logging.WARNING, logger="slack_bolt"):
        await adapter.bolt()  # built on first use
    try:
        assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
    finally:
        await adapter.aclose(1)
