"""`ChunkReader`: exact byte ranges of a `ByteSource`, for the chunked uploaders.

Hand-written because a ByteSource is our own protocol (a file, or an HTTP download
resumed with Range): the uploaders need "bytes [offset, offset + length)" from it
without reopening it for every chunk, and no library reads our protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from integrations.base import ByteSource, RangeByteSource
from integrations.errors import InvalidRequest


class ChunkReader:
    """Reads exact-size chunks from one ByteSource iterator.

    The iterator stays open across chunks; after a failure the server's offset rarely
    equals what we pulled, so the source is reopened there (files seek, HTTP uses Range).
    `body` streams a chunk piece by piece (never a whole chunk in memory); `read`
    returns one whole (the source's pieces), for protocols that send a chunk inside a
    larger body.

    With `read_ahead`, the next piece is read while the current one is sent, and across
    a chunk's end: the first piece of the next chunk is in hand while the uploader waits
    for the server's answer (bench/upload.py: reading it after the answer was ~4 % of
    the upload's time). It holds one piece more in memory.
    """

    def __init__(self, source: ByteSource, *, platform: str, read_ahead: bool = False) -> None:
        self._source = source
        # A source that reads ranges in one call (a file) gives `read` its chunks whole.
        self._ranges = source if isinstance(source, RangeByteSource) else None
        self._platform = platform  # named by the error when the source runs short
        self._read_ahead = read_ahead
        self._it: AsyncIterator[bytes] | None = None
        self._next: asyncio.Future[bytes] | None = None  # the piece being read ahead
        self._pos = 0  # offset of the next byte to hand out
        self._pulled = 0  # offset after the last piece pulled from the iterator
        self._pending = b""

    async def aclose(self) -> None:
        it, self._it = self._it, None
        ahead, self._next = self._next, None
        if ahead is not None:
            # The iterator is inside that read: stop it there (a generator then closes).
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead  # its outcome (even a source error) no longer matters
        if isinstance(it, AsyncGenerator):  # a plain iterator holds nothing to release
            await it.aclose()

    async def _seek(self, offset: int) -> None:
        if self._it is not None and offset == self._pos:
            return
        await self.aclose()
        self._it = aiter(self._source.open(offset))
        self._pos = self._pulled = offset
        self._pending = b""

    def _ended(self) -> InvalidRequest:
        return InvalidRequest(
            "The video source ended before its announced size.", platform=self._platform
        )

    async def _pull(self) -> bytes:
        """The source's next piece (the one read ahead, if any); starts reading the one
        after it when reading ahead and the source has more."""
        assert self._it is not None
        ahead, self._next = self._next, None
        try:
            piece = await (ahead if ahead is not None else anext(self._it))
        except StopAsyncIteration:
            raise self._ended() from None
        self._pulled += len(piece)
        if self._read_ahead and self._pulled < self._source.size:
            self._next = asyncio.ensure_future(anext(self._it))
        return piece

    async def body(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """Yield bytes [offset, offset + length) in source-sized pieces."""
        await self._seek(offset)
        remaining = length
        while remaining:
            if self._pending:
                piece, self._pending = self._pending, b""
            else:
                piece = await self._pull()
            if len(piece) > remaining:
                piece, self._pending = piece[:remaining], piece[remaining:]
            self._pos += len(piece)
            remaining -= len(piece)
            yield piece

    async def read(self, offset: int, length: int) -> list[bytes]:
        """Bytes [offset, offset + length) as the source's pieces, for protocols that send
        a chunk inside a larger body, with their framing. One piece, in one read, from a
        source that reads ranges (`RangeByteSource`: a file)."""
        if self._ranges is not None:
            data = await self._ranges.read_range(offset, length)
            if len(data) < length:
                raise self._ended()
            return [data]
        return [piece async for piece in self.body(offset, length)]
