"""Instagram caption limits and a checker that explains what is wrong.

Instagram refuses a caption over 2,200 characters, with more than 30 hashtags or
more than 20 @mentions. Checking before creating a media container gives the
person a clear message instead of a failed publish.
"""

from __future__ import annotations

import re

from integrations.base import CaptionRules, UploadRequest

CAPTION_MAX_CHARS = 2_200
HASHTAGS_MAX = 30
MENTIONS_MAX = 20

CAPTION_RULES = CaptionRules(caption_max_chars=CAPTION_MAX_CHARS, hashtags_max=HASHTAGS_MAX)

# A hashtag or mention starts at a word boundary: "a#b" and "me@example.com" are neither.
_HASHTAG = re.compile(r"(?<![\w#])#\w+")
_MENTION = re.compile(r"(?<![\w.@])@[\w.]+")


def hashtags(text: str) -> list[str]:
    """Every hashtag occurrence in `text`, in order."""
    return _HASHTAG.findall(text)


def mentions(text: str) -> list[str]:
    """Every @mention occurrence in `text`, in order."""
    return _MENTION.findall(text)


def check_caption(text: str) -> list[str]:
    """Problems that would make Instagram refuse `text`, as sentences; empty when it is fine.

    Occurrences are counted (not distinct tags), which is the stricter reading of the limit.
    """
    problems: list[str] = []
    if len(text) > CAPTION_MAX_CHARS:
        problems.append(
            f"The caption is {len(text):,} characters; Instagram allows at most "
            f"{CAPTION_MAX_CHARS:,}."
        )
    tags = hashtags(text)
    if len(tags) > HASHTAGS_MAX:
        problems.append(
            f"The caption has {len(tags)} hashtags; Instagram allows at most {HASHTAGS_MAX}."
        )
    ats = mentions(text)
    if len(ats) > MENTIONS_MAX:
        problems.append(
            f"The caption mentions {len(ats)} accounts; Instagram allows at most {MENTIONS_MAX}."
        )
    return problems


def compose_caption(request: UploadRequest) -> str:
    """One Instagram caption from an upload request: title, description, then missing tags.

    Instagram has no separate title or tag fields, so tags become hashtags unless the
    text already contains them.
    """
    parts: list[str] = []
    title = request.title.strip()
    description = request.description.strip()
    if title and not description.startswith(title):
        parts.append(title)
    if description:
        parts.append(description)
    text = "\n\n".join(parts)
    present = {t.lower() for t in hashtags(text)}
    extra = []
    for tag in request.tags:
        word = re.sub(r"\W+", "", tag.lstrip("#"))
        if word and f"#{word.lower()}" not in present:
            present.add(f"#{word.lower()}")
            extra.append(f"#{word}")
    if extra:
        text = f"{text}\n\n{' '.join(extra)}" if text else " ".join(extra)
    return text
