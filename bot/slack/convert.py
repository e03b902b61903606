"""Pure converters: Slack payloads -> `IncomingMessage`, and `Reply` -> Slack message payloads.

Nothing here does I/O, so each rule (what is ignored, where a reply goes, how
Block Kit is kept inside Slack's limits) is tested without a server.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

from bot.core.messages import ApprovalRequest, Attachment, IncomingMessage, Reply
from bot.core.text import SLACK_TEXT_LIMIT, fit, split_message
from bot.slack import blocks as kit
from bot.slack.blocks import LIMITS

# Slack's documented limits for messages and Block Kit: one table, in bot.slack.blocks.
MAX_BLOCKS = LIMITS["blocks"]
SECTION_TEXT_MAX = LIMITS["text"]
MESSAGE_TEXT_MAX = LIMITS["message_text"]

log = logging.getLogger(__name__)

APPROVAL_PREFIX = "socialops"
APPROVAL_ACTION = re.compile(rf"^{APPROVAL_PREFIX}:(approve|reject):(.+)$")

# Subtypes of a DM that are still a person talking to the bot.
_PERSON_SUBTYPES = {None, "file_share", "thread_broadcast"}
_BROADCAST = re.compile(
    r"<!(channel|here|everyone|subteam\^[A-Za-z0-9]+)(\|[^>]*)?>", re.IGNORECASE
)


# --- Slack -> IncomingMessage ---------------------------------------------------------


def command_to_message(form: Mapping[str, str]) -> IncomingMessage:
    """A `/social ...` slash command (form fields as Slack posts them)."""
    channel = form.get("channel_id", "")
    return IncomingMessage(
        frontend="slack",
        workspace_id=form.get("team_id", ""),
        channel_id=channel,
        user_id=form.get("user_id", ""),
        text=form.get("text", "").strip(),
        workspace_name=form.get("team_domain") or None,
        user_name=form.get("user_name") or None,
        is_dm=channel.startswith("D") or form.get("channel_name") == "directmessage",
        is_command=True,
    )


def is_from_bot(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """Our own messages and any other bot's are never treated as a request."""
    return bool(
        event.get("bot_id")
        or event.get("subtype") == "bot_message"
        or event.get("bot_profile")
        or (bot_user_id is not None and event.get("user") == bot_user_id)
    )


def is_person_dm(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """A `message.im` event a person wrote (not an edit, a deletion or a bot)."""
    return (
        event.get("channel_type") == "im"
        and event.get("subtype") in _PERSON_SUBTYPES
        and bool(event.get("user"))
        and not is_from_bot(event, bot_user_id)
    )


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """The request without the `<@BOT>` that addressed it."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()


def event_to_message(
    event: Mapping[str, Any],
    *,
    team_id: str,
    bot_user_id: str | None,
    attachments: tuple[Attachment, ...] = (),
) -> IncomingMessage:
    """An `app_mention` or a DM `message` event. Mentions are answered in their thread."""
    is_mention = event.get("type") == "app_mention"
    ts = event.get("ts")
    thread = event.get("thread_ts") or (ts if is_mention else None)
    return IncomingMessage(
        frontend="slack",
        workspace_id=team_id,
        channel_id=event.get("channel", ""),
        user_id=event.get("user", ""),
        text=strip_mention(event.get("text") or "", bot_user_id),
        thread_id=thread,
        message_id=ts,
        attachments=attachments,
        is_dm=event.get("channel_type") == "im",
        is_mention=is_mention,
    )


def event_team(body: Mapping[str, Any]) -> str:
    """The workspace an event happened in (shared channels carry several)."""
    event = body.get("event") or {}
    return str(event.get("team") or body.get("team_id") or "")


def reply_to_for(message: IncomingMessage) -> dict[str, str]:
    """Where to answer later (OAuth completion): what `SlackAdapter.notify` takes."""
    return {
        "frontend": "slack",
        "team": message.workspace_id,
        "channel": message.channel_id,
        "user": message.user_id,
    }


def approval_requester(block_id: str) -> str | None:
    """The requester named in an approval's actions block id (see `approval_payload`)."""
    prefix = f"{APPROVAL_PREFIX}:approval:"
    if not block_id.startswith(prefix):
        return None
    return block_id[len(prefix) :] or None


def parse_approval_action(action_id: str) -> tuple[bool, str] | None:
    """`socialops:approve:<id>` -> (True, id); None for anything that is not ours."""
    match = APPROVAL_ACTION.match(action_id)
    if match is None:
        return None
    return match.group(1) == "approve", match.group(2)


# --- Reply -> Slack -------------------------------------------------------------------


def defuse(text: str) -> str:
    """Neutralise @channel/@here/@everyone and user-group pings: platform text is data."""
    return _BROADCAST.sub(lambda m: "&lt;!" + m.group(0)[2:], text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clamp_text(obj: Any, limit: int) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = _cut(defuse(obj["text"]), limit)
    return obj


def clamp_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Block Kit kept within Slack's limits (50 blocks, 3,000 chars a section, 10 fields)."""
    out: list[dict[str, Any]] = []
    for original in blocks:
        block = copy.deepcopy(original)
        kind = block.get("type")
        if kind == "section":
            _clamp_text(block.get("text"), SECTION_TEXT_MAX)
            if "fields" in block:
                block["fields"] = [_clamp_text(f, LIMITS["field_text"]) for f in block["fields"]][
                    : LIMITS["fields"]
                ]
        elif kind == "header":
            _clamp_text(block.get("text"), LIMITS["header_text"])
        elif kind == "context":
            block["elements"] = [
                _clamp_text(e, SECTION_TEXT_MAX) for e in block.get("elements", [])
            ][: LIMITS["context_elements"]]
        out.append(block)
    if len(out) > MAX_BLOCKS:
        hidden = len(out) - (MAX_BLOCKS - 1)
        out = out[: MAX_BLOCKS - 1]
        out.append(kit.context(f"…and {hidden} more not shown here."))
    return out


def section_block(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut(defuse(text), SECTION_TEXT_MAX)},
    }


def reply_payload(reply: Reply) -> dict[str, Any]:
    """`text` (always: notifications and old clients use it) plus clamped `blocks` if any."""
    payload: dict[str, Any] = {"text": _cut(defuse(reply.text), MESSAGE_TEXT_MAX) or " "}
    if reply.blocks:
        payload["blocks"] = clamp_blocks(reply.blocks)
    return payload


def reply_payloads(reply: Reply) -> list[dict[str, Any]]:
    """One reply as the messages that carry it, each within Slack's limits.

    A layout becomes Block Kit (`bot.slack.blocks`); long plain text is split where it
    reads well. A private answer's last message carries the "Share to channel" button;
    a shared one's first message says who shared it.
    """
    if reply.digest is not None:
        # Loaded here: it imports bot.slack.blocks (a cycle at import time) and discord's
        # markdown escaping, which a Slack-only role otherwise never loads.
        from bot import digest_layout

        # Without thumbnails: an ephemeral message has no second try without them (as the
        # channel's digest has), and one image Slack cannot fetch would lose the preview.
        digest = {
            "text": fit(defuse(reply.text), LIMITS["text"]),
            "blocks": digest_layout.slack_blocks(
                reply.digest, chart_attached=False, thumbnails=False
            ),
        }
        if not kit.problems(digest):
            return [digest]
        log.error("digest blocks outside slack's limits; sending text")
        reply = dataclasses.replace(reply, digest=None)
    if reply.layout is not None:
        laid_out = kit.messages(reply.layout, share_id=reply.share_id, shared_by=reply.shared_by)
        refused = [p for payload in laid_out for p in kit.problems(payload)]
        if not refused:
            return laid_out
        # A renderer bug must cost the layout, never the answer: the plain text still goes.
        log.error("block kit outside slack's limits; sending text", extra={"problems": refused})
        reply = dataclasses.replace(reply, layout=None)
    if reply.blocks is not None:
        return [reply_payload(reply)]
    extra = reply.share_id is not None or reply.shared_by is not None
    parts = split_message(reply.text, limit=SECTION_TEXT_MAX if extra else SLACK_TEXT_LIMIT)
    payloads: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        payload: dict[str, Any] = {"text": defuse(part)}
        lead = [kit.shared_block(reply.shared_by)] if reply.shared_by and index == 0 else []
        last = index == len(parts) - 1
        tail = [kit.share_block(reply.share_id)] if reply.share_id and last else []
        if lead or tail:
            payload["blocks"] = [*lead, section_block(part), *tail]
        payloads.append(payload)
    return payloads


def approval_payload(request: ApprovalRequest) -> dict[str, Any]:
    """The approval prompt: summary, who may decide, and two buttons carrying the action id."""
    minutes = max(1, round(request.expires_in_seconds / 60))
    return {
        "text": _cut(f"Approval needed: {defuse(request.summary)}", MESSAGE_TEXT_MAX),
        "blocks": [
            section_block(request.summary),
            kit.context(
                f"Requested by <@{request.requester_user_id}>; only they can approve."
                f" Expires in {minutes} min."
            ),
            {
                "type": "actions",
                # Who may decide, so the adapter knows whose click replaces this message.
                "block_id": f"{APPROVAL_PREFIX}:approval:{request.requester_user_id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"{APPROVAL_PREFIX}:approve:{request.action_id}",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": request.action_id,
                    },
                    {
                        "type": "button",
                        "action_id": f"{APPROVAL_PREFIX}:reject:{request.action_id}",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "style": "danger",
                        "value": request.action_id,
                    },
                ],
            },
        ],
    }


def decided_payload(
    original_blocks: list[dict[str, Any]], reply: Reply, *, decided_by: str, approved: bool
) -> dict[str, Any]:
    """The approval message after a decision: buttons gone, outcome and decider shown."""
    kept = [b for b in original_blocks if b.get("type") != "actions"]
    outcome = reply.blocks or [section_block(reply.text)]
    # What was clicked, stated as a fact; the outcome text says what came of it.
    choice = "Approve" if approved else "Reject"
    blocks = [*kept, *outcome, kit.context(f"<@{decided_by}> chose {choice}.")]
    return {
        "text": _cut(defuse(reply.text), MESSAGE_TEXT_MAX) or choice,
        "blocks": clamp_blocks(blocks),
    }
