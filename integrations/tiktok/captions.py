"""One TikTok caption from an upload request, measured as TikTok measures it.

TikTok's direct post has one text field (`post_info.title`, "the video caption"):
title, description and tags are folded into it the way the approval step checked
them (`agent.actions.upload.check_text`): title, text, then hashtags for the tags
the text does not already carry. TikTok counts its 2,200-unit limit in UTF-16 code
units, so an emoji outside the BMP counts twice.
"""

from __future__ import annotations

import re

from integrations.base import UploadRequest
from integrations.capabilities import HASHTAG


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (TikTok's "UTF-16 runes")."""
    return len(text.encode("utf-16-le")) // 2


def compose_caption(request: UploadRequest) -> str:
    """Title, description, then the tags not yet present as hashtags, blank-line separated."""
    title = request.title.strip()
    description = request.description.strip()
    parts = [p for p in (title, description) if p]
    if title and description.startswith(title):
        parts = [description]
    text = "\n\n".join(parts)
    present = {t.lower() for t in HASHTAG.findall(text)}
    extra: list[str] = []
    for tag in request.tags:
        word = re.sub(r"\W+", "", tag.lstrip("#"))
        if word and f"#{word.lower()}" not in present:
            present.add(f"#{word.lower()}")
            extra.append(f"#{word}")
    if extra:
        text = f"{text}\n\n{' '.join(extra)}" if text else " ".join(extra)
    return text
