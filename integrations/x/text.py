"""The text of an X post: how it is composed from an upload request, and how X counts it.

X counts a post's text with twitter-text's weighted length (configuration v3): 280 in
all, most Latin, punctuation and symbol code points weigh 1, everything else (CJK,
most emoji) weighs 2, an emoji sequence joined by zero-width joiners counts once, and
every URL counts 23 (the length of its t.co link) whatever its own length.
(docs.x.com, "Counting characters"; twitter-text `config/v3.json`.)

The counting is twitter-text-parser's, a Python port that passes the official
twitter-text conformance suite (443 cases, checked when it was adopted). Its emoji
table is Unicode 12: an emoji sequence newer than that counts each code point, so a
text using one is judged a little longer than X would judge it, never shorter.
"""

from __future__ import annotations

import warnings

MAX_WEIGHTED_LENGTH = 280


def weighted_length(text: str) -> int:
    """The length X gives `text` (URLs 23, CJK and emoji 2, most Latin 1)."""
    # Imported on first use: compiling twitter-text's patterns takes about 0.2 s, which
    # a process that never counts an X text should not pay at start.
    with warnings.catch_warnings():
        # It loads its emoji table through pkg_resources, which warns that it is deprecated.
        warnings.simplefilter("ignore", UserWarning)
        from twitter_text import parse_tweet

    return int(parse_tweet(text).weightedLength)
