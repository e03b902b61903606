"""The resumable upload protocol against the fake, with injected faults.

The platform's client is the production one (`make_client`), so a cut connection
reaches the uploader the way it does in production: as `ConnectionLost`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from bot import telemetry
from integrations.base import TokenSet, UploadRequest
from integrations.errors import (
    ConnectionLost,
    InvalidRequest,
    PermissionDenied,
    PlatformUnavailable,
    QuotaExceeded,
    TokenExpired,
)
from integrations.youtube import ResumableUploader
from tests.fakes.google import MemoryCheckpoint, MemorySource
from tests.fakes.google_env import TEST_RETRY

CHUNK = 256 * 1024


@pytest.fixture
def token(google):
    channel = google.add_channel("Uploads")
    raw = google.issue_tokens(channel.id)
    return TokenSet(access_token=raw["access_token"], refresh_token=raw["refresh_token"])


def _data(size: int) -> bytes:
    return os.urandom(size)


def _only_session(google):
    assert len(google.sessions) == 1
    return next(iter(google.sessions.values()))


async def test_chunk_size_must_be_a_multiple_of_256k(http):
    with pytest.raises(ValueError):
        ResumableUploader(http=http, upload_base="http://x", chunk_bytes=CHUNK + 1)


async def test_upload_in_chunks_with_progress(google, make_platform, token):
    data = _data(10 * CHUNK + 1234)
    source = MemorySource(data)
    checkpoint = MemoryCheckpoint()
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    request = UploadRequest(title="Hello", description="d", tags=("a", "b"), privacy="unlisted")
    result = await make_platform().upload(
        token, source, request, checkpoint=checkpoint, progress=on_progress
    )
    session = _only_session(google)
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert session.total == len(data)
    assert session.content_type == "video/mp4"
    assert session.metadata["snippet"]["tags"] == ["a", "b"]
    assert session.metadata["status"]["privacyStatus"] == "unlisted"
    assert result.post_id == session.video_id and not result.privacy_forced
    assert session.chunk_puts == 11
    assert session.wire_bytes == len(data)  # nothing sent twice
    # Checkpoints at every confirmed chunk, progress about every 10 %.
    assert checkpoint.saves[:3] == [0, CHUNK, 2 * CHUNK]
    assert len(progress) == 10
    assert progress[-1] == (len(data), len(data))
    assert all(t == len(data) for _, t in progress)
    assert google.calls_to("/upload/youtube/v3/videos")[0]["notifySubscribers"] == "true"


async def test_a_progress_callback_stops_the_upload_by_raising_an_integration_error(
    google, make_platform, token
):
    """A cancelled job says so from its progress callback: the upload stops there and the
    video is never finished. Any other failure of the callback is cosmetic."""
    data = _data(10 * CHUNK + 1234)
    calls: list[int] = []

    async def cancel_at_30_percent(done: int, total: int) -> None:
        calls.append(done)
        if done * 10 >= 3 * total:
            raise InvalidRequest("Cancelled.", platform="jobs", reason="cancelled")
        raise RuntimeError("the chat message could not be edited")  # cosmetic: logged

    request = UploadRequest(title="Hello", description="d", tags=(), privacy="private")
    with pytest.raises(InvalidRequest, match="Cancelled"):
        await make_platform().upload(
            token,
            MemorySource(data),
            request,
            checkpoint=MemoryCheckpoint(),
            progress=cancel_at_30_percent,
        )
    session = _only_session(google)
    assert len(calls) == 3  # 10 %, 20 % (their failures shrugged off), then 30 %: stopped
    assert session.video_id is None and session.wire_bytes < len(data)


def _interruptions(outcome: str) -> float:
    labels = {"platform": "youtube", "outcome": outcome}
    return REGISTRY.get_sample_value("socialops_upload_interruptions_total", labels) or 0.0


async def test_dropped_connection_resumes_in_process_from_server_offset(
    google, make_platform, token, guards
):
    data = _data(6 * CHUNK)
    google.faults.drop_at_byte = 2 * CHUNK + 5000
    checkpoint = MemoryCheckpoint()
    source = MemorySource(data)
    resumed = _interruptions("resumed")
    spans = InMemorySpanExporter()
    tracing = telemetry.install(SimpleSpanProcessor(spans), role="test")
    try:
        # One upload() call: the cut is resumed inside it, not left to a later job.
        with tracing.tracer.start_as_current_span("upload"):
            result = await make_platform().upload(
                token, source, UploadRequest(title="t", privacy="private"), checkpoint=checkpoint
            )
    finally:
        tracing.shutdown()
    assert _interruptions("resumed") == resumed + 1  # counted, and noted on the trace
    [upload] = [s for s in spans.get_finished_spans() if s.name == "upload"]
    [event] = upload.events
    assert event.name == "upload.interrupted"
    assert dict(event.attributes or {}) == {
        "socialops.platform": "youtube",
        "socialops.outcome": "resumed",
        "socialops.attempt": 1,
        "error.type": "ReadError",  # what cut the connection
    }
    session = _only_session(google)
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert session.status_queries == 1  # asked for the offset after the cut
    assert checkpoint.saves.count(2 * CHUNK + 5000) == 1  # resumed from the server's byte
    assert source.opens == [0, 2 * CHUNK + 5000]
    assert session.wire_bytes == len(data)  # the partly sent chunk's tail only, once
    assert source.bytes_read < 1.5 * len(data)  # all the client could have sent
    assert result.post_id == session.video_id
    assert len(google.videos_created) == 1
    assert guards.guard("youtube").breaker.failures == 0  # the resumed upload ended well


async def test_the_transport_reports_a_cut_chunk_as_connection_lost(google, http, token):
    # What the uploader relies on: a streamed chunk is not replayed by the transport.
    uploader = ResumableUploader(http=http, upload_base=f"{google.base}/upload", retry=TEST_RETRY)
    source = MemorySource(_data(CHUNK))
    session = await uploader.start_session(
        access_token=token.access_token, source=source, metadata={}, notify_subscribers=False
    )
    google.faults.drop_chunk_puts = 1

    async def body():
        async for piece in source.open(0):
            yield piece

    with pytest.raises(ConnectionLost):
        await http.put(
            session,
            content=body(),
            headers={
                "Authorization": f"Bearer {token.access_token}",
                "Content-Length": str(CHUNK),
                "Content-Range": f"bytes 0-{CHUNK - 1}/{CHUNK}",
            },
        )
    assert _only_session(google).chunk_puts == 1  # sent once, not retried


async def test_repeated_cuts_without_progress_give_up_then_a_later_call_resumes(
    google, make_platform, token
):
    data = _data(3 * CHUNK)
    google.faults.drop_chunk_puts = 100
    checkpoint = MemoryCheckpoint()
    gave_up = _interruptions("gave_up")
    with pytest.raises(PlatformUnavailable) as info:
        await make_platform().upload(
            token,
            MemorySource(data),
            UploadRequest(title="t", privacy="private"),
            checkpoint=checkpoint,
        )
    assert isinstance(info.value.__cause__, ConnectionLost)
    assert "resume later" in info.value.user_message
    assert _interruptions("gave_up") == gave_up + 1
    session = _only_session(google)
    assert session.chunk_puts == TEST_RETRY.max_attempts  # bounded
    assert session.status_queries == TEST_RETRY.max_attempts - 1
    assert checkpoint.session is not None and checkpoint.confirmed == 0

    google.faults.drop_chunk_puts = 0
    result = await make_platform().upload(
        token,
        MemorySource(data),
        UploadRequest(title="t", privacy="private"),
        checkpoint=checkpoint,
    )
    assert _only_session(google).sha256 == hashlib.sha256(data).hexdigest()
    assert google.videos_created == [result.post_id]


async def test_503_once_then_continue(google, make_platform, token):
    data = _data(4 * CHUNK + 10)
    google.faults.fail_503_at_chunk = 2
    await make_platform().upload(
        token,
        MemorySource(data),
        UploadRequest(title="t", privacy="private"),
        checkpoint=MemoryCheckpoint(),
    )
    session = _only_session(google)
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert session.status_queries == 1
    assert session.wire_bytes == len(data) + CHUNK  # the refused chunk went twice


async def test_forgotten_chunk_is_sent_again_from_the_server_offset(google, make_platform, token):
    data = _data(4 * CHUNK)
    google.faults.forget_chunk = 3
    source = MemorySource(data)
    await make_platform().upload(
        token, source, UploadRequest(title="t", privacy="private"), checkpoint=MemoryCheckpoint()
    )
    session = _only_session(google)
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert session.wire_bytes == len(data) + CHUNK
    assert source.opens == [0, 2 * CHUNK]  # reopened where the server says it stands


async def test_resume_from_a_checkpoint_after_the_process_died(google, make_platform, token):
    data = _data(8 * CHUNK)
    google.faults.hold_at_byte = 3 * CHUNK + 100
    checkpoint = MemoryCheckpoint()
    platform = make_platform()
    task = asyncio.create_task(
        platform.upload(
            token,
            MemorySource(data),
            UploadRequest(title="t", privacy="private"),
            checkpoint=checkpoint,
        )
    )
    await asyncio.wait_for(google.held.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checkpoint.session is not None and checkpoint.confirmed == 3 * CHUNK
    # A new uploader (new process) resumes with the saved session.
    source = MemorySource(data)
    result = await make_platform().upload(
        token, source, UploadRequest(title="t", privacy="private"), checkpoint=checkpoint
    )
    session = _only_session(google)
    assert session.sha256 == hashlib.sha256(data).hexdigest()
    assert source.opens == [3 * CHUNK + 100]  # from the server's offset, not ours
    assert result.post_id == session.video_id
    assert len(google.videos_created) == 1


async def test_completed_session_is_not_uploaded_twice(google, make_platform, token):
    data = _data(2 * CHUNK)
    checkpoint = MemoryCheckpoint()
    platform = make_platform()
    first = await platform.upload(
        token,
        MemorySource(data),
        UploadRequest(title="t", privacy="private"),
        checkpoint=checkpoint,
    )
    again = await platform.upload(
        token,
        MemorySource(data),
        UploadRequest(title="t", privacy="private"),
        checkpoint=checkpoint,
    )
    assert again.post_id == first.post_id
    assert len(google.videos_created) == 1
    assert _only_session(google).wire_bytes == len(data)


@pytest.mark.parametrize(
    ("status", "reason", "error", "retry_after"),
    [
        (403, "quotaExceeded", QuotaExceeded, None),
        (400, "uploadLimitExceeded", QuotaExceeded, 86400.0),
        (403, "forbidden", PermissionDenied, None),
        (401, "authError", TokenExpired, None),
    ],
)
async def test_errors_are_mapped(google, make_platform, token, status, reason, error, retry_after):
    google.faults.insert_error = (status, reason)
    with pytest.raises(error) as info:
        await make_platform().upload(
            token,
            MemorySource(b"x" * 100),
            UploadRequest(title="t", privacy="private"),
            checkpoint=MemoryCheckpoint(),
        )
    assert info.value.status == status and info.value.reason == reason
    if retry_after is not None:
        assert info.value.retry_after == retry_after
        assert "24 h" in str(info.value)
    if reason == "quotaExceeded":
        assert 0 < info.value.retry_after <= 86400
        assert "Pacific" in str(info.value)
    assert not google.sessions


async def test_unverified_project_forces_private(google, make_platform, token):
    google.faults.force_private = True
    result = await make_platform().upload(
        token,
        MemorySource(b"x" * 1000),
        UploadRequest(title="t", privacy="public"),
        checkpoint=MemoryCheckpoint(),
    )
    assert result.privacy == "private" and result.privacy_forced


class GatedCheckpoint(MemoryCheckpoint):
    """Its save of one offset waits for `gate` (a slow database), or fails (a lost one)."""

    def __init__(self, offset: int, *, fail: bool = False) -> None:
        super().__init__()
        self.offset = offset
        self.fail = fail
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        if confirmed == self.offset:
            if self.fail:
                raise RuntimeError("the database went away")
            self.waiting.set()
            await self.gate.wait()
        await super().save(session_uri, confirmed)


async def test_an_offset_save_does_not_hold_the_next_chunk_back(google, make_platform, token):
    data = _data(4 * CHUNK)
    checkpoint = GatedCheckpoint(CHUNK)

    async def open_gate_once_the_next_chunk_arrives() -> None:
        await checkpoint.waiting.wait()
        while not google.sessions or _only_session(google).received <= CHUNK:
            await asyncio.sleep(0.005)
        checkpoint.gate.set()

    opener = asyncio.create_task(open_gate_once_the_next_chunk_arrives())
    async with asyncio.timeout(10):  # a save on the chunks' path would never open the gate
        result = await make_platform().upload(
            token,
            MemorySource(data),
            UploadRequest(title="t", privacy="private"),
            checkpoint=checkpoint,
        )
    await opener
    assert result.post_id == _only_session(google).video_id
    assert checkpoint.saves == [0, CHUNK, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK]  # in order


async def test_a_failed_offset_save_stops_the_upload(google, make_platform, token):
    data = _data(6 * CHUNK)
    with pytest.raises(RuntimeError, match="database went away"):
        await make_platform().upload(
            token,
            MemorySource(data),
            UploadRequest(title="t", privacy="private"),
            checkpoint=GatedCheckpoint(2 * CHUNK, fail=True),
        )
    session = _only_session(google)
    assert session.chunk_puts == 3  # it surfaced at the next save, one chunk later
    assert not google.videos_created


async def test_a_stopped_upload_waits_for_its_last_save(google, make_platform, token):
    google.faults.hold_at_byte = CHUNK + 100
    checkpoint = GatedCheckpoint(CHUNK)
    task = asyncio.create_task(
        make_platform().upload(
            token,
            MemorySource(_data(4 * CHUNK)),
            UploadRequest(title="t", privacy="private"),
            checkpoint=checkpoint,
        )
    )
    await asyncio.wait_for(google.held.wait(), 10)
    await asyncio.wait_for(checkpoint.waiting.wait(), 10)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still writing the checkpoint
    checkpoint.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checkpoint.confirmed == CHUNK
