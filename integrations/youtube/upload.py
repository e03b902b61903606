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

Retries: the session start and the offset query can be replayed, so the shared
transport (`integrations.http`) retries them. A chunk cannot (its body is a stream),
so the transport hands a cut-off chunk back as `ConnectionLost` (and a 5xx/429 as is),
and the uploader resumes from the server's offset within the same call: step 3 above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from integrations.base import ByteSource, ProgressCallback, UploadCheckpoint
from integrations.chunks import ChunkReader
from integrations.errors import (
    ConnectionLost,
    IntegrationError,
    InvalidRequest,
    PlatformUnavailable,
)
from integrations.http import RETRY_STATUSES, RetryPolicy
from integrations.metrics import upload_interrupted
from integrations.progress import Deciles
from integrations.youtube._errors import PLATFORM, error_from_response

log = logging.getLogger(__name__)

CHUNK_GRANULARITY = 256 * 1024  # YouTube takes chunks in multiples of this (but the last)
# Each chunk is a request and a wait for its answer (a round trip to Google, and ~2.5 ms
# of our CPU here). bench/upload.py, CPU a GiB: 0.73 s in 8 MiB chunks, 0.53 s in 32 MiB,
# 0.44 s in 64 MiB (a plain PUT: 0.45 s). Chunks stream from the source and a resume
# starts at the server's offset, so a bigger chunk costs no memory, and a cut re-sends
# what was in flight, not the chunk; Google's guide asks for large chunks. 32 MiB takes
# most of the gain while a chunk refused outright (a 5xx), sent again whole, stays small.
DEFAULT_CHUNK_BYTES = 32 * 1024 * 1024


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


class _Checkpointer:
    """Saves the checkpoint in order, the offsets behind the upload.

    An offset save (`save_behind`) runs while the next chunk is sent: awaited, it held
    every chunk back by a Postgres round trip (~11 % of bench/upload.py's time). The
    offset is a record, not what a resume trusts (it asks the server), so one a chunk
    late after a crash re-sends nothing; a session URI is saved before any byte
    depends on it (`save`). A failed save fails the upload at the next save.
    """

    def __init__(self, checkpoint: UploadCheckpoint) -> None:
        self._checkpoint = checkpoint
        self._pending: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def save(self, session: str, confirmed: int) -> None:
        await self.flush()
        await self._checkpoint.save(session, confirmed)

    async def save_behind(self, session: str, confirmed: int) -> None:
        await self.flush()
        self._pending = asyncio.create_task(self._checkpoint.save(session, confirmed))

    async def close(self) -> None:
        """On the way out of a failed upload: let the last save finish; its own failure
        is logged, since the upload's error is the one to report."""
        try:
            await self.flush()
        except Exception:
            log.warning("saving the upload checkpoint failed", exc_info=True)


class ResumableUploader:
    """Uploads one video through a resumable session kept in an UploadCheckpoint.

    `http` comes from `integrations.http.make_client`. When a chunk is cut off or refused
    with a retryable status, the uploader asks the server for its offset and continues
    from there; after `retry.max_attempts` such interruptions in a row with no byte
    gained it gives up with `PlatformUnavailable` (the checkpoint lets a later call
    resume). Between tries it waits `retry`'s backoff, as the transport does.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        upload_base: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if chunk_bytes <= 0 or chunk_bytes % CHUNK_GRANULARITY:
            raise ValueError("chunk size must be a positive multiple of 256 KiB")
        self._http = http
        self._upload_base = upload_base.rstrip("/")
        self.chunk_bytes = chunk_bytes
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    async def _interrupted(self, stalls: int, error: IntegrationError) -> int:
        """One more interruption without progress: wait before resuming, or give up."""
        stalls += 1
        reason = error.reason or type(error).__name__
        if stalls >= self._retry.max_attempts:
            upload_interrupted(PLATFORM, "gave_up", attempt=stalls, reason=reason)
            raise PlatformUnavailable(
                "The upload to YouTube keeps being interrupted; it will resume later from "
                "where it stopped.",
                platform=PLATFORM,
                reason=error.reason,
            ) from error
        wait = self._retry.backoff(stalls)
        if error.retry_after is not None:
            if error.retry_after > self._retry.max_retry_after:
                upload_interrupted(PLATFORM, "gave_up", attempt=stalls, reason=reason)
                raise error  # too long to hold the upload open: the caller says when to retry
            wait = max(wait, error.retry_after)
        upload_interrupted(PLATFORM, "resumed", attempt=stalls, reason=reason)
        log.info(
            "upload interrupted; resuming from the server's offset",
            extra={"error": type(error).__name__, "reason": error.reason, "wait": wait},
        )
        await self._sleep(wait)
        return stalls

    async def start_session(
        self,
        *,
        access_token: str,
        source: ByteSource,
        metadata: dict[str, Any],
        notify_subscribers: bool,
    ) -> str:
        """Open a resumable session; returns its URI (never log it)."""
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
            # Sending it twice at worst opens a second session that is never used.
            extensions={"idempotent": True},
        )
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
        saver = _Checkpointer(checkpoint)
        report = Deciles(progress, total)
        reader = ChunkReader(source, platform=PLATFORM, read_ahead=True)
        stalls = 0  # interruptions since the server last gained bytes
        try:
            while True:
                queried = need_query
                if queried:
                    # Replayable (empty body): the transport retries it; failures propagate.
                    response = await self._http.put(
                        session, content=b"", headers={**auth, "Content-Range": f"bytes */{total}"}
                    )
                    status = response.status_code
                    if status in (404, 410):
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
                        await saver.save(session, 0)
                        continue
                    if status not in (200, 201, 308):
                        raise error_from_response(response, doing="resuming the upload")
                    need_query = False
                else:
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
                    except ConnectionLost as exc:
                        stalls = await self._interrupted(stalls, exc)
                        need_query = True
                        continue
                    status = response.status_code
                    if status in RETRY_STATUSES:
                        error = error_from_response(response, doing="uploading the video")
                        stalls = await self._interrupted(stalls, error)
                        need_query = True
                        continue
                    if status not in (200, 201, 308):
                        raise error_from_response(response, doing="uploading the video")

                if status in (200, 201):
                    await saver.save(session, total)
                    await report(total)
                    return dict(response.json())
                server = _range_end(response)  # a 308: the server holds bytes [0, server)
                if server > confirmed:
                    stalls = 0
                elif not queried:
                    # The chunk was answered but not kept: send it again after a pause.
                    stalls = await self._interrupted(
                        stalls,
                        PlatformUnavailable(
                            "YouTube did not keep part of the upload.",
                            platform=PLATFORM,
                            reason="chunk_not_kept",
                        ),
                    )
                if queried:
                    log.info(
                        "resuming from the server's offset",
                        extra={"local": confirmed, "server": server},
                    )
                confirmed = server
                await saver.save_behind(session, confirmed)
                await report(confirmed)
        finally:
            await saver.close()
            await reader.aclose()
