"""`api_error()`: slack_sdk's `SlackApiError`, imported when first asked for.

A web process imports the adapter, the sink and the admin check at start, but loads
no Slack library until its first Slack work (`bot.slack.bolt_app`). Code that catches
a Slack API error asks for the class in its `except` clause, which Python evaluates
only once an exception is on its way: by then a slack_sdk client has been used, so
the import is a lookup in `sys.modules`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_sdk.errors import SlackApiError


def api_error() -> type[SlackApiError]:
    """The class to catch: `except api_error() as exc:`."""
    from slack_sdk.errors import SlackApiError

    return SlackApiError
