"""A Discord upload that outlives the interaction token: the result reaches the channel.

The whole product: the Discord part on a fake gateway and REST API, the real
conversation core, the worker part on the engine, fake Google. `/social upload`
with an attachment asks for approval; the click queues the job. The fake's token
lifetime is cut to two seconds and Google holds the upload past it, so every use
of either interaction token would now answer 401 (50027). The job's status message
lives in the channel (the bot's own REST calls), so it still ends with the link.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.assembly import Assembly
from storage import job_runs
from tests.fakes.discord import FakeDiscord
from tests.fakes.google import FakeGoogle
from tests.wiring import google_settings, link_youtube, wait_until, wired

CHUNK = 256 * 1024
TTL = 2.0


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild("Creators")
    async with server.running():
        yield server


def _guild_channel(fake: FakeDiscord) -> tuple[dict[str, Any], dict[str, Any]]:
    guild = next(iter(fake.guilds.values()))
    return guild, guild["channels"][0]


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        button["label"]: button["custom_id"]
        for row in message.get("components") or []
        for button in row.get("components") or []
    }


async def test_upload_longer_than_the_interaction_token_still_ends_in_the_channel(
    make_settings: Any, empty_db: str, google: FakeGoogle, discord: FakeDiscord
) -> None:
    guild, channel = _guild_channel(discord)
    alice = discord.user("alice")
    settings = {
        **google_settings(google),
        "discord_token": discord.token,
        "discord_api_base": discord.api_base,
    }
    async with wired(make_settings, empty_db, **settings) as assembly:
        await link_youtube(assembly, google, guild["id"], alice["id"], frontend="discord")
        part = assembly.build_part("discord")
        worker = assembly.build_part("worker")
        await part.start()
        await asyncio.wait_for(part.wait_until_ready(), 15)  # type: ignore[attr-defined]
        await worker.start()
        try:
            await _upload_through_a_lapsed_token(assembly, discord, guild, channel, alice, google)
        finally:
            await worker.stop(5)
            await part.stop(5)


async def _upload_through_a_lapsed_token(
    assembly: Assembly,
    discord: FakeDiscord,
    guild: dict[str, Any],
    channel: dict[str, Any],
    alice: dict[str, Any],
    google: FakeGoogle,
) -> None:
    data = os.urandom(8 * CHUNK + 77)
    attachment = discord.add_file("clip.mp4", data)
    discord.interaction_token_ttl = TTL
    ask = discord.interaction_payload(
        user=alice,
        guild_id=guild["id"],
        channel=channel,
        type=2,
        data={
            "id": "1200000000000000500",
            "name": "social",
            "type": 1,
            "options": [
                {"name": "request", "type": 3, "value": 'upload youtube "Long one"'},
                {"name": "file", "type": 11, "value": attachment["id"]},
            ],
            "resolved": {"attachments": {attachment["id"]: attachment}},
        },
    )
    await discord.dispatch("INTERACTION_CREATE", ask)
    [prompt] = await discord.wait_for(
        lambda f: [m for m in f.created if "Approve" in _buttons(m)], timeout=30
    )
    google.faults.pause_at_byte = 4 * CHUNK + 10
    click = discord.interaction_payload(
        user=alice,
        guild_id=guild["id"],
        channel=channel,
        type=3,
        data={"custom_id": _buttons(prompt)["Approve"], "component_type": 2},
        message=prompt,
    )
    await discord.dispatch("INTERACTION_CREATE", click)
    await asyncio.wait_for(google.paused.wait(), 60)
    await asyncio.sleep(TTL + 0.5)  # both interaction tokens have lapsed now
    async with httpx.AsyncClient() as client:
        lapsed = await client.post(
            f"{discord.api_base}/webhooks/{discord.app_id}/{click['token']}",
            json={"content": "probe"},
        )
    assert lapsed.status_code == 401 and lapsed.json()["code"] == 50027
    google.resume.set()

    pool = assembly.services.db.pool

    async def ended() -> bool:
        runs = await pool.fetch("SELECT id FROM job_runs")
        run = await job_runs.get(pool, runs[0]["id"]) if runs else None
        return run is not None and run.ended

    await wait_until(ended, timeout=60)
    [row] = await pool.fetch("SELECT id FROM job_runs")
    run = await job_runs.get(pool, row["id"])
    assert run is not None and run.state == "done", run
    [video] = google.videos_created
    assert run.message_ref is not None
    status = discord.messages[run.message_ref]  # the job's one status message
    assert status["channel_id"] == channel["id"]
    assert status["content"].startswith("Done:") and video in status["content"], status
    # It was written with the bot's own token on the channel, not through the interaction.
    edits = discord.find("PATCH", rf"/channels/{channel['id']}/messages/{run.message_ref}")
    assert edits and edits[-1].body["content"] == status["content"]
    # One outcome, in one message: nothing else in the channel says it is done.
    done = [m["id"] for m in discord.messages.values() if "Done:" in str(m.get("content"))]
    assert done == [run.message_ref], done
    assert re.search(r"Queued as job \d+", _all_text(discord)), _all_text(discord)


def _all_text(discord: FakeDiscord) -> str:
    return "\n".join(str(m.get("content")) for m in discord.messages.values())
