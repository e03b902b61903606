"""Processes that run no model never load LangChain (about 0.7 s and 55 MiB at start),
and each role loads only the front-end libraries it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _loaded_after(code: str, roots: tuple[str, ...]) -> list[str]:
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({roots!r}))))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SOCIALOPS_DATA_DIR": "/nonexistent-socialops-probe"}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_web_worker_and_core_import_without_langchain() -> None:
    code = (
        "import sys, bot.cli, bot.assembly, bot.core.service, bot.web, bot.worker\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0].startswith('langchain'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_only_rendering_a_digest_loads_matplotlib() -> None:
    code = (
        "import sys, bot.cli, bot.assembly, bot.web, bot.worker, bot.digest_post\n"
        "import bot.digest_layout, bot.slack.digest, bot.discord.digest, agent.digests\n"
        "assert 'matplotlib' not in sys.modules\n"
        "from bot.digest_preview import sample_digest\n"
        "from bot.digest_chart import render_png\n"
        "d = sample_digest()\n"
        "assert 'matplotlib' not in sys.modules\n"
        "render_png(d.chart, d.chart_days)\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# Libraries a role loads only when it runs them (PgQueuer: the worker, or a first enqueue).
HEAVY = (
    "langchain",
    "langgraph",
    "slack_bolt",
    "slack_sdk",
    "aiohttp",
    "discord",
    "fastapi",
    "pgqueuer",
)


SLACK = "slack_bot_token='xoxb-probe', slack_signing_secret='probe-signing-secret'"


@pytest.mark.parametrize(
    ("role", "configured", "allowed"),
    [
        # The shell without a model: nothing of LangChain or of any chat app or web server.
        ("shell", "", set()),
        # The web role with Slack configured and no model: FastAPI only; Slack's libraries
        # load with its first Slack request (test below).
        ("web", SLACK, {"fastapi"}),
    ],
)
def test_a_role_without_a_model_builds_without_langchain(
    role: str, configured: str, allowed: set[str]
) -> None:
    code = (
        "from bot.settings import Settings\n"
        "from bot.services import Services\n"
        "from bot.assembly import build_parts\n"
        "from storage.crypto import generate_key_spec\n"
        f"settings = Settings(_env_file=None, token_encryption_keys=generate_key_spec(), {configured})\n"
        f"build_parts(Services(settings=settings), [{role!r}])\n"
    )
    assert set(_loaded_after(code, HEAVY)) == allowed


# What the web role with Slack and no model must not load at start (bench/idle.py's RSS):
# httpx's CLI (rich, pygments) and redis's OpenTelemetry metrics SDK, used by nothing of
# ours (bot.lean_imports); cryptography's OpenSSL binding until a secret is touched;
# psutil (the embedded Redis's stop); Socket Mode (its own part).
IDLE_WEB_UNUSED = (
    "rich",
    "pygments",
    "opentelemetry.sdk",
    "cryptography.hazmat",
    "psutil",
    "slack_bolt.adapter.socket_mode",
)


def test_the_idle_web_role_leaves_unused_modules_unloaded() -> None:
    code = (
        "import sys\n"
        "from bot.settings import Settings\n"
        "from bot.services import Services\n"
        "from bot.assembly import build_parts\n"
        "settings = Settings(_env_file=None, token_encryption_keys="
        f"'k1:' + 'A' * 43 + '=', {SLACK})\n"
        "build_parts(Services(settings=settings), ['web'])\n"
        f"unused = {IDLE_WEB_UNUSED!r}\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(unused))\n"
        "assert not loaded, loaded\n"
        # The libraries still work, and the extras stay importable by whoever wants them.
        "import httpx, redis, opentelemetry.sdk.metrics, httpx._main\n"
        "assert httpx.Client is not None and redis.Redis is not None\n"
        "from storage.crypto import Location\n"
        "services = Services(settings=settings)\n"
        "where = Location('t', '1', 'c')\n"
        "assert services.cipher.decrypt(services.cipher.encrypt(b'x', where), where) == b'x'\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SOCIALOPS_DATA_DIR": "/nonexistent-socialops-probe"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_web_role_loads_slack_libraries_with_its_first_slack_request() -> None:
    """bolt, slack_sdk's async client and aiohttp (~16 MiB) stay unloaded while the web
    role with Slack configured has served no Slack request, and serve the first one."""
    code = (
        "import asyncio, json, sys\n"
        "import httpx\n"
        "from bot.settings import Settings\n"
        "from bot.services import Services\n"
        "from bot.assembly import build_parts\n"
        "settings = Settings(_env_file=None, token_encryption_keys="
        f"'k1:' + 'A' * 43 + '=', {SLACK})\n"
        "core, web = build_parts(Services(settings=settings), ['web'])\n"
        "heavy = ('slack_bolt', 'slack_sdk', 'aiohttp')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(heavy))\n"
        "assert not loaded, loaded\n"
        "from tests.fakes.slack import sign\n"
        "body = json.dumps({'type': 'url_verification', 'challenge': 'c-1'}).encode()\n"
        "headers = {'content-type': 'application/json', **sign('probe-signing-secret', body)}\n"
        "async def first() -> httpx.Response:\n"
        "    transport = httpx.ASGITransport(app=web._web._server.config.app)\n"
        "    async with httpx.AsyncClient(transport=transport, base_url='http://t') as http:\n"
        "        return await http.post('/slack/events', content=body, headers=headers)\n"
        "response = asyncio.run(first())\n"
        "assert response.status_code == 200 and response.json() == {'challenge': 'c-1'}\n"
        "for name in ('slack_bolt', 'slack_sdk.web.async_client', 'aiohttp'):\n"
        "    assert name in sys.modules, name\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SOCIALOPS_DATA_DIR": "/nonexistent-socialops-probe"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
