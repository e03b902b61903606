"""One TikTok caption from an upload request, measured as TikTok measures it.

TikTok's direct post has one text field (`post_info.title`, "the video caption"):
title, description and tags are folded into it the way the approval step checked
them (`agent.actions.upload.check_text`): title, text, then hashtags for the tags
the text does not already carry. TikTok counts its 2,200-unit limit in UTF-16 code
units, so an emoji outside the BMP counts twice.
"""

from __future__ import annotations


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (TikTok's "UTF-16 runes")."""
    return len(text.encode("utf-16-le")) // 2
