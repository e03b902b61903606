"""Token arithmetic the conversation core needs without loading LangChain."""

from __future__ import annotations

# Token counts are estimated from UTF-8 bytes (3 per token: above the real count for
# English, about one per character for CJK) rather than with a tokenizer: tiktoken
# downloads its tables from the internet on first use, and an estimate that errs high
# is what a budget needs.
BYTES_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """A conservative token count for `text` (see BYTES_PER_TOKEN)."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN)


class RunFailed(Exception):
    """The model or the graph failed mid-run; `tokens` is what the calls that did finish
    reported, so the budget is charged for them."""

    def __init__(self, tokens: int) -> None:
        super().__init__(f"agent run failed after {tokens} tokens")
        self.tokens = tokens
