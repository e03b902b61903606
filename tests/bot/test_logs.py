"""Log redaction: configured secrets and token shapes never reach a formatted line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import REDACTED, JsonFormatter, RedactingFilter, TextFormatter, configure


def emit(filter_: RedactingFilter, formatter: logging.Formatter, record_fn) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(filter_)
    logger = logging.getLogger(f"test.redaction.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        record_fn(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_configured_secret_in_message_args_extra_and_traceback_is_redacted() -> None:
    secret = "sup3r-s3cret-value"
    redactor = RedactingFilter([secret])

    def log(logger: logging.Logger) -> None:
        logger.info("token is %s", secret, extra={"detail": f"x{secret}y"})
        try:
            raise ValueError(f"bad {secret}")
        except ValueError:
            logger.exception("failed")

    for formatter in (JsonFormatter(), TextFormatter()):
        out = emit(redactor, formatter, log)
        assert secret not in out
        assert REDACTED in out
        assert "ValueError" in out  # the traceback survives, minus the secret


def test_token_shapes_are_redacted_without_configuration() -> None:
    redactor = RedactingFilter()
    samples = [
        "Authorization: Bearer abcdefghijklmnop123",
        "google said ya29.a0AfH6SMBxyz-123",
        "slack xoxb-1234-5678-abcdef",
        "GET /cb?code=4/0Adeu5B&state=abc",
        "refresh_token=1//0gAbCdEf",
    ]
    out = emit(redactor, JsonFormatter(), lambda lg: [lg.warning(s) for s in samples])
    lines = [json.loads(line)["msg"] for line in out.splitlines()]
    for line, leaked in zip(
        lines,
        ["abcdefghijklmnop123", "a0AfH6SMBxyz", "1234-5678", "4/0Adeu5B", "1//0gAbCdEf"],
        strict=True,
    ):
        assert leaked not in line
        assert REDACTED in line


def test_secrets_inside_non_string_extras_are_redacted() -> None:
    """A dict or list passed in `extra` is formatted with str(): redact that text too."""
    secret = "sup3r-s3cret-value"
    redactor = RedactingFilter([secret])

    def log(logger: logging.Logger) -> None:
        logger.info(
            "refresh failed",
            extra={"detail": {"token": secret, "slack": "xoxb-1234-5678-abcdef"}, "n": 3},
        )

    for formatter in (JsonFormatter(), TextFormatter()):
        out = emit(redactor, formatter, log)
        assert secret not in out and "1234-5678" not in out
        assert "refresh failed" in out and REDACTED in out
    assert json.loads(emit(redactor, JsonFormatter(), log))["n"] == 3


def test_a_resumable_upload_session_uri_is_redacted() -> None:
    """The session URI alone grants write access to the upload (no token needed)."""
    uri = "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&upload_id=ADPycdvSeSsIoN"
    out = emit(RedactingFilter(), JsonFormatter(), lambda lg: lg.warning("PUT %s failed", uri))
    assert "ADPycdvSeSsIoN" not in out and "uploadType=resumable" in out


@pytest.mark.parametrize(
    ("line", "leaked", "kept"),
    [
        ("rotated: xoxe-1-My0xLTQ2NzI2-refresh", "My0xLTQ2NzI2", "rotated:"),
        ("token xoxe.xoxp-1-Mi0yLTE2MjI5-access", "Mi0yLTE2MjI5", "token"),
        ("token xoxe.xoxb-1-Bot0yLTE2-access", "Bot0yLTE2", "token"),
        (
            "oauth.v2.access: {'refresh_token': 'r3fr3sh-value', 'ok': True}",
            "r3fr3sh-value",
            "'ok': True",
        ),
        (
            '{"access_token": "acc3ss-value", "token_type": "bearer"}',
            "acc3ss-value",
            '"token_type": "bearer"',
        ),
        (
            "{'client_secret': 'cl13nt-s3cret', 'client_id': '123.456'}",
            "cl13nt-s3cret",
            "'123.456'",
        ),
        (
            'data={"code_verifier": "v3r1f13r-value", "grant_type": "authorization_code"}',
            "v3r1f13r-value",
            "authorization_code",
        ),
        (
            "GET /oauth/youtube/callback?state=st4te-value&code=c0de-value",
            "st4te-value",
            "/oauth/youtube/callback",
        ),
        (
            "GET /oauth/youtube/callback?state=st4te-value&code=c0de-value",
            "c0de-value",
            "callback?state=",
        ),
        (
            "POST /token grant_type=authorization_code&code_verifier=v3r1f13r&client_id=1",
            "v3r1f13r",
            "client_id=1",
        ),
        (
            "link https://bot.example/oauth/instagram/start?s=s1ngle-use-link-value",
            "s1ngle-use-link-value",
            "/oauth/instagram/start?s=",
        ),
        (
            "link https://bot.example/oauth/youtube/start?x=1&s=s1ngle-use-link-value",
            "s1ngle-use-link-value",
            "x=1",
        ),
        (
            "media https://bot.example/media/AQAAAAAAAAAqAAAAAGdC3m0FdGVzdDGxZ2Vz",
            "AQAAAAAAAAAqAAAAAGdC3m0FdGVzdDGxZ2Vz",
            "https://bot.example/media/",
        ),
    ],
    ids=[
        "slack-refresh-token",
        "slack-rotating-user-token",
        "slack-rotating-bot-token",
        "dict-refresh-token",
        "json-access-token",
        "dict-client-secret",
        "json-code-verifier",
        "query-state",
        "query-code",
        "form-code-verifier",
        "oauth-start-link",
        "oauth-start-link-later-param",
        "media-link",
    ],
)
def test_secret_shapes_are_redacted_at_debug(line: str, leaked: str, kept: str) -> None:
    out = emit(RedactingFilter(), TextFormatter(), lambda lg: lg.debug(line))
    assert leaked not in out
    assert REDACTED in out and kept in out


def test_harmless_neighbours_are_kept() -> None:
    """Names that merely end like a secret parameter are not redacted."""
    line = "error_code=42 grant_type=refresh_token /media/abc token_type=bearer"
    out = emit(RedactingFilter(), TextFormatter(), lambda lg: lg.debug(line))
    assert line in out


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    names = ("slack_sdk", "slack_bolt", "httpx")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_debug_keeps_payload_logging_libraries_at_info(restore_logging: None) -> None:
    configure(level="DEBUG", fmt="text")
    assert logging.getLogger("bot.slack").getEffectiveLevel() == logging.DEBUG
    for name in ("slack_sdk", "slack_bolt", "slack_sdk.web.async_base_client"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.INFO
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING

    configure(level="DEBUG", library_level="DEBUG", fmt="text")
    for name in ("slack_sdk", "slack_bolt", "httpx"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.DEBUG

    configure(level="WARNING", fmt="text")
    assert logging.getLogger("slack_bolt").getEffectiveLevel() == logging.WARNING
