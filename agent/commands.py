"""The command grammar: `help`, `link`, `accounts`, ... straight to the actions, no model.

Slash commands are parsed here (instant, free, predictable), and free text that
parses exactly is routed here too. A line that starts like a command but does
not parse gets the usage of the closest command.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from agent.actions import (
    accounts,
    app_link,
    audit,
    best_time,
    captions,
    digest,
    jobs,
    metrics,
    quota,
    schedule,
    schedule_time,
    upload,
)
from agent.actions.base import ActionError, Outcome
from agent.observe import counted_command
from agent.session import AttachmentInfo, ChatContext
from integrations.capabilities import PRIVACY_WORDS
from integrations.registry import Platforms

USAGE: dict[str, str] = {
    "help": "help [command]: what I can do",
    "link": "link <platform>: connect one of your accounts (the link is sent privately);"
    " link confirm <code>: finish a link with the code your browser showed",
    "accounts": "accounts: your linked accounts",
    "unlink": "unlink <platform> [account]: disconnect an account",
    "upload": 'upload <platform> ["title"] [public|unlisted|private|...] [when]: upload the'
    ' attached video (shell: upload <platform> ~/clip.mp4 "Title"); when: at 18:00 tomorrow,'
    " on friday 09:30 Europe/Paris, in 2h (your `timezone`; a time skipped by a clock change"
    " is refused, a time that happens twice means the first)",
    "metrics": "metrics [platform] [today|7d|28d|90d] [post] [share]: engagement figures",
    "caption": "caption <platform> <description>: caption ideas that fit the platform",
    "digest": "digest on [at HH:MM] [IANA zone] | digest off | digest join | digest leave"
    " | digest show | digest preview (in the channel concerned)",
    "quota": "quota: what you have left today",
    "status": "status: your running and recent jobs (uploads)",
    "cancel": "cancel <job>: stop a job that has not published yet, or a scheduled post",
    "connect": "connect app: a one-time code (sent privately) to use the companion app as you",
    "disconnect": "disconnect app: the companion app stops acting as you",
    "timezone": "timezone [Area/City]: show or set your time zone (for scheduled posts)",
    "queue": "queue [workspace]: your scheduled posts (workspace: everyone's, for admins)",
    "reschedule": "reschedule <post> <when>: move a scheduled post (e.g. reschedule 12 in 2h)",
    "best": "best time <platform>: the next three slots your account's history favours",
    "audit": "audit [user @someone] [action <name>] [since YYYY-MM-DD]: who asked for what"
    " (workspace admins; sent privately)",
}
COMMANDS = tuple(USAGE)
# Commands whose answer is for the asker alone unless they add `share` at the end
# (the rest answer with a private link, an approval or a change of their own).
SHAREABLE = frozenset({"help", "accounts", "metrics", "caption", "digest", "quota", "status"})
SHARE_WORD = "share"
SHARE_HINT = (
    f"Slash command answers are private: add `{SHARE_WORD}` at the end (or click"
    " Share to channel) to post one for everyone."
)
_PATHLIKE = re.compile(r"^(~|/|\./|\.\./)|\.(mp4|mov|m4v|webm|mkv|avi)$", re.IGNORECASE)
_POST_ID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}$")
# A leading bot mention (Slack `<@U123>`, Discord `<@123>` / `<@!123>`) is not part of the command.
_MENTION = re.compile(r"^(?:<@!?[A-Za-z0-9]+>\s*)+")


@dataclass(frozen=True, slots=True)
class Command:
    """A line that parsed: which command and its arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    # The person asked for the answer in the channel (a trailing `share`), not privately.
    share: bool = False


Parser = Callable[[list[str], "Platforms"], "Command | Usage"]


@dataclass(frozen=True, slots=True)
class Usage:
    """A line that looked like a command but did not parse: what to tell the person."""

    command: str | None
    message: str


def help_text(topic: str | None = None, platforms: Platforms | None = None) -> str:
    if topic in USAGE:
        return "Usage: " + USAGE[topic]
    lines = ["Commands (or just ask me in plain words):"]
    lines += [f"- {u}" for u in USAGE.values()]
    lines.append(SHARE_HINT)
    if platforms is not None and platforms.configured():
        lines.append("Platforms: " + ", ".join(platforms.configured()))
    return "\n".join(lines)


def _usage(name: str, problem: str | None = None) -> Usage:
    prefix = f"{problem}\n" if problem else ""
    return Usage(name, f"{prefix}Usage: {USAGE[name]}")


def closest(word: str) -> str | None:
    found = difflib.get_close_matches(word.lower(), COMMANDS, n=1, cutoff=0.6)
    return found[0] if found else None


def parse(text: str, platforms: Platforms) -> Command | Usage | None:
    """Parse one line. None: it does not start with a command word at all.

    `platforms` says which words name a platform (names and aliases).
    """
    body = _MENTION.sub("", text.strip()).strip()
    if body.lower().startswith("/social"):
        body = body[len("/social") :].strip()
    if not body:
        return Command("help")
    first = body.split(maxsplit=1)[0].lower()
    if first not in USAGE:
        return None
    try:
        tokens = shlex.split(body)
    except ValueError:
        return _usage(first, "Unbalanced quotes.")
    if not tokens:
        return Command("help")
    rest = tokens[1:]
    # An unquoted trailing `share` ("metrics youtube 7d share"); a quoted one is an argument.
    share = (
        first in SHAREABLE
        and bool(rest)
        and rest[-1].lower() == SHARE_WORD
        and body.lower().endswith(SHARE_WORD)
    )
    if not share and rest and rest[-1].lower() == SHARE_WORD and body.lower().endswith(SHARE_WORD):
        return _usage(first, f"`{first}` answers only you; it cannot be shared.")
    parsed = _PARSERS[first](rest[:-1] if share else rest, platforms)
    if share and isinstance(parsed, Command):
        return dataclasses.replace(parsed, share=True)
    return parsed


def _help(rest: list[str], platforms: Platforms) -> Command | Usage:
    if not rest:
        return Command("help")
    if len(rest) == 1 and rest[0].lower() in USAGE:
        return Command("help", {"topic": rest[0].lower()})
    return _usage("help")


def _no_args(name: str) -> Parser:
    def parse_it(rest: list[str], platforms: Platforms) -> Command | Usage:
        return Command(name) if not rest else _usage(name)

    return parse_it


def _link(rest: list[str], platforms: Platforms) -> Command | Usage:
    if rest and rest[0].lower() == "confirm":
        # The code may be typed in groups ("ABCD EFGH"); pending_links normalizes it.
        if len(rest) >= 2:
            return Command("link_confirm", {"code": " ".join(rest[1:])})
        return _usage("link", "Which code? Type the one your browser showed.")
    if len(rest) == 1 and (name := platforms.resolve(rest[0])) is not None:
        return Command("link", {"platform": name})
    which = "Which platform? " + ", ".join(platforms.configured() or platforms.names)
    return _usage("link", which if not rest else None)


def _unlink(rest: list[str], platforms: Platforms) -> Command | Usage:
    if 1 <= len(rest) <= 2 and (name := platforms.resolve(rest[0])) is not None:
        return Command("unlink", {"platform": name, "account": rest[1] if len(rest) > 1 else None})
    return _usage("unlink")


def _upload(rest: list[str], platforms: Platforms) -> Command | Usage:
    name = platforms.resolve(rest[0]) if rest else None
    if name is None:
        return _usage("upload")
    args: dict[str, Any] = {"platform": name, "path": None, "title": None, "privacy": None}
    more = rest[1:]
    if more and _PATHLIKE.search(more[0]):
        args["path"] = more.pop(0)
    for i, word in enumerate(more):
        # A trailing time phrase ("... at 18:00 tomorrow"); quote a title that ends with one.
        if word.lower() in schedule_time.LEADS and schedule_time.looks_like_time(more[i:]):
            args["publish_at"] = " ".join(more[i:])
            del more[i:]
            break
    if more and more[-1].lower() in PRIVACY_WORDS:
        # A trailing privacy word ("... unlisted"); quote a title that ends with one.
        args["privacy"] = more.pop().lower()
    if more:
        args["title"] = " ".join(more)
    return Command("upload", args)


def _metrics(rest: list[str], platforms: Platforms) -> Command | Usage:
    args: dict[str, Any] = {"platform": None, "period": None, "post": None}
    seen_period = False
    for token in rest:
        low = token.lower()
        if (
            args["platform"] is None
            and not seen_period
            and args["post"] is None
            and platforms.resolve(low) is not None
        ):
            args["platform"] = platforms.resolve(low)
        elif not seen_period and args["post"] is None and low in metrics.PERIODS:
            args["period"] = "today" if low == "1d" else low
            seen_period = True
        elif args["post"] is None and _POST_ID.match(token):
            args["post"] = token
        else:
            return _usage("metrics")
    return Command("metrics", args)


def _caption(rest: list[str], platforms: Platforms) -> Command | Usage:
    name = platforms.resolve(rest[0]) if rest else None
    if len(rest) >= 2 and name is not None:
        return Command("caption", {"platform": name, "description": " ".join(rest[1:])})
    return _usage("caption")


def _digest(rest: list[str], platforms: Platforms) -> Command | Usage:
    if not rest:
        return _usage("digest")
    verb, more = rest[0].lower(), rest[1:]
    if verb in ("show", "preview") and not more:
        return Command("digest", {"verb": verb})
    if verb in ("join", "leave") and len(more) <= 1:
        if more and not more[0].startswith(("#", "<#")):
            return _usage("digest")
        return Command("digest", {"verb": verb, "channel": more[0] if more else None})
    if verb == "off" and len(more) <= 1:
        if more and not more[0].startswith(("#", "<#")):
            return _usage("digest")
        return Command("digest", {"verb": "off", "channel": more[0] if more else None})
    if verb != "on":
        return _usage("digest")
    args: dict[str, Any] = {"verb": "on", "channel": None, "at": None, "zone": None}
    i = 0
    while i < len(more):
        token = more[i]
        if args["channel"] is None and args["at"] is None and token.startswith(("#", "<#")):
            args["channel"] = token
        elif (
            args["at"] is None
            and token.lower() == "at"
            and i + 1 < len(more)
            and _TIME.match(more[i + 1])
        ):
            args["at"] = more[i + 1]
            i += 1
        elif args["zone"] is None and ("/" in token or token.upper() == "UTC"):
            args["zone"] = "UTC" if token.upper() == "UTC" else token
        else:
            return _usage("digest")
        i += 1
    return Command("digest", args)


def _cancel(rest: list[str], platforms: Platforms) -> Command | Usage:
    if len(rest) == 1:
        return Command("cancel", {"job": rest[0]})
    return _usage("cancel")


def _connect(rest: list[str], platforms: Platforms) -> Command | Usage:
    if len(rest) == 1 and rest[0].lower() == "app":
        return Command("connect_app")
    return _usage("connect")


def _disconnect(rest: list[str], platforms: Platforms) -> Command | Usage:
    if len(rest) == 1 and rest[0].lower() == "app":
        return Command("disconnect_app")
    return _usage("disconnect")


def _timezone(rest: list[str], platforms: Platforms) -> Command | Usage:
    if len(rest) <= 1:
        return Command("timezone", {"zone": rest[0] if rest else None})
    return _usage("timezone")


def _queue(rest: list[str], platforms: Platforms) -> Command | Usage:
    if not rest or (len(rest) == 1 and rest[0].lower() == "workspace"):
        return Command("queue", {"workspace": bool(rest)})
    return _usage("queue")


def _reschedule(rest: list[str], platforms: Platforms) -> Command | Usage:
    if len(rest) >= 2 and schedule_time.looks_like_time(rest[1:]):
        return Command("reschedule", {"post": rest[0], "when": " ".join(rest[1:])})
    if len(rest) == 1:  # the "Reschedule" button: answered with the command to complete
        return Command("reschedule", {"post": rest[0], "when": ""})
    return _usage("reschedule")


def _best(rest: list[str], platforms: Platforms) -> Command | Usage:
    if len(rest) == 2 and rest[0].lower() == "time":
        if (name := platforms.resolve(rest[1])) is not None:
            return Command("best_time", {"platform": name})
    return _usage("best")


_ACTION_WORD = re.compile(r"^[a-z_]{1,40}$")


def _audit(rest: list[str], platforms: Platforms) -> Command | Usage:
    args: dict[str, Any] = {"user": None, "action": None, "since": None}
    if len(rest) % 2:
        return _usage("audit")
    for key, value in zip(rest[::2], rest[1::2], strict=True):
        key = key.lower()
        if key not in args or args[key] is not None:
            return _usage("audit")
        if key == "action":
            if not _ACTION_WORD.match(value.lower()):
                return _usage("audit", "An action is one word, like upload or link.")
            args["action"] = value.lower()
        elif key == "since":
            try:
                args["since"] = date.fromisoformat(value)
            except ValueError:
                return _usage("audit", f"{value} is not a date like 2026-11-01.")
        else:
            args["user"] = value
    return Command("audit", args)


_PARSERS: dict[str, Parser] = {
    "help": _help,
    "link": _link,
    "accounts": _no_args("accounts"),
    "unlink": _unlink,
    "upload": _upload,
    "metrics": _metrics,
    "caption": _caption,
    "digest": _digest,
    "quota": _no_args("quota"),
    "status": _no_args("status"),
    "cancel": _cancel,
    "connect": _connect,
    "disconnect": _disconnect,
    "timezone": _timezone,
    "queue": _queue,
    "reschedule": _reschedule,
    "best": _best,
    "audit": _audit,
}


def history_text(command: Command, text: str) -> str:
    """The line as conversation history keeps it: a confirmation code is not kept."""
    return "link confirm [code]" if command.name == "link_confirm" else text


def usage_for_unknown(text: str) -> str:
    """For a slash command that starts with no known word: the closest command's usage."""
    words = text.strip().split(maxsplit=1)
    near = closest(words[0]) if words else None
    if near is not None:
        return f"Did you mean `{near}`?\nUsage: {USAGE[near]}"
    return help_text()


@counted_command(lambda command, chat: command.name)
async def execute(command: Command, chat: ChatContext) -> Outcome:
    """Run a parsed command through the same actions the tools use."""
    ctx = chat.action
    args = command.args
    name = command.name
    if name == "help":
        return Outcome(help_text(args.get("topic"), ctx.deps.platforms))
    if name == "link":
        return await accounts.link(ctx, args["platform"], reply_to=chat.reply_to)
    if name == "link_confirm":
        return await accounts.confirm_link(ctx, args["code"])
    if name == "accounts":
        return await accounts.list_accounts(ctx)
    if name == "unlink":
        return await accounts.request_unlink(
            ctx, platform=args["platform"], account=args["account"]
        )
    if name == "upload":
        source: AttachmentInfo | None
        if args["path"]:
            source = chat.local_file(args["path"])
        else:
            found = chat.find_attachment(None)
            if found is None and chat.attachments:
                raise ActionError("Attach exactly one video to upload.")
            source = found
        return await upload.request_upload(
            ctx,
            platform=args["platform"],
            account=None,
            source=source.locator if source else None,
            source_name=source.name if source else "",
            title=args["title"],
            privacy=args["privacy"],
            reply_to=chat.reply_to,
            publish_at=args.get("publish_at"),
        )
    if name == "metrics":
        return await metrics.get_metrics(
            ctx, platform=args["platform"], period=args["period"], post=args["post"]
        )
    if name == "caption":
        return await captions.suggest(
            ctx, platform=args["platform"], description=args["description"]
        )
    if name == "digest":
        if args["verb"] == "show":
            return await digest.show(ctx)
        if args["verb"] == "preview":
            return await digest.preview(ctx, current_channel=chat.channel_id)
        if args["verb"] in ("join", "leave"):
            return await digest.request_membership(
                ctx,
                join=args["verb"] == "join",
                channel=args.get("channel"),
                current_channel=chat.channel_id,
            )
        return await digest.request_change(
            ctx,
            enabled=args["verb"] == "on",
            channel=args.get("channel"),
            current_channel=chat.channel_id,
            at=args.get("at"),
            zone=args.get("zone"),
        )
    if name == "quota":
        return await quota.show_quota(ctx)
    if name == "status":
        return await jobs.show_status(ctx)
    if name == "cancel":
        if (scheduled := await schedule.find_scheduled(ctx, args["job"])) is not None:
            return await schedule.request_cancel(ctx, scheduled)
        return await jobs.cancel(ctx, args["job"])
    if name == "timezone":
        return await schedule.set_timezone(ctx, args["zone"])
    if name == "queue":
        return await schedule.show_queue(ctx, workspace=args["workspace"], is_admin=chat.is_admin)
    if name == "reschedule":
        return await schedule.request_reschedule(ctx, args["post"], args["when"])
    if name == "best_time":
        return await best_time.suggest(ctx, platform=args["platform"])
    if name == "connect_app":
        return await app_link.connect_app(ctx)
    if name == "disconnect_app":
        return await app_link.disconnect_app(ctx)
    if name == "audit":
        return await audit.show(ctx, is_admin=chat.is_admin, **args)
    raise AssertionError(f"unhandled command {name}")


__all__ = [
    "COMMANDS",
    "USAGE",
    "Command",
    "Usage",
    "execute",
    "help_text",
    "history_text",
    "parse",
]
