from __future__ import annotations

from bot.core.messages import Reply


async def test_mention_smoke(fake, part, handler) -> None:
    guild = next(iter(fake.guilds.values()))
    channel = guild["channels"][0]
    alice = fake.user("alice")

    async def reply(message, sink):
        await sink.send(Reply(f"got: {message.text}"))

    handler.on_message = reply
    data = fake.message_payload(
        author=alice,
        content=f"<@{fake.app_id}> metrics youtube",
        channel_id=channel["id"],
        guild_id=guild["id"],
        mentions=[fake.bot_user],
    )
    await fake.dispatch("MESSAGE_CREATE", data)
    calls = await fake.wait_for(lambda f: f.find("POST", rf"/channels/{channel['id']}/messages"))
    print(calls, handler.messages)
