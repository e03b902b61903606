"""Every socialops process runs on uvloop (`bot.event_loop`), and so does this suite
(`tests/conftest.py`): what the tests exercise is the loop production runs."""

from __future__ import annotations

import asyncio

from bot import event_loop


async def _running_loop() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_a_role_runs_on_uvloop() -> None:
    assert event_loop.run(_running_loop()).__module__.startswith("uvloop")


async def test_the_suite_runs_on_the_loop_the_roles_run_on() -> None:
    made = event_loop.new_loop()
    try:
        assert await _running_loop() is type(made)
    finally:
        made.close()
