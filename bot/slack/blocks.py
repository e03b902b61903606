"""A `Layout` as Slack Block Kit messages, and Slack's payload limits as one table.

Rendering: a header, one section per account with its figures as `fields` (ten per
section, further sections for the rest), each top post as a section with a link and
its thumbnail as an image accessory, and a context line ("as of …"). A layout longer
than one message's 50 blocks continues in further messages (nothing is lost) up to
`MAX_MESSAGES`; only past that does the last message say how much was left out.

`problems()` checks a payload against `LIMITS`; the renderer keeps within them by
construction, the tests check every block it emits with it, and `convert.reply_payloads`
sends the plain text instead should a payload ever break one. Hand-written because
slack_sdk's block classes validate some limits by raising, which would turn a long
title from a platform into a failed answer instead of a shortened one.
"""

from __future__ import annotations

from typing import Any

from agent.layout import Action, Entry, Layout, Section
from bot.core.text import fit, pieces

# Slack's documented limits (api.slack.com/reference/block-kit).
LIMITS: dict[str, int] = {
    "blocks": 50,  # per message
    "text": 3000,  # a section's text, any text object unless said otherwise
    "fields": 10,  # per section
    "field_text": 2000,
    "header_text": 150,
    "context_elements": 10,
    "image_url": 3000,
    "alt_text": 2000,
    "button_text": 75,
    "button_value": 2000,
    "action_id": 255,
    "block_id": 255,
    "actions_elements": 25,
    "message_text": 40_000,  # the top-level `text` (notifications, old clients)
}
MAX_MESSAGES = 10
# A top post's title and figures are cut past these (saying so): a post is a line or two.
ENTRY_TITLE_MAX = 150
ENTRY_DETAIL_MAX = 300
SHARE_ACTION = "socialops:share"
# A button standing for a chat command (`agent.layout.Action`): its value is the command.
RUN_ACTION_PREFIX = "socialops:run:"
CONTINUED = "(continued)"


def escape(text: str) -> str:
    """Plain text safe in mrkdwn: no markup, links or @channel pings can come from data."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int = LIMITS["text"]) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": fit(text, limit)}


def header(title: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": fit(title, LIMITS["header_text"]), "emoji": False},
    }


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _link(url: str | None, title: str) -> str:
    label = escape(title).replace("|", "¦")
    if url and url.startswith(("https://", "http://")) and not set(url) & set("<>| "):
        return f"<{url}|{label}>"
    return label


def _entry(entry: Entry) -> dict[str, Any]:
    text = f"*{_link(entry.url, fit(entry.title, ENTRY_TITLE_MAX))}*"
    if entry.detail:
        text += f"\n{escape(fit(entry.detail, ENTRY_DETAIL_MAX))}"
    block: dict[str, Any] = {"type": "section", "text": _mrkdwn(text)}
    thumb = entry.thumbnail_url
    if thumb and thumb.startswith("https://") and len(thumb) <= LIMITS["image_url"]:
        block["accessory"] = {
            "type": "image",
            "image_url": thumb,
            "alt_text": fit(entry.title, LIMITS["alt_text"]) or "thumbnail",
        }
    return block


def _section(section: Section) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    heading = f"*{escape(section.heading)}*" if section.heading else ""
    fields = [
        _mrkdwn(f"*{escape(f.label)}*\n{escape(f.value)}", LIMITS["field_text"])
        for f in section.fields
    ]
    per = LIMITS["fields"]
    for start in range(0, len(fields), per):
        block: dict[str, Any] = {"type": "section", "fields": fields[start : start + per]}
        if start == 0 and heading:
            block["text"] = _mrkdwn(heading)
        blocks.append(block)
    if not fields and heading:
        blocks.append({"type": "section", "text": _mrkdwn(heading)})
    # Leave room for the continuation note `fit` might add; lines stay whole where they can.
    for piece in pieces(escape(section.body), LIMITS["text"] - 100):
        blocks.append({"type": "section", "text": _mrkdwn(piece)})
    blocks += [_entry(e) for e in section.entries]
    if section.actions:
        blocks.append(actions_block(section.actions))
    return blocks


def actions_block(actions: tuple[Action, ...]) -> dict[str, Any]:
    """Buttons that each run a chat command as the person who clicks (the adapter hands
    the value to the core as that person's command; the core decides what it may do)."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": f"{RUN_ACTION_PREFIX}{index}",
                "text": {"type": "plain_text", "text": fit(a.label, LIMITS["button_text"])},
                "value": a.command[: LIMITS["button_value"]],
            }
            for index, a in enumerate(actions[: LIMITS["actions_elements"]])
        ],
    }


def layout_blocks(layout: Layout) -> list[dict[str, Any]]:
    """Every block of `layout`, before it is split into messages."""
    blocks = [header(layout.title)]
    if layout.intro:
        blocks.append({"type": "section", "text": _mrkdwn(escape(layout.intro))})
    for index, section in enumerate(layout.sections):
        if index:
            blocks.append({"type": "divider"})
        blocks += _section(section)
    line = layout.context_line()
    if line:
        blocks.append(context(escape(line)))
    return blocks


def share_block(share_id: str) -> dict[str, Any]:
    """The "Share to channel" button on a private answer; its value is the kept answer's id."""
    return {
        "type": "actions",
        "block_id": "socialops:share",
        "elements": [
            {
                "type": "button",
                "action_id": SHARE_ACTION,
                "text": {"type": "plain_text", "text": "Share to channel"},
                "value": share_id,
            }
        ],
    }


def shared_block(user_id: str) -> dict[str, Any]:
    return context(f"Shared by <@{user_id}>")


def messages(
    layout: Layout, *, share_id: str | None = None, shared_by: str | None = None
) -> list[dict[str, Any]]:
    """`layout` as chat.postMessage payloads (`text` + `blocks`), each within LIMITS."""
    blocks = layout_blocks(layout)
    if shared_by:
        blocks.insert(1, shared_block(shared_by))
    tail = [share_block(share_id)] if share_id else []
    parts: list[list[dict[str, Any]]] = []
    rest = blocks
    while True:
        lead = [header(f"{layout.title} {CONTINUED}")] if parts else []
        room = LIMITS["blocks"] - len(lead) - len(tail)
        if len(rest) <= room:
            parts.append([*lead, *rest, *tail])
            break
        if len(parts) == MAX_MESSAGES - 1:
            keep = room - 1
            left = len(rest) - keep
            note = context(f"… and {left} more blocks not shown: ask for less (one platform).")
            parts.append([*lead, *rest[:keep], note, *tail])
            break
        # A divider starts the next message rather than ending this one.
        cut = room - 1 if rest[room - 1].get("type") == "divider" else room
        parts.append([*lead, *rest[:cut]])
        rest = rest[cut:]
    text = fit(layout.plain_text(), LIMITS["text"])
    more = f"{layout.title} {CONTINUED}"
    return [{"text": text if i == 0 else more, "blocks": part} for i, part in enumerate(parts)]


# --- limits -----------------------------------------------------------------------------


def _text_problems(where: str, obj: Any, limit: int) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"{where}: not a text object"]
    if obj.get("type") not in ("mrkdwn", "plain_text"):
        return [f"{where}: unknown text type {obj.get('type')!r}"]
    if not obj["text"]:
        return [f"{where}: empty text"]
    if len(obj["text"]) > limit:
        return [f"{where}: {len(obj['text'])} characters > {limit}"]
    return []


def block_problems(block: dict[str, Any], where: str = "block") -> list[str]:
    """What in one block breaks Slack's limits (empty when it fits)."""
    kind = block.get("type")
    found: list[str] = []
    if len(str(block.get("block_id", ""))) > LIMITS["block_id"]:
        found.append(f"{where}: block_id too long")
    if kind == "header":
        text = block.get("text") or {}
        if text.get("type") != "plain_text":
            found.append(f"{where}: a header's text must be plain_text")
        found += _text_problems(f"{where}.text", text, LIMITS["header_text"])
    elif kind == "section":
        if "text" not in block and not block.get("fields"):
            found.append(f"{where}: a section needs text or fields")
        if "text" in block:
            found += _text_problems(f"{where}.text", block["text"], LIMITS["text"])
        fields = block.get("fields") or []
        if len(fields) > LIMITS["fields"]:
            found.append(f"{where}: {len(fields)} fields > {LIMITS['fields']}")
        for i, f in enumerate(fields):
            found += _text_problems(f"{where}.fields[{i}]", f, LIMITS["field_text"])
        accessory = block.get("accessory")
        if accessory is not None:
            found += _image_problems(f"{where}.accessory", accessory)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= LIMITS["context_elements"]:
            found.append(f"{where}: {len(elements)} context elements")
        for i, e in enumerate(elements):
            if e.get("type") == "image":
                found += _image_problems(f"{where}.elements[{i}]", e)
            else:
                found += _text_problems(f"{where}.elements[{i}]", e, LIMITS["text"])
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= LIMITS["actions_elements"]:
            found.append(f"{where}: {len(elements)} action elements")
        for i, e in enumerate(elements):
            at = f"{where}.elements[{i}]"
            if e.get("type") != "button":
                found.append(f"{at}: only buttons are emitted")
                continue
            found += _text_problems(f"{at}.text", e.get("text"), LIMITS["button_text"])
            if len(str(e.get("value", ""))) > LIMITS["button_value"]:
                found.append(f"{at}: value too long")
            if not 1 <= len(str(e.get("action_id", ""))) <= LIMITS["action_id"]:
                found.append(f"{at}: action_id missing or too long")
    elif kind == "image":
        found += _image_problems(where, block)
    elif kind != "divider":
        found.append(f"{where}: unknown block type {kind!r}")
    return found


def _image_problems(where: str, image: dict[str, Any]) -> list[str]:
    found = []
    if image.get("type") != "image":
        found.append(f"{where}: not an image")
    url = str(image.get("image_url", ""))
    if not url.startswith(("https://", "http://")) or len(url) > LIMITS["image_url"]:
        found.append(f"{where}: bad image_url")
    alt = str(image.get("alt_text", ""))
    if not alt or len(alt) > LIMITS["alt_text"]:
        found.append(f"{where}: alt_text missing or too long")
    return found


def problems(payload: dict[str, Any]) -> list[str]:
    """What in one message payload breaks Slack's limits (empty when it fits)."""
    found: list[str] = []
    text = payload.get("text")
    if not isinstance(text, str) or not text or len(text) > LIMITS["message_text"]:
        found.append("text: missing, empty or too long")
    blocks = payload.get("blocks") or []
    if len(blocks) > LIMITS["blocks"]:
        found.append(f"{len(blocks)} blocks > {LIMITS['blocks']}")
    for i, block in enumerate(blocks):
        found += block_problems(block, f"blocks[{i}]")
    return found
