"""The shell front-end driven through pipes: commands, y/n approvals, progress, the CLI."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import sys

from bot.core.service import NO_MODEL, ChatOpsService
from bot.shell import ShellPart
from storage.crypto import generate_key_spec
from tests.fakes import openai as fake
from tests.fakes.chatops import FakeOps
from tests.fakes.server import serve_asgi


async def run_shell(service, lines: list[str], user: str) -> str:
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd, "r")
    out = io.StringIO()
    with os.fdopen(write_fd, "w") as w:
        w.write("\n".join(lines) + "\n")
    part = ShellPart(service, stdin=stdin, stdout=out, user=user)
    await part.start()
    await asyncio.wait_for(part.wait(), timeout=60)
    await part.stop(1)
    stdin.close()
    return out.getvalue()


async def test_shell_commands_and_approvals(make_deps, new_identity, link, tmp_path):
    user = f"alice-{secrets.token_hex(3)}"
    ident = await new_identity(frontend="local", workspace="local", user=user)
    acct = await link(ident, "youtube", "alicetube")
    clip = tmp_path / "beach.mp4"
    clip.write_bytes(b"\x00" * 4096)
    ops = FakeOps(allow={"upload"})
    service = ChatOpsService(deps=make_deps(ops=ops))

    output = await run_shell(
        service,
        [
            "help",
            "accounts",
            f'upload youtube {clip} "Beach day"',
            "y",
            f"upload youtube {clip}",
            "n",
            "y",
            f"upload youtube {clip} Third",
            "accounts",  # not a y/n answer: rejects, then runs as a command
            "hello there",
            "quit",
            "accounts",  # after quit: never handled
        ],
        user,
    )

    assert "Commands (or just ask me in plain words):" in output
    assert f"{acct.ref}: YouTube @alicetube" in output
    assert "Upload 'beach.mp4' to YouTube @alicetube as 'Beach day' (private)" in output
    assert "Approve? Answer y or n" in output
    assert "Queued as job" in output  # the worker part runs it and tells the shell
    assert "Cancelled: Upload 'beach.mp4' to YouTube @alicetube as 'beach'" in output
    assert NO_MODEL in output
    assert "Cancelled: Upload 'beach.mp4' to YouTube @alicetube as 'Third'" in output
    assert output.count(f"{acct.ref}: YouTube") == 2
    assert ops.names() == ["upload"]
    assert ops.calls[0][1]["source"]["path"] == str(clip.resolve())
    assert ops.calls[0][1]["identity"].user_external_id == user


async def test_socialops_shell_cli_with_a_model(pg_dsn, redis_url, redis_prefix, tmp_path):
    server = fake.ScriptedOpenAI([fake.text("Hi! I can help with your channels.")])
    async with serve_asgi(server.app) as base:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LLM_", "OPENAI_", "SLACK_", "DISCORD_"))
        }
        env.update(
            DATABASE_URL=pg_dsn,
            REDIS_URL=redis_url,
            REDIS_KEY_PREFIX=redis_prefix,
            TOKEN_ENCRYPTION_KEYS=generate_key_spec("cli1"),
            SOCIALOPS_DATA_DIR=str(tmp_path / "data"),
            LOG_LEVEL="WARNING",
            LLM_MODEL="openai:fake-model",
            LLM_BASE_URL=base + "/v1",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "shell",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        out, err = await asyncio.wait_for(
            proc.communicate(b"help\nhello\nlink youtube\nquit\n"), timeout=120
        )
    text = out.decode()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "socialops shell: you are" in text
    assert "Commands (or just ask me in plain words):" in text
    assert "Hi! I can help with your channels." in text
    assert "YouTube is not configured on this bot." in text
    assert len(server.requests) == 1
    assert server.requests[0]["messages"][-1]["content"] == "hello"


async def test_platform_text_cannot_send_terminal_control_sequences() -> None:
    """A caption or title is printed to a terminal: its escape sequences (retitle the
    window, rewrite the screen, hyperlinks) must arrive as inert text."""
    from bot.core.messages import ApprovalRequest, Reply
    from bot.shell import ShellSink

    out = io.StringIO()
    sink = ShellSink(out)
    evil = "Cats \x1b]0;pwned\x07 \x1b[2J\x9b31m done\r\tok"
    await sink.send(Reply(f"Top post: {evil}\nsecond line"))
    await sink.ask_approval(ApprovalRequest("a1", f"Upload '{evil}'", "u", 900))
    await sink.update("99", Reply(f"Uploading {evil}: 50%"))
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\r" not in text
    assert "Top post: Cats" in text and "second line\n" in text and "\tok" in text
