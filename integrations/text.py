"""One post text from an upload request, for platforms with no title or tag fields.

Title, then description (the title left out when the description already starts with
it), then a line of hashtags made from the tags (non-word characters dropped) that the
text does not already contain; parts separated by a blank line. The bot checks this
same text against the platform's caption rules before asking for approval.
"""

from __future__ import annotations

import re

from integrations.base import UploadRequest
from integrations.capabilities import HASHTAG


def compose_post_text(request: UploadRequest) -> str:
    """The text a title-less platform publishes for `request`."""
    parts: list[str] = []
    title = request.title.strip()
    description = request.description.strip()
    if title and not description.startswith(title):
        parts.append(title)
    if description:
        parts.append(description)
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
