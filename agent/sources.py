"""Open a source locator (a plain dict kept on the post row) as a streaming ByteSource.

Kinds: ``{"kind": "file", "path": ..., "mime_type"?: ...}`` and
``{"kind": "http", "url": ..., "size": ..., "mime_type": ...}``. Front-ends add their
own kinds with `register_source_opener` (Slack's private URLs need the bot token,
injected at open time so it is never stored in the locator).
Nothing here reads a whole file: bytes stream in pieces, and HTTP resumes with Range.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from integrations.base import ByteSource
from integrations.errors import InvalidRequest, PlatformUnavailable

PIECE_BYTES = 1024 * 1024
_SOURCE = "source"

SourceOpener = Callable[[Mapping[str, Any]], ByteSource]
_OPENERS: dict[str, SourceOpener] = {}


def register_source_opener(kind: str, factory: SourceOpener) -> None:
    """Teach `open_source` a new locator kind (later registrations replace earlier ones)."""
    _OPENERS[kind] = factory


def open_source(locator: Mapping[str, Any]) -> ByteSource:
    """The ByteSource for a locator; InvalidRequest with a readable message if unusable."""
    kind = locator.get("kind")
    opener = _OPENERS.get(str(kind))
    if opener is None:
        raise InvalidRequest(f"I can't read a video from a '{kind}' source.", platform=_SOURCE)
    return opener(locator)


class FileByteSource:
    """A local file, read in 1 MiB pieces off the event loop."""

    def __init__(self, path: Path, *, mime_type: str | None = None) -> None:
        try:
            self.size = path.stat().st_size
        except OSError:
            raise InvalidRequest(
                "The video file is not there any more.", platform=_SOURCE
            ) from None
        self.path = path
        self.mime_type = mime_type or mimetypes.guess_type(path.name)[0] or "video/*"

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self.path, "rb")
        try:
            await asyncio.to_thread(handle.seek, offset)
            while True:
                piece = await asyncio.to_thread(handle.read, PIECE_BYTES)
                if not piece:
                    return
                yield piece
        finally:
            await asyncio.to_thread(handle.close)


class HttpByteSource:
    """An HTTP download streamed with `Range: bytes=N-` so a resume does not start over.

    `headers` may carry credentials (a Slack bot token); they are used only on the wire.
    """

    def __init__(
        self,
        url: str,
        *,
        size: int,
        mime_type: str,
        headers: Mapping[str, str] | None = None,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.url = url
        self.size = size
        self.mime_type = mime_type
        self._headers = dict(headers or {})
        self._client_factory = client_factory or (
            lambda: httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=True)
        )

    def __repr__(self) -> str:  # no URL or headers in reprs: they may grant access
        return f"HttpByteSource(size={self.size}, mime_type={self.mime_type!r})"

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        headers = dict(self._headers)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        async with self._client_factory() as client:
            try:
                async with client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code not in (200, 206):
                        raise PlatformUnavailable(
                            f"Downloading the video failed (HTTP {response.status_code}).",
                            platform=_SOURCE,
                            status=response.status_code,
                        )
                    # A server that ignores Range sends everything: skip what we have.
                    skip = offset if (offset and response.status_code == 200) else 0
                    async for piece in response.aiter_raw(PIECE_BYTES):
                        if skip:
                            if len(piece) <= skip:
                                skip -= len(piece)
                                continue
                            piece, skip = piece[skip:], 0
                        yield piece
            except httpx.TransportError as exc:
                raise PlatformUnavailable(
                    f"Downloading the video failed ({type(exc).__name__}).", platform=_SOURCE
                ) from None


def _size(locator: Mapping[str, Any]) -> int:
    try:
        size = int(locator["size"])
    except (KeyError, TypeError, ValueError):
        raise InvalidRequest("The video's size is unknown.", platform=_SOURCE) from None
    if size <= 0:
        raise InvalidRequest("The video file is empty.", platform=_SOURCE)
    return size


def _open_file(locator: Mapping[str, Any]) -> ByteSource:
    path = locator.get("path")
    if not path:
        raise InvalidRequest("The file source has no path.", platform=_SOURCE)
    return FileByteSource(Path(os.fspath(path)), mime_type=locator.get("mime_type"))


def _open_http(locator: Mapping[str, Any]) -> ByteSource:
    url = str(locator.get("url") or "")
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest("The download link is not an http(s) URL.", platform=_SOURCE)
    return HttpByteSource(
        url, size=_size(locator), mime_type=str(locator.get("mime_type") or "video/*")
    )


register_source_opener("file", _open_file)
register_source_opener("http", _open_http)
