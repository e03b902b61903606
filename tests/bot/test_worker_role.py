"""A worker-only process (the Procfile's `worker` role) with Slack configured.

It resumes uploads whose bytes come from Slack and posts Slack digests, so it needs
the `slack` source opener without any Slack part running, and it must close the
Slack clients it opened when it stops.
"""

from __future__ import annotations

from typing import Any

from bot.assembly import CorePart, build_parts
from bot.services import Services
from tests.bot.slack.conftest import BOT_TOKEN, SIGNING_SECRET, TEAM
from tests.fakes.slack import FakeSlack


async def test_worker_reads_slack_sources_and_closes_slack_clients(
    make_settings: Any, fake_slack: FakeSlack
) -> None:
    settings = make_settings(
        slack_signing_secret=SIGNING_SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_base=fake_slack.api_base,
    )
    services = Services(settings=settings)
    await services.initialize()
    try:
        core, worker = build_parts(services, ["worker"])
        assert isinstance(core, CorePart)
        locator = {
            "kind": "slack",
            "team": TEAM,
            "url": f"{fake_slack.api_base}files/clip.mp4",
            "size": 10,
            "mime_type": "video/mp4",
        }
        # The worker's own source openers read Slack files: not "can't read a 'slack' source".
        assert core._assembly.sources.open(locator).size == 10

        adapter = core._assembly.slack
        assert adapter is not None
        client = await adapter.team_client(team_id=TEAM)  # how the worker posts digests
        await client.chat_postMessage(channel="C1", text="digest")
        session = (await adapter.bolt()).session
        assert session is not None and not session.closed
        await worker.stop(1)
        await core.stop(1)
        assert session.closed and adapter._http.is_closed
    finally:
        await services.shutdown()
