"""Log redaction: configured secrets and token shapes never reach a formatted line."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import REDACTED, JsonFormatter, RedactingFilter, TextFormatter


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
