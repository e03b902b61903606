"""A front-end-neutral structured answer: what a Block Kit message, a Discord embed and
the shell's plain text are all rendered from.

Actions that answer with figures or lists (metrics, accounts, quota, captions) build a
`Layout`; each front-end renders it (`bot.slack.blocks`, `bot.discord.embeds`) and
`Layout.plain_text()` is the fallback every front-end can show. Text from platforms
(titles, captions) stays data here: renderers escape it their own way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A channel named in an answer's text. The token is the one both chat front-ends already
# show as a link to the channel (`<#C123>` in Slack, `<#123>` in Discord), so their
# renderers pass it through; plain-text front-ends (the shell) show `#id` (`plain_channels`).
_CHANNEL_TOKEN = re.compile(r"<#([A-Za-z0-9_.-]{1,80})>")


def channel_mention(channel_id: str) -> str:
    """The neutral token for a channel in an answer's or an approval's text."""
    return f"<#{channel_id}>"


def plain_channels(text: str) -> str:
    """`text` with channel tokens as `#id`, for front-ends that show no mentions."""
    return _CHANNEL_TOKEN.sub(r"#\1", text)


@dataclass(frozen=True, slots=True)
class Field:
    """One labelled figure: ("Watch time", "1,004 min")."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Action:
    """A button that stands for a chat command: clicking it runs `command` (e.g.
    "cancel 12") as the person who clicked, through the conversation core, exactly as
    if they had typed it: the same grammar, approvals and checks of whose post it is.
    A button is a shortcut, never a permission. Plain text shows the command to type.

    `more` is what a typed command adds that a button cannot know (a new time:
    "<when>"); a click runs `command` without it, and the core answers privately with
    the command to complete."""

    label: str
    command: str
    more: str = ""

    def typed(self) -> str:
        """The command as a person types it ("reschedule 12 <when>")."""
        return f"{self.command} {self.more}" if self.more else self.command


@dataclass(frozen=True, slots=True)
class Entry:
    """One item under a section (a top post): a title, a line of detail, a link, a picture.

    A `quoted` title came from a platform: plain text shows it in quotes, as data.
    """

    title: str
    detail: str = ""
    url: str | None = None
    thumbnail_url: str | None = None
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """One block of the answer, usually one account: heading, fields, free text, entries.

    `colour` is the platform's declared colour (`PlatformCapabilities.colour`), for
    front-ends that show one (Discord embeds). `inline` fields are short figures shown
    side by side; the others (long labels, sentences) one per line.
    """

    heading: str
    fields: tuple[Field, ...] = ()
    body: str = ""
    entries: tuple[Entry, ...] = ()
    colour: int | None = None
    inline: bool = True
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Layout:
    """A titled answer in sections, with a context line ("as of …", "estimated: …")."""

    title: str
    sections: tuple[Section, ...] = ()
    notes: tuple[str, ...] = ()
    as_of: datetime | None = None
    intro: str = ""

    def context_line(self) -> str:
        """The context line: 'as of 2026-11-25 08:00 UTC · estimated: Watch time · …'."""
        parts = [f"as of {self.as_of:%Y-%m-%d %H:%M} UTC"] if self.as_of else []
        return " · ".join([*parts, *self.notes])

    def plain_text(self) -> str:
        """The whole answer as plain text: what the shell prints and chat clients fall back to."""
        lines = [f"{self.title}:" if self.intro or self.sections else self.title]
        if self.intro:
            lines.append(self.intro)
        for section in self.sections:
            # Under a heading everything is indented; without one, fields are list items.
            indent, item = ("    ", "    ") if section.heading else ("", "- ")
            if section.heading:
                lines.append(f"- {section.heading}")
            if section.fields and section.inline:
                lines.append(item + " · ".join(f"{f.label} {f.value}" for f in section.fields))
            elif section.fields:
                lines += [f"{item}{f.label}: {f.value}" for f in section.fields]
            if section.body:
                lines.append(indent + section.body.replace("\n", "\n" + indent))
            for entry in section.entries:
                link = f" <{entry.url}>" if entry.url else ""
                detail = f": {entry.detail}" if entry.detail else ""
                title = json.dumps(entry.title) if entry.quoted else entry.title
                lines.append(f"{item}{title}{detail}{link}")
            if section.actions:
                typed = " · ".join(f"{a.label}: `{a.typed()}`" for a in section.actions)
                lines.append(f"{indent}{typed}")
        context = self.context_line()
        if context:
            lines.append(context)
        return "\n".join(lines)

    def to_json(self) -> str:
        """A compact JSON form, to keep an answer for a later "Share to channel" click."""
        return json.dumps(
            {
                "title": self.title,
                "intro": self.intro,
                "notes": list(self.notes),
                "as_of": self.as_of.isoformat() if self.as_of else None,
                "sections": [
                    {
                        "heading": s.heading,
                        "fields": [[f.label, f.value] for f in s.fields],
                        "body": s.body,
                        "entries": [
                            [e.title, e.detail, e.url, e.thumbnail_url, e.quoted] for e in s.entries
                        ],
                        "colour": s.colour,
                        "inline": s.inline,
                        "actions": [[a.label, a.command, a.more] for a in s.actions],
                    }
                    for s in self.sections
                ],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> Layout:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            title=str(data["title"]),
            intro=str(data.get("intro") or ""),
            notes=tuple(str(n) for n in data.get("notes") or ()),
            as_of=datetime.fromisoformat(data["as_of"]) if data.get("as_of") else None,
            sections=tuple(
                Section(
                    heading=str(s["heading"]),
                    fields=tuple(Field(str(a), str(b)) for a, b in s.get("fields") or ()),
                    body=str(s.get("body") or ""),
                    entries=tuple(Entry(*e) for e in s.get("entries") or ()),
                    colour=s.get("colour"),
                    inline=bool(s.get("inline", True)),
                    actions=tuple(Action(*map(str, a)) for a in s.get("actions") or ()),
                )
                for s in data.get("sections") or ()
            ),
        )


__all__ = [
    "Action",
    "Entry",
    "Field",
    "Layout",
    "Section",
    "channel_mention",
    "plain_channels",
]
