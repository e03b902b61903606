"""One Instagram caption from an upload request (Instagram has no title or tag fields).

The limits it must meet are the platform's declared `CaptionRules` (see plugin.py).
"""

from __future__ import annotations

import re

from integrations.base import UploadRequest
from integrations.capabilities import HASHTAG


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
    present = {t.lower() for t in HASHTAG.findall(text)}
    extra = []
    for tag in request.tags:
        word = re.sub(r"\W+", "", tag.lstrip("#"))
        if word and f"#{word.lower()}" not in present:
            present.add(f"#{word.lower()}")
            extra.append(f"#{word}")
    if extra:
        text = f"{text}\n\n{' '.join(extra)}" if text else " ".join(extra)
    return text
