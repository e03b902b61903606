"""Postgres and Redis spans, lean: the instrumentation libraries with cheaper hooks.

Postgres: `opentelemetry-instrumentation-asyncpg` stays in charge of what it wraps
and unwraps (the connection's `execute`/`fetch*`, cursors, prepared statements); only
the per-query hooks are ours. Redis: `opentelemetry-instrumentation-redis` is kept for
instrument/uninstrument and its dependency check; its `_instrument` wraps the asyncio
client's `execute_command` and pipeline `execute`, and the rate limiter's script
client's `call` (`storage.redis_wire`, the only other client this code uses), with
the same lean hook.

Why not the libraries' hooks as they are (measured on bench/tracing.py): per query
the asyncpg one runs a regex over the SQL, reads the connection's address and
parameters into half a dozen attributes, copies the whole statement into the span,
and builds a span even where none is kept (a query outside any trace, the pool's
reset on every connection it takes back), leaving the sampler to drop it. The Redis
one formats every command's arguments into a sanitised statement and reads the
connection's settings for every command, kept or not, and most of ours run outside
any trace (the job engine's and the limiter's housekeeping). Here a query or command
outside any trace costs one context read and no span; a kept span holds the
statement's kind or the command's name (bounded sets: never the text, never data),
and a failure's span holds the error's type, never its message (Postgres quotes the
values of a violated key).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import SpanKind, Status, StatusCode
from redis.asyncio.client import Pipeline, Redis

from storage.redis_wire import RedisWire

# Statement kinds a span may name; anything else is OTHER (the set stays bounded).
KINDS = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "WITH",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "LISTEN",
        "NOTIFY",
        "SET",
        "LOCK",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "COPY",
    }
)


def statement_kind(query: str) -> str:
    """The statement's first keyword (`(SELECT ...) UNION ...` is a SELECT), or OTHER."""
    head = query.lstrip(" \t\n(").split(None, 1)
    kind = head[0].upper() if head else ""
    return kind if kind in KINDS else "OTHER"


Call = Callable[..., Awaitable[Any]]


def _in_trace() -> bool:
    """Whether there is traced work to attach a span to (a span that has ended counts:
    work a message leaves running after its reply belongs to the message's trace)."""
    return trace.get_current_span().get_span_context().is_valid


async def _traced(tracer: trace.Tracer, system: str, kind: str, call: Awaitable[Any]) -> Any:
    """Await `call` in a client span named `kind` (a bounded name, never data).

    A query or command has no spans under it, so its span is never made the current
    one (no context switch in and out).
    """
    span = tracer.start_span(
        kind,
        kind=SpanKind.CLIENT,
        attributes={"db.system": system, "db.operation.name": kind},
        record_exception=False,
        set_status_on_exception=False,
    )
    try:
        return await call
    except StopAsyncIteration:  # a cursor's end, not a failure
        raise
    except Exception as exc:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", type(exc).__qualname__)
        raise
    finally:
        span.end()


class LeanAsyncPGInstrumentor(AsyncPGInstrumentor):
    """The library's instrumentor with the per-query hook above (see the module)."""

    def _traced(self, query: str, call: Awaitable[Any]) -> Awaitable[Any]:
        tracer = self._tracer
        assert tracer is not None
        return _traced(tracer, "postgresql", statement_kind(query), call)

    async def _do_execute(
        self, func: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        query = args[0] if args and isinstance(args[0], str) else ""
        if not _in_trace() or query == instance.get_reset_query():
            return await func(*args, **kwargs)
        return await self._traced(query, func(*args, **kwargs))

    async def _do_cursor_execute(
        self, func: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not _in_trace():
            return await func(*args, **kwargs)
        return await self._traced(instance._query or "", func(*args, **kwargs))

    async def _do_prepared_execute(
        self, func: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not _in_trace():
            return await func(*args, **kwargs)
        return await self._traced(instance.get_query(), func(*args, **kwargs))


# Redis command names a span may carry (those this code sends); anything else is OTHER.
COMMANDS = frozenset(
    {
        "GET",
        "SET",
        "DEL",
        "EXISTS",
        "EXPIRE",
        "PEXPIRE",
        "TTL",
        "PTTL",
        "INCR",
        "INCRBY",
        "DECR",
        "DECRBY",
        "HGET",
        "HSET",
        "HDEL",
        "HGETALL",
        "HINCRBY",
        "MGET",
        "MSET",
        "ZADD",
        "ZREM",
        "ZRANGE",
        "ZRANGEBYSCORE",
        "ZREMRANGEBYSCORE",
        "ZCARD",
        "SCAN",
        "EVAL",
        "EVALSHA",
        "SCRIPT",
        "PUBLISH",
        "PING",
        "UNLINK",
        "GETDEL",
        "SETNX",
    }
)


def command_name(args: tuple[Any, ...]) -> str:
    name = args[0] if args else ""
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    name = str(name).split(None, 1)[0].upper() if name else ""
    return name if name in COMMANDS else "OTHER"


class LeanRedisInstrumentor(RedisInstrumentor):
    """The library's instrumentor (its dependency check, instrument/uninstrument) with
    our own lean hooks on the asyncio client (see the module)."""

    def _instrument(self, **kwargs: Any) -> None:
        import wrapt

        tracer = self._get_tracer(**kwargs)  # type: ignore[no-untyped-call]

        async def command(
            func: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if not _in_trace():
                return await func(*args, **kwargs)
            return await _traced(tracer, "redis", command_name(args), func(*args, **kwargs))

        async def pipeline(
            func: Call, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            if not _in_trace():
                return await func(*args, **kwargs)
            return await _traced(tracer, "redis", "PIPELINE", func(*args, **kwargs))

        wrapt.wrap_function_wrapper(Redis, "execute_command", command)
        wrapt.wrap_function_wrapper(Pipeline, "execute", pipeline)
        wrapt.wrap_function_wrapper(RedisWire, "call", command)

    def _uninstrument(self, **kwargs: Any) -> None:
        unwrap(Redis, "execute_command")
        unwrap(Pipeline, "execute")
        unwrap(RedisWire, "call")
