"""The rate limiter's Redis client (storage/redis_wire.py).

Against the session's Redis (the machine's, or the embedded one on a unix socket),
directly or through a relay that can hold Redis' replies, dribble them a byte at a
time or cut the connection; and against a fake Redis (tests/fakes/resp.py) for what
the real one cannot show here: a password it checks, TLS, a reply that never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio.connection import parse_url
from redis.exceptions import (
    AuthenticationError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from storage.ratelimit import Budgets
from storage.ratelimit.deadline import stall_aware_timeout
from storage.ratelimit.fallback import OUTAGE_ERRORS
from storage.redis import RedisHandle
from storage.redis_wire import RedisWire, _Connection
from tests.fakes.resp import OK, Answer, FakeRedis, bulk
from tests.storage.limiter import POLICY, script_commands


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` (bounded by the test's timeout)."""
    while not condition():
        await asyncio.sleep(0.005)


class Relay:
    """A loopback relay to the session's Redis (in this event loop). `mode` says what it
    does with Redis' replies: "pass" them, "hold" them until `release()`, or "dribble"
    them a byte per write."""

    def __init__(self, target_url: str) -> None:
        self._target = parse_url(target_url)
        self.mode = "pass"
        self.connections = 0
        self.closed_by_client = 0
        self._held: list[tuple[asyncio.StreamWriter, bytes]] = []
        self._clients: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/{self._target.get('db', 0)}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every client connection (as a network fault would)."""
        for client in self._clients:
            client.transport.abort()
        self._clients.clear()

    @property
    def held(self) -> int:
        """Bytes of replies held."""
        return sum(len(data) for _, data in self._held)

    def release(self) -> None:
        """Send the held replies on, and pass later ones."""
        for client, data in self._held:
            client.write(data)
        self._held.clear()
        self.mode = "pass"

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._tasks.add(task := asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        self._clients.append(client_w)
        path = self._target.get("path")
        redis_r, redis_w = await (
            asyncio.open_unix_connection(path)
            if path
            else asyncio.open_connection(
                self._target.get("host", "localhost"), self._target.get("port", 6379)
            )
        )
        up = asyncio.create_task(self._requests(client_r, redis_w))
        try:
            while data := await redis_r.read(65536):
                if self.mode == "hold":
                    self._held.append((client_w, data))
                elif self.mode == "dribble":
                    for i in range(len(data)):
                        client_w.write(data[i : i + 1])
                        await asyncio.sleep(0)  # a pass of the loop: the client reads it alone
                else:
                    client_w.write(data)
        finally:
            up.cancel()
            redis_w.close()
            client_w.close()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _requests(
        self, client_r: asyncio.StreamReader, redis_w: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await client_r.read(65536):
                redis_w.write(data)
            self.closed_by_client += 1
        redis_w.close()


@pytest.fixture
async def relay(redis_url: str) -> AsyncIterator[Relay]:
    relay = Relay(redis_url)
    await relay.start()
    yield relay
    await relay.stop()


@pytest.fixture
async def wire(redis_url: str) -> AsyncIterator[RedisWire]:
    client = RedisWire(redis_url)
    yield client
    await client.close()


# Pipelining ------------------------------------------------------------------------------


async def test_concurrent_calls_share_one_connection_and_each_gets_its_own_reply(
    wire: RedisWire,
) -> None:
    calls = []
    for i in range(64):
        calls += (wire.call("EVAL", "return ARGV[1]", 0, f"v{i}"), wire.call("CLIENT", "ID"))
    replies = await asyncio.gather(*calls)
    assert replies[0::2] == [f"v{i}".encode() for i in range(64)]
    ids = set(replies[1::2])
    assert len(ids) == 1 and isinstance(ids.pop(), int)  # one connection


class RecordingTransport(asyncio.Transport):
    """What a connection writes, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _connection(handshake: bytes = b"", replies: int = 0) -> tuple[_Connection, RecordingTransport]:
    conn = _Connection(asyncio.get_running_loop(), handshake, replies, lambda c: None)
    transport = RecordingTransport()
    conn.connection_made(transport)
    return conn, transport


async def test_requests_made_in_one_pass_go_out_in_one_write() -> None:
    conn, transport = _connection()
    first = conn.send(b"first")
    assert transport.writes == [b"first"]  # nothing in flight: written at once
    waiters = [conn.send(b"<%d>" % i) for i in range(16)]
    assert transport.writes == [b"first"]  # calls in flight: held to the pass's end
    await asyncio.sleep(0)
    assert transport.writes == [b"first", b"".join(b"<%d>" % i for i in range(16))]
    conn.data_received(b":0\r\n" + b"".join(b":%d\r\n" % (i + 1) for i in range(16)))
    assert first.result() == 0 and [w.result() for w in waiters] == list(range(1, 17))


# Replies ---------------------------------------------------------------------------------

REPLIES = (
    b"+OK\r\n"
    b":-42\r\n"
    b"$7\r\nhe\r\nllo\r\n"  # a bulk string holding CRLF: read by its length
    b"$0\r\n\r\n"
    b"$-1\r\n"
    b"*-1\r\n"
    b"*0\r\n"
    b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+x\r\n"
    b"-ERR boom\r\n"
    b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    b"*2\r\n:1\r\n-READONLY You can't write against a read only replica.\r\n"
)
EXPECTED: list[Any] = [
    b"OK",
    -42,
    b"he\r\nllo",
    b"",
    None,
    None,
    [],
    [b"a", [1, None], b"x"],
    ResponseError("boom"),
    NoScriptError("No matching script. Please use EVAL."),
    ReadOnlyError("You can't write against a read only replica."),  # inside an array
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8, 13, len(REPLIES)])
async def test_replies_split_anywhere_across_reads(chunk: int) -> None:
    conn, _ = _connection()
    waiters = [conn.send(b"x") for _ in EXPECTED]
    for at in range(0, len(REPLIES), chunk):
        conn.data_received(REPLIES[at : at + chunk])
    for waiter, expected in zip(waiters, EXPECTED, strict=True):
        if isinstance(expected, Exception):
            error = waiter.exception()
            assert type(error) is type(expected) and error.args == expected.args
        else:
            assert waiter.result() == expected


@pytest.mark.parametrize(
    ("data", "answered"),
    [(b"?what\r\n", 0), (b":1\r\n:12x\r\n", 1), (b":1\r\n:2\r\n:3\r\n:4\r\n", 3)],
)
async def test_a_reply_it_cannot_read_fails_the_waiting_calls_as_an_outage(
    data: bytes, answered: int
) -> None:
    """An unknown type, a bad number, a reply nobody asked for: the stream cannot be
    trusted, so the connection is closed and every call still waiting fails as if lost."""
    conn, transport = _connection()
    waiters = [conn.send(b"x") for _ in range(3)]
    conn.data_received(data)
    assert [w.result() for w in waiters[:answered]] == list(range(1, answered + 1))
    for waiter in waiters[answered:]:
        assert isinstance(waiter.exception(), RedisConnectionError)
        assert isinstance(waiter.exception(), OUTAGE_ERRORS)
    assert transport.closed


async def test_replies_dribbled_a_byte_at_a_time_by_a_real_redis(relay: Relay) -> None:
    wire = RedisWire(relay.url)
    try:
        relay.mode = "dribble"
        script = "return {ARGV[1], {tonumber(ARGV[2]), false}, 'ok'}"
        calls = [wire.call("EVAL", script, 0, "x" * 300, i) for i in range(3)]
        assert await asyncio.gather(*calls) == [[b"x" * 300, [i, None], b"ok"] for i in range(3)]
    finally:
        await wire.close()


async def test_arguments_are_sent_as_given(wire: RedisWire) -> None:
    """Text (ASCII or not), bytes and integers (a bool as one) reach Redis as their bytes."""
    echo = "return ARGV"
    assert await wire.call("EVAL", echo, 0, "plain", -7, 10**15) == [
        b"plain",
        b"-7",
        b"1000000000000000",
    ]
    assert await wire.call("EVAL", echo, 0, "héllo ✓", 3) == ["héllo ✓".encode(), b"3"]
    assert await wire.call("EVAL", echo, 0, b"\x00\xff\r\n", True) == [b"\x00\xff\r\n", b"1"]


async def test_an_error_reply_is_raised_and_the_connection_goes_on(wire: RedisWire) -> None:
    before = await wire.call("CLIENT", "ID")
    with pytest.raises(ResponseError, match="boom") as raised:
        await wire.call("EVAL", "return redis.error_reply('boom')", 0)
    assert not isinstance(raised.value, OUTAGE_ERRORS)  # a bug to see, not Redis down
    assert await wire.call("CLIENT", "ID") == before


async def test_noscript_falls_back_to_eval_through_the_ledger(
    redis: RedisHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis lost its scripts (a restart, a failover): the Ledger's EVALSHA is answered
    NOSCRIPT, it sends EVAL once, and the next call finds the script again."""
    budgets = Budgets(redis=redis, call_timeout=5.0, policy=POLICY)
    who = {"workspace_id": 31, "chat_user_id": 32}
    await budgets.check_message(**who)
    assert await redis.scripts.call("SCRIPT", "FLUSH") == b"OK"
    sent = script_commands(redis, monkeypatch)
    assert (await budgets.check_message(**who)).allowed
    assert sent == ["EVALSHA", "EVAL"]
    assert (await budgets.check_message(**who)).allowed
    assert sent == ["EVALSHA", "EVAL", "EVALSHA"]
    rows = await budgets.report(**who)
    assert next(r for r in rows if r.counter == "messages" and r.scope == "user").used == 3


# Failures --------------------------------------------------------------------------------


async def test_a_connection_lost_mid_call_is_an_outage_and_the_next_calls_share_a_reconnect(
    relay: Relay,
) -> None:
    wire = RedisWire(relay.url)
    try:
        assert await wire.call("EVAL", "return ARGV[1]", 0, "before") == b"before"
        relay.mode = "hold"
        pending = [asyncio.ensure_future(wire.call("EVAL", "return 1", 0)) for _ in range(3)]
        await _until(lambda: relay.held == 3 * len(b":1\r\n"))
        relay.cut()
        failures = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(f, RedisConnectionError) for f in failures)
        assert all(isinstance(f, OUTAGE_ERRORS) for f in failures)
        relay.mode = "pass"
        again = await asyncio.gather(*(wire.call("EVAL", "return ARGV[1]", 0, i) for i in range(8)))
        assert again == [str(i).encode() for i in range(8)]
        assert relay.connections == 2  # eight calls, one reconnect
    finally:
        await wire.close()


async def test_a_caller_giving_up_while_connecting_leaves_the_connect_to_the_others(
    relay: Relay,
) -> None:
    wire = RedisWire(relay.url)
    try:
        calls = [asyncio.ensure_future(wire.call("EVAL", "return ARGV[1]", 0, i)) for i in range(4)]
        await asyncio.sleep(0)  # all four wait on the one connect
        calls[0].cancel()
        assert await asyncio.gather(*calls[1:]) == [b"1", b"2", b"3"]
        assert calls[0].cancelled() and relay.connections == 1
    finally:
        await wire.close()


async def test_a_call_given_up_on_leaves_the_replies_in_step(relay: Relay) -> None:
    """Its reply is read and dropped: the calls around it get theirs. Its connection
    takes no new call, and is closed once nobody waits on it."""
    wire = RedisWire(relay.url)
    try:
        await wire.call("PING")
        relay.mode = "hold"
        calls = {v: asyncio.ensure_future(wire.call("EVAL", "return ARGV[1]", 0, v)) for v in "abc"}
        await _until(lambda: relay.held == 3 * len(bulk(b"a")))
        calls["b"].cancel()
        later = asyncio.ensure_future(wire.call("EVAL", "return ARGV[1]", 0, "d"))
        await _until(lambda: relay.connections == 2)  # "d" went on a new connection
        relay.release()
        assert await calls["a"] == b"a" and await calls["c"] == b"c"
        assert calls["b"].cancelled()
        assert await later == b"d"
        await _until(lambda: relay.closed_by_client == 1)  # the first one, drained
        assert await wire.call("EVAL", "return ARGV[1]", 0, "e") == b"e"
        assert relay.connections == 2
    finally:
        await wire.close()


async def test_calls_that_all_time_out_leave_no_connection_behind() -> None:
    """A Redis that never answers: every call runs out its bound, the connection they
    waited on is closed once the last gave up, and the next call dials afresh."""
    answering = False

    def answer(command: list[bytes]) -> bytes | None:
        assert command[0] == b"EVALSHA"
        return bulk(b"1 2") if answering else None

    async with FakeRedis(lambda: answer) as fake:
        wire = RedisWire(fake.url)
        try:

            async def bounded() -> Any:
                async with stall_aware_timeout(0.05):
                    return await wire.call("EVALSHA", "f" * 40, 0)

            results = await asyncio.gather(*(bounded() for _ in range(16)), return_exceptions=True)
            assert all(isinstance(r, TimeoutError) for r in results)
            await fake.wait_closed_by_client(1)
            answering = True
            assert await bounded() == b"1 2"
            assert fake.connections == 2
        finally:
            await wire.close()


# Handshake and URLs ----------------------------------------------------------------------


def _in_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return urlunsplit(parts._replace(query=f"db={db}"))
    return urlunsplit(parts._replace(path=f"/{db}"))


async def test_a_database_in_the_url_is_selected(redis: RedisHandle, redis_url: str) -> None:
    key = redis.key("wire-db")
    wire = RedisWire(_in_db(redis_url, 1))
    other = aioredis.Redis.from_url(_in_db(redis_url, 1))
    try:
        await wire.call("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", 1, key, "in-1")
        assert await other.get(key) == b"in-1"
        assert await redis.client.get(key) is None  # not in db 0
    finally:
        await other.delete(key)
        await other.aclose()
        await wire.close()


def _strict_server(expected_handshake: list[list[bytes]]) -> Callable[[], Answer]:
    """On each connection: answers the handshake it expects, in order, then EVALSHA;
    anything else fails."""

    def answers() -> Answer:
        handshake = list(expected_handshake)

        def answer(command: list[bytes]) -> bytes | None:
            if handshake:
                assert command == handshake.pop(0), f"expected {expected_handshake}"
                return OK
            assert command[0] == b"EVALSHA", "a command before the handshake ended"
            return bulk(b"1 0")

        return answer

    return answers


@pytest.mark.parametrize(
    ("credentials", "handshake"),
    [
        ("bot:s3cr%40t@", [[b"AUTH", b"bot", b"s3cr@t"], [b"SELECT", b"2"]]),
        (":s3cret@", [[b"AUTH", b"s3cret"], [b"SELECT", b"2"]]),
        ("", [[b"SELECT", b"2"]]),
    ],
)
async def test_auth_and_select_come_first_on_every_connection(
    credentials: str, handshake: list[list[bytes]]
) -> None:
    async with FakeRedis(_strict_server(handshake)) as fake:
        wire = RedisWire(f"redis://{credentials}localhost:{fake.port}/2")
        try:
            replies = await asyncio.gather(*(wire.call("EVALSHA", "f" * 40, 0) for _ in range(3)))
            assert replies == [b"1 0"] * 3
            await wire.close()  # and again on a new connection
            assert await wire.call("EVALSHA", "f" * 40, 0) == b"1 0"
        finally:
            await wire.close()
    assert fake.connections == 2
    assert [c[0] for c in fake.commands] == [
        *(c[0] for c in handshake),
        *[b"EVALSHA"] * 3,
        *(c[0] for c in handshake),
        b"EVALSHA",
    ]


async def test_a_refused_password_fails_the_call_as_an_outage() -> None:
    def answer(command: list[bytes]) -> bytes | None:
        if command[0] == b"AUTH":
            return b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        return b"-NOAUTH Authentication required.\r\n"

    async with FakeRedis(lambda: answer) as fake:
        wire = RedisWire(f"redis://bot:nope@localhost:{fake.port}")
        try:
            with pytest.raises(AuthenticationError, match="invalid username-password") as raised:
                await wire.call("EVALSHA", "f" * 40, 0)
            assert isinstance(raised.value, OUTAGE_ERRORS)  # as redis-py had it
            await fake.wait_closed_by_client(1)
        finally:
            await wire.close()


@pytest.mark.parametrize(
    "query",
    ["client_name=bot", "protocol=3", "decode_responses=true", "ssl_certfile=/x.pem"],
)
async def test_an_option_it_does_not_honour_fails_at_open(query: str, tmp_path: Path) -> None:
    handle = RedisHandle(url=f"redis://localhost:6379/0?{query}", data_dir=tmp_path)
    with pytest.raises(ValueError, match=query.split("=")[0]):
        await handle.open()


async def test_pool_tuning_options_are_accepted_and_no_socket_is_opened_before_a_call(
    tmp_path: Path,
) -> None:
    async with FakeRedis(_strict_server([])) as fake:
        query = "socket_timeout=0.5&health_check_interval=10&max_connections=4"
        handle = RedisHandle(url=f"{fake.url}/0?{query}", data_dir=tmp_path)
        await handle.open()
        try:
            assert fake.connections == 0
            assert await handle.scripts.call("EVALSHA", "f" * 40, 0) == b"1 0"
            assert fake.connections == 1
        finally:
            await handle.close()
        await fake.wait_closed_by_client(1)  # closed by the handle's close


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for "localhost" and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_rediss_verifies_the_server_as_the_url_says(certificate: tuple[Path, Path]) -> None:
    cert_file, key_file = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    async with FakeRedis(_strict_server([]), tls=server_tls) as fake:
        unverified = RedisWire(fake.url)  # verified by default: against the system's CAs
        trusted = RedisWire(f"{fake.url}?ssl_ca_certs={cert_file}")
        unchecked = RedisWire(f"{fake.url}?ssl_cert_reqs=none")
        try:
            with pytest.raises(ssl.SSLCertVerificationError) as raised:
                await unverified.call("EVALSHA", "f" * 40, 0)
            assert isinstance(raised.value, OUTAGE_ERRORS)
            assert await trusted.call("EVALSHA", "f" * 40, 0) == b"1 0"
            assert await unchecked.call("EVALSHA", "f" * 40, 0) == b"1 0"
        finally:
            for wire in (unverified, trusted, unchecked):
                await wire.close()
