"""`ChunkReader`: exact byte ranges of a `ByteSource`, for the chunked uploaders.

Hand-written because a ByteSource is our own protocol (a file, or an HTTP download
resumed with Range): the uploaders need "bytes [offset, offset + length)" from it
without reopening it for every chunk, and no library reads our protocol.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from integrations.base import ByteSource
from integrations.errors import InvalidRequest


class ChunkReader:
    """Reads exact-size chunks from one ByteSource iterator.

    The iterator stays open across chunks; after a failure the server's offset rarely
    equals what we pulled, so the source is reopened there (files seek, HTTP uses Range).
    `body` streams a chunk piece by piece (never a whole chunk in memory); `read`
    returns one whole (the source's pieces), for protocols that send a chunk inside a
    larger body.
    """

    def __init__(self, source: ByteSource, *, platform: str) -> None:
        self._source = source
        self._platform = platform  # named by the error when the source runs short
        self._it: AsyncIterator[bytes] | None = None
        self._pos = 0  # offset of the next byte to hand out
        self._pending = b""

    async def aclose(self) -> None:
        it, self._it = self._it, None
        if isinstance(it, AsyncGenerator):  # a plain iterator holds nothing to release
            await it.aclose()

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
                        "The video source ended before its announced size.",
                        platform=self._platform,
                    ) from None
            if len(piece) > remaining:
                piece, self._pending = piece[:remaining], piece[remaining:]
            self._pos += len(piece)
            remaining -= len(piece)
            yield piece

    async def read(self, offset: int, length: int) -> list[bytes]:
        """Bytes [offset, offset + length) as the source's pieces, for protocols that send
        a chunk inside a larger body: the caller joins them once, with its framing."""
        return [piece async for piece in self.body(offset, length)]
