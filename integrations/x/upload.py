"""X's chunked media upload (API v2), resumable from an `UploadCheckpoint`.

Protocol (docs.x.com, "Media upload", the dedicated v2 endpoints that replaced the
``command=INIT|APPEND|FINALIZE`` form):
1. ``POST /2/media/upload/initialize`` with JSON ``media_type``, ``total_bytes`` and
   ``media_category=tweet_video``; answers ``data.id``, ``data.media_key`` and
   ``data.expires_after_secs``.
2. ``POST /2/media/upload/{id}/append``, multipart ``segment_index`` (0-999) and
   ``media`` (at most 5 MB a segment); answers ``data.expires_at`` (Unix seconds).
3. ``POST /2/media/upload/{id}/finalize``; when the answer has ``processing_info``,
   ``GET /2/media/upload?media_id=&command=STATUS`` until its ``state`` leaves
   ``pending``/``in_progress``, waiting ``check_after_secs`` between polls.

The checkpoint holds the media id, its expiry, the segment size and the next segment
(its offset is the confirmed byte count), then the phase: appended and finalized,
posting, posted with the post's id. A restart continues from the next segment while
the media id lives, and never finalizes or posts twice.

Each segment is read into memory (at most 5 MB; from a file, in one read) and sent with
its multipart framing as one replayable body, its parts never joined, so the shared
transport may send it again after a dropped connection: X documents a failed segment as
retryable on its own, which makes the append idempotent. The next segment is read and
framed while one is on the wire (so two are in memory at most): appends must go one
after another, and this keeps the reads off the wait between them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from integrations.base import ByteSource, ProgressCallback, TokenSet, UploadCheckpoint
from integrations.chunks import ChunkReader
from integrations.errors import InvalidRequest, NotFound, PlatformUnavailable
from integrations.http import BodyParts
from integrations.progress import Deciles
from integrations.x._errors import PLATFORM
from integrations.x.api import XApi
from integrations.x.pacing import Clock

log = logging.getLogger(__name__)

MAX_SEGMENT_BYTES = 5_000_000  # "It must be <= 5 MB" (APPEND's media): read as 10^6 bytes
MAX_SEGMENTS = 1000  # segment_index 0-999
MAX_VIDEO_BYTES = 512 * 1024 * 1024  # total_bytes range of initialize; 512 MB videos
VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm", "video/mp2t"})
EXPIRY_MARGIN_SECONDS = 60.0  # a media id this close to expiry is not worth resuming

Phase = Literal["append", "finalized", "posting", "posted"]
_PREFIX = "x1:"


@dataclass(frozen=True, slots=True)
class UploadState:
    """What the checkpoint keeps between attempts (not a secret, but stored like one)."""

    media_id: str
    media_key: str
    total: int
    segment_bytes: int
    expires_at: float
    next_segment: int = 0
    phase: Phase = "append"
    post_id: str | None = None
    check_at: float = 0.0  # after finalize: X asked not to poll before this (Unix seconds)

    def encode(self) -> str:
        return _PREFIX + json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None) -> UploadState | None:
        """The saved state, or None when there is none or it is not ours (start afresh)."""
        if not raw or not raw.startswith(_PREFIX):
            return None
        try:
            return cls(**json.loads(raw.removeprefix(_PREFIX)))
        except (TypeError, ValueError):
            return None

    def confirmed(self, total: int) -> int:
        return min(self.next_segment * self.segment_bytes, total)


def multipart_segment(boundary: str, index: int, pieces: list[bytes]) -> BodyParts:
    """The multipart/form-data body of one append: `segment_index`, then `media` (the
    segment's bytes, in the pieces the source read them, sent as they are: never joined)."""
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="segment_index"\r\n\r\n'
        f"{index}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="media"; filename="segment"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return BodyParts((head, *pieces, f"\r\n--{boundary}--\r\n".encode()))


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    return data if isinstance(data, dict) else {}


class MediaUploader:
    """Gets a video to X as a processed media id, resuming from the checkpoint."""

    def __init__(
        self,
        api: XApi,
        *,
        clock: Clock,
        segment_bytes: int,
        processing_timeout: float,
    ) -> None:
        if not 0 < segment_bytes <= MAX_SEGMENT_BYTES:
            raise ValueError(f"segment size must be 1..{MAX_SEGMENT_BYTES} bytes")
        self._api = api
        self._clock = clock
        self.segment_bytes = segment_bytes
        self._timeout = processing_timeout

    def usable(self, state: UploadState | None, source: ByteSource) -> UploadState | None:
        """The saved media if it can still be resumed (same size, not about to expire)."""
        if state is None or state.phase not in ("append", "finalized"):
            return state
        if state.expires_at - EXPIRY_MARGIN_SECONDS <= self._clock.now():
            log.info("x media id expired; starting the upload again")
            return None
        if state.total != source.size:
            return None  # not the same video
        return state

    async def prepare(
        self,
        token: TokenSet,
        source: ByteSource,
        saved: UploadState | None,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None,
    ) -> UploadState:
        """A media id X has processed and that a post may carry (phase "finalized")."""
        check_source(source)
        state = self.usable(saved, source)
        resumed = state is not None
        if state is None:
            state = await self._initialize(token, source, checkpoint)
        try:
            return await self._complete(token, source, state, checkpoint, progress)
        except (InvalidRequest, NotFound) as exc:
            # X forgot the saved media id (expired early, or purged): start once more.
            if not resumed or exc.status not in (400, 404):
                raise
            log.warning("x refused the saved media id; starting the upload again")
            state = await self._initialize(token, source, checkpoint)
            return await self._complete(token, source, state, checkpoint, progress)

    async def _initialize(
        self, token: TokenSet, source: ByteSource, checkpoint: UploadCheckpoint
    ) -> UploadState:
        body = await self._api.call(
            "POST",
            "2/media/upload/initialize",
            token=token.access_token,
            endpoint="POST /2/media/upload/initialize",
            doing="starting the video upload",
            json={
                "media_type": source.mime_type,
                "total_bytes": source.size,
                "media_category": "tweet_video",
            },
        )
        data = _data(body)
        media_id, media_key = str(data.get("id") or ""), str(data.get("media_key") or "")
        if not media_id.isdigit():
            raise PlatformUnavailable(
                "X did not start the video upload.", platform=PLATFORM, reason="bad_response"
            )
        expires_in = float(data.get("expires_after_secs") or 0)
        state = UploadState(
            media_id=media_id,
            media_key=media_key,
            total=source.size,
            segment_bytes=max(self.segment_bytes, -(-source.size // MAX_SEGMENTS)),
            expires_at=self._clock.now() + expires_in,
        )
        await checkpoint.save(state.encode(), 0)
        return state

    async def _complete(
        self,
        token: TokenSet,
        source: ByteSource,
        state: UploadState,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None,
    ) -> UploadState:
        total = source.size
        info: Any = None
        if state.phase == "append":
            state = await self._append_rest(token, source, state, checkpoint, progress)
            body = await self._api.call(
                "POST",
                f"2/media/upload/{state.media_id}/finalize",
                token=token.access_token,
                endpoint="POST /2/media/upload/finalize",
                doing="finishing the video upload",
            )
            info = _data(body).get("processing_info")
            check_at = self._clock.now() + _check_after(info) if isinstance(info, dict) else 0.0
            state = replace(state, phase="finalized", check_at=check_at)
            await checkpoint.save(state.encode(), total)
            if not isinstance(info, dict):
                return state  # no processing_info: the media is ready
        else:
            # Resumed while X processes: keep to the wait it asked for before polling.
            wait = state.check_at - self._clock.now()
            if wait > 0:
                await self._clock.sleep(min(wait, self._timeout))
            info = await self._status(token, state)
        await self._wait_processed(token, state, info, checkpoint)
        return state

    async def _append_rest(
        self,
        token: TokenSet,
        source: ByteSource,
        state: UploadState,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None,
    ) -> UploadState:
        total = source.size
        report = Deciles(progress, total)
        reader = ChunkReader(source, platform=PLATFORM)
        boundary = secrets.token_hex(16)
        size = state.segment_bytes

        async def segment(index: int) -> BodyParts:
            offset = index * size
            pieces = await reader.read(offset, min(size, total - offset))
            return multipart_segment(boundary, index, pieces)

        def read_ahead(index: int) -> asyncio.Task[BodyParts] | None:
            """Start reading segment `index` and framing its body (None past the end), so
            that this work (the source's reads) happens while the append before it is
            on the wire, not between two appends."""
            return asyncio.create_task(segment(index)) if index * size < total else None

        ahead = read_ahead(state.next_segment)
        try:
            while ahead is not None:
                content = await ahead
                ahead = read_ahead(state.next_segment + 1)
                body = await self._api.call(
                    "POST",
                    f"2/media/upload/{state.media_id}/append",
                    token=token.access_token,
                    endpoint="POST /2/media/upload/append",
                    doing="uploading the video",
                    content=content,
                    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                    idempotent=True,
                )
                expires_at = _data(body).get("expires_at")
                state = replace(
                    state,
                    next_segment=state.next_segment + 1,
                    expires_at=float(expires_at)
                    if isinstance(expires_at, int | float)
                    else state.expires_at,
                )
                await checkpoint.save(state.encode(), state.confirmed(total))
                await report(state.confirmed(total))
        finally:
            if ahead is not None:  # an append failed: the read ahead is not wanted
                ahead.cancel()
                await asyncio.wait([ahead])  # unwound before the reader closes the source
                if not ahead.cancelled():
                    ahead.exception()  # retrieved: the append's failure is the one to raise
            await reader.aclose()
        return state

    async def _status(self, token: TokenSet, state: UploadState) -> Any:
        body = await self._api.call(
            "GET",
            "2/media/upload",
            token=token.access_token,
            endpoint="GET /2/media/upload",
            doing="checking the video's processing",
            params={"media_id": state.media_id, "command": "STATUS"},
        )
        return _data(body).get("processing_info")

    async def _wait_processed(
        self, token: TokenSet, state: UploadState, info: Any, checkpoint: UploadCheckpoint
    ) -> None:
        """Poll while X processes the video, `check_after_secs` apart, within the timeout."""
        deadline = self._clock.now() + self._timeout
        while isinstance(info, dict):
            stage = info.get("state")
            if stage == "succeeded":
                return
            if stage == "failed":
                await checkpoint.save(None, 0)  # a retry must upload again
                error = info.get("error")
                name = error.get("name") if isinstance(error, dict) else None
                raise InvalidRequest(
                    "X could not process the video"
                    + (f" ({name})" if isinstance(name, str) else "")
                    + ". Check that it is an MP4 or MOV X accepts (length, size, codecs).",
                    platform=PLATFORM,
                    reason="processing_failed",
                )
            wait = _check_after(info)
            if self._clock.now() + wait > deadline:
                raise PlatformUnavailable(
                    "X is still processing the video; it will pick up where it left off.",
                    platform=PLATFORM,
                    reason="processing_timeout",
                    retry_after=wait,
                )
            await self._clock.sleep(wait)
            info = await self._status(token, state)


def _check_after(info: dict[str, Any]) -> float:
    """Seconds X asks to wait before the next status poll (at least one)."""
    value = info.get("check_after_secs")
    return max(float(value), 1.0) if isinstance(value, int | float) else 1.0


def check_source(source: ByteSource) -> None:
    """Refuse what X would refuse at initialize, before any call."""
    if source.size <= 0:
        raise InvalidRequest("The video file is empty.", platform=PLATFORM, reason="empty")
    if source.size > MAX_VIDEO_BYTES:
        raise InvalidRequest(
            "X takes videos up to 512 MB; this one is larger.",
            platform=PLATFORM,
            reason="too_large",
        )
    if source.mime_type not in VIDEO_TYPES:
        raise InvalidRequest(
            "X takes MP4 or MOV videos (also WebM and MPEG-TS); this file is "
            f"{source.mime_type[:40]}.",
            platform=PLATFORM,
            reason="media_type",
        )
