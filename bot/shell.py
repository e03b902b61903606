"""The local shell front-end: a readline prompt onto the same conversation core.

The OS user is the chat user in a `local` workspace. Input is read on a daemon
thread (readline needs a blocking `input()`), so a signal can stop the process
without waiting for the next line.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.core.messages import ApprovalRequest, IncomingMessage, Reply, ReplySink

log = logging.getLogger(__name__)

Handler = Callable[[IncomingMessage, ReplySink], Awaitable[None]]
PROMPT = "socialops> "


class ShellSink:
    """Prints replies; progress updates rewrite the current line on a terminal."""

    def __init__(self, out: TextIO, answers: asyncio.Queue[str | None]) -> None:
        self._out = out
        self._answers = answers
        self._count = 0
        self._last_ref: str | None = None

    async def send(self, reply: Reply) -> str:
        self._end_progress()
        self._out.write(reply.text + "\n")
        self._out.flush()
        self._count += 1
        self._last_ref = str(self._count)
        return self._last_ref

    async def update(self, message_ref: str, reply: Reply) -> None:
        if self._out.isatty() and message_ref == self._last_ref:
            self._out.write("\r\x1b[2K" + reply.text)
            self._progress_open = True
        else:
            self._out.write(reply.text + "\n")
        self._out.flush()

    def _end_progress(self) -> None:
        if getattr(self, "_progress_open", False):
            self._out.write("\n")
            self._progress_open = False

    async def send_private(self, reply: Reply) -> None:
        await self.send(reply)

    async def ask_approval(self, request: ApprovalRequest) -> None:
        await self.send(Reply(f"{request.summary}\nApprove? [y/N] (id {request.action_id[:8]})"))


class ShellPart:
    """Reads lines until EOF or `quit`, handing each to the conversation core."""

    name = "shell"

    def __init__(
        self,
        handler: Handler,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        user: str | None = None,
    ) -> None:
        self._handler = handler
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._user = user or getpass.getuser()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.sink = ShellSink(self._stdout, self._lines)

    def _reader(self, loop: asyncio.AbstractEventLoop) -> None:
        interactive = self._stdin.isatty()
        if interactive:
            try:
                import readline  # noqa: F401 - enables line editing and history for input()
            except ImportError:
                pass
        while True:
            try:
                line = (
                    input(PROMPT)
                    if interactive and self._stdin is sys.stdin
                    else (self._stdin.readline() or None)
                )
            except (EOFError, KeyboardInterrupt):
                line = None
            except RuntimeError:  # loop closed while we were blocked
                return
            try:
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:
                return
            if line is None:
                return

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._reader, args=(loop,), name="shell-stdin", daemon=True).start()
        self._task = asyncio.create_task(self._loop(), name="shell")
        self._stdout.write(
            f"socialops shell: you are '{self._user}' in the local workspace. "
            "Type 'help' for commands, 'quit' to leave.\n"
        )
        self._stdout.flush()

    async def _loop(self) -> None:
        while True:
            line = await self._lines.get()
            if line is None:
                return
            text = line.strip()
            if not text:
                continue
            if text in {"quit", "exit"}:
                return
            message = IncomingMessage(
                frontend="local",
                workspace_id="local",
                channel_id="shell",
                user_id=self._user,
                text=text,
                is_dm=True,
                user_name=self._user,
            )
            try:
                await self._handler(message, self.sink)
            except Exception:  # the core never raises; this is a last guard for the prompt
                log.exception("shell handler failed")
                await self.sink.send(Reply("Something went wrong; see the log."))

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
