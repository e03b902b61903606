"""Gateway messages -> IncomingMessage -> replies, against the fake Discord."""

from __future__ import annotations

import hashlib
import os
import re

from bot.core.messages import IncomingMessage, Reply, ReplySink
from bot.core.text import MAX_PARTS, MESSAGE_LIMIT
from tests.bot.discord.helpers import channel_posts, guild_and_channel, mention


async def test_mention_in_guild_channel_reaches_handler_and_reply_posts_there(
    fake, part, handler
) -> None:
    guild, channel = guild_and_channel(fake)
    alice = fake.user("alice")

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send(Reply(f"got: {message.text}"))

    handler.on_message = reply
    sent = await mention(fake, alice, "metrics youtube 7d")
    posts = await fake.wait_for(lambda f: channel_posts(f, channel["id"]))

    [incoming] = handler.messages
    assert incoming.frontend == "discord"
    assert incoming.workspace_id == guild["id"]
    assert incoming.workspace_name == "Creators"
    assert incoming.channel_id == channel["id"]
    assert incoming.user_id == alice["id"]
    assert incoming.user_name == "Alice"
    assert incoming.text == "metrics youtube 7d"
    assert incoming.message_id == sent["id"]
    assert incoming.thread_id == f"user-{alice['id']}"
    assert incoming.is_mention and not incoming.is_dm and not incoming.is_command

    [post] = posts
    assert post.body["content"] == "got: metrics youtube 7d"
    # A reply to the request, and no mass mentions whatever the text says.
    assert str(post.body["message_reference"]["message_id"]) == sent["id"]
    assert post.body["allowed_mentions"]["parse"] == []
    assert fake.find("POST", rf"/channels/{channel['id']}/typing")


async def test_direct_message_is_its_own_workspace_and_private_replies_stay_in_it(
    fake, part, handler
) -> None:
    bob = fake.user("bob")
    dm_channel = "1200000000000000001"

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send(Reply("public"))
        await sink.send_private(Reply("private"))

    handler.on_message = reply
    data = fake.message_payload(author=bob, content="link youtube", channel_id=dm_channel)
    await fake.dispatch("MESSAGE_CREATE", data)
    posts = await fake.wait_for(
        lambda f: len(channel_posts(f, dm_channel)) == 2 and channel_posts(f, dm_channel)
    )

    [incoming] = handler.messages
    assert incoming.is_dm and not incoming.is_mention
    assert incoming.workspace_id == f"dm:{bob['id']}"
    assert incoming.channel_id == dm_channel
    assert incoming.text == "link youtube"
    assert [p.body["content"] for p in posts] == ["public", "private"]
    assert fake.find("POST", r"/users/@me/channels") == []  # already in the DM


async def test_private_reply_from_a_channel_goes_by_dm(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)
    alice = fake.user("alice")

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send_private(Reply("https://example.test/oauth?state=abc"))

    handler.on_message = reply
    await mention(fake, alice, "link youtube")
    [dm] = await fake.wait_for(lambda f: f.find("POST", r"/users/@me/channels"))
    assert str(dm.body["recipient_id"]) == alice["id"]
    posts = await fake.wait_for(
        lambda f: [c for c in f.calls if c.method == "POST" and c.path.endswith("/messages")]
    )
    assert posts[0].body["content"] == "https://example.test/oauth?state=abc"
    assert channel_posts(fake, channel["id"]) == []  # nothing private in the channel


async def test_private_reply_with_closed_dms_never_leaks_into_the_channel(
    fake, part, handler
) -> None:
    _, channel = guild_and_channel(fake)
    alice = fake.user("alice")
    # 50007: "Cannot send messages to this user" (DMs closed).
    fake.fail_next("POST", r"/channels/\d+/messages", status=403, code=50007)

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send_private(Reply("secret-link"))

    handler.on_message = reply
    await mention(fake, alice, "link youtube")
    [post] = await fake.wait_for(lambda f: channel_posts(f, channel["id"]))
    assert "secret-link" not in post.body["content"]
    assert f"<@{alice['id']}>" in post.body["content"]
    assert "direct message" in post.body["content"]


async def test_ignores_its_own_other_bots_webhooks_and_unaddressed_messages(
    fake, part, handler
) -> None:
    guild, channel = guild_and_channel(fake)
    other_bot = fake.user("otherbot", bot=True)
    person = fake.user("carol")
    for author, content, extra in [
        (fake.bot_user, f"<@{fake.app_id}> talking to myself", {}),
        (other_bot, f"<@{fake.app_id}> hello bot", {}),
        (person, f"<@{fake.app_id}> via webhook", {"webhook_id": "1200000000000000077"}),
        (person, "no mention here", {}),
    ]:
        mentions = [fake.bot_user] if "<@" in content else []
        await fake.dispatch(
            "MESSAGE_CREATE",
            fake.message_payload(
                author=author,
                content=content,
                channel_id=channel["id"],
                guild_id=guild["id"],
                mentions=mentions,
                **extra,
            ),
        )

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send(Reply("ok"))

    handler.on_message = reply
    # Gateway events are handled in order: this one arriving proves the others were seen.
    await mention(fake, person, "the real one")
    await fake.wait_for(lambda f: channel_posts(f, channel["id"]))
    assert [m.text for m in handler.messages] == ["the real one"]


async def test_attachment_is_streamed_from_the_cdn(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)
    alice = fake.user("alice")
    payload = os.urandom(3 * 1024 * 1024 + 17)
    attachment = fake.add_file("clip.mp4", payload, "video/mp4")
    seen: dict[str, object] = {}

    async def read(message: IncomingMessage, sink: ReplySink) -> None:
        [att] = message.attachments
        digest = hashlib.sha256()
        total = chunks = 0
        async for chunk in att.open():
            digest.update(chunk)
            total += len(chunk)
            chunks += 1
        seen.update(att=att, total=total, chunks=chunks, sha=digest.hexdigest())
        await sink.send(Reply(f"read {total} bytes"))

    handler.on_message = read
    await mention(fake, alice, "upload this", attachments=[attachment])
    await fake.wait_for(lambda f: channel_posts(f, channel["id"]))

    att = seen["att"]
    assert att.name == "clip.mp4" and att.size == len(payload) and att.mime_type == "video/mp4"
    assert att.locator == {
        "kind": "http",
        "url": attachment["url"],
        "size": len(payload),
        "mime_type": "video/mp4",
    }
    assert seen["total"] == len(payload) == fake.bytes_served["clip.mp4"]
    assert seen["sha"] == hashlib.sha256(payload).hexdigest()
    assert seen["chunks"] > 1  # delivered piecewise, never as one buffer


async def test_long_reply_is_split_into_valid_messages(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)
    lines = [f"line {i:04d} " + "x" * 60 for i in range(70)]  # ~5000 characters
    text = "\n".join(lines)

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        ref = await sink.send(Reply(text))
        await sink.update(ref, Reply("y" * 5000))

    handler.on_message = reply
    await mention(fake, fake.user("alice"), "report")
    edits = await fake.wait_for(lambda f: f.find("PATCH", r"/channels/\d+/messages/\d+"))
    posts = channel_posts(fake, channel["id"])
    contents = [p.body["content"] for p in posts]
    assert len(contents) == 3
    assert all(0 < len(c) <= MESSAGE_LIMIT for c in contents)
    # Split on line boundaries: no line is cut in two, nothing lost, order kept.
    assert "\n".join(contents).split("\n") == lines
    # Only the first part is a reply to the request.
    assert "message_reference" in posts[0].body and "message_reference" not in posts[1].body
    # An edit can't become several messages: it is truncated to the limit.
    [edit] = edits
    assert len(edit.body["content"]) == MESSAGE_LIMIT
    assert edit.body["content"].endswith("…")
    first_id = fake.created[0]["id"]
    assert edit.path == f"/channels/{channel['id']}/messages/{first_id}"


async def test_huge_reply_is_truncated_after_a_few_messages(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send(Reply("word " * 10_000))  # 50,000 characters

    handler.on_message = reply
    await mention(fake, fake.user("alice"), "everything")
    posts = await fake.wait_for(
        lambda f: (
            (p := channel_posts(f, channel["id"]))
            and p[-1].body["content"].endswith("more characters not shown)")
            and p
        )
    )
    assert len(posts) == MAX_PARTS
    shown = sum(len(p.body["content"]) for p in posts)
    left = int(
        re.search(r"([\d,]+) more characters", posts[-1].body["content"])[1].replace(",", "")
    )
    assert shown + left >= 50_000 - 2 * MAX_PARTS  # what was cut is counted, nothing vanishes
    assert all(len(p.body["content"]) <= MESSAGE_LIMIT for p in posts)


async def test_a_refused_typing_indicator_does_not_stop_the_reply(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)
    fake.fail_next("POST", r"/channels/\d+/typing", status=403, code=50013)

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send(Reply("still here"))

    handler.on_message = reply
    await mention(fake, fake.user("alice"), "hi")
    [post] = await fake.wait_for(lambda f: channel_posts(f, channel["id"]))
    assert post.body["content"] == "still here"
    assert fake.find("POST", rf"/channels/{channel['id']}/typing")


async def test_a_failing_handler_gets_a_polite_reply_not_a_trace(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)

    async def boom(message: IncomingMessage, sink: ReplySink) -> None:
        raise RuntimeError("internal detail /srv/secret")

    handler.on_message = boom
    await mention(fake, fake.user("alice"), "hi")
    [post] = await fake.wait_for(lambda f: channel_posts(f, channel["id"]))
    assert "went wrong" in post.body["content"]
    assert "secret" not in post.body["content"] and "Traceback" not in post.body["content"]
