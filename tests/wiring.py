"""The product wired as `socialops run` wires it (Services + Assembly, the real
composition root), for the end-to-end, plug-in seam and job-engine tests.

A test that runs the worker part (the engine, its handlers and its schedules) needs a
database holding nothing but its own work: it passes `empty_db`'s.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from bot.assembly import Assembly
from bot.core.messages import IncomingMessage, ReplySink
from bot.services import Services
from integrations.registry import Registry
from storage import identity
from storage.accounts import LinkedAccount
from storage.identity import Identity
from tests.fakes import openai as fake
from tests.fakes.google import FakeGoogle, youtube_settings
from tests.fakes.google_env import link_channel


def google_settings(google: FakeGoogle) -> dict[str, Any]:
    """Settings that point YouTube at the fake Google, with our pages at testserver."""
    return youtube_settings(google.base, google, public_base_url="http://testserver")


@asynccontextmanager
async def wired(
    make_settings: Any,
    database_url: str | None = None,
    *,
    redis_scope: str | None = None,
    registry: Registry | None = None,
    **overrides: Any,
) -> AsyncIterator[Assembly]:
    """Services + Assembly (on `database_url`, migrated on start, else the session's
    database; with `registry`'s platforms, else the built-in ones), shut down after.

    Its Redis keys live under a prefix of their own (`redis_scope`, or a fresh one): a
    database of its own numbers workspaces and users from 1 again, and their limits
    must not meet other tests' on the shared Redis. Replicas of one deployment pass
    the same scope.

    Limiter calls may take 5 s, not production's 0.5 s: on a loaded machine a call can
    outlast 0.5 s, Redis then counts as down and every bound fails open, which is not
    what these tests look at (a Redis that is really down refuses at once).
    """
    session_prefix = make_settings().redis_key_prefix
    scope = redis_scope or secrets.token_hex(4)
    if database_url is not None:
        overrides["database_url"] = database_url
    overrides.setdefault("limit_call_timeout_seconds", 5.0)
    settings = make_settings(redis_key_prefix=f"{session_prefix}{scope}:", **overrides)
    services = Services(settings=settings, registry=registry)
    await services.initialize()
    try:
        yield Assembly(services)
    finally:
        await services.shutdown()


def chat_message(
    workspace: str,
    user: str,
    text: str,
    *,
    channel: str = "shell",
    thread: str | None = None,
    is_dm: bool = True,
) -> IncomingMessage:
    """A message on the local front-end: a DM on the shell's channel unless told otherwise."""
    return IncomingMessage(
        frontend="local",
        workspace_id=workspace,
        channel_id=channel,
        user_id=user,
        text=text,
        thread_id=thread,
        is_dm=is_dm,
    )


def script_replies_summary_and_digest(server: fake.ScriptedOpenAI) -> None:
    """The model's answers to `ask_twice_in_a_thread` under a window of 2 messages and a
    summary batch of 2 (two replies, then the summary fold they make due), and to one
    digest commentary after that."""
    server.script(
        fake.text("reply 1"),
        fake.text("reply 2"),
        fake.text("The member asked twice."),  # the summary fold
        fake.text("- Views reached 1,250.\n- Likes reached 80.\n- A steady day."),
    )


async def ask_twice_in_a_thread(
    assembly: Assembly, who: Identity, sink: ReplySink, *, channel: str, thread: str
) -> None:
    """Send "q1" then "q2" in one channel thread, draining after each (its history
    written, and any summary it made due folded) before the next is sent."""
    for text in ("q1", "q2"):
        message = chat_message(
            who.workspace_external_id,
            who.user_external_id,
            text,
            channel=channel,
            thread=thread,
            is_dm=False,
        )
        await assembly.chatops.handle(message, sink)
        await assembly.chatops.drain()


async def link_youtube(
    assembly: Assembly, google: FakeGoogle, workspace: str, user: str, *, frontend: str = "local"
) -> tuple[Identity, LinkedAccount]:
    """A chat user with a fake channel linked, as a finished OAuth flow leaves them."""
    pool = assembly.services.db.pool
    who = await identity.resolve(
        pool, frontend=frontend, workspace_external_id=workspace, user_external_id=user
    )
    account, _, _ = await link_channel(pool, assembly.services.cipher, google, who)
    return who, account


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0) -> None:
    """Poll `check` until it holds; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        await asyncio.sleep(0.05)
