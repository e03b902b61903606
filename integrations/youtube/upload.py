"""YouTube's resumable upload protocol, streamed chunk by chunk.

Hand-written on httpx because no maintained async client speaks it:
google-api-python-client is synchronous and reads whole chunks through httplib2.

Protocol (developers.google.com/youtube/v3/guides/using_resumable_upload_protocol):
1. ``POST {upload}/youtube/v3/videos?uploadType=resumable&part=snippet,status`` with the
   metadata and ``X-Upload-Content-Length`` / ``X-Upload-Content-Type``; the session URI
   comes back in ``Location`` (a secret: it grants write access to the upload).
2. ``PUT`` chunks (multiples of 256 KiB except the last) with ``Content-Range``;
   ``308`` + ``Range: bytes=0-N`` means the server holds bytes 0..N; ``200/201`` is the video.
3. After a failure, ``PUT`` an empty body with ``Content-Range: bytes */TOTAL`` to learn the
   server's offset, and continue from there.

Chunk bodies stream straight from the source (never a whole chunk in memory, let
alone the file); when the server asks for bytes again, the source is reopened at the
server's offset.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from integrations.base import ByteSource, ProgressCallback, UploadCheckpoint
from integrations.errors import InvalidRequest, PlatformUnavailable
from integrations.youtube._errors import PLATFORM, error_from_response, unavailable

log = logging.getLogger(__name__)

CHUNK_GRANULARITY = 256 * 1024


class _ChunkStream:
    """Streams exact-size chunk bodies from one ByteSource iterator.

    The iterator stays open across chunks; after a failure the server's offset rarely
    equals what we pulled, so the source is reopened there (files seek, HTTP uses Range).
    No chunk is buffered whole: memory stays at one source piece.
    """

    def __init__(self, source: ByteSource) -> None:
        self._source = source
        self._it: AsyncIterator[bytes] | None = None
        self._pos = 0  # offset of the next byte to hand out
        self._pending = b""

    async def aclose(self) -> None:
        it, self._it = self._it, None
        closer = getattr(it, "aclose", None)
        if closer is not None:
            await closer()

    async def _seek(self, offset: int) -> None:
        if self._it is not None and offset == self._pos:
            return
        await self.aclose()
        self._it = aiter(self._source.open(offset))
        self._pos = offset
        self._pending = b""

    async def body(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """Yield bytes [offset, offset + length) in source-sized pieces."""
        await self._seek(offset)
        assert self._it is not None
        remaining = length
        while remaining:
            if self._pending:
                piece, self._pending = self._pending, b""
            else:
                try:
                    piece = await anext(self._it)
                except StopAsyncIteration:
                    raise InvalidRequest(
                        "The video source ended before its announced size.", platform=PLATFORM
                    ) from None
            if len(piece) > remaining:
                piece, self._pending = piece[:remaining], piece[remaining:]
            self._pos += len(piece)
            remaining -= len(piece)
            yield piece


class _Deciles:
    """Calls the progress callback when confirmed bytes cross each further 10 %."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self._callback = callback
        self._total = total
        self._next = 1

    async def __call__(self, confirmed: int) -> None:
        if self._callback is None or self._total <= 0:
            return
        decile = confirmed * 10 // self._total
        if decile < self._next:
            return
        self._next = decile + 1
        try:
            await self._callback(confirmed, self._total)
        except Exception:  # progress is cosmetic; it never breaks an upload
            log.warning("progress callback failed", exc_info=True)


def _range_end(response: httpx.Response) -> int:
    """Bytes the server holds, from ``Range: bytes=0-N`` (absent: none)."""
    value = response.headers.get("range")
    if not value:
        return 0
    try:
        return int(value.rsplit("-", 1)[1]) + 1
    except (IndexError, ValueError):
        raise PlatformUnavailable(
            "YouTube answered the upload with an unreadable Range header.", platform=PLATFORM
        ) from None


class ResumableUploader:
    """Uploads one video through a resumable session kept in an UploadCheckpoint."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        upload_base: str,
        chunk_bytes: int = 8 * 1024 * 1024,
        max_failures: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if chunk_bytes <= 0 or chunk_bytes % CHUNK_GRANULARITY:
            raise ValueError("chunk size must be a positive multiple of 256 KiB")
        self._http = http
        self._upload_base = upload_base.rstrip("/")
        self.chunk_bytes = chunk_bytes
        self._max_failures = max_failures
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep

    async def _backoff(self, failures: int, cause: str) -> None:
        if failures > self._max_failures:
            raise PlatformUnavailable(
                f"The upload to YouTube kept failing ({cause}); it will resume later "
                "from where it stopped.",
                platform=PLATFORM,
            )
        delay = min(self._backoff_max, self._backoff_base * 2 ** (failures - 1))
        await self._sleep(delay * (0.5 + random.random() / 2))

    async def start_session(
        self,
        *,
        access_token: str,
        source: ByteSource,
        metadata: dict[str, Any],
        notify_subscribers: bool,
    ) -> str:
        """Open a resumable session; returns its URI (never log it)."""
        try:
            response = await self._http.post(
                f"{self._upload_base}/youtube/v3/videos",
                params={
                    "uploadType": "resumable",
                    "part": "snippet,status",
                    "notifySubscribers": "true" if notify_subscribers else "false",
                },
                json=metadata,
                headers={
                    "Authorization": f"Bearer {access_token}",
                    "X-Upload-Content-Length": str(source.size),
                    "X-Upload-Content-Type": source.mime_type,
                },
            )
        except httpx.TransportError as exc:
            raise unavailable(exc, doing="starting the upload") from None
        if response.status_code != 200:
            raise error_from_response(response, doing="starting the upload")
        location = response.headers.get("location")
        if not location:
            raise PlatformUnavailable(
                "YouTube did not return an upload session.", platform=PLATFORM
            )
        return str(location)

    async def run(
        self,
        *,
        access_token: str,
        source: ByteSource,
        metadata: dict[str, Any],
        notify_subscribers: bool,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Upload (or resume) and return the video resource YouTube created."""
        total = source.size
        if total <= 0:
            raise InvalidRequest("The video file is empty.", platform=PLATFORM)
        auth = {"Authorization": f"Bearer {access_token}"}
        session, confirmed = await checkpoint.load()
        need_query = session is not None
        if session is None:
            session = await self.start_session(
                access_token=access_token,
                source=source,
                metadata=metadata,
                notify_subscribers=notify_subscribers,
            )
            confirmed = 0
            await checkpoint.save(session, 0)
        report = _Deciles(progress, total)
        reader = _ChunkStream(source)
        failures = 0
        try:
            while True:
                if need_query:
                    try:
                        response = await self._http.put(
                            session,
                            content=b"",
                            headers={**auth, "Content-Range": f"bytes */{total}"},
                        )
                    except httpx.TransportError as exc:
                        failures += 1
                        await self._backoff(failures, type(exc).__name__)
                        continue
                    if response.status_code in (200, 201):
                        await checkpoint.save(session, total)
                        return dict(response.json())
                    if response.status_code == 308:
                        need_query = False
                        server = _range_end(response)
                        if server != confirmed:
                            log.info(
                                "resuming from the server's offset",
                                extra={"local": confirmed, "server": server},
                            )
                        confirmed = server
                        await checkpoint.save(session, confirmed)
                        continue
                    if response.status_code in (404, 410):
                        # The session is gone (they last about a week): start a new one.
                        log.warning("upload session expired; starting a new one")
                        session = await self.start_session(
                            access_token=access_token,
                            source=source,
                            metadata=metadata,
                            notify_subscribers=notify_subscribers,
                        )
                        confirmed = 0
                        need_query = False
                        await checkpoint.save(session, 0)
                        continue
                    if response.status_code >= 500 or response.status_code == 429:
                        failures += 1
                        await self._backoff(failures, f"HTTP {response.status_code}")
                        continue
                    raise error_from_response(response, doing="resuming the upload")

                length = min(self.chunk_bytes, total - confirmed)
                end = confirmed + length - 1
                try:
                    response = await self._http.put(
                        session,
                        content=reader.body(confirmed, length),
                        headers={
                            **auth,
                            "Content-Length": str(length),
                            "Content-Range": f"bytes {confirmed}-{end}/{total}",
                        },
                    )
                except httpx.TransportError as exc:
                    failures += 1
                    need_query = True
                    await self._backoff(failures, type(exc).__name__)
                    continue
                status = response.status_code
                if status == 308:
                    server = _range_end(response)
                    if server > confirmed:
                        failures = 0
                    else:
                        failures += 1
                        await self._backoff(failures, "no progress")
                    confirmed = server
                    await checkpoint.save(session, confirmed)
                    await report(confirmed)
                    continue
                if status in (200, 201):
                    await checkpoint.save(session, total)
                    await report(total)
                    return dict(response.json())
                if status >= 500 or status == 429:
                    failures += 1
                    need_query = True
                    await self._backoff(failures, f"HTTP {status}")
                    continue
                raise error_from_response(response, doing="uploading the video")
        finally:
            await reader.aclose()
