"""Socket Mode: the same adapter over a WebSocket (SLACK_APP_TOKEN), against the fake Slack."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.services import Services
from bot.slack import build_slack_adapter
from bot.slack.socket import SlackSocketPart
from storage.redis import RedisHandle
from tests.bot.slack.conftest import BOT_TOKEN, BOT_USER, TEAM, RecordingCore
from tests.fakes.slack import FakeSlack


async def _until(predicate: Any, what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def test_socket_mode_serves_commands_and_events(
    make_settings: Any, fake_slack: FakeSlack, core: RecordingCore, redis: RedisHandle
) -> None:
    settings = make_settings(
        slack_bot_token=BOT_TOKEN,
        slack_app_token="xapp-1-A1-test",
        slack_api_base=fake_slack.api_base,
    )
    services = Services(settings=settings)
    await services.initialize()
    adapter = build_slack_adapter(services, handler=core)
    part = SlackSocketPart(adapter=adapter, app_token="xapp-1-A1-test")
    await part.start()
    try:
        fake_slack.socket_outbox.put_nowait(
            {
                "envelope_id": "env-cmd",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": {
                    "team_id": TEAM,
                    "channel_id": "C1",
                    "user_id": "UALICE",
                    "command": "/social",
                    "text": "echo over socket",
                    "response_url": f"{fake_slack.base_url}/response/s",
                },
            }
        )
        event = {
            "type": "app_mention",
            "user": "UALICE",
            "channel": "C1",
            "ts": "9.1",
            "text": f"<@{BOT_USER}> echo mention over socket",
        }
        envelope = {
            "envelope_id": "env-ev",
            "type": "events_api",
            "accepts_response_payload": False,
            "payload": {
                "type": "event_callback",
                "team_id": TEAM,
                "event": event,
                "event_id": "EvSock",
                "event_time": int(time.time()),
            },
        }
        fake_slack.socket_outbox.put_nowait(envelope)
        fake_slack.socket_outbox.put_nowait(
            {**envelope, "envelope_id": "env-ev-retry", "retry_attempt": 1}
        )
        await _until(lambda: len(fake_slack.calls_of("chat.postMessage")) >= 2, "two replies")
        await _until(lambda: len(fake_slack.socket_received) >= 3, "three acks")
        await adapter.drain(10)
    finally:
        await part.stop(5)
        await services.shutdown()

    acks = {a["envelope_id"]: a for a in fake_slack.socket_received}
    assert acks["env-cmd"]["payload"] == {"response_type": "ephemeral", "text": "Working on it…"}
    assert {"env-ev", "env-ev-retry"} <= set(acks)
    texts = sorted(p.args["text"] for p in fake_slack.calls_of("chat.postMessage"))
    assert texts == ["you said: echo mention over socket", "you said: echo over socket"]
    assert [m.is_command for m in core.messages].count(True) == 1
    assert core.unexpected == []
    await part.wait()  # returns once stopped
