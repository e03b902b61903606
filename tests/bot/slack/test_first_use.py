"""bolt, the Web API client and their session are built by the adapter's first Slack work
(bot.slack.bolt_app), once, however many requests arrive first together."""

from __future__ import annotations

import asyncio

from tests.bot.slack.conftest import BOT_USER, SlackHarness


async def test_concurrent_first_callers_share_one_build(slack: SlackHarness) -> None:
    built = await asyncio.gather(*(slack.adapter.bolt() for _ in range(8)))
    assert all(bolt is built[0] for bolt in built)
    assert built[0].session is not None and not built[0].session.closed


async def test_a_first_caller_that_goes_away_does_not_cancel_the_build(
    slack: SlackHarness,
) -> None:
    first = asyncio.create_task(slack.adapter.bolt())
    await asyncio.sleep(0)  # the build has started
    first.cancel()
    bolt = await slack.adapter.bolt()
    assert (await slack.adapter.bolt()) is bolt
    response = await slack.event(
        {
            "type": "app_mention",
            "user": "UALICE",
            "channel": "C1",
            "ts": "1.1",
            "text": f"<@{BOT_USER}> echo after a cancel",
        }
    )
    assert response.status_code == 200


async def test_first_requests_arriving_together_are_all_served(slack: SlackHarness) -> None:
    """Mentions (which need bolt to be acked) and slash commands (acked without it, answered
    through the Web API) as a fresh process's first requests, all at once."""
    mentions = [
        slack.event(
            {
                "type": "app_mention",
                "user": "UALICE",
                "channel": "C1",
                "ts": f"1.{i}",
                "text": f"<@{BOT_USER}> echo mention {i}",
            },
            event_id=f"EvFirst{i}",
        )
        for i in range(5)
    ]
    commands = [slack.command(f"echo command {i}") for i in range(5)]
    responses = await asyncio.gather(*mentions, *commands)
    assert [r.status_code for r in responses] == [200] * 10
    await slack.settle()

    texts = sorted(p.args["text"] for p in slack.fake.calls_of("chat.postMessage"))
    expected = [f"you said: echo command {i}" for i in range(5)]
    expected += [f"you said: echo mention {i}" for i in range(5)]
    assert texts == sorted(expected)
