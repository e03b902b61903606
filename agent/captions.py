"""Captions that fit each platform's rules, written without a model.

Deterministic on purpose: the grammar's `caption` must be instant, free and
predictable, and the agent's tool returns the same variants. Every variant is
checked against the platform's `CaptionRules` and trimmed to fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from integrations.capabilities import HASHTAG, MENTION, CaptionRules

TONES = ("neutral", "friendly", "professional", "playful", "hype")
MAX_VARIANTS = 5
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]{3,}")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_STOP = frozenset(
    "this that with from have your about what when will into just more than they them then"
    " there their here were been some very also only over video today".split()
)
_OPENERS = {
    "neutral": ("", "New: ", ""),
    "friendly": ("Hey everyone! ", "Hi friends, ", "Hello! "),
    "professional": ("", "Announcing: ", "Now available: "),
    "playful": ("Guess what? ", "Plot twist: ", "Okay, hear us out: "),
    "hype": ("🔥 ", "It's here! ", "Don't miss this: "),
}
_CLOSERS = ("", " What do you think?", " Tell us in the comments.")


@dataclass(frozen=True, slots=True)
class Caption:
    """One variant: a title (YouTube) and the body (description or caption)."""

    title: str | None
    body: str
    hashtags: tuple[str, ...]


def hashtags_for(description: str, limit: int) -> list[str]:
    """Hashtags from the description's own words, most relevant (first seen) first."""
    tags: list[str] = [t for t in HASHTAG.findall(description)]
    for word in _WORD.findall(_URL.sub(" ", description)):  # a link's parts are not topics
        tag = "#" + word.lower()
        if word.lower() not in _STOP and tag not in tags:
            tags.append(tag)
    return tags[:limit]


def _trim(text: str, limit: int, measure: Callable[[str], int] = len) -> str:
    """`text` cut at a word boundary, with an ellipsis, to measure at most `limit`."""
    if measure(text) <= limit:
        return text
    cut = text[: limit - 1]
    while cut and measure(cut + "…") > limit:  # weighted counts (X) can exceed len()
        cut = cut[:-1]
    if " " in cut[len(cut) // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def _strip_forbidden(text: str, forbidden: str) -> str:
    return "".join(ch for ch in text if ch not in forbidden) if forbidden else text


def _cap_marked(text: str, pattern: re.Pattern[str], limit: int) -> str:
    """Keep the first `limit` hashtags (or @mentions) of the person's text; the rest lose
    their mark and become plain words."""
    seen = 0

    def keep(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return match.group(0) if seen <= limit else match.group(0)[1:]

    return pattern.sub(keep, text)


def problems(rules: CaptionRules, caption: Caption) -> list[str]:
    """What breaks the platform's rules (empty when the caption fits)."""
    return rules.problems(title=caption.title, body=caption.body)


def generate(
    description: str,
    *,
    rules: CaptionRules,
    tone: str = "neutral",
    variants: int = 3,
) -> list[Caption]:
    """Up to `variants` captions for `description`, each within `rules`."""
    text = " ".join(_strip_forbidden(description, rules.forbidden_chars).split())
    if not text:
        raise ValueError("describe the post in a few words")
    tone = tone if tone in _OPENERS else "neutral"
    if rules.hashtags_max is not None:
        text = _cap_marked(text, HASHTAG, rules.hashtags_max)
    if rules.mentions_max is not None:
        text = _cap_marked(text, MENTION, rules.mentions_max)
    in_text = {t.lower() for t in HASHTAG.findall(text)}
    count = min(max(variants, 1), MAX_VARIANTS)
    tag_cap = rules.hashtags_max if rules.hashtags_max is not None else 5
    out: list[Caption] = []
    for i in range(count):
        opener = _OPENERS[tone][i % 3]
        closer = _CLOSERS[i % 3]
        n_tags = min(tag_cap - len(in_text), (3, 8, 5)[i % 3] + 5 * (i // 3))
        extra = [t for t in hashtags_for(text, 100) if t.lower() not in in_text]
        tags = extra[: max(n_tags, 0)]
        tag_line = " ".join(tags)
        body_limit = rules.body_max_chars or 5000
        core = f"{opener}{text}{closer}"
        room = body_limit - (rules.length(tag_line) + 2 if tag_line else 0)
        body = _trim(core, max(room, 1), rules.length) + (f"\n\n{tag_line}" if tag_line else "")
        title = None
        if rules.title_max_chars is not None:
            first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
            title = _trim(f"{opener}{first}".strip(), rules.title_max_chars, rules.length)
        caption = Caption(title=title, body=body, hashtags=tuple(tags))
        assert not problems(rules, caption), problems(rules, caption)
        out.append(caption)
    return out
