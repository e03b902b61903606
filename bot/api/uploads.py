"""A video sent in the request of `POST /api/v1/uploads` (multipart/form-data), streamed to
a file under the data directory, never whole in memory and never past the size cap.

Why hand-written around python-multipart's push parser rather than `request.form()`:
Starlette spools a file part to a temporary file with no limit before the route sees
it. Here each piece of the body goes to its destination file as it arrives, and the
request is refused (413) as soon as the file passes `max_bytes` (at once, when
Content-Length already says so), removing what was written.

The file stays where the worker's `file` source opener reads it: the `web` and `worker`
roles must share the data directory (one machine, or a shared disk).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

log = logging.getLogger(__name__)

FILE_FIELD = "file"
# Text fields (title, description, ...) are small; a request has only a few of them.
MAX_FIELD_BYTES = 16 * 1024
MAX_FIELDS = 16
# Room for the part headers, boundaries and text fields beside the file itself.
_ENVELOPE_BYTES = MAX_FIELDS * MAX_FIELD_BYTES + 64 * 1024
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


class UploadRejected(Exception):
    """The request body is not an acceptable upload; `status` says which HTTP answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """A file written to disk from the request, with the text fields sent beside it."""

    path: Path
    size: int
    filename: str
    mime_type: str
    fields: dict[str, str]


@dataclass(slots=True)
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    text: bytearray = field(default_factory=bytearray)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)


def _display_name(raw: bytes) -> str:
    """The client's file name, reduced to a plain last component (never a path)."""
    name = raw.decode("utf-8", "replace").replace("\\", "/")
    name = _UNSAFE_NAME.sub("", PurePosixPath(name).name).strip()[:200]
    return name or "video"


class _Receiver:
    """python-multipart callbacks: file pieces queue up for writing, text fields collect."""

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.part = _Part()
        self.pending: list[bytes] = []
        self.size = 0
        self.files = 0
        self.filename = "video"
        self.mime_type = "application/octet-stream"
        self.fields: dict[str, str] = {}

    def part_begin(self) -> None:
        self.part = _Part()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def header_end(self) -> None:
        part = self.part
        part.headers[bytes(part.header_field).strip().lower()] = bytes(part.header_value).strip()
        part.header_field.clear()
        part.header_value.clear()

    def headers_finished(self) -> None:
        part = self.part
        kind, params = parse_options_header(part.headers.get(b"content-disposition"))
        if kind != b"form-data" or b"name" not in params:
            raise UploadRejected(400, "Every part needs a form-data Content-Disposition.")
        part.name = params[b"name"].decode("utf-8", "replace")
        part.is_file = b"filename" in params
        if part.is_file:
            if part.name != FILE_FIELD or self.files:
                raise UploadRejected(400, f"Send one file, in the `{FILE_FIELD}` field.")
            self.files += 1
            self.filename = _display_name(params[b"filename"])
            mime = part.headers.get(b"content-type", b"").decode("latin-1").strip()
            self.mime_type = mime[:100] or "application/octet-stream"
        elif len(self.fields) >= MAX_FIELDS:
            raise UploadRejected(400, "Too many form fields.")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        if part.is_file:
            self.size += end - start
            if self.size > self.max_bytes:
                raise UploadRejected(413, too_large(self.max_bytes))
            self.pending.append(bytes(data[start:end]))
            return
        part.text += data[start:end]
        if len(part.text) > MAX_FIELD_BYTES:
            raise UploadRejected(400, f"The `{part.name[:40]}` field is too long.")

    def part_end(self) -> None:
        part = self.part
        if part.is_file:
            return
        try:
            self.fields[part.name] = part.text.decode("utf-8")
        except UnicodeDecodeError:
            raise UploadRejected(400, f"The `{part.name[:40]}` field is not UTF-8.") from None


def too_large(max_bytes: int) -> str:
    # Rounded down, so the size named is never more than what is accepted.
    if max_bytes >= 1_000_000:
        size = f"{max_bytes // 100_000 / 10:,.1f}".removesuffix(".0") + " MB"
    else:
        size = f"{max_bytes // 1000:,} kB" if max_bytes >= 1000 else f"{max_bytes} bytes"
    return f"The file is larger than the {size} this server accepts."


class UploadStore:
    """Receives multipart uploads into `directory`, refusing files over `max_bytes`."""

    def __init__(self, *, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def precheck(self, content_type: str | None, content_length: str | None) -> bytes:
        """The multipart boundary, or a refusal from the headers alone (before any body)."""
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise UploadRejected(415, "Send the file as multipart/form-data, or JSON with a url.")
        if content_length is not None and content_length.isdigit():
            if int(content_length) > self.max_bytes + _ENVELOPE_BYTES:
                raise UploadRejected(413, too_large(self.max_bytes))
        return boundary

    async def receive(self, *, boundary: bytes, body: AsyncIterator[bytes]) -> ReceivedFile:
        """Stream `body` into a new file under the directory; on any refusal it is removed."""
        await asyncio.to_thread(self.directory.mkdir, mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{secrets.token_hex(16)}.upload"
        receiver = _Receiver(max_bytes=self.max_bytes)
        parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": receiver.part_begin,
                "on_header_field": receiver.header_field,
                "on_header_value": receiver.header_value,
                "on_header_end": receiver.header_end,
                "on_headers_finished": receiver.headers_finished,
                "on_part_data": receiver.part_data,
                "on_part_end": receiver.part_end,
            },
        )
        out: BinaryIO = await asyncio.to_thread(path.open, "xb")
        try:
            try:
                async for chunk in body:
                    parser.write(chunk)
                    if receiver.pending:
                        pieces, receiver.pending = receiver.pending, []
                        await asyncio.to_thread(out.writelines, pieces)
                parser.finalize()
            finally:
                await asyncio.to_thread(out.close)
            if parser.state != MultipartState.END:
                raise UploadRejected(400, "The multipart body ended early.")
            if not receiver.files:
                raise UploadRejected(400, f"No file: send the video in the `{FILE_FIELD}` field.")
            if receiver.size == 0:
                raise UploadRejected(400, "The file is empty.")
        except MultipartParseError:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise UploadRejected(400, "The multipart body is malformed.") from None
        except BaseException:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise
        log.info("api upload received", extra={"bytes": receiver.size})
        return ReceivedFile(
            path=path,
            size=receiver.size,
            filename=receiver.filename,
            mime_type=receiver.mime_type,
            fields=receiver.fields,
        )

    async def sweep(self, in_use: set[str], *, older_than: float) -> int:
        """Remove received files not `in_use` and older than `older_than` seconds (the
        worker's periodic purge); how many went."""

        def run() -> int:
            if not self.directory.is_dir():
                return 0
            cutoff = time.time() - older_than
            removed = 0
            for path in self.directory.glob("*.upload"):
                if str(path) not in in_use and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed

        return await asyncio.to_thread(run)

    async def discard(self, received: ReceivedFile) -> None:
        """Remove a received file that will not be uploaded (the request was refused)."""
        await asyncio.to_thread(received.path.unlink, missing_ok=True)
