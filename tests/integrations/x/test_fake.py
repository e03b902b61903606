"""The fake's append endpoint: parsed as it streams in, and still strict about what it takes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from integrations.x.upload import multipart_segment
from tests.fakes.x import AppendBody
from tests.integrations.x.conftest import XEnv

BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def framed(*parts: tuple[str, bytes]) -> bytes:
    """A multipart body with the given (name, content) parts, in order."""
    out = b""
    for name, content in parts:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_a_body_fed_a_byte_at_a_time_counts_the_media_without_keeping_it() -> None:
    # Media that holds a near-boundary (a delimiter's start, cut short) and CR LFs.
    media = b"\r\n--b0undar" + os.urandom(5000) + b"\r\n--\r\n"
    body = AppendBody(BOUNDARY.encode())
    for i in range(len(whole := b"".join(multipart_segment(BOUNDARY, 7, [media])))):
        body.feed(whole[i : i + 1])
    body.close()
    assert body.segment_index == 7 and body.media_bytes == len(media)


@pytest.mark.parametrize(
    "raw",
    [
        b"not multipart at all",
        framed(("segment_index", b"0"), ("media", b"abc"))[:-6],  # no closing boundary
        framed(("segment_index", b"0"), ("media", b"a"), ("media", b"b")),  # media twice
        framed(("segment_index", b"0" * 100), ("media", b"abc")),  # a field too long
        b"--" + BOUNDARY.encode() + b"\r\nX-Nothing: 1\r\n\r\nabc\r\n--b0undary--\r\n",  # no name
    ],
)
def test_a_malformed_body_is_refused(raw: bytes) -> None:
    body = AppendBody(BOUNDARY.encode())
    with pytest.raises(ValueError):
        body.feed(raw)
        body.close()


async def _initialize(x: XEnv, total: int) -> str:
    answer = await x.http.post(
        f"{x.base}/2/media/upload/initialize",
        json={"media_type": "video/mp4", "total_bytes": total, "media_category": "tweet_video"},
        headers={"Authorization": f"Bearer {x.token.access_token}"},
    )
    return str(answer.json()["data"]["id"])


async def _append(x: XEnv, media_id: str, body: bytes, *, piece: int = 1000) -> int:
    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), piece):
            yield body[i : i + piece]

    answer = await x.http.post(
        f"{x.base}/2/media/upload/{media_id}/append",
        content=pieces(),
        headers={
            "Authorization": f"Bearer {x.token.access_token}",
            "Content-Type": CONTENT_TYPE,
            "Content-Length": str(len(body)),
        },
    )
    return answer.status_code


async def test_streamed_appends_in_order_are_taken(x: XEnv) -> None:
    media_id = await _initialize(x, 3000)
    for index in range(3):
        body = b"".join(multipart_segment(BOUNDARY, index, [os.urandom(1000)]))
        assert await _append(x, media_id, body, piece=333) == 200
    assert x.fake.media[media_id].segments == {0: 1000, 1: 1000, 2: 1000}


@pytest.mark.parametrize(
    ("body", "bug"),
    [
        (framed(("media", b"abc")), "append: malformed multipart (a field is missing)"),
        (framed(("segment_index", b"1"), ("media", b"abc")), "append: segment 1 before segment 0"),
        (framed(("segment_index", b"0"), ("media", b"")), "append: segment of 0 bytes"),
        (framed(("segment_index", b"0"), ("media", b"abc"))[:-6], "append: malformed multipart"),
    ],
)
async def test_a_wrong_append_is_refused_and_recorded(x: XEnv, body: bytes, bug: str) -> None:
    media_id = await _initialize(x, 3000)
    assert await _append(x, media_id, body) == 400
    assert [u[: len(bug)] for u in x.fake.unexpected] == [bug]
    assert x.fake.media[media_id].segments == {}
    x.fake.unexpected.clear()  # recorded as it should be; the fixture checks nothing else was
