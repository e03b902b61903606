"""PgBouncer in transaction mode in front of the test Postgres: what Supabase's Supavisor
(port 6543) is to production. The storage and job tests run through it too (the
`pooled` marker in tests/conftest.py), so a statement that needs a session fails here
first.

Debian's `pgbouncer` package provides the binary (`make test` installs it when it is
missing; `PGBOUNCER` names another binary). PgBouncer refuses to run as root, so as
root it runs as the user that can reach the server: the owner of the embedded server's
socket directory, or `nobody` for a TCP server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

INSTALL_HINT = (
    "pgbouncer is not installed: `make test` installs Debian's package "
    "(apt-get install pgbouncer), or set PGBOUNCER to its path"
)


def binary() -> str:
    """The pgbouncer executable (Debian puts it in /usr/sbin, off a user's PATH)."""
    found = os.environ.get("PGBOUNCER") or shutil.which("pgbouncer")
    if found is None and os.access("/usr/sbin/pgbouncer", os.X_OK):
        found = "/usr/sbin/pgbouncer"
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


# Pools opened through the pooler (by id) -> their database's direct DSN, so the job
# engine started on such a pool LISTENs over the direct URL, as production's worker does.
_DIRECT: dict[int, str] = {}


def remember_pooled(pool: object, direct_dsn: str) -> None:
    _DIRECT[id(pool)] = direct_dsn


def forget_pooled(pool: object) -> None:
    _DIRECT.pop(id(pool), None)


def worker_route(pool: object) -> dict[str, Any]:
    """WorkerPart options for a worker on `pool`: none for a direct pool; for a pooled one,
    the transaction-pooler flag and the direct URL (as bot.assembly passes them)."""
    direct = _DIRECT.get(id(pool))
    return {} if direct is None else {"transaction_pooler": True, "direct_dsn": direct}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PgBouncer:
    """One pgbouncer process (pool_mode=transaction) forwarding every database name to the
    server of `server_dsn` under the same name."""

    def __init__(self, server_dsn: str) -> None:
        parts = urlsplit(server_dsn)
        query = dict(parse_qsl(parts.query))
        self._user = unquote(parts.username or "postgres")
        password = unquote(parts.password or "")
        host = query.get("host") or parts.hostname or "127.0.0.1"
        port = parts.port or int(query.get("port", "5432"))
        backend = f"host={_quote(host)} port={port} user={_quote(self._user)}"
        if password:
            backend += f" password={_quote(password)}"
        self._backend = backend
        # As root, run as whoever may open the server's Unix socket, or as nobody.
        self._run_as = None
        if os.geteuid() == 0:
            self._run_as = (
                pwd.getpwuid(Path(host).stat().st_uid).pw_name if host.startswith("/") else "nobody"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="socialops-pgbouncer-"))
        self._dir.chmod(0o755)
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, attempts: int = 5) -> None:
        exe = binary()
        for _ in range(attempts):
            self.port = _free_port()
            config = self._write_config()
            args = [exe, "-q", str(config)]
            if self._run_as is not None:
                args[1:1] = ["-u", self._run_as]
            log = (self._dir / "pgbouncer.log").open("wb")
            self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            if self._wait_listening():
                return
            self.stop()
        raise RuntimeError(f"pgbouncer did not start: {self.log_tail()}")

    def _write_config(self) -> Path:
        userlist = self._dir / "userlist.txt"
        userlist.write_text(f'"{self._user}" ""\n')
        userlist.chmod(0o644)
        config = self._dir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = {self._backend}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {userlist}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 500\n"
            "default_pool_size = 20\n"
            # Server connections go back to the pool after each transaction, so idle
            # test databases can be dropped (DROP DATABASE ... WITH FORCE ends them anyway).
            "server_idle_timeout = 5\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        config.chmod(0o644)
        return config

    def _wait_listening(self, timeout: float = 15.0) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def log_tail(self) -> str:
        path = self._dir / "pgbouncer.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def dsn(self, server_dsn: str, *, port: int | None = None) -> str:
        """`server_dsn` (any database on the same server) routed through this pgbouncer, or
        through whatever listens on `port` in front of it."""
        parts = urlsplit(server_dsn)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in {"host", "port"}]
        netloc = f"{parts.username or 'postgres'}@127.0.0.1:{port or self.port}"
        return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
