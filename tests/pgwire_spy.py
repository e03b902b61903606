"""A loopback proxy in front of the test pooler that reads what clients send over the
Postgres wire protocol (v3) and records every statement that would leave state on a
server connection: through a transaction pooler that state lands on whichever
connection ran the statement and is lost, or leaked to the next client.

Recorded: a LISTEN, a session advisory lock (`pg_advisory_lock`, `pg_try_advisory_lock`,
their `_shared` forms; the `_xact_` forms end with the transaction), a `SET` or
`set_config(..., false)` outside a transaction, and a named prepared statement.
asyncpg's reset on release (`UNLISTEN *`, `pg_advisory_unlock_all()`, `RESET ALL`)
removes state rather than creating it and is not recorded; nor is asyncpg's JIT switch
around its type introspection (`set_config('jit', ..., false)` and back), which at
worst leaves a planner setting on another server connection, never a wrong result.

Why hand-written: no library parses the frontend side of the protocol for a test; the
framing is a type byte and a length (https://www.postgresql.org/docs/current/protocol-message-formats.html).
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import struct
import threading

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104

_LISTEN = re.compile(r"\bLISTEN\b", re.IGNORECASE)
_SESSION_LOCK = re.compile(r"\bpg_(try_)?advisory_lock(_shared)?\s*\(", re.IGNORECASE)
_SET = re.compile(r"^\s*SET\s+(?!LOCAL\b|TRANSACTION\b)", re.IGNORECASE)
_SET_CONFIG_SESSION = re.compile(r"\bset_config\s*\(\s*'(?!jit')[^)]*,\s*false\s*\)", re.IGNORECASE)


def session_state(sql: str, *, in_transaction: bool) -> str | None:
    """Why `sql` would leave session state on the server connection, or None."""
    if _LISTEN.search(sql):
        return "LISTEN"
    if _SESSION_LOCK.search(sql):
        return "session advisory lock"
    if not in_transaction and (_SET.search(sql) or _SET_CONFIG_SESSION.search(sql)):
        return "SET outside a transaction"
    return None


def _read(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return bytes(data)


class SessionStateSpy:
    """Accepts clients on a free loopback port and relays them to `upstream_port`, with a
    thread per direction (so it serves any event loop, and none)."""

    def __init__(self, *, upstream_port: int) -> None:
        self._upstream = upstream_port
        spy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    spy._relay(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._lock = threading.Lock()
        self.statements = 0
        self.violations: list[str] = []

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _relay(self, client: socket.socket) -> None:
        # The startup packet has no type byte; SSL/GSS requests are refused (plain loopback).
        while True:
            head = _read(client, 8)
            length, code = struct.unpack("!ii", head)
            if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                break
            client.sendall(b"N")
        upstream = socket.create_connection(("127.0.0.1", self._upstream))
        status = {"value": b"I"}  # the last ReadyForQuery's transaction status
        backward = threading.Thread(
            target=self._backward, args=(upstream, client, status), daemon=True
        )
        try:
            upstream.sendall(head + _read(client, length - 8))
            backward.start()
            while True:
                kind = _read(client, 1)
                raw_size = _read(client, 4)
                (size,) = struct.unpack("!i", raw_size)
                body = _read(client, size - 4)
                self._inspect(kind, body, in_transaction=status["value"] != b"I")
                upstream.sendall(kind + raw_size + body)
                if kind == b"X":
                    break
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
            upstream.close()

    @staticmethod
    def _backward(upstream: socket.socket, client: socket.socket, status: dict[str, bytes]) -> None:
        with contextlib.suppress(OSError):
            while True:
                kind = _read(upstream, 1)
                raw_size = _read(upstream, 4)
                (size,) = struct.unpack("!i", raw_size)
                body = _read(upstream, size - 4)
                if kind == b"Z":
                    status["value"] = body[:1]
                client.sendall(kind + raw_size + body)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)

    def _inspect(self, kind: bytes, body: bytes, *, in_transaction: bool) -> None:
        if kind == b"Q":
            sql = body[:-1].decode(errors="replace")
        elif kind == b"P":
            name, rest = body.split(b"\0", 1)
            sql = rest.split(b"\0", 1)[0].decode(errors="replace")
            if name:
                self._record(f"named prepared statement {name!r}: {sql[:120]}")
        else:
            return
        with self._lock:
            self.statements += 1
        why = session_state(sql, in_transaction=in_transaction)
        if why is not None:
            self._record(f"{why}: {sql[:120]}")

    def _record(self, violation: str) -> None:
        with self._lock:
            self.violations.append(violation)

    def take(self) -> list[str]:
        """The violations recorded since the last call."""
        with self._lock:
            found, self.violations = self.violations, []
        return found
