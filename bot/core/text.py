"""Fit long text into a chat platform's message size (Discord 2,000, Slack ~4,000).

Long replies are split on the most natural boundary available (blank line, line,
space) and a code fence that a split cuts through is closed and reopened, so every
part renders on its own. Only past `max_parts` messages is anything left out, and
the last part says how much.
"""

from __future__ import annotations

from collections.abc import Iterator

MESSAGE_LIMIT = 2000  # Discord refuses longer content
SLACK_TEXT_LIMIT = 3900  # Slack advises at most 4,000 characters of message text
MAX_PARTS = 10  # past this many messages a reply is a wall of text: cut it, and say so
TRUNCATION_MARK = "\n… ({left:,} more characters not shown)"
_FENCE = "```"


def truncate(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Cut `text` to `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ", limit // 2)
    if space > 0:
        cut = cut[:space]
    if cut.count(_FENCE) % 2 == 1 and len(cut) + 4 <= limit - 1:
        cut += "\n" + _FENCE
    return cut[: limit - 1] + "…"


def _break_point(text: str, limit: int) -> int:
    """Where to split `text` (longer than `limit`): the last good boundary within it."""
    window = text[:limit]
    floor = limit // 3  # never make a uselessly short part just to find a nice boundary
    for sep in ("\n\n", "\n", " "):
        at = window.rfind(sep)
        if at >= floor:
            return at + len(sep)
    return limit


def split_message(
    text: str, *, limit: int = MESSAGE_LIMIT, max_parts: int = MAX_PARTS
) -> list[str]:
    """Split `text` into at most `max_parts` messages of at most `limit` characters each."""
    text = text.strip("\n") or "\u200b"  # chat platforms refuse empty content
    parts: list[str] = []
    reopen = ""  # fence header to reopen in the next part when a split cut a code block
    rest = text
    # Room kept for a closing fence ("\n```") on a part that ends inside a code block.
    budget = limit - 4
    while rest:
        rest = reopen + rest
        if len(rest) <= limit:
            parts.append(rest)
            break
        at = _break_point(rest, budget - len(TRUNCATION_MARK) - 8)
        head, rest = rest[:at].rstrip("\n "), rest[at:].lstrip("\n")
        reopen = ""
        if head.count(_FENCE) % 2 == 1:
            last = head.rfind(_FENCE)
            header = head[last:].split("\n", 1)[0]  # e.g. ```python
            head += "\n" + _FENCE
            reopen = header + "\n"
        parts.append(head)
        if len(parts) == max_parts and rest:
            mark = TRUNCATION_MARK.format(left=len(rest))
            parts[-1] = parts[-1][: limit - len(mark)] + mark
            break
    return parts


def fit(text: str, limit: int) -> str:
    """`text` within `limit` characters; when cut, it says how much was left out."""
    if len(text) <= limit:
        return text
    keep = limit - len(f"… ({len(text):,} more characters)")
    return text[:keep] + f"… ({len(text) - keep:,} more characters)"


def pieces(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of at most `size`, cut at line ends where there are some."""
    while len(text) > size:
        at = text.rfind("\n", size // 2, size)
        at = at if at > 0 else size
        yield text[:at]
        text = text[at:].lstrip("\n")
    if text:
        yield text
