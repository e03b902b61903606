"""Publishing a Reel: container, status polling, publish, checkpoint resume, clear failures."""

from __future__ import annotations

import pytest

from integrations.base import UploadRequest
from integrations.errors import InvalidRequest, PlatformUnavailable, QuotaExceeded
from tests.integrations.instagram.conftest import IG, MemoryCheckpoint, MemorySource

REQUEST = UploadRequest(
    title="Morning light",
    description="Studio tour, part 2",
    tags=("studio", "plants"),
    privacy="public",
)


async def test_publish_polls_the_container_until_finished(ig: IG) -> None:
    ig.fake.plan_containers(in_progress_polls=3)
    checkpoint = MemoryCheckpoint()
    progress: list[tuple[int, int]] = []

    async def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    source = MemorySource()
    result = await ig.platform.upload(
        ig.token, source, REQUEST, checkpoint=checkpoint, progress=on_progress
    )

    (create,) = ig.fake.calls_to("POST", "me/media")
    assert create.params["media_type"] == "REELS"
    assert create.params["video_url"] == source.public_url
    assert create.params["caption"] == "Morning light\n\nStudio tour, part 2\n\n#studio #plants"
    polls = [
        c
        for c in ig.fake.calls
        if c.method == "GET" and c.params.get("fields") == "status_code,status"
    ]
    assert len(polls) == 4  # three IN_PROGRESS, then FINISHED
    (publish,) = ig.fake.calls_to("POST", "me/media_publish")
    assert checkpoint.saves[0] == (f"container:{publish.params['creation_id']}", 0)

    assert result.post_id == ig.user.media[0].id
    assert ig.user.media[0].caption == create.params["caption"]
    assert result.url == f"https://www.instagram.com/reel/{result.post_id}/"
    assert result.privacy == "public" and not result.privacy_forced
    assert checkpoint.session == f"published:{result.post_id}"
    assert ig.user.published_count == 1
    assert progress == [(0, source.size), (source.size, source.size)]


async def test_resume_polls_the_saved_container_instead_of_creating_another(ig: IG) -> None:
    ig.fake.plan_containers(in_progress_polls=50)
    ig.platform._publish_timeout = 0.05  # give up while Instagram is still processing
    checkpoint = MemoryCheckpoint()
    with pytest.raises(PlatformUnavailable) as info:
        await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=checkpoint)
    assert info.value.reason == "processing_timeout" and info.value.retryable
    assert checkpoint.session is not None and checkpoint.session.startswith("container:")

    container = ig.fake.containers[checkpoint.session.removeprefix("container:")]
    container.in_progress_polls = 0
    result = await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=checkpoint)
    assert len(ig.fake.calls_to("POST", "me/media")) == 1
    assert result.post_id == ig.user.media[0].id


async def test_an_already_published_checkpoint_does_not_publish_twice(ig: IG) -> None:
    media = ig.fake.add_media(ig.user, "done before")
    checkpoint = MemoryCheckpoint(session=f"published:{media.id}", confirmed=10)
    result = await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=checkpoint)
    assert result.post_id == media.id
    assert ig.fake.calls_to("POST", "me/media") == []
    assert ig.fake.calls_to("POST", "me/media_publish") == []


async def test_a_published_container_whose_answer_was_lost_is_found_not_republished(ig: IG) -> None:
    checkpoint = MemoryCheckpoint()
    await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=checkpoint)
    published_id = ig.user.media[0].id
    (publish,) = ig.fake.calls_to("POST", "me/media_publish")
    # As if the process died after publishing but before saving "published:...".
    lost = MemoryCheckpoint(session=f"container:{publish.params['creation_id']}")
    result = await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=lost)
    assert result.post_id == published_id
    assert len(ig.fake.calls_to("POST", "me/media_publish")) == 1


async def test_container_error_is_a_clear_message_and_clears_the_checkpoint(ig: IG) -> None:
    ig.fake.plan_containers(
        in_progress_polls=1, error="Error: Media upload has failed with error code 2207026"
    )
    checkpoint = MemoryCheckpoint()
    with pytest.raises(InvalidRequest) as info:
        await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=checkpoint)
    assert info.value.reason == "container_error"
    assert "format is not supported" in str(info.value)
    assert checkpoint.session is None
    assert ig.fake.calls_to("POST", "me/media_publish") == []


async def test_publish_limit_is_quota_exceeded_and_keeps_the_container(ig: IG) -> None:
    ig.fake.publish_limit_reached = True
    checkpoint = MemoryCheckpoint()
    with pytest.raises(QuotaExceeded) as info:
        await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=checkpoint)
    assert "24 hours" in str(info.value)
    assert info.value.reason == "graph_9_2207042"
    assert checkpoint.session is not None and checkpoint.session.startswith("container:")


async def test_a_local_file_without_public_url_is_refused_before_any_call(ig: IG) -> None:
    with pytest.raises(InvalidRequest) as info:
        await ig.platform.upload(
            ig.token, MemorySource(public_url=None), REQUEST, checkpoint=MemoryCheckpoint()
        )
    assert info.value.reason == "needs_public_url"
    assert "public" in str(info.value)
    assert ig.fake.calls == []


async def test_non_public_privacy_is_refused(ig: IG) -> None:
    request = UploadRequest(title="x", privacy="private")
    with pytest.raises(InvalidRequest) as info:
        await ig.platform.upload(ig.token, MemorySource(), request, checkpoint=MemoryCheckpoint())
    assert info.value.reason == "privacy_unsupported"
    assert ig.fake.calls == []


async def test_caption_rules_are_enforced_before_any_call(ig: IG) -> None:
    request = UploadRequest(
        title="Too tagged", tags=tuple(f"tag{i}" for i in range(31)), privacy="public"
    )
    with pytest.raises(InvalidRequest) as info:
        await ig.platform.upload(ig.token, MemorySource(), request, checkpoint=MemoryCheckpoint())
    assert info.value.reason == "caption"
    assert "more than 30 hashtags" in str(info.value)
    assert ig.fake.calls == []


async def test_a_500_on_create_is_not_retried(ig: IG) -> None:
    ig.fake.fail_with_500(path="me/media")
    checkpoint = MemoryCheckpoint()
    with pytest.raises(PlatformUnavailable):
        await ig.platform.upload(ig.token, MemorySource(), REQUEST, checkpoint=checkpoint)
    assert len(ig.fake.calls_to("POST", "me/media")) == 1
    assert ig.fake.containers == {}
    assert checkpoint.session is None
