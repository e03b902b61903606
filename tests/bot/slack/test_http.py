"""The Slack adapter end to end: signed requests into the real ASGI app, a fake Slack behind it."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from bot.slack.adapter import ACK_TEXT, BUSY_TEXT
from bot.slack.files import CHUNK_BYTES, SlackFileError
from integrations.errors import InvalidRequest
from storage.redis import RedisHandle
from tests.bot.slack.conftest import (
    BOT_TOKEN,
    BOT_USER,
    SIGNING_SECRET,
    TEAM,
    RecordingCore,
    SlackHarness,
    _harness,
)
from tests.bot.test_web import CHUNK, CountingBody
from tests.fakes.server import serve_asgi
from tests.fakes.slack import FakeSlack, form_body, sign


def mention(
    text: str, ts: str, *, user: str = "UALICE", channel: str = "C1", **more: Any
) -> dict[str, Any]:
    """An `app_mention` event as Slack sends it (thread_ts, files, team... in `more`)."""
    return {"type": "app_mention", "user": user, "channel": channel, "ts": ts, "text": text, **more}


async def test_slash_command_is_acked_then_answered_through_the_api(slack: SlackHarness) -> None:
    response = await slack.command("echo hello there")

    assert response.status_code == 200
    assert response.json() == {"response_type": "ephemeral", "text": "Working on it…"}
    await slack.settle()

    (message,) = slack.core.messages
    assert message.is_command and not message.is_mention
    assert (message.workspace_id, message.channel_id, message.user_id) == (TEAM, "C1", "UALICE")
    assert message.text == "echo hello there"
    assert message.workspace_name == "acme"
    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.token == BOT_TOKEN
    assert post.args["channel"] == "C1"
    assert post.args["text"] == "you said: echo hello there"


async def test_past_the_in_flight_bound_people_are_asked_to_try_again(
    make_settings: Any, fake_slack: FakeSlack, core: RecordingCore, redis: RedisHandle
) -> None:
    """Admission control: acks never wait behind follow-up work; past the bound the
    request is refused politely and never reaches the core."""
    async for slack in _harness(
        make_settings, fake_slack, core, slack_bot_token=BOT_TOKEN, slack_max_in_flight=2
    ):
        held = [await slack.command("hold") for _ in range(2)]
        assert [r.json()["text"] for r in held] == [ACK_TEXT, ACK_TEXT]
        busy = await slack.command("echo one too many")
        assert busy.status_code == 200
        assert busy.json() == {"response_type": "ephemeral", "text": BUSY_TEXT}
        bob = mention(f"<@{BOT_USER}> echo me too", "1700.0100", user="UBOB", channel="C2")
        assert (await slack.event(bob, event_id="EvBusy")).status_code == 200

        core.gate.set()
        await slack.settle()
        assert [m.text for m in core.messages] == ["hold", "hold"]
        (notice,) = slack.fake.calls_of("chat.postEphemeral")
        assert (notice.args["channel"], notice.args["user"]) == ("C2", "UBOB")
        assert notice.args["text"] == BUSY_TEXT
        # Capacity comes back as work finishes.
        assert (await slack.command("echo again")).json()["text"] == ACK_TEXT
        await slack.settle()
        assert core.messages[-1].text == "echo again"


async def test_private_reply_is_ephemeral_to_the_requester(slack: SlackHarness) -> None:
    await slack.command("private")
    await slack.settle()

    (eph,) = slack.fake.calls_of("chat.postEphemeral")
    assert (eph.args["channel"], eph.args["user"]) == ("C1", "UALICE")
    assert "connect" in eph.args["text"]
    assert slack.fake.calls_of("chat.postMessage") == []


async def test_private_reply_falls_back_to_response_url_when_bot_is_not_in_channel(
    slack: SlackHarness,
) -> None:
    slack.fake.errors["chat.postEphemeral"] = "not_in_channel"
    await slack.command("private")
    await slack.settle()

    (posted,) = slack.fake.webhook_posts
    assert posted["key"] == "cmd1"
    assert posted["response_type"] == "ephemeral"
    assert "connect" in posted["text"]


async def test_mention_in_a_thread_is_answered_in_that_thread(slack: SlackHarness) -> None:
    event = mention(
        f"<@{BOT_USER}> echo stats please", "1700.0002", thread_ts="1700.0001", team=TEAM
    )
    assert (await slack.event(event)).status_code == 200
    await slack.settle()

    (message,) = slack.core.messages
    assert message.is_mention and not message.is_dm
    assert message.text == "echo stats please"
    assert message.thread_id == "1700.0001"
    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.args["thread_ts"] == "1700.0001"
    assert post.args["channel"] == "C1"


async def test_top_level_mention_starts_a_thread_on_itself(slack: SlackHarness) -> None:
    event = mention(f"<@{BOT_USER}> echo hi", "1700.0005")
    await slack.event(event, event_id="EvTop")
    await slack.settle()

    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.args["thread_ts"] == "1700.0005"


async def test_direct_message_reaches_the_core(slack: SlackHarness) -> None:
    event = {
        "type": "message",
        "channel_type": "im",
        "user": "UALICE",
        "channel": "D1",
        "ts": "1700.0010",
        "text": "echo from a DM",
    }
    await slack.event(event, event_id="EvDM")
    await slack.settle()

    (message,) = slack.core.messages
    assert message.is_dm and message.channel_id == "D1"
    assert message.thread_key == "D1:1700.0010"
    (post,) = slack.fake.calls_of("chat.postMessage")
    assert post.args["channel"] == "D1"


async def test_own_and_other_bots_messages_and_edits_are_ignored(slack: SlackHarness) -> None:
    base = {"type": "message", "channel_type": "im", "channel": "D1", "text": "echo loop"}
    await slack.event({**base, "user": BOT_USER, "ts": "1.1"}, event_id="EvOwn")
    await slack.event({**base, "user": "UOTHER", "bot_id": "B999", "ts": "1.2"}, event_id="EvBot")
    await slack.event(
        {**base, "subtype": "bot_message", "bot_id": "B999", "ts": "1.3"}, event_id="EvBot2"
    )
    await slack.event(
        {
            **base,
            "subtype": "message_changed",
            "ts": "1.4",
            "message": {"user": "UALICE", "text": "echo edited"},
        },
        event_id="EvEdit",
    )
    await slack.settle()

    assert slack.core.messages == []
    assert slack.fake.calls_of("chat.postMessage") == []


async def test_retried_event_runs_once(slack: SlackHarness) -> None:
    event = mention(f"<@{BOT_USER}> echo once", "1700.0100")
    first = await slack.event(event, event_id="EvRetry")
    second = await slack.event(event, event_id="EvRetry", retry=1)
    third = await slack.event(event, event_id="EvRetry", retry=2)
    await slack.settle()

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert len(slack.core.messages) == 1
    assert len(slack.fake.calls_of("chat.postMessage")) == 1


async def _approval_message(slack: SlackHarness, action_id: str) -> dict:
    event = mention(f"<@{BOT_USER}> approve-me {action_id}", "1700.0200")
    await slack.event(event, event_id=f"Ev-{action_id}")
    await slack.settle()
    (post,) = slack.fake.calls_of("chat.postMessage")
    blocks = post.args["blocks"]
    return {
        "type": "message",
        "user": BOT_USER,
        "ts": "1700.0201",
        "thread_ts": "1700.0200",
        "text": post.args["text"],
        "blocks": blocks,
    }


async def test_approval_buttons_carry_the_pending_action_id(slack: SlackHarness) -> None:
    message = await _approval_message(slack, "act-42")

    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == ["socialops:approve:act-42", "socialops:reject:act-42"]
    # Platform text never pings a channel.
    assert "<!channel>" not in json.dumps(message["blocks"])
    assert "<!channel>" not in message["text"]


async def test_approval_by_someone_else_does_not_count(slack: SlackHarness) -> None:
    message = await _approval_message(slack, "act-7")

    response = await slack.click(
        user="UMALLORY", action_id="socialops:approve:act-7", message=message
    )
    await slack.settle()

    assert response.status_code == 200
    assert slack.core.approvals[-1] == {
        "frontend": "slack",
        "workspace_id": TEAM,
        "user_id": "UMALLORY",
        "action_id": "act-7",
        "approved": True,
    }
    assert "act-7" not in slack.core.decided
    # The refusal reaches only the clicker; the buttons stay for the requester.
    (eph,) = slack.fake.calls_of("chat.postEphemeral")
    assert eph.args["user"] == "UMALLORY" and "Only the person who asked" in eph.args["text"]
    assert slack.fake.calls_of("chat.update") == []
    assert len(slack.fake.calls_of("chat.postMessage")) == 1

    await slack.click(user="UALICE", action_id="socialops:approve:act-7", message=message)
    await slack.settle()
    assert slack.core.decided == {"act-7": True}
    assert slack.fake.calls_of("chat.update")


async def test_approval_by_requester_turns_the_message_into_the_outcome_once(
    slack: SlackHarness,
) -> None:
    message = await _approval_message(slack, "act-8")

    await slack.click(user="UALICE", action_id="socialops:approve:act-8", message=message)
    await slack.settle()
    await slack.click(user="UALICE", action_id="socialops:approve:act-8", message=message)
    await slack.settle()

    assert slack.core.decided == {"act-8": True}
    assert [a["user_id"] for a in slack.core.approvals] == ["UALICE", "UALICE"]
    first, progress = slack.fake.calls_of("chat.update")
    for update in (first, progress):
        assert (update.args["channel"], update.args["ts"]) == ("C1", "1700.0201")
        blocks = json.dumps(update.args["blocks"])
        assert "actions" not in [b["type"] for b in update.args["blocks"]]
        assert "<@UALICE> chose Approve." in blocks and "clip.mp4" in blocks
    assert first.args["text"] == "Uploading… 0%"
    assert progress.args["text"] == "Uploading… 100%"
    # The final word is a new message in the request's thread.
    final = slack.fake.calls_of("chat.postMessage")[-1]
    assert (final.args["text"], final.args["thread_ts"]) == ("Uploaded.", "1700.0200")
    # The second click only tells the clicker, privately.
    (eph,) = slack.fake.calls_of("chat.postEphemeral")
    assert eph.args["user"] == "UALICE" and "already answered" in eph.args["text"]


async def test_rejection_shows_the_outcome(slack: SlackHarness) -> None:
    message = await _approval_message(slack, "act-9")
    await slack.click(user="UALICE", action_id="socialops:reject:act-9", message=message)
    await slack.settle()

    assert slack.core.decided == {"act-9": False}
    (update,) = slack.fake.calls_of("chat.update")
    assert update.args["text"] == "Cancelled."
    assert "<@UALICE> chose Reject." in json.dumps(update.args["blocks"])


async def test_progress_updates_one_message(slack: SlackHarness) -> None:
    await slack.command("progress")
    await slack.settle()

    (post,) = slack.fake.calls_of("chat.postMessage")
    (update,) = slack.fake.calls_of("chat.update")
    assert update.args["channel"] == "C1"
    assert update.args["text"] == "Uploading: 100%"
    assert update.token == BOT_TOKEN
    assert post.args["text"] == "Uploading: 0%"


async def test_shared_file_reaches_the_core_as_a_streaming_attachment(slack: SlackHarness) -> None:
    data = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, several chunks
    info = slack.fake.add_file("F1", data, name="clip.mp4")
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel_type": "im",
        "user": "UALICE",
        "channel": "D1",
        "ts": "1700.0300",
        "text": "upload",
        "files": [info],
    }
    await slack.event(event, event_id="EvFile")
    await slack.settle()

    (message,) = slack.core.messages
    (attachment,) = message.attachments
    assert (attachment.name, attachment.size, attachment.mime_type) == (
        "clip.mp4",
        len(data),
        "video/mp4",
    )
    assert slack.core.bytes_read["clip.mp4"] == data
    # Streamed in bounded chunks, never as one buffer.
    assert len(slack.core.chunk_sizes) > 1 and max(slack.core.chunk_sizes) <= CHUNK_BYTES
    assert attachment.locator == {
        "kind": "slack",
        "team": TEAM,
        "file_id": "F1",
        "url": info["url_private_download"],
        "size": len(data),
        "mime_type": "video/mp4",
    }
    assert BOT_TOKEN not in json.dumps(attachment.locator)
    (download,) = slack.fake.downloads
    assert download.token == BOT_TOKEN and download.bytes_sent == len(data)


async def test_partial_file_object_is_completed_with_files_info(slack: SlackHarness) -> None:
    data = b"\x00\x01video" * 1000
    slack.fake.add_file("F2", data, name="short.mov", mimetype="video/quicktime")
    event = mention(
        f"<@{BOT_USER}> upload", "1700.0400", files=[{"id": "F2", "file_access": "check_file_info"}]
    )
    await slack.event(event, event_id="EvFile2")
    await slack.settle()

    (info_call,) = slack.fake.calls_of("files.info")
    assert info_call.args["file"] == "F2"
    assert slack.core.bytes_read["short.mov"] == data


async def test_slack_rate_limit_is_waited_out(slack: SlackHarness) -> None:
    slack.fake.rate_limit("chat.postMessage", times=1, retry_after=0)
    await slack.command("echo after a 429")
    await slack.settle()

    posts = slack.fake.calls_of("chat.postMessage")
    assert len(posts) == 2  # the 429, then the retry
    assert all(p.args["text"] == "you said: echo after a 429" for p in posts)


async def test_forged_signature_is_rejected_before_any_handler(slack: SlackHarness) -> None:
    body = form_body(
        {
            "team_id": TEAM,
            "channel_id": "C1",
            "user_id": "UALICE",
            "command": "/social",
            "text": "echo x",
        }
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign("not-the-secret", body)}
    forged_command = await slack.http.post("/slack/events", content=body, headers=headers)

    event_body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "event_id": "EvForged",
            "event": {
                "type": "app_mention",
                "user": "UALICE",
                "channel": "C1",
                "ts": "1.5",
                "text": "echo x",
            },
        }
    ).encode()
    forged_event = await slack.http.post(
        "/slack/events",
        content=event_body,
        headers={"Content-Type": "application/json", **sign("not-the-secret", event_body)},
    )
    tampered = await slack.http.post(
        "/slack/events",
        content=body + b"&x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body)},
    )
    await slack.settle()

    assert [forged_command.status_code, forged_event.status_code, tampered.status_code] == [
        401,
        401,
        401,
    ]
    assert slack.core.messages == []
    assert slack.fake.calls == []


async def test_stale_or_missing_signature_is_rejected(slack: SlackHarness) -> None:
    body = form_body(
        {
            "team_id": TEAM,
            "channel_id": "C1",
            "user_id": "UALICE",
            "command": "/social",
            "text": "echo x",
        }
    )
    stale = await slack.http.post(
        "/slack/events",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **sign(SIGNING_SECRET, body, int(time.time()) - 6 * 60),
        },
    )
    missing = await slack.command("echo x", signed=False)
    event_body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "event_id": "EvStale",
            "event": {
                "type": "app_mention",
                "user": "UALICE",
                "channel": "C1",
                "ts": "1.6",
                "text": "echo x",
            },
        }
    ).encode()
    stale_event = await slack.http.post(
        "/slack/events",
        content=event_body,
        headers={
            "Content-Type": "application/json",
            **sign(SIGNING_SECRET, event_body, int(time.time()) - 6 * 60),
        },
    )
    await slack.settle()

    assert [stale.status_code, missing.status_code, stale_event.status_code] == [401, 401, 401]
    assert slack.core.messages == []


async def test_url_verification_answers_the_challenge(slack: SlackHarness) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode()
    response = await slack.http.post(
        "/slack/events",
        content=body,
        headers={"Content-Type": "application/json", **sign(SIGNING_SECRET, body)},
    )
    assert response.status_code == 200
    assert response.json() == {"challenge": "abc123"}


async def test_notify_posts_ephemeral_then_falls_back_to_a_dm(slack: SlackHarness) -> None:
    reply_to = {"frontend": "slack", "team": TEAM, "channel": "C1", "user": "UALICE"}
    await slack.adapter.notify(reply_to, "YouTube account linked.")
    slack.fake.errors["chat.postEphemeral"] = "user_not_in_channel"
    await slack.adapter.notify(reply_to, "Instagram account linked.")

    ephs = slack.fake.calls_of("chat.postEphemeral")
    assert [e.args["text"] for e in ephs] == [
        "YouTube account linked.",
        "Instagram account linked.",
    ]
    (dm,) = slack.fake.calls_of("chat.postMessage")
    assert (dm.args["channel"], dm.args["text"]) == ("UALICE", "Instagram account linked.")


async def test_command_in_a_channel_without_the_bot_answers_through_response_url(
    slack: SlackHarness,
) -> None:
    slack.fake.errors["chat.postMessage"] = "not_in_channel"
    await slack.command("progress")
    await slack.settle()

    first, second = slack.fake.webhook_posts
    assert (first["response_type"], first["text"], first["replace_original"]) == (
        "in_channel",
        "Uploading: 0%",
        False,
    )
    assert (second["text"], second["replace_original"]) == ("Uploading: 100%", True)
    assert slack.fake.calls_of("chat.update") == []


async def test_notify_accepts_the_cores_reply_to_spelling(slack: SlackHarness) -> None:
    reply_to = {
        "frontend": "slack",
        "workspace_id": TEAM,
        "channel_id": "C1",
        "thread_id": "1700.0001",
        "user_id": "UALICE",
    }
    await slack.adapter.notify(reply_to, "Linked.")

    (eph,) = slack.fake.calls_of("chat.postEphemeral")
    assert (eph.args["channel"], eph.args["user"], eph.args["thread_ts"]) == (
        "C1",
        "UALICE",
        "1700.0001",
    )


async def test_bot_token_is_never_sent_to_another_host(slack: SlackHarness) -> None:
    info = slack.fake.add_file("F3", b"secret video")
    elsewhere = info["url_private_download"].replace("127.0.0.1", "localhost")
    attachment = slack.adapter.files.attachment(
        {**info, "url_private_download": elsewhere}, team_id=TEAM
    )

    with pytest.raises(SlackFileError):
        async for _ in attachment.open():
            pass
    assert slack.fake.downloads == []


async def test_a_file_slack_will_not_serve_is_a_clear_error(slack: SlackHarness) -> None:
    info = slack.fake.add_file("F4", b"gone soon")
    del slack.fake.files["F4"]  # deleted in Slack: the download answers with its sign-in page
    attachment = slack.adapter.files.attachment(info, team_id=TEAM)

    with pytest.raises(SlackFileError, match="did not allow"):
        async for _ in attachment.open():
            pass


async def test_a_video_shared_earlier_in_the_thread_becomes_the_attachment(
    slack: SlackHarness,
) -> None:
    older = slack.fake.add_file("F5", b"older video", name="old.mp4")
    video = slack.fake.add_file("F6", b"the video to upload", name="launch.mp4")
    slack.fake.threads[("C1", "1700.0500")] = [
        {"ts": "1700.0500", "user": "UALICE", "text": "first cut", "files": [older]},
        {"ts": "1700.0501", "user": "UBOB", "text": "final cut", "files": [video]},
        {"ts": "1700.0502", "user": "UALICE", "text": f"<@{BOT_USER}> upload"},
    ]
    event = mention(f"<@{BOT_USER}> upload", "1700.0502", thread_ts="1700.0500")
    await slack.event(event, event_id="EvThreadFile")
    await slack.settle()

    (message,) = slack.core.messages
    assert [a.name for a in message.attachments] == ["launch.mp4"]
    assert slack.core.bytes_read == {"launch.mp4": b"the video to upload"}
    (replies,) = slack.fake.calls_of("conversations.replies")
    assert (replies.args["channel"], replies.args["ts"]) == ("C1", "1700.0500")


async def test_thread_history_unavailable_means_no_attachment(slack: SlackHarness) -> None:
    slack.fake.errors["conversations.replies"] = "missing_scope"
    event = mention(f"<@{BOT_USER}> echo no files", "1700.0602", thread_ts="1700.0600")
    await slack.event(event, event_id="EvThreadNoScope")
    await slack.settle()

    (message,) = slack.core.messages
    assert message.attachments == ()
    assert slack.fake.calls_of("chat.postMessage")[0].args["text"] == "you said: echo no files"


async def test_a_slack_api_error_with_no_way_around_is_logged_with_its_code(
    slack: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A mention has no response_url: the refused post is Slack's error, logged by name."""
    slack.fake.errors["chat.postMessage"] = "channel_not_found"
    event = mention(f"<@{BOT_USER}> echo nowhere", "1700.0700")
    with caplog.at_level(logging.ERROR, logger="bot.slack.adapter"):
        await slack.event(event, event_id="EvNowhere")
        await slack.settle()

    (failed,) = [r for r in caplog.records if r.getMessage() == "slack api call failed"]
    assert failed.__dict__["error"] == "channel_not_found"
    assert not [r for r in caplog.records if r.getMessage() == "slack handler failed"]


async def test_uninstall_event_in_single_workspace_mode_is_acknowledged(
    slack: SlackHarness,
) -> None:
    response = await slack.event({"type": "app_uninstalled"}, event_id="EvUn1")
    assert response.status_code == 200
    assert slack.core.messages == []


async def test_another_slash_command_is_not_taken_for_social(slack: SlackHarness) -> None:
    response = await slack.command("echo x", command="/other")
    await slack.settle()
    assert response.status_code == 404  # bolt: no listener for it
    assert slack.core.messages == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_oversized_unsigned_body_is_refused_before_it_is_read(
    slack: SlackHarness, declared: bool
) -> None:
    body = CountingBody(300 * 1024 * 1024)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if declared:
        headers["Content-Length"] = str(body.total)
    response = await slack.http.post("/slack/events", content=body, headers=headers)

    assert response.status_code == 413
    assert body.sent <= 1024 * 1024 + CHUNK
    assert slack.core.messages == [] and slack.fake.calls == []


def _garbage_requests() -> list[tuple[bytes, dict[str, str | bytes]]]:
    now = str(int(time.time()))
    json_type = {"Content-Type": "application/json"}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    return [
        (b"\xff\xfe\x00not utf-8 {", json_type),
        (b"{not json", json_type),
        (b"payload=%7Bnot-json", form_type),
        (b"command=%2Fsocial&text=%FF%FE", form_type),
        (b"\xff" * 1000, form_type),
        (b"{}", {**json_type, "X-Slack-Request-Timestamp": b"\xb2", "X-Slack-Signature": "v0=a"}),
        (b"{}", {**json_type, "X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "x"}),
        (b"{}", {**json_type, "X-Slack-Request-Timestamp": now, "X-Slack-Signature": b"v0=\xe9"}),
        (b"{}", {**json_type, "X-Slack-Request-Timestamp": now}),
        (b"", {}),
    ]


@pytest.mark.parametrize(("body", "headers"), _garbage_requests())
async def test_malformed_unsigned_body_is_a_401_and_logs_no_error(
    slack: SlackHarness,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    headers: dict[str, str | bytes],
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await slack.http.post("/slack/events", content=body, headers=headers)
        await slack.settle()

    assert response.status_code == 401
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert slack.core.messages == [] and slack.fake.calls == []


async def test_replayed_signed_slash_command_runs_once(slack: SlackHarness) -> None:
    body = form_body(
        {
            "team_id": TEAM,
            "channel_id": "C1",
            "user_id": "UALICE",
            "command": "/social",
            "text": "echo only once",
            "response_url": f"{slack.fake.base_url}/response/replay",
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SIGNING_SECRET, body)}
    first = await slack.http.post("/slack/events", content=body, headers=headers)
    replay = await slack.http.post("/slack/events", content=body, headers=headers)
    await slack.settle()

    # Both are acked alike (the ack path stays free of Redis); only the first one runs.
    assert first.json() == replay.json() == {"response_type": "ephemeral", "text": "Working on it…"}
    assert [m.text for m in slack.core.messages] == ["echo only once"]
    assert len(slack.fake.calls_of("chat.postMessage")) == 1

    # Another invocation (its own trigger_id) with the same text still runs.
    await slack.command("echo only once")
    await slack.settle()
    assert len(slack.core.messages) == 2


async def test_a_slack_file_redirected_off_slack_is_not_followed(slack: SlackHarness) -> None:
    """A redirect hop is checked like the first URL: the bot token never reaches it."""
    asked: list[dict[str, str]] = []
    other = FastAPI()

    @other.get("/elsewhere.mp4")
    async def elsewhere(request: Request) -> Response:
        asked.append(dict(request.headers))
        return Response(b"not from slack", media_type="video/mp4")

    async with serve_asgi(other) as other_base:

        async def moved() -> Response:
            return Response(status_code=302, headers={"Location": f"{other_base}/elsewhere.mp4"})

        slack.fake.app.add_api_route("/moved/F9.mp4", moved)
        info = slack.fake.add_file("F9", b"real video")
        attachment = slack.adapter.files.attachment(
            {
                **info,
                "url_private_download": f"{slack.fake.base_url}/moved/F9.mp4",
            },
            team_id=TEAM,
        )
        with pytest.raises(InvalidRequest):
            async for _ in attachment.open():
                pass
    assert asked == []
