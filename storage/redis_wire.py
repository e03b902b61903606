"""The rate limiter's Redis client: script calls over one pipelined RESP2 connection.

Every chat message bound for the agent makes two script calls (`ADMIT` before the
run, `FINISH` after: `storage.ratelimit.ledger`), and the process is CPU-bound with
messages in flight. So this client does the least a script call needs: it encodes
the command, writes it, and resolves the caller's future when its reply comes.

Why hand-written: redis-py's path for one command is most of that call's client CPU
(a pooled connection checked out and back, its encoder, response callbacks, retry
wrapper and health check), and with calls in flight it takes a pooled connection,
and a syscall each way, per call. This process's CPU per `EVALSHA` with 4 keys and 16
arguments, one call at a time, loopback Redis, on the 2-core dev machine (medians of
interleaved rounds, the machine shared and noisy): redis-py 8.1 ~105 us, coredis 6.9
~225 us, bare asyncio streams writing a ready-made command and reading its reply
~50 us, this client ~58 us with its encoding. 32 calls in flight: redis-py ~80 us per
call, this client ~12 us. The Ledger's whole admission (`bench/ratelimit.py`, "script
client" rows, which record it on every run): ~160 us CPU vs ~235 us through redis-py,
and 10,400 vs 5,100 admissions/s with 32 in flight. No kept library is leaner here.

What it does:

* One connection per `RedisWire`, opened by the first call (no socket at startup);
  concurrent callers write on it and Redis answers in order, so each reply resolves
  the oldest waiting future. A connection lost fails every call waiting on it with
  redis-py's `ConnectionError` (an outage to `storage.ratelimit.fallback`); the
  next call reconnects, and calls arriving meanwhile share that one connect.
* A call with nothing in flight is written at once; calls made while others are in
  flight (their callers woken together by one read) are buffered and go out in one
  write at the next pass of the event loop: one syscall for 16 messages, not 16.
* RESP2 replies: simple strings, errors, integers, bulk strings (and null), arrays
  (nested, and null). An error reply is raised as redis-py classifies it
  (`NoScriptError`, `ReadOnlyError`, `OutOfMemoryError`, `ResponseError`...: its
  `BaseParser.parse_error`, from its private `_parsers` package, which the tests
  pin), so the limiter's handling of them means what it meant with redis-py; an error
  inside an array fails the call with it.
* URLs read by redis-py's own parser, so `REDIS_URL` means what it means to the rest
  of the app: `redis://` (host, port, db), `rediss://` (TLS, verified by default;
  `ssl_cert_reqs`, `ssl_ca_certs`, `ssl_check_hostname`), `unix://` (the embedded
  server); a username and password become `AUTH`, a non-zero db `SELECT`, both sent
  ahead of the first request on every connection.
* No health check: the socket is always read, so a connection Redis or a proxy
  closes is seen at once and the next call dials; a silently dead one costs the call
  that finds it its bound (as redis-py's ping with no socket timeout did).
* No timeouts and no retries of its own: every caller bounds its call
  (`storage.ratelimit.deadline`), and a retry would run a script that already ran,
  charging twice. A call its caller gives up on before its reply leaves the reply to
  be read and dropped when it comes, so the replies after it still reach their
  callers. It also retires the connection: no new request is written on it, and it is
  closed once no caller waits on it; the next call opens a new one. Replies come in
  order, so a reply that never comes (a dead peer, a half-open socket) would hold
  every later call on that connection: a connection with a request given up on is
  not trusted with more, and waiting calls that all time out leave nothing behind.

What it does not: RESP3 and push messages, pub/sub, transactions, cluster and
sentinel, client names, a connection pool, any command's reply decoding (bytes in,
bytes out). A URL option it does not honour fails at construction, naming the
option; redis-py's pool tuning (`socket_timeout`, `health_check_interval`,
`max_connections`...) is accepted and has no effect here: it tunes
`RedisHandle.client`, and this client has one connection and no timeouts by design.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from redis._parsers import BaseParser
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

Arg: TypeAlias = str | bytes | int
Reply: TypeAlias = bytes | int | list["Reply"] | None

# Options from redis-py's URL parser that this client honours (`protocol` only as 2).
_HONOURED = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "protocol",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_check_hostname",
    }
)
# Options that tune redis-py's pooled client (RedisHandle.client), which honours them;
# this client has one connection and leaves timeouts to its callers.
_POOL_TUNING = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_read_size",
        "retry_on_timeout",
        "max_connections",
        "health_check_interval",
        "timeout",
    }
)
# redis-py's reading of an error reply (the exception its own client would raise).
_error_of: Callable[[str], RedisError] = BaseParser.parse_error
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class RedisWire:
    """Script calls (any command answered in RESP2, really) on one pipelined connection.

    Keyword-free on purpose: `call("EVALSHA", sha, 2, key1, key2, arg...)`, the words
    Redis reads.
    """

    def __init__(self, url: str) -> None:
        self._target = _Target.from_url(url)  # a bad option fails here, at startup
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._open: set[_Connection] = set()  # the current one, and retired ones draining

    async def call(self, *args: Arg) -> Reply:
        """Send one command and return its reply; raises its error reply, or an outage
        error (redis-py's `ConnectionError`, an `OSError`) when Redis cannot be reached."""
        conn = self._conn
        if conn is None or conn.lost:
            conn = await self._connect()
        waiter = conn.send(_command(args))
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():  # given up before its reply: see the module docstring
                self._retire(conn)
            raise

    async def close(self) -> None:
        """Close every connection: calls still waiting fail as if it were lost (and a
        call still connecting ends cancelled). A later call opens a new one."""
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
        self._conn = None
        for conn in list(self._open):
            await conn.close()

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._dial())
        # Shielded: a caller's deadline ends its wait, not the connect the others share.
        return await asyncio.shield(self._connecting)

    async def _dial(self) -> _Connection:
        try:
            conn = await self._target.connect(self._open.discard)
            if not conn.lost:  # (lost already: the next call dials again)
                self._open.add(conn)
                self._conn = conn
            return conn
        finally:
            self._connecting = None

    def _retire(self, conn: _Connection) -> None:
        if self._conn is conn:
            self._conn = None
        conn.retire()


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and how to connect, read from a URL by redis-py's parser."""

    host: str
    port: int
    path: str | None
    tls: ssl.SSLContext | None
    handshake: bytes  # AUTH and SELECT, written first on every connection
    handshake_replies: int

    @classmethod
    def from_url(cls, url: str) -> _Target:
        options: dict[str, Any] = dict(parse_url(url))
        kind = options.pop("connection_class", None)
        unknown = sorted(set(options) - _POOL_TUNING - _HONOURED)
        if options.get("protocol", 2) != 2:
            unknown.append("protocol")
        if unknown:
            raise ValueError(
                f"REDIS_URL option(s) {', '.join(unknown)} not supported by the rate "
                "limiter's Redis client (storage/redis_wire.py)"
            )
        path = None
        if kind is UnixDomainSocketConnection:
            path = options.get("path")
            if not path:
                raise ValueError("REDIS_URL unix:// names no socket path")
        tls = None
        if kind is SSLConnection:
            tls = _tls_context(
                options.get("ssl_cert_reqs", "required"),
                options.get("ssl_ca_certs"),
                options.get("ssl_check_hostname", True),
            )
        commands: list[bytes] = []
        username, password = options.get("username"), options.get("password")
        if username or password:
            auth = (username, password or "") if username else (password,)
            commands.append(_command(("AUTH", *auth)))
        if options.get("db", 0):
            commands.append(_command(("SELECT", options["db"])))
        return cls(
            host=options.get("host", "localhost"),
            port=options.get("port", 6379),
            path=path,
            tls=tls,
            handshake=b"".join(commands),
            handshake_replies=len(commands),
        )

    async def connect(self, forget: Callable[[_Connection], None]) -> _Connection:
        loop = asyncio.get_running_loop()

        def factory() -> _Connection:
            return _Connection(loop, self.handshake, self.handshake_replies, forget)

        if self.path is not None:
            _, conn = await loop.create_unix_connection(factory, self.path)
        else:
            _, conn = await loop.create_connection(factory, self.host, self.port, ssl=self.tls)
        return conn


def _tls_context(cert_reqs: str, ca_certs: str | None, check_hostname: bool) -> ssl.SSLContext:
    """The context redis-py builds from the same options (verifying unless told not to)."""
    if cert_reqs not in _CERT_REQS:
        raise ValueError(f"REDIS_URL ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    context = ssl.create_default_context(cafile=ca_certs)
    verify = _CERT_REQS[cert_reqs]
    context.check_hostname = check_hostname and verify != ssl.CERT_NONE
    context.verify_mode = verify
    return context


def _command(args: Sequence[Arg]) -> bytes:
    """A RESP2 command: an array of bulk strings.

    Built as text and encoded once: a quarter cheaper than bytes argument by argument
    on an `ADMIT` call's ~40 arguments (~9 us vs ~12). Bytes and non-ASCII text go the
    bytes way, where a length in characters would not be one in bytes.
    """
    parts = [f"*{len(args)}\r\n"]
    for arg in args:
        if isinstance(arg, str):
            parts.append(f"${len(arg)}\r\n{arg}\r\n")
        elif type(arg) is int:  # (a bool the bytes way: as 1 or 0, not "True")
            digits = str(arg)
            parts.append(f"${len(digits)}\r\n{digits}\r\n")
        else:
            return _command_bytes(args)
    text = "".join(parts)
    data = text.encode()
    return data if len(data) == len(text) else _command_bytes(args)


def _command_bytes(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = (
            arg if isinstance(arg, bytes) else arg.encode() if isinstance(arg, str) else b"%d" % arg
        )
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One connection: requests written in order, replies matched to them in order.

    `_waiting` holds a future per request not yet answered (None for a handshake
    command's reply, checked here); a future its caller cancelled stays in place, so its
    reply, when it comes, is read and dropped.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handshake: bytes,
        handshake_replies: int,
        forget: Callable[[_Connection], None],
    ) -> None:
        self._loop = loop
        self._handshake = handshake
        self._forget = forget
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[asyncio.Future[Reply] | None] = deque([None] * handshake_replies)
        self._out: list[bytes] = []
        self._buffer = bytearray()
        self._retired = False
        self._closed = loop.create_future()
        self._failure: Exception | None = None  # what ended the connection, once it ended

    @property
    def lost(self) -> bool:
        """Ended (or ending): it takes no new request."""
        return self._failure is not None

    def send(self, request: bytes) -> asyncio.Future[Reply]:
        waiter: asyncio.Future[Reply] = self._loop.create_future()
        if self._failure is not None:
            # Ended between the caller's check and now: a refused AUTH read, or the peer
            # gone, in the loop pass that finished the connect (uvloop reads before the
            # caller resumes). The caller hears why, as the calls then waiting did.
            waiter.set_exception(self._failure)
            return waiter
        if not self._waiting and self._transport is not None:
            # Nothing in flight (one caller at a time): no one to share a write with.
            self._waiting.append(waiter)
            self._transport.write(request)
            return waiter
        # Calls in flight: their replies wake their callers together, and the requests
        # those make in this pass of the loop go out in one write, at the next pass.
        self._waiting.append(waiter)
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(request)
        return waiter

    def retire(self) -> None:
        """Take no more requests (the client stops sending them); close once nobody waits."""
        if self._retired:
            return
        self._retired = True
        for waiter in self._waiting:
            if waiter is not None and not waiter.done():
                waiter.add_done_callback(self._close_if_idle)
        self._close_if_idle()

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        await self._closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (TCP, unix, TLS); uvloop's do not subclass asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        if self._handshake:
            self._transport.write(self._handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget(self)
        self._fail(RedisConnectionError("connection to redis lost"), exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        waiting = self._waiting
        start = 0
        try:
            while start < len(buffer):
                reply, end = _parse(buffer, start)
                if end < 0:
                    break  # the rest of this reply is still on its way
                start = end
                waiter = waiting.popleft()  # IndexError: a reply nobody asked for
                if waiter is None:
                    if isinstance(reply, RedisError):
                        self._abort(reply)  # AUTH or SELECT refused: say so to everyone
                        return
                elif not waiter.done():  # not given up on
                    _resolve(waiter, reply)
        except (ValueError, IndexError) as exc:
            self._abort(RedisConnectionError("redis sent a reply this client cannot read"), exc)
            return
        del buffer[:start]

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _close_if_idle(self, _: object = None) -> None:
        if all(w is None or w.done() for w in self._waiting) and self._transport is not None:
            self._transport.close()

    def _abort(self, error: Exception, cause: BaseException | None = None) -> None:
        self._fail(error, cause)  # lost from now on: no new request while it closes
        if self._transport is not None:
            self._transport.close()

    def _fail(self, error: Exception, cause: BaseException | None) -> None:
        error.__cause__ = cause
        self._failure = self._failure or error
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)


def _resolve(waiter: asyncio.Future[Reply], reply: object) -> None:
    error = _first_error(reply)
    if error is None:
        waiter.set_result(reply)  # type: ignore[arg-type]  # errors ruled out just above
    else:
        waiter.set_exception(error)


def _first_error(reply: object) -> RedisError | None:
    if isinstance(reply, RedisError):
        return reply
    if isinstance(reply, list):
        for item in reply:
            if (error := _first_error(item)) is not None:
                return error
    return None


def _parse(data: bytearray, start: int) -> tuple[object, int]:
    """The reply starting at `start` and where it ends; end -1 when it is incomplete.
    An error reply is returned as redis-py's exception for it; ValueError on garbage."""
    eol = data.find(b"\r\n", start)
    if eol < 0:
        return None, -1
    kind, line = data[start], data[start + 1 : eol]
    if kind == 0x24:  # '$' bulk string
        size = int(line)
        if size < 0:
            return None, eol + 2
        end = eol + 2 + size
        if len(data) < end + 2:
            return None, -1
        return bytes(data[eol + 2 : end]), end + 2
    if kind == 0x2B:  # '+' simple string
        return bytes(line), eol + 2
    if kind == 0x3A:  # ':' integer
        return int(line), eol + 2
    if kind == 0x2D:  # '-' error
        return _error_of(line.decode(errors="replace")), eol + 2
    if kind == 0x2A:  # '*' array
        count, at = int(line), eol + 2
        if count < 0:
            return None, at
        items = []
        for _ in range(count):
            item, at = _parse(data, at)
            if at < 0:
                return None, -1
            items.append(item)
        return items, at
    raise ValueError(f"unknown RESP2 type byte {kind!r}")
