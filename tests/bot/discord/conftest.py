"""Fixtures: a fake Discord on loopback, a recording conversation handler, a running part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.core.messages import IncomingMessage, ReplySink
from bot.discord import DiscordPart
from tests.fakes.discord import FakeDiscord

MessageScript = Callable[[IncomingMessage, ReplySink], Awaitable[None]]
ApprovalScript = Callable[[dict[str, Any], ReplySink], Awaitable[None]]


class RecordingHandler:
    """A `ConversationHandler` that records every call and answers only as a test scripts it.

    An unscripted call is a test failure: it is recorded in `errors` (checked at teardown)
    and raised, so the adapter's error path shows up too.
    """

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self.approvals: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.on_message: MessageScript | None = None
        self.on_approval: ApprovalScript | None = None
        self.changed = asyncio.Event()

    async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        self.messages.append(message)
        self.changed.set()
        if self.on_message is None:
            self.errors.append(f"unexpected message: {message.text!r}")
            raise AssertionError(self.errors[-1])
        await self.on_message(message, sink)

    async def resolve_approval(
        self,
        *,
        frontend: str,
        workspace_id: str,
        user_id: str,
        action_id: str,
        approved: bool,
        sink: ReplySink,
    ) -> None:
        call = {
            "frontend": frontend,
            "workspace_id": workspace_id,
            "user_id": user_id,
            "action_id": action_id,
            "approved": approved,
        }
        self.approvals.append(call)
        self.changed.set()
        if self.on_approval is None:
            self.errors.append(f"unexpected approval: {call}")
            raise AssertionError(self.errors[-1])
        await self.on_approval(call, sink)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the adapter used an unknown handler attribute {name!r}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    server.add_guild("Creators")
    async with server.running():
        yield server


@pytest.fixture
def handler() -> Any:
    recording = RecordingHandler()
    yield recording
    assert recording.errors == []


@pytest.fixture
async def part(fake: FakeDiscord, handler: RecordingHandler) -> AsyncIterator[DiscordPart]:
    running = DiscordPart(
        token=fake.token,
        handler=handler,
        api_base=fake.api_base,
        guild_ready_timeout=0.05,
    )
    await running.start()
    await asyncio.wait_for(running.wait_until_ready(), 15)
    yield running
    await asyncio.wait_for(running.stop(5), 15)
