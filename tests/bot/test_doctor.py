"""`socialops doctor` reports configuration and connectivity but never a secret value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.doctor import _safe_url, report_lines
from storage.crypto import generate_key_spec

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-secret-bot-token-111",
    "SLACK_SIGNING_SECRET": "signing-secret-222",
    "SLACK_APP_TOKEN": "xapp-secret-app-token-333",
    "SLACK_CLIENT_SECRET": "slack-client-secret-444",
    "DISCORD_TOKEN": "discord-secret-token-555",
    "GOOGLE_CLIENT_SECRET": "google-client-secret-666",
    "INSTAGRAM_CLIENT_SECRET": "instagram-client-secret-777",
    "LLM_API_KEY": "sk-secret-llm-key-888",
}


def run_doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_shows_no_secret_even_when_all_are_set(
    pg_dsn: str, redis_url: str, tmp_path
) -> None:
    key = generate_key_spec("prod")
    password_dsn = pg_dsn.replace(
        "postgresql://postgres@", "postgresql://postgres:db-password-999@"
    )
    env = {
        **os.environ,
        **SECRETS,
        "SLACK_CLIENT_ID": "123.456",
        "GOOGLE_CLIENT_ID": "gid",
        "INSTAGRAM_CLIENT_ID": "iid",
        "TOKEN_ENCRYPTION_KEYS": key,
        "DATABASE_URL": password_dsn,
        "REDIS_URL": redis_url,
        "SOCIALOPS_DATA_DIR": str(tmp_path),
    }
    result = run_doctor(env)
    output = result.stdout + result.stderr
    for value in [*SECRETS.values(), key.split(":", 1)[1], "db-password-999"]:
        assert value not in output
    assert "[on]  Slack" in output and "[on]  YouTube" in output
    assert "SLACK_BOT_TOKEN = set (hidden)" in output
    assert "Redis: ok" in output


def test_doctor_names_what_each_missing_feature_needs(
    pg_dsn: str, redis_url: str, tmp_path
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRETS
        and not k.startswith(("SLACK_", "GOOGLE_", "INSTAGRAM_", "OPENAI_", "LLM_"))
    }
    env.update(DATABASE_URL=pg_dsn, REDIS_URL=redis_url, SOCIALOPS_DATA_DIR=str(tmp_path))
    result = run_doctor(env)
    assert result.returncode == 0, result.stderr
    assert "[off] YouTube: set GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET" in result.stdout
    assert "[off] Discord: set DISCORD_TOKEN" in result.stdout
    assert "Postgres: ok" in result.stdout


def test_doctor_reports_an_unreachable_server(tmp_path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SOCIALOPS_DATA_DIR": str(tmp_path),
    }
    result = run_doctor(env)
    assert result.returncode == 1
    assert "Postgres: FAILED" in result.stdout and "Redis: FAILED" in result.stdout


def test_doctor_warns_when_instagram_cannot_fetch_media(make_settings) -> None:
    from bot.doctor import report_lines

    ig = {"instagram_client_id": "iid", "instagram_client_secret": "s3cret-ig"}
    local = report_lines(make_settings(public_base_url="http://localhost:8000", **ig))
    public = report_lines(make_settings(public_base_url="https://bot.example.com", **ig))
    assert any("PUBLIC_BASE_URL is not reachable" in line for line in local)
    assert not any("PUBLIC_BASE_URL is not reachable" in line for line in public)


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        (
            "postgresql://host/db?password=secret-pw-1&sslmode=require",
            "postgresql://host/db?password=***&sslmode=require",
            "secret-pw-1",
        ),
        (
            "redis://cache:6379/0?password=secret-pw-2",
            "redis://cache:6379/0?password=***",
            "secret-pw-2",
        ),
        (
            "postgresql://app:secret-pw-3@[::1]:5432/db?sslpassword=secret-pw-4",
            "postgresql://app:***@[::1]:5432/db?sslpassword=***",
            "secret-pw-3",
        ),
        ("rediss://:secret-pw-5@cache:6380", "rediss://:***@cache:6380", "secret-pw-5"),
        ("postgresql://postgres@127.0.0.1:5432/x", "postgresql://postgres@127.0.0.1:5432/x", "-"),
    ],
    ids=[
        "pg-query",
        "redis-query",
        "pg-userinfo-ipv6-sslpassword",
        "redis-empty-user",
        "no-password",
    ],
)
def test_safe_url_masks_passwords_in_userinfo_and_query(url: str, shown: str, hidden: str) -> None:
    assert _safe_url(url) == shown
    assert hidden not in _safe_url(url)
    assert "secret-pw-4" not in _safe_url(url)


def test_doctor_says_which_discord_shards_this_process_runs(make_settings) -> None:
    said = "\n".join(report_lines(make_settings(discord_token="t", discord_shard_count=4)))
    assert "Discord: this process runs shards 0,1,2,3 of 4" in said
    wrong = make_settings(discord_token="t", discord_shard_count=2, discord_shard_ids="5")
    assert "will not start: DISCORD_SHARD_IDS must be between 0 and 1" in "\n".join(
        report_lines(wrong)
    )
