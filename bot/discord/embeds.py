"""A `Layout` as Discord messages with embeds, and Discord's embed limits as one table.

One embed per section (an account): its figures as fields, its top posts as links in
the description, the first post's picture as the thumbnail, the platform's declared
colour, and the context line ("as of …") in the footer of each message's last embed.
Past a message's 10 embeds or 6,000 characters the answer continues in further
messages (nothing is lost) up to `MAX_MESSAGES`; only then does the last one say how
much was left out.

`problems()` checks a message against `LIMITS`; the renderer keeps within them by
construction, the tests check every embed it emits with it, and `sink.outgoing` sends
the plain text instead should a message ever break one. Hand-written: discord.py
checks none of these limits before sending (Discord answers 400 for the whole message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from discord.utils import escape_markdown

from agent.layout import Action, Entry, Layout, Section
from bot.core.text import fit, pieces

# Discord's documented limits (discord.com/developers/docs/resources/message#embed-object).
LIMITS: dict[str, int] = {
    "content": 2000,
    "embeds": 10,  # per message
    "total": 6000,  # characters across every embed of a message
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "author": 256,
    "rows": 5,  # action rows of components per message
    "row_buttons": 5,
    "button_label": 80,
}
MAX_MESSAGES = 10
CONTINUED = "(continued)"
# A top post's line stays a line: its title and figures are cut past these (saying so).
ENTRY_TITLE_MAX = 150
ENTRY_DETAIL_MAX = 300
# What the context line may take of a message's budget (it is short: as of, notes).
_FOOTER_ROOM = 1024


@dataclass(slots=True)
class EmbedMessage:
    """One Discord message: its text content and its embeds (as the API's JSON)."""

    content: str
    embeds: list[dict[str, Any]] = field(default_factory=list)
    # Rows of command buttons (`agent.layout.Action`), one per section that has some.
    rows: list[tuple[Action, ...]] = field(default_factory=list)


def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts toward a message's 6,000."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len((embed.get("footer") or {}).get("text", ""))
    size += len((embed.get("author") or {}).get("name", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def _entry_line(entry: Entry) -> str:
    title = escape_markdown(fit(entry.title, ENTRY_TITLE_MAX)).replace("]", "\\]")
    url = entry.url
    if url and url.startswith(("https://", "http://")) and not set(url) & set("()<> "):
        title = f"[{title}]({url})"
    detail = escape_markdown(fit(entry.detail, ENTRY_DETAIL_MAX))
    return f"{title} · {detail}" if detail else title


def section_embeds(section: Section) -> list[dict[str, Any]]:
    """One section as one embed, or several when its text or fields do not fit one."""
    title = fit(escape_markdown(section.heading), LIMITS["title"] - len(CONTINUED) - 1)
    lines = [escape_markdown(section.body)] if section.body else []
    lines += [_entry_line(e) for e in section.entries]
    descriptions = list(pieces("\n".join(lines), LIMITS["description"])) or [""]
    fields: list[dict[str, Any]] = [
        {
            "name": fit(escape_markdown(f.label), LIMITS["field_name"]),
            "value": fit(escape_markdown(f.value), LIMITS["field_value"]) or "\u200b",
            "inline": section.inline,
        }
        for f in section.fields
    ]
    # Each embed keeps room for the message's footer, so any one embed fits a message.
    budget = LIMITS["total"] - _FOOTER_ROOM
    embeds: list[dict[str, Any]] = []

    def start(description: str) -> dict[str, Any]:
        embed: dict[str, Any] = {"type": "rich"}
        heading = title if not embeds else f"{title} {CONTINUED}".strip()
        if heading:
            embed["title"] = heading
        if description:
            embed["description"] = description
        if section.colour is not None:
            embed["color"] = section.colour
        embeds.append(embed)
        return embed

    for description in descriptions:
        current = start(description)
    for item in fields:
        grown = embed_size(current) + len(item["name"]) + len(item["value"])
        if len(current.get("fields", [])) >= LIMITS["fields"] or grown > budget:
            current = start("")
        current.setdefault("fields", []).append(item)
    thumb = next((e.thumbnail_url for e in section.entries if e.thumbnail_url), None)
    if thumb and thumb.startswith("https://"):
        embeds[0]["thumbnail"] = {"url": thumb}
    return embeds


def messages(layout: Layout, *, shared_by: str | None = None) -> list[EmbedMessage]:
    """`layout` as Discord messages, each within LIMITS."""
    title = f"**{escape_markdown(layout.title)}**"
    lead = f"Shared by <@{shared_by}>\n" if shared_by else ""
    intro = f"\n{escape_markdown(layout.intro)}" if layout.intro else ""
    first = fit(f"{lead}{title}{intro}", LIMITS["content"])
    footer = fit(layout.context_line(), _FOOTER_ROOM)
    # Each embed, with the buttons of its section on the section's last embed.
    embeds: list[tuple[dict[str, Any], tuple[Action, ...]]] = []
    for section in layout.sections:
        parts = section_embeds(section)
        row = section.actions[: LIMITS["row_buttons"]]
        embeds += [(e, row if i == len(parts) - 1 else ()) for i, e in enumerate(parts)]
    out: list[EmbedMessage] = []
    current = EmbedMessage(first)
    total = 0
    for index, (embed, row) in enumerate(embeds):
        size = embed_size(embed)
        full = (
            len(current.embeds) >= LIMITS["embeds"]
            or total + size > LIMITS["total"] - len(footer)
            or (bool(row) and len(current.rows) >= LIMITS["rows"])
        )
        if full:
            if len(out) == MAX_MESSAGES - 1:
                left = len(embeds) - index
                current.content = fit(
                    f"{current.content}\n… and {left} more sections not shown: ask for less.",
                    LIMITS["content"],
                )
                break
            out.append(current)
            current, total = EmbedMessage(f"{title} {CONTINUED}"), 0
        current.embeds.append(embed)
        if row:
            current.rows.append(row)
        total += size
    out.append(current)
    for message in out:
        if footer and message.embeds:
            message.embeds[-1]["footer"] = {"text": footer}
            if layout.as_of is not None:
                message.embeds[-1]["timestamp"] = layout.as_of.isoformat()
    if footer and not out[-1].embeds:
        out[-1].content = fit(f"{out[-1].content}\n{footer}", LIMITS["content"])
    return out


def problems(message: EmbedMessage) -> list[str]:
    """What in one message breaks Discord's limits (empty when it fits)."""
    found: list[str] = []
    if len(message.content) > LIMITS["content"]:
        found.append(f"content: {len(message.content)} > {LIMITS['content']}")
    if not message.content and not message.embeds:
        found.append("an empty message")
    if len(message.embeds) > LIMITS["embeds"]:
        found.append(f"{len(message.embeds)} embeds > {LIMITS['embeds']}")
    if len(message.rows) > LIMITS["rows"]:
        found.append(f"{len(message.rows)} component rows > {LIMITS['rows']}")
    for row in message.rows:
        if not 1 <= len(row) <= LIMITS["row_buttons"]:
            found.append(f"a component row of {len(row)} buttons")
        if any(not 1 <= len(a.label) <= LIMITS["button_label"] for a in row):
            found.append("a button label empty or too long")
    total = sum(embed_size(e) for e in message.embeds)
    if total > LIMITS["total"]:
        found.append(f"{total} characters across embeds > {LIMITS['total']}")
    for i, embed in enumerate(message.embeds):
        where = f"embeds[{i}]"
        for key in ("title", "description"):
            if len(embed.get(key, "")) > LIMITS[key]:
                found.append(f"{where}.{key} too long")
        if len((embed.get("footer") or {}).get("text", "")) > LIMITS["footer"]:
            found.append(f"{where}.footer too long")
        fields = embed.get("fields", [])
        if len(fields) > LIMITS["fields"]:
            found.append(f"{where}: {len(fields)} fields > {LIMITS['fields']}")
        for j, f in enumerate(fields):
            if not f["name"] or len(f["name"]) > LIMITS["field_name"]:
                found.append(f"{where}.fields[{j}].name empty or too long")
            if not f["value"] or len(f["value"]) > LIMITS["field_value"]:
                found.append(f"{where}.fields[{j}].value empty or too long")
        if not (embed.get("title") or embed.get("description") or fields):
            found.append(f"{where}: an empty embed")
    return found
