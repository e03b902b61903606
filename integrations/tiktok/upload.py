"""TikTok's Content Posting flow: creator info, init, chunked PUTs, status polling.

1. Direct post: ``POST /v2/post/publish/creator_info/query/`` (privacy levels the
   creator may use, interaction switches), then ``POST /v2/post/publish/video/init/``
   with ``post_info`` and ``source_info``. Inbox draft: ``POST
   /v2/post/publish/inbox/video/init/`` with ``source_info`` only (a draft carries no
   caption; the creator writes it in the app).
2. FILE_UPLOAD: ``PUT upload_url`` chunk after chunk, in order, each with
   ``Content-Range: bytes a-b/total`` (206 for a chunk, 201 once whole). The chunk
   plan follows the media transfer guide (see `plan_chunks`). PULL_FROM_URL: TikTok
   fetches ``video_url`` itself.
3. ``POST /v2/post/publish/status/fetch/`` until PUBLISH_COMPLETE (direct),
   SEND_TO_USER_INBOX (draft) or FAILED, or until the timeout (the checkpoint stays,
   so a later call polls on).

Resuming: the checkpoint keeps the publish id, the upload URL (a secret: it embeds
an upload token; the caller stores it encrypted), the chunk plan and the bytes
confirmed. After a cut connection, a 5xx, or a restart, the server's own
``uploaded_bytes`` (from the status endpoint) says where to continue, so a chunk
TikTok already holds is never sent twice and nothing is posted twice. The upload
URL lives one hour; an older unfinished session is dropped and a new post started
(the old one never completes). When TikTok refuses a direct post with a code in
`FALLBACK_CODES` and TIKTOK_INBOX_FALLBACK is on, the video goes to the inbox.
Chunk bodies stream from the source: memory stays at one source piece.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import httpx

from integrations.base import (
    ByteSource,
    HostedByteSource,
    ProgressCallback,
    TokenSet,
    UploadCheckpoint,
    UploadRequest,
    UploadResult,
)
from integrations.capabilities import CaptionRules
from integrations.chunks import ChunkReader
from integrations.errors import (
    IntegrationError,
    InvalidRequest,
    PlatformUnavailable,
    RateLimited,
)
from integrations.metrics import upload_interrupted
from integrations.progress import Deciles
from integrations.text import compose_post_text
from integrations.tiktok._errors import PLATFORM, error_from_response, failure, map_error
from integrations.tiktok.api import TikTokApi
from integrations.tiktok.convert import CreatorInfo, PublishStatus, creator_from, status_from

log = logging.getLogger(__name__)

CREATOR_INFO = "/v2/post/publish/creator_info/query/"
DIRECT_INIT = "/v2/post/publish/video/init/"
INBOX_INIT = "/v2/post/publish/inbox/video/init/"
STATUS = "/v2/post/publish/status/fetch/"

# The bot's privacy words -> TikTok's privacy_level values.
PRIVACY_LEVELS: dict[str, str] = {
    "public": "PUBLIC_TO_EVERYONE",
    "followers": "FOLLOWER_OF_CREATOR",
    "friends": "MUTUAL_FOLLOW_FRIENDS",
    "private": "SELF_ONLY",
}
WORDS = {level: word for word, level in PRIVACY_LEVELS.items()}

VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
MAX_VIDEO_BYTES = 4_000_000_000  # "Maximum of 4GB" (media transfer guide)
MAX_CHUNKS = 1000
UPLOAD_URL_LIFETIME = 3600.0  # "valid for one hour after issuance"
URL_MARGIN = 300.0  # do not start sending into a URL about to lapse
MAX_RESUMES = 3  # consecutive failures without progress before giving up for now
DONE = ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX")

# Direct-post refusals an inbox draft can still serve (the draft path has no audit
# restriction, no per-app creator cap, and needs video.upload instead of video.publish).
FALLBACK_CODES = frozenset(
    {
        "unaudited_client_can_only_post_to_private_accounts",
        "reached_active_user_cap",
        "scope_not_authorized",
    }
)

Mode = Literal["direct", "inbox"]


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """How a file is cut: `count` chunks of `chunk_size`, the last one taking the rest."""

    size: int
    chunk_size: int
    count: int

    def span(self, index: int) -> tuple[int, int]:
        """First and last byte of chunk `index`."""
        first = index * self.chunk_size
        last = self.size - 1 if index == self.count - 1 else first + self.chunk_size - 1
        return first, last

    def index(self, offset: int) -> int:
        """The chunk holding byte `offset`."""
        return min(offset // self.chunk_size, self.count - 1)

    def boundary(self, offset: int) -> int:
        """The start of the chunk holding `offset` (a partial chunk counts for nothing)."""
        if offset >= self.size:
            return self.size
        return self.index(offset) * self.chunk_size


def plan_chunks(size: int, chunk_bytes: int) -> ChunkPlan:
    """TikTok's rules: total_chunk_count = floor(size / chunk_size); trailing bytes join the
    last chunk (so it stays under 128 MB while chunk_size <= 64 MB); a file no larger
    than one chunk (every file under 5 MB) goes whole; at most 1000 chunks."""
    if size <= 0:
        raise ValueError("size must be positive")
    if size <= chunk_bytes:
        return ChunkPlan(size, size, 1)
    chunk = max(chunk_bytes, -(-size // MAX_CHUNKS))
    return ChunkPlan(size, chunk, size // chunk)


@dataclass(frozen=True, slots=True)
class Session:
    """What a restart needs to continue one post (stored encrypted by the caller)."""

    mode: Mode
    publish_id: str
    upload_url: str | None  # None: TikTok pulls the video from a URL
    issued_at: float  # wall-clock seconds: it must mean the same after a restart
    chunk_size: int
    chunk_count: int
    privacy: str  # the bot's word the post was created with
    username: str | None

    def __repr__(self) -> str:  # the upload URL carries an upload token
        return f"Session(mode={self.mode!r}, publish_id={self.publish_id!r})"


SESSION_PREFIX = "tiktok:v1:"


def encode_session(session: Session) -> str:
    return SESSION_PREFIX + json.dumps(asdict(session), separators=(",", ":"))


def decode_session(text: str | None) -> Session | None:
    """A saved session, or None when there is none (or it is not one of ours)."""
    if not text or not text.startswith(SESSION_PREFIX):
        return None
    try:
        raw = json.loads(text.removeprefix(SESSION_PREFIX))
        return Session(**raw)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """The posting choices from settings."""

    post_mode: Mode
    inbox_fallback: bool
    pull_from_url: bool
    chunk_bytes: int
    poll_seconds: float
    publish_timeout_seconds: float
    allow_comments: bool
    allow_duets: bool
    allow_stitches: bool


class Publisher:
    """Posts one video (or draft) to TikTok, resuming from an UploadCheckpoint."""

    def __init__(
        self,
        *,
        api: TikTokApi,
        http: httpx.AsyncClient,
        config: PublishConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api = api
        self._http = http
        self._config = config
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    async def run(
        self,
        token: TokenSet,
        source: ByteSource,
        request: UploadRequest,
        *,
        allowed_privacy: tuple[str, ...],
        caption_rules: CaptionRules,
        checkpoint: UploadCheckpoint,
        progress: ProgressCallback | None,
    ) -> UploadResult:
        caption = compose_post_text(request)
        _check(source, request, caption, allowed_privacy, caption_rules)
        saved, confirmed = await checkpoint.load()
        session = decode_session(saved)
        resumed = session is not None
        if session is not None and self._lapsed(session, confirmed, source.size):
            log.info("tiktok upload url lapsed; starting a new post", extra=_ids(session))
            session, resumed = None, False
        if session is None:
            session = await self._start(token, source, request, caption)
            confirmed = 0
            await checkpoint.save(encode_session(session), 0)
        report = Deciles(progress, source.size)
        if session.upload_url is not None and confirmed < source.size:
            await self._send(token, session, source, checkpoint, report, confirmed, resumed)
        await report(source.size)
        return await self._wait(token, session, request, checkpoint)

    def _lapsed(self, session: Session, confirmed: int, size: int) -> bool:
        """The upload URL is too old to finish sending into."""
        if session.upload_url is None or confirmed >= size:
            return False
        return self._clock() - session.issued_at > UPLOAD_URL_LIFETIME - URL_MARGIN

    # --- starting a post ------------------------------------------------------------

    def _mode(self, token: TokenSet) -> Mode:
        config = self._config
        if config.post_mode == "inbox":
            return "inbox"
        scopes = token.scopes
        # A creator who granted the draft scope but not the posting one gets a draft.
        if config.inbox_fallback and "video.upload" in scopes and "video.publish" not in scopes:
            return "inbox"
        return "direct"

    def _falls_back(self, exc: IntegrationError, token: TokenSet) -> bool:
        if not self._config.inbox_fallback or exc.reason not in FALLBACK_CODES:
            return False
        # A missing scope only helps if the draft's own scope was granted.
        return exc.reason != "scope_not_authorized" or "video.upload" in token.scopes

    async def _start(
        self, token: TokenSet, source: ByteSource, request: UploadRequest, caption: str
    ) -> Session:
        if self._mode(token) == "direct":
            try:
                return await self._start_direct(token, source, request, caption)
            except IntegrationError as exc:
                if not self._falls_back(exc, token):
                    raise
                log.info(
                    "tiktok refused a direct post; sending a draft", extra={"reason": exc.reason}
                )
        return await self._start_inbox(token, source)

    async def _start_direct(
        self, token: TokenSet, source: ByteSource, request: UploadRequest, caption: str
    ) -> Session:
        creator = creator_from(
            await self._api.call(
                "POST",
                CREATOR_INFO,
                token=token.access_token,
                doing="reading the creator's posting options",
                idempotent=True,
            )
        )
        # The declared privacy values already hold an unaudited app to "private".
        privacy = request.privacy
        level = PRIVACY_LEVELS[privacy]
        if level not in creator.privacy_levels:
            offered = [WORDS[v] for v in creator.privacy_levels if v in WORDS]
            raise InvalidRequest(
                f"This TikTok account cannot post as '{privacy}' right now; it offers: "
                f"{', '.join(offered) or 'nothing'}.",
                platform=PLATFORM,
                reason="privacy_level_option_mismatch",
            )
        plan, source_info = self._source_info(source)
        data = await self._api.call(
            "POST",
            DIRECT_INIT,
            token=token.access_token,
            doing="starting the TikTok post",
            idempotent=False,
            body={
                "post_info": self._post_info(creator, caption, level),
                "source_info": source_info,
            },
        )
        return self._session("direct", data, plan, privacy, creator.username)

    async def _start_inbox(self, token: TokenSet, source: ByteSource) -> Session:
        plan, source_info = self._source_info(source)
        data = await self._api.call(
            "POST",
            INBOX_INIT,
            token=token.access_token,
            doing="sending the video to the TikTok inbox",
            idempotent=False,
            body={"source_info": source_info},
        )
        return self._session("inbox", data, plan, "private", None)

    def _post_info(self, creator: CreatorInfo, caption: str, level: str) -> dict[str, Any]:
        config = self._config
        return {
            "title": caption,
            "privacy_level": level,
            # The creator's own "no one" settings win over ours.
            "disable_comment": creator.comment_disabled or not config.allow_comments,
            "disable_duet": creator.duet_disabled or not config.allow_duets,
            "disable_stitch": creator.stitch_disabled or not config.allow_stitches,
        }

    def _source_info(self, source: ByteSource) -> tuple[ChunkPlan, dict[str, Any]]:
        plan = plan_chunks(source.size, self._config.chunk_bytes)
        if self._config.pull_from_url:
            # media="public_url": the caller hands a HostedByteSource (base.HostedByteSource).
            url = cast(HostedByteSource, source).public_url
            if url is None:
                raise InvalidRequest(
                    "TikTok fetches this video from a public web address, and it is only "
                    "stored here.",
                    platform=PLATFORM,
                    reason="needs_public_url",
                )
            return plan, {"source": "PULL_FROM_URL", "video_url": url}
        return plan, {
            "source": "FILE_UPLOAD",
            "video_size": plan.size,
            "chunk_size": plan.chunk_size,
            "total_chunk_count": plan.count,
        }

    def _session(
        self,
        mode: Mode,
        data: dict[str, Any],
        plan: ChunkPlan,
        privacy: str,
        username: str | None,
    ) -> Session:
        publish_id = data.get("publish_id")
        upload_url = data.get("upload_url")
        if (
            not isinstance(publish_id, str)
            or not publish_id
            or (not self._config.pull_from_url and not isinstance(upload_url, str))
        ):
            raise PlatformUnavailable(
                "TikTok did not start the post properly; try again later.",
                platform=PLATFORM,
                reason="bad_response",
            )
        session = Session(
            mode=mode,
            publish_id=publish_id,
            upload_url=upload_url if isinstance(upload_url, str) else None,
            issued_at=self._clock(),
            chunk_size=plan.chunk_size,
            chunk_count=plan.count,
            privacy=privacy,
            username=username,
        )
        log.info("tiktok post started", extra=_ids(session))
        return session

    # --- sending the bytes ----------------------------------------------------------

    async def _send(
        self,
        token: TokenSet,
        session: Session,
        source: ByteSource,
        checkpoint: UploadCheckpoint,
        report: Deciles,
        confirmed: int,
        resync: bool,
    ) -> None:
        """PUT the chunks from `confirmed` on; after any failure (and on a resume) ask
        TikTok how many bytes it holds and continue from there."""
        assert session.upload_url is not None
        plan = ChunkPlan(source.size, session.chunk_size, session.chunk_count)
        failures = 0
        reader = ChunkReader(source, platform=PLATFORM)
        try:
            while confirmed < plan.size:
                if resync:
                    status = await self._status(token, session)
                    if status.status == "FAILED":  # a retry must start a new post
                        await checkpoint.save(None, 0)
                        raise failure(status.fail_reason, doing="uploading the video")
                    confirmed = continue_at(plan, status, confirmed)
                    await checkpoint.save(encode_session(session), confirmed)
                    resync = False
                    continue
                first, last = plan.span(plan.index(confirmed))
                length = last - first + 1
                try:
                    response = await self._http.put(
                        session.upload_url,
                        content=reader.body(first, length),
                        headers={
                            "Content-Type": source.mime_type,
                            "Content-Length": str(length),
                            "Content-Range": f"bytes {first}-{last}/{plan.size}",
                        },
                    )
                except (httpx.TransportError, PlatformUnavailable) as exc:
                    failures = self._failed(failures, type(exc).__name__)
                    resync = True
                    continue
                answered = response.status_code
                if answered in (200, 201, 206):
                    confirmed, failures = last + 1, 0
                    await checkpoint.save(encode_session(session), confirmed)
                    await report(confirmed)
                    continue
                if answered >= 500 or answered in (408, 429):
                    failures = self._failed(failures, f"HTTP {answered}")
                    resync = True
                    continue
                raise error_from_response(response, doing="uploading the video") or map_error(
                    None, status=answered, doing="uploading the video"
                )
        finally:
            await reader.aclose()

    @staticmethod
    def _failed(failures: int, cause: str) -> int:
        """One more failed chunk in a row: resume from TikTok's offset, or give up (the
        call fails; a later job resumes from the saved session). `cause` is an error type
        or "HTTP <status>", never a message."""
        failures += 1
        log.info("tiktok chunk failed", extra={"cause": cause, "failures": failures})
        if failures > MAX_RESUMES:
            upload_interrupted(PLATFORM, "gave_up", attempt=failures, reason=cause)
            raise PlatformUnavailable(
                f"The upload to TikTok kept failing ({cause}); it will resume later from "
                "where it stopped.",
                platform=PLATFORM,
                reason="upload_failing",
            )
        upload_interrupted(PLATFORM, "resumed", attempt=failures, reason=cause)
        return failures

    # --- waiting for the outcome ----------------------------------------------------

    async def _status(self, token: TokenSet, session: Session) -> PublishStatus:
        return status_from(
            await self._api.call(
                "POST",
                STATUS,
                token=token.access_token,
                doing="checking the TikTok post",
                idempotent=True,
                body={"publish_id": session.publish_id},
            )
        )

    async def _wait(
        self,
        token: TokenSet,
        session: Session,
        request: UploadRequest,
        checkpoint: UploadCheckpoint,
    ) -> UploadResult:
        """Poll the status until TikTok finishes, fails, or the timeout passes."""
        deadline = self._monotonic() + self._config.publish_timeout_seconds
        while True:
            wait = self._config.poll_seconds
            try:
                status = await self._status(token, session)
            except RateLimited as exc:  # 30 status reads a minute per token
                status = None
                wait = max(wait, exc.retry_after or wait)
            if status is not None:
                if status.status in DONE:
                    return self._result(session, request, status)
                if status.status == "FAILED":
                    await checkpoint.save(None, 0)  # a retry must start a new post
                    raise failure(status.fail_reason, doing="publishing the video")
            if self._monotonic() + wait > deadline:
                raise PlatformUnavailable(
                    "TikTok is still processing the video. Try again in a few minutes; it "
                    "will pick up where it left off.",
                    platform=PLATFORM,
                    reason="processing_timeout",
                    retry_after=max(wait, 60.0),
                )
            await self._sleep(wait)

    def _result(
        self, session: Session, request: UploadRequest, status: PublishStatus
    ) -> UploadResult:
        if status.post_ids:
            post_id = status.post_ids[0]
            url = (
                f"https://www.tiktok.com/@{session.username}/video/{post_id}"
                if session.username
                else None
            )
        else:
            # Private posts and drafts get no public id: the publish id stands for them.
            post_id, url = session.publish_id, None
        log.info("tiktok post finished", extra={**_ids(session), "status": status.status})
        return UploadResult(
            post_id=post_id,
            url=url,
            privacy=session.privacy,
            privacy_forced=session.privacy != request.privacy,
        )


def continue_at(plan: ChunkPlan, status: PublishStatus, confirmed: int) -> int:
    """Where to continue sending: the chunk boundary of TikTok's `uploaded_bytes`."""
    if status.status in DONE:
        return plan.size
    if status.uploaded_bytes is None:
        return plan.boundary(confirmed)
    server = plan.boundary(status.uploaded_bytes)
    if server != confirmed:
        log.info("resuming from tiktok's offset", extra={"local": confirmed, "server": server})
    return server


def _check(
    source: ByteSource,
    request: UploadRequest,
    caption: str,
    allowed_privacy: tuple[str, ...],
    rules: CaptionRules,
) -> None:
    """Refuse, before any call, what TikTok would refuse."""
    problem = None
    if source.size <= 0:
        problem = "The video file is empty."
    elif source.size > MAX_VIDEO_BYTES:
        problem = "TikTok takes videos up to 4 GB."
    elif source.mime_type not in VIDEO_TYPES:
        problem = "TikTok takes MP4, MOV or WebM videos."
    elif request.privacy not in allowed_privacy:
        problem = f"TikTok privacy must be one of: {', '.join(allowed_privacy)}."
    elif found := rules.problems(title=None, body=caption):
        problem = f"The TikTok caption has problems: {'; '.join(found)}."
    if problem is not None:
        raise InvalidRequest(problem, platform=PLATFORM, reason="bad_input")


def _ids(session: Session) -> dict[str, str]:
    return {"publish_id": session.publish_id, "mode": session.mode}
