"""A fake Redis: a RESP2 server on loopback that answers each command as a test says.

For what a real Redis on the test machine cannot show: a password it checks (the
machine's Redis has none), TLS, a reply that never comes. Each connection gets its
own `answer` (from the test's `answers()`), so a handshake is checked per connection.
Strict: a command the test did not expect (its `answer` raises AssertionError)
closes that connection and fails the test at the server's exit, with the command in
the message. Its request parser is
its own (a line, then the bulk strings), not the client's under test.

Why hand-written: no Python library serves RESP for a test; the framing is a few lines
(https://redis.io/docs/latest/develop/reference/protocol-spec/).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from types import TracebackType

# What to send back for a command: raw RESP bytes, or None to never answer it.
Answer = Callable[[list[bytes]], bytes | None]


class FakeRedis:
    """`async with FakeRedis(answers) as fake:` then point a client at `fake.url`."""

    def __init__(self, answers: Callable[[], Answer], *, tls: ssl.SSLContext | None = None) -> None:
        self._answers = answers
        self._tls = tls
        self.commands: list[list[bytes]] = []  # every command received, in order
        self.connections = 0  # accepted so far
        self.closed_by_client = 0  # connections the client closed (EOF read)
        self.errors: list[str] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "rediss" if self._tls else "redis"
        return f"{scheme}://localhost:{self.port}"

    async def __aenter__(self) -> FakeRedis:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        if kind is None:
            assert not self.errors, "fake redis: " + "; ".join(self.errors)

    async def wait_closed_by_client(self, count: int) -> None:
        """Until the client has closed `count` connections (bounded by the test's timeout)."""
        while self.closed_by_client < count:
            await asyncio.sleep(0.005)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        answer = self._answers()
        command: list[bytes] | None = None
        try:
            while (command := await _read_command(reader)) is not None:
                self.commands.append(command)
                reply = answer(command)
                if reply is not None:
                    writer.write(reply)
            self.closed_by_client += 1
        except AssertionError as exc:
            self.errors.append(f"{exc} (last command {command!r})")
        except (ConnectionError, ssl.SSLError):
            self.closed_by_client += 1
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


async def _read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One command (an array of bulk strings), or None at the end of the stream."""
    header = await reader.readline()
    if not header:
        return None
    assert header[:1] == b"*", f"not a RESP array: {header!r}"
    command = []
    for _ in range(int(header[1:])):
        size = await reader.readline()
        assert size[:1] == b"$", f"not a bulk string: {size!r}"
        command.append((await reader.readexactly(int(size[1:]) + 2))[:-2])
    return command


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


OK = b"+OK\r\n"
