"""The pure converters: Slack payloads in, Slack payloads out, within Slack's limits."""

from __future__ import annotations

from bot.core.messages import ApprovalRequest, IncomingMessage, Reply
from bot.slack.convert import (
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    approval_payload,
    approval_requester,
    clamp_blocks,
    command_to_message,
    decided_payload,
    defuse,
    event_to_message,
    is_person_dm,
    parse_approval_action,
    reply_payload,
    reply_to_for,
)


def test_command_becomes_a_command_message() -> None:
    message = command_to_message(
        {
            "team_id": "T1",
            "channel_id": "D9",
            "user_id": "U1",
            "text": "  stats yt  ",
            "team_domain": "acme",
            "user_name": "al",
            "command": "/social",
        }
    )
    assert message == IncomingMessage(
        frontend="slack",
        workspace_id="T1",
        channel_id="D9",
        user_id="U1",
        text="stats yt",
        workspace_name="acme",
        user_name="al",
        is_dm=True,
        is_command=True,
    )


def test_mention_text_loses_the_bot_mention_and_keeps_others() -> None:
    event = {
        "type": "app_mention",
        "user": "U1",
        "channel": "C1",
        "ts": "5.5",
        "text": "<@UBOT> tell <@U2> the stats",
    }
    message = event_to_message(event, team_id="T1", bot_user_id="UBOT")
    assert message.text == "tell <@U2> the stats"
    assert (message.thread_id, message.message_id, message.is_mention) == ("5.5", "5.5", True)


def test_only_person_dms_count() -> None:
    dm = {"type": "message", "channel_type": "im", "user": "U1", "text": "hi"}
    assert is_person_dm(dm, "UBOT")
    assert is_person_dm({**dm, "subtype": "file_share"}, "UBOT")
    assert not is_person_dm({**dm, "channel_type": "channel"}, "UBOT")
    assert not is_person_dm({**dm, "user": "UBOT"}, "UBOT")
    assert not is_person_dm({**dm, "bot_id": "B2"}, "UBOT")
    assert not is_person_dm({**dm, "subtype": "message_deleted"}, "UBOT")


def test_approval_action_ids_round_trip() -> None:
    payload = approval_payload(ApprovalRequest("a-1:x", "Publish", "U1", 900))
    ids = [
        e["action_id"] for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert [parse_approval_action(i) for i in ids] == [(True, "a-1:x"), (False, "a-1:x")]
    assert parse_approval_action("someone_else:approve:1") is None
    actions = next(b for b in payload["blocks"] if b["type"] == "actions")
    assert approval_requester(actions["block_id"]) == "U1"
    assert approval_requester("socialops:approval:") is None
    assert approval_requester("other") is None
    assert "Expires in 15 min" in str(payload["blocks"])


def test_blocks_are_kept_within_slack_limits() -> None:
    many = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "x" * 5000},
            "fields": [{"type": "mrkdwn", "text": "f"} for _ in range(14)],
        }
    ] * 60
    clamped = clamp_blocks(many)
    assert len(clamped) == MAX_BLOCKS
    assert clamped[-1]["type"] == "context" and "11 more" in clamped[-1]["elements"][0]["text"]
    assert all(len(b["text"]["text"]) <= SECTION_TEXT_MAX for b in clamped[:-1])
    assert all(len(b["fields"]) == 10 for b in clamped[:-1])
    # the caller's blocks are not modified
    assert len(many[0]["text"]["text"]) == 5000


def test_reply_always_has_plain_text_and_no_broadcasts() -> None:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "H" * 400}}]
    payload = reply_payload(Reply("Views for <!here|here> and <!channel>", blocks=blocks))
    assert payload["text"] == "Views for &lt;!here|here> and &lt;!channel>"
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    assert reply_payload(Reply(""))["text"] == " "
    assert defuse("<@U1> <#C1>") == "<@U1> <#C1>"


def test_user_group_mentions_in_platform_text_ping_no_one() -> None:
    """A caption or title naming a user group (`<!subteam^ID>`) would notify the whole group."""
    text = defuse("New reel <!subteam^S0614TZR7|@marketing> and <!subteam^S0615>")
    assert "<!subteam" not in text and "&lt;!subteam^S0614TZR7|@marketing>" in text


def test_decided_payload_drops_buttons_and_names_the_decider() -> None:
    asked = approval_payload(ApprovalRequest("a1", "Upload clip", "U1", 900))
    done = decided_payload(asked["blocks"], Reply("Uploaded."), decided_by="U1", approved=True)
    assert [b["type"] for b in done["blocks"]] == ["section", "context", "section", "context"]
    assert done["blocks"][-1]["elements"][0]["text"] == "<@U1> chose Approve."
    assert done["text"] == "Uploaded."


def test_reply_to_names_workspace_channel_and_user() -> None:
    message = IncomingMessage(
        frontend="slack", workspace_id="T1", channel_id="C1", user_id="U1", text="x"
    )
    assert reply_to_for(message) == {
        "frontend": "slack",
        "team": "T1",
        "channel": "C1",
        "user": "U1",
    }
