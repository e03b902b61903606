"""`/social` and approval buttons, as INTERACTION_CREATE dispatches through the fake gateway."""

from __future__ import annotations

import uuid
from typing import Any

from bot.core.messages import ApprovalRequest, IncomingMessage, Reply, ReplySink
from bot.discord.buttons import CUSTOM_ID_LIMIT
from tests.bot.discord.helpers import channel_posts, guild_and_channel, mention
from tests.fakes.discord import FakeDiscord

EPHEMERAL = 64


def social(fake: FakeDiscord, user: dict[str, Any], request: str, **extra: Any) -> dict[str, Any]:
    guild, channel = guild_and_channel(fake)
    options: list[dict[str, Any]] = [{"name": "request", "type": 3, "value": request}]
    data: dict[str, Any] = {"id": "1200000000000000500", "name": "social", "type": 1}
    if "attachment" in extra:
        att = extra["attachment"]
        options.append({"name": "file", "type": 11, "value": att["id"]})
        data["resolved"] = {"attachments": {att["id"]: att}}
    data["options"] = options
    return fake.interaction_payload(
        user=user, guild_id=guild["id"], channel=channel, type=2, data=data
    )


def click(
    fake: FakeDiscord, user: dict[str, Any], message: dict[str, Any], custom_id: str
) -> dict[str, Any]:
    guild, channel = guild_and_channel(fake)
    return fake.interaction_payload(
        user=user,
        guild_id=guild["id"],
        channel=channel,
        type=3,
        data={"custom_id": custom_id, "component_type": 2},
        message=message,
    )


def callbacks(fake: FakeDiscord, interaction: dict[str, Any]) -> list[Any]:
    return fake.find("POST", rf"/interactions/{interaction['id']}/[^/]+/callback")


def followups(fake: FakeDiscord, interaction: dict[str, Any]) -> list[Any]:
    return fake.find("POST", rf"/webhooks/{fake.app_id}/{interaction['token']}")


async def test_slash_command_is_a_command_and_answers_with_followups(fake, part, handler) -> None:
    guild, channel = guild_and_channel(fake)
    alice = fake.user("alice")

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        ref = await sink.send(Reply("working…"))
        await sink.update(ref, Reply("3 videos, 1,204 views"))
        await sink.send_private(Reply("only you"))

    handler.on_message = reply
    interaction = social(fake, alice, "metrics   youtube 7d")
    await fake.dispatch("INTERACTION_CREATE", interaction)
    posts = await fake.wait_for(
        lambda f: len(followups(f, interaction)) == 2 and followups(f, interaction)
    )

    [incoming] = handler.messages
    assert incoming.is_command and not incoming.is_mention and not incoming.is_dm
    assert incoming.text == "metrics youtube 7d"
    assert incoming.workspace_id == guild["id"] and incoming.channel_id == channel["id"]
    assert incoming.user_id == alice["id"]
    # Acknowledged at once with private "thinking" (type 5, ephemeral), then follow-ups.
    [ack] = callbacks(fake, interaction)
    assert ack.body["type"] == 5 and ack.body["data"]["flags"] & EPHEMERAL
    # A public reply cannot become the private loading message: that is removed first.
    [removed] = fake.find(
        "DELETE", rf"/webhooks/{fake.app_id}/{interaction['token']}/messages/@original"
    )
    assert fake.calls.index(removed) < fake.calls.index(posts[0])
    assert posts[0].body["content"] == "working…"
    assert not (posts[0].body.get("flags") or 0) & EPHEMERAL
    assert not fake.messages[edited_id(fake, interaction)]["flags"] & EPHEMERAL
    assert posts[1].body["content"] == "only you"
    assert posts[1].body["flags"] & EPHEMERAL
    [edit] = fake.find("PATCH", rf"/webhooks/{fake.app_id}/{interaction['token']}/messages/\d+")
    assert edit.body["content"] == "3 videos, 1,204 views"


async def test_slash_command_with_a_file_and_nothing_to_say(fake, part, handler) -> None:
    alice = fake.user("alice")
    attachment = fake.add_file("promo.mp4", b"\x00" * 1000)

    async def silent(message: IncomingMessage, sink: ReplySink) -> None:
        return None

    handler.on_message = silent
    interaction = social(fake, alice, "upload youtube", attachment=attachment)
    await fake.dispatch("INTERACTION_CREATE", interaction)
    await fake.wait_for(
        lambda f: f.find(
            "DELETE", rf"/webhooks/{f.app_id}/{interaction['token']}/messages/@original"
        )
    )
    [incoming] = handler.messages
    [att] = incoming.attachments
    assert att.name == "promo.mp4" and att.size == 1000
    assert att.locator["url"] == attachment["url"]
    assert followups(fake, interaction) == []


async def _ask(fake, handler, requester) -> tuple[ApprovalRequest, dict[str, Any]]:
    """Have the handler ask for approval in reply to a mention; return the posted message."""
    _, channel = guild_and_channel(fake)
    request = ApprovalRequest(
        action_id=str(uuid.uuid4()),
        summary="Upload 'Cat video' to YouTube (private)",
        requester_user_id=requester["id"],
        expires_in_seconds=900,
    )

    async def ask(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.ask_approval(request)

    handler.on_message = ask
    await mention(fake, requester, "upload the cat video")
    await fake.wait_for(lambda f: channel_posts(f, channel["id"]))
    return request, fake.created[-1]


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    [row] = message["components"]
    return {button["label"]: button["custom_id"] for button in row["components"]}


async def test_approval_buttons_carry_the_action_and_clicks_pass_the_clicker(
    fake, part, handler
) -> None:
    alice, bob = fake.user("alice"), fake.user("bob")
    request, message = await _ask(fake, handler, alice)
    assert "Upload 'Cat video' to YouTube (private)" in message["content"]
    buttons = _buttons(message)
    assert set(buttons) == {"Approve", "Reject"}
    assert all(request.action_id in cid and len(cid) <= CUSTOM_ID_LIMIT for cid in buttons.values())

    async def decide(call: dict[str, Any], sink: ReplySink) -> None:
        if call["user_id"] != alice["id"]:
            await sink.send(Reply("Only the person who asked can approve this."))
            return
        ref = await sink.send(Reply("Uploading… 0%"))
        await sink.update(ref, Reply("Uploading… 100%"))
        await sink.send(Reply("Uploaded: https://youtu.be/abc"))

    handler.on_approval = decide

    # Someone else clicks: the core hears it (with Bob's id) and Bob alone gets the answer.
    bob_click = click(fake, bob, message, buttons["Approve"])
    await fake.dispatch("INTERACTION_CREATE", bob_click)
    [bob_reply] = await fake.wait_for(lambda f: followups(f, bob_click))
    assert handler.approvals[0] == {
        "frontend": "discord",
        "workspace_id": message_guild(fake),
        "user_id": bob["id"],
        "action_id": request.action_id,
        "approved": True,
    }
    [bob_ack] = callbacks(fake, bob_click)
    assert bob_ack.body["type"] == 5 and bob_ack.body["data"]["flags"] & EPHEMERAL
    assert bob_reply.body["flags"] & EPHEMERAL
    assert "Only the person who asked" in bob_reply.body["content"]
    # The buttons stay for the requester.
    assert fake.messages[message["id"]]["components"] == message["components"]

    # The requester clicks: the approval message itself shows the outcome, buttons gone.
    alice_click = click(fake, alice, message, buttons["Approve"])
    await fake.dispatch("INTERACTION_CREATE", alice_click)
    [result] = await fake.wait_for(lambda f: followups(f, alice_click))
    assert handler.approvals[1]["user_id"] == alice["id"]
    assert handler.approvals[1]["approved"] is True
    [ack] = callbacks(fake, alice_click)
    assert ack.body["type"] == 6  # deferred update: no new message
    edits = fake.find(
        "PATCH", rf"/webhooks/{fake.app_id}/{alice_click['token']}/messages/@original"
    )
    assert [e.body["components"] for e in edits] == [[], []]
    assert "Uploading… 0%" in edits[0].body["content"]
    assert "Uploading… 100%" in edits[1].body["content"]
    assert "Upload 'Cat video'" in edits[1].body["content"]
    assert f"<@{alice['id']}>" in edits[1].body["content"]
    assert result.body["content"] == "Uploaded: https://youtu.be/abc"


def edited_id(fake: FakeDiscord, interaction: dict[str, Any]) -> str:
    [edit] = fake.find("PATCH", rf"/webhooks/{fake.app_id}/{interaction['token']}/messages/\d+")
    return str(edit.path.rsplit("/", 1)[-1])


async def test_private_answers_become_the_private_loading_message(fake, part, handler) -> None:
    alice = fake.user("alice")

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send_private(Reply("your figures"))

    handler.on_message = reply
    interaction = social(fake, alice, "metrics")
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [post] = await fake.wait_for(lambda f: followups(f, interaction))
    assert post.body["content"] == "your figures"
    # Nothing deleted, nothing public: the loading message turned into the answer.
    assert not fake.find("DELETE", rf"/webhooks/{fake.app_id}/{interaction['token']}/.*")
    [shown] = [m for m in fake.messages.values() if m["content"] == "your figures"]
    assert shown["flags"] & EPHEMERAL


def message_guild(fake: FakeDiscord) -> str:
    guild, _ = guild_and_channel(fake)
    return guild["id"]


async def test_reject_click_passes_approved_false(fake, part, handler) -> None:
    alice = fake.user("alice")
    request, message = await _ask(fake, handler, alice)

    async def decide(call: dict[str, Any], sink: ReplySink) -> None:
        await sink.send(Reply("Cancelled."))

    handler.on_approval = decide
    interaction = click(fake, alice, message, _buttons(message)["Reject"])
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [edit] = await fake.wait_for(
        lambda f: f.find(
            "PATCH", rf"/webhooks/{f.app_id}/{interaction['token']}/messages/@original"
        )
    )
    assert handler.approvals == [
        {
            "frontend": "discord",
            "workspace_id": message_guild(fake),
            "user_id": alice["id"],
            "action_id": request.action_id,
            "approved": False,
        }
    ]
    assert "Reject" in edit.body["content"] and "Cancelled." in edit.body["content"]
    assert edit.body["components"] == []


async def test_expired_interaction_token_falls_back_to_the_channel(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)
    alice = fake.user("alice")
    _, message = await _ask(fake, handler, alice)
    # 10015 Unknown Webhook: what Discord answers once the 15-minute token has expired.
    fake.fail_next(
        "PATCH", rf"/webhooks/{fake.app_id}/[^/]+/messages/@original", status=404, code=10015
    )

    async def decide(call: dict[str, Any], sink: ReplySink) -> None:
        await sink.send(Reply("Done."))

    handler.on_approval = decide
    interaction = click(fake, alice, message, _buttons(message)["Approve"])
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [edit] = await fake.wait_for(
        lambda f: f.find("PATCH", rf"/channels/{channel['id']}/messages/{message['id']}")
    )
    assert "Done." in edit.body["content"] and edit.body["components"] == []


async def test_lapsed_token_401_50027_falls_back_to_the_channel(fake, part, handler) -> None:
    _, channel = guild_and_channel(fake)
    alice = fake.user("alice")
    _, message = await _ask(fake, handler, alice)
    # 401 with 50027 Invalid Webhook Token: the other answer to a lapsed interaction token.
    fake.fail_next(
        "PATCH", rf"/webhooks/{fake.app_id}/[^/]+/messages/@original", status=401, code=50027
    )

    async def decide(call: dict[str, Any], sink: ReplySink) -> None:
        await sink.send(Reply("Uploaded."))

    handler.on_approval = decide
    interaction = click(fake, alice, message, _buttons(message)["Approve"])
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [edit] = await fake.wait_for(
        lambda f: f.find("PATCH", rf"/channels/{channel['id']}/messages/{message['id']}")
    )
    assert "Uploaded." in edit.body["content"]


async def test_slash_command_in_a_direct_message(fake, part, handler) -> None:
    dana = fake.user("dana")
    dm = {"id": "1200000000000000900", "type": 1, "recipients": [dana]}

    async def reply(message: IncomingMessage, sink: ReplySink) -> None:
        await sink.send(Reply("hi"))

    handler.on_message = reply
    interaction = fake.interaction_payload(
        user=dana,
        guild_id=None,
        channel=dm,
        type=2,
        data={"id": "1200000000000000500", "name": "social", "type": 1, "options": []},
    )
    await fake.dispatch("INTERACTION_CREATE", interaction)
    [post] = await fake.wait_for(lambda f: followups(f, interaction))
    [incoming] = handler.messages
    assert incoming.is_dm and incoming.is_command and incoming.text == ""
    assert incoming.workspace_id == f"dm:{dana['id']}" and incoming.channel_id == dm["id"]
    assert post.body["content"] == "hi"


async def test_someone_elses_click_with_nothing_to_say_leaves_no_placeholder(
    fake, part, handler
) -> None:
    alice, erin = fake.user("alice"), fake.user("erin")
    _, message = await _ask(fake, handler, alice)

    async def silent(call: dict[str, Any], sink: ReplySink) -> None:
        return None

    handler.on_approval = silent
    interaction = click(fake, erin, message, _buttons(message)["Reject"])
    await fake.dispatch("INTERACTION_CREATE", interaction)
    await fake.wait_for(
        lambda f: f.find(
            "DELETE", rf"/webhooks/{f.app_id}/{interaction['token']}/messages/@original"
        )
    )
    assert handler.approvals[0]["user_id"] == erin["id"]
    assert handler.approvals[0]["approved"] is False
    assert message["id"] in fake.messages  # the approval message itself is untouched
