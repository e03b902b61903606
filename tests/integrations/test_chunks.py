"""ChunkReader: exact byte ranges of a source, with and without reading ahead."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from integrations.chunks import ChunkReader
from integrations.errors import InvalidRequest
from tests.fakes.google import MemorySource

PIECE = 1000


class StrictSource(MemorySource):
    """A MemorySource that fails loudly when asked for a piece past its end, and says
    which of its iterators were closed."""

    def __init__(self, data: bytes, *, announced: int | None = None) -> None:
        super().__init__(data, piece=PIECE)
        self.size = len(data) if announced is None else announced
        self.closed: list[int] = []
        self.overread = False

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        self.opens.append(offset)
        try:
            for i in range(offset, len(self.data), self.piece):
                await asyncio.sleep(0)  # a read that takes a turn of the loop, as files do
                piece = self.data[i : i + self.piece]
                self.bytes_read += len(piece)
                yield piece
            if self.size == len(self.data):
                self.overread = True
                raise AssertionError("read past the announced end")
        finally:
            self.closed.append(offset)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.parametrize("read_ahead", [False, True])
async def test_exact_ranges_across_pieces_and_reopens(read_ahead):
    data = os.urandom(10 * PIECE + 123)
    source = StrictSource(data)
    reader = ChunkReader(source, platform="test", read_ahead=read_ahead)
    try:
        assert b"".join(await reader.read(0, 2500)) == data[:2500]
        assert b"".join(await reader.read(2500, 3000)) == data[2500:5500]  # continues, no reopen
        assert source.opens == [0]
        assert b"".join(await reader.read(4200, 1800)) == data[4200:6000]  # behind: reopened there
        assert b"".join(await reader.read(6000, len(data) - 6000)) == data[6000:]  # to the very end
        await _settle()
        assert not source.overread  # nothing asked for past the end, even ahead
    finally:
        await reader.aclose()
    assert source.opens == [0, 4200]
    assert sorted(source.closed) == [0, 4200]  # every iterator closed


async def test_read_ahead_has_the_next_chunk_started_while_the_server_answers():
    data = os.urandom(8 * PIECE)
    source = StrictSource(data)
    reader = ChunkReader(source, platform="test", read_ahead=True)
    try:
        pieces = reader.body(0, 2 * PIECE)
        assert await anext(pieces) == data[:PIECE]
        await _settle()
        assert source.bytes_read == 2 * PIECE  # the second piece read while the first is sent
        assert [p async for p in pieces] == [data[PIECE : 2 * PIECE]]
        await _settle()
        assert source.bytes_read == 3 * PIECE  # the next chunk's first piece, in hand
        assert b"".join(await reader.read(2 * PIECE, PIECE)) == data[2 * PIECE : 3 * PIECE]
    finally:
        await reader.aclose()


async def test_without_read_ahead_nothing_is_read_before_it_is_asked_for():
    data = os.urandom(4 * PIECE)
    source = StrictSource(data)
    reader = ChunkReader(source, platform="test")
    try:
        assert b"".join(await reader.read(0, PIECE)) == data[:PIECE]
        await _settle()
        assert source.bytes_read == PIECE
    finally:
        await reader.aclose()


async def test_closing_during_a_read_ahead_stops_and_closes_the_source():
    source = StrictSource(os.urandom(6 * PIECE))
    reader = ChunkReader(source, platform="test", read_ahead=True)
    assert (
        len(b"".join(await reader.read(0, PIECE))) == PIECE
    )  # a read of the next piece is under way
    await reader.aclose()
    assert source.closed == [0]
    assert source.bytes_read <= 2 * PIECE


@pytest.mark.parametrize("read_ahead", [False, True])
async def test_a_source_shorter_than_announced_is_refused(read_ahead):
    source = StrictSource(os.urandom(3 * PIECE), announced=5 * PIECE)
    reader = ChunkReader(source, platform="test", read_ahead=read_ahead)
    try:
        with pytest.raises(InvalidRequest, match="ended before its announced size"):
            b"".join(await reader.read(0, 4 * PIECE))
    finally:
        await reader.aclose()


class RangeSource(StrictSource):
    """A StrictSource that also reads ranges in one call (as a file does): it counts them."""

    def __init__(self, data: bytes, *, announced: int | None = None) -> None:
        super().__init__(data, announced=announced)
        self.ranges: list[tuple[int, int]] = []

    async def read_range(self, offset: int, length: int) -> bytes:
        self.ranges.append((offset, length))
        return self.data[offset : offset + length]


async def test_a_source_that_reads_ranges_gives_each_chunk_in_one_read():
    data = os.urandom(10 * PIECE)
    source = RangeSource(data)
    reader = ChunkReader(source, platform="test")
    try:
        assert await reader.read(0, 4 * PIECE) == [data[: 4 * PIECE]]
        assert await reader.read(4 * PIECE, 6 * PIECE) == [data[4 * PIECE :]]
    finally:
        await reader.aclose()
    assert source.ranges == [(0, 4 * PIECE), (4 * PIECE, 6 * PIECE)]
    assert source.opens == []  # never streamed piece by piece


async def test_a_range_shorter_than_announced_is_refused():
    source = RangeSource(os.urandom(3 * PIECE), announced=5 * PIECE)
    reader = ChunkReader(source, platform="test")
    try:
        with pytest.raises(InvalidRequest, match="ended before its announced size"):
            await reader.read(2 * PIECE, 2 * PIECE)
    finally:
        await reader.aclose()
