"""The local shell front-end: a readline prompt onto the same conversation core.

The OS user is the chat user in a `local` workspace. Input is read on a daemon
thread (readline needs a blocking `input()`), so a signal can stop the process
without waiting for the next line. An approval request is answered by the next
line (y/n); upload progress rewrites one line on a terminal.
"""

from __future__ import annotations

import asyncio
import collections
import getpass
import logging
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

from agent.layout import Layout, plain_channels
from bot.admins import local_operator
from bot.core.messages import (
    ApprovalRequest,
    ConversationHandler,
    IncomingMessage,
    Reply,
)

log = logging.getLogger(__name__)

PROMPT = "socialops> "
APPROVAL_PROMPT = "approve? [y/N] "
WORKSPACE = "local"
CHANNEL = "shell"
# Replies quote platform text (titles, captions): its control characters would reach
# the terminal as escape sequences. Newlines and tabs are kept; the rest is dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _inert(text: str) -> str:
    return plain_channels(_CONTROL.sub("", text))


class ChatOps(ConversationHandler, Protocol):
    """What the shell needs of bot.core.service.ChatOpsService: the handler, plus drain."""

    async def drain(self, grace: float = 10.0) -> None: ...


class ShellSink:
    """Prints replies; progress updates rewrite the current line on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._count = 0
        self._last_ref: str | None = None
        self._progress_open = False
        self.pending: collections.deque[ApprovalRequest] = collections.deque()

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    async def send(self, reply: Reply) -> str:
        self._end_progress()
        self._write(_inert(reply.text) + "\n")
        self._count += 1
        self._last_ref = str(self._count)
        return self._last_ref

    async def update(self, message_ref: str, reply: Reply) -> None:
        if self._out.isatty() and message_ref == self._last_ref:
            self._write("\r\x1b[2K" + _inert(reply.text))
            self._progress_open = True
        else:
            self._end_progress()
            self._write(_inert(reply.text) + "\n")

    def _end_progress(self) -> None:
        if self._progress_open:
            self._write("\n")
            self._progress_open = False

    async def send_private(self, reply: Reply) -> None:
        await self.send(reply)

    async def ask_approval(self, request: ApprovalRequest) -> None:
        minutes = max(request.expires_in_seconds // 60, 1)
        await self.send(
            Reply(f"{request.summary}\nApprove? Answer y or n (expires in {minutes} min).")
        )
        self.pending.append(request)


class ShellPart:
    """Reads lines until EOF or `quit`, handing each to the conversation core."""

    name = "shell"

    def __init__(
        self,
        chatops: ChatOps,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        user: str | None = None,
    ) -> None:
        self._chatops = chatops
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._user = user or getpass.getuser()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        # The reader prompts only once the previous line is fully answered, so the
        # prompt is never printed in the middle of a reply.
        self._ready = threading.Event()
        self._ready.set()
        self.sink = ShellSink(self._stdout)

    def _reader(self, loop: asyncio.AbstractEventLoop) -> None:
        interactive = self._stdin is sys.stdin and self._stdin.isatty()
        if interactive:
            try:
                import readline  # noqa: F401 - enables line editing and history for input()
            except ImportError:
                pass
        while True:
            if interactive:
                self._ready.wait()
                self._ready.clear()
            try:
                if interactive:
                    line: str | None = input(APPROVAL_PROMPT if self.sink.pending else PROMPT)
                else:
                    line = self._stdin.readline() or None
            except (EOFError, KeyboardInterrupt):
                line = None
            except (RuntimeError, ValueError):  # loop or stream closed while we were blocked
                return
            try:
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:
                return
            if line is None:
                return

    async def start(self) -> None:
        # The banner goes first: the reader prints the prompt as soon as it runs.
        self._stdout.write(
            f"socialops shell: you are '{self._user}' in the local workspace. "
            "Type 'help' for commands, 'quit' to leave.\n"
        )
        self._stdout.flush()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._reader, args=(loop,), name="shell-stdin", daemon=True).start()
        self._task = asyncio.create_task(self._loop(), name="shell")

    async def _loop(self) -> None:
        while True:
            line = await self._lines.get()
            if line is None:
                return
            try:
                keep_going = await self._one(line.strip())
            except BaseException:
                self._ready.set()
                raise
            if not keep_going:
                return
            self._ready.set()  # only now may the reader print the next prompt

    async def _one(self, text: str) -> bool:
        """Handle one line; False means the user asked to leave."""
        if self.sink.pending:
            # The next line answers: y/yes approves, anything else rejects. A line that
            # is not a plain y/n answer is then also handled as a message of its own.
            request = self.sink.pending.popleft()
            answer = text.lower()
            await self._chatops.resolve_approval(
                frontend="local",
                workspace_id=WORKSPACE,
                user_id=self._user,
                action_id=request.action_id,
                approved=answer in {"y", "yes"},
                sink=self.sink,
            )
            if answer in {"", "y", "yes", "n", "no"}:
                return True
        if not text:
            return True
        if text in {"quit", "exit"}:
            return False
        message = IncomingMessage(
            frontend="local",
            workspace_id=WORKSPACE,
            channel_id=CHANNEL,
            user_id=self._user,
            text=text,
            is_dm=True,
            user_name=self._user,
            admin_check=local_operator,  # the person at this machine runs the bot
        )
        try:
            await self._chatops.handle(message, self.sink)
        except Exception:  # the core never raises; this is a last guard for the prompt
            log.exception("shell handler failed")
            await self.sink.send(Reply("Something went wrong; see the log."))
        return True

    async def notify(
        self, reply_to: Mapping[str, Any], text: str, /, *, layout: Layout | None = None
    ) -> None:
        """Out-of-band news for the local user (an OAuth link completed in the browser);
        the text says the commands a layout's buttons stand for."""
        await self.sink.send(Reply(text))

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self, grace: float) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._chatops.drain(grace)
