"""`GET|HEAD /media/{token}`: a post's video, for platforms that fetch it by URL (Instagram).

The token (see `agent.media_links`) names one post row and an expiry and is MACed
with the row's source locator; the bytes stream from that locator through the same
openers uploads use (Slack private file with the bot token, HTTP, local file), piece
by piece, never whole in memory. Single `Range: bytes=...` requests get 206 (a
platform's fetcher may download in parts); HEAD answers the headers only.
A bad token is a bare 404, an expired one a bare 403: no detail, and neither the
token nor the locator is ever logged or echoed.

The bytes come from a chat user and the type from the chat platform, yet they are
served from our own origin: only a `video/*` type is passed on (anything else is
`application/octet-stream`), and every answer is a sandboxed, unsniffed download,
so an HTML or SVG "video" can never run as a page of ours.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from agent.media_links import MediaLinks, MediaTokenError, MediaTokenExpired
from integrations.base import ByteSource
from integrations.errors import IntegrationError
from storage import posts

log = logging.getLogger(__name__)

# A Content-Type we are willing to echo from a locator (Slack's `mimetype` is outside data).
_VIDEO_MIME = re.compile(r"^video/[A-Za-z0-9][\w.+-]*$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# On every answer of the route, refusals included: a download, never a page of ours.
_BASE_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Disposition": "attachment",
    "Content-Security-Policy": "sandbox",
}


class Unsatisfiable(Exception):
    """The Range asks for bytes the file does not have (answer 416)."""


class MediaStreamAborted(Exception):
    """The source failed mid-stream; the response is cut short (no detail: it may be secret)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single `bytes=` range, or None to send everything.

    Follows RFC 9110 §14: a header we do not support (other units, several ranges)
    or cannot parse is ignored; a range starting past the end is Unsatisfiable.
    Hand-written because Starlette's range parsing is private to FileResponse, which
    only serves local files, and our bytes may come from Slack or HTTP.
    """
    if not header or size <= 0:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first_s, last_s = match.groups()
    if not first_s:
        if not last_s:
            return None
        suffix = int(last_s)
        if suffix == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        raise Unsatisfiable
    return first, min(int(last_s), size - 1) if last_s else size - 1


def _bare(status: int, text: str) -> Response:
    return Response(f"{text}\n", status_code=status, media_type="text/plain", headers=_BASE_HEADERS)


def _content_type(source: ByteSource) -> str:
    mime = str(source.mime_type or "")
    return mime if _VIDEO_MIME.match(mime) else "application/octet-stream"


async def _body(
    pieces: AsyncIterator[bytes], first: bytes, length: int | None, post_id: int
) -> AsyncIterator[bytes]:
    """`first`, then the rest of `pieces`, stopping after `length` bytes (None: to the end)."""
    remaining = length
    try:
        piece = first
        while True:
            if remaining is not None:
                piece = piece[:remaining]
                remaining -= len(piece)
            if piece:
                yield piece
            if remaining == 0:
                return
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except Exception as exc:
                log.warning(
                    "media source failed mid-stream",
                    extra={"post": post_id, "error": type(exc).__name__},
                )
                raise MediaStreamAborted("the video source failed") from None
    finally:
        # Stop the source now (a range ends early; the client may go away): this closes
        # its file handle or HTTP download instead of leaving it to the garbage collector.
        if isinstance(pieces, AsyncGenerator):  # a plain iterator holds nothing to release
            await pieces.aclose()


def build_media_router(
    *,
    pool: Callable[[], asyncpg.Pool],
    links: MediaLinks,
    opener: Callable[[Mapping[str, Any]], ByteSource],
) -> APIRouter:
    """The /media router; `pool` is a getter because the pool opens after the app is built."""
    router = APIRouter()

    @router.api_route("/media/{token}", methods=["GET", "HEAD"], response_model=None)
    async def media(token: str, request: Request) -> Response:
        try:
            claim = links.read(token)
        except MediaTokenError:
            return _bare(404, "Not found")
        post = await posts.get(pool(), claim.post_id)
        if post is None:
            return _bare(404, "Not found")
        try:
            links.verify(claim, post.source)
        except MediaTokenExpired:
            return _bare(403, "Forbidden")
        except MediaTokenError:
            return _bare(404, "Not found")
        try:
            source = opener(post.source)
        except IntegrationError as exc:
            log.info("media source unavailable", extra={"post": post.id, "reason": exc.reason})
            return _bare(404, "Not found")

        size = int(source.size or 0)
        headers = dict(_BASE_HEADERS)
        headers["Accept-Ranges"] = "bytes" if size > 0 else "none"
        # No validators (ETag/Last-Modified) here, so an If-Range never matches: send all.
        wanted = None if "if-range" in request.headers else request.headers.get("range")
        try:
            span = parse_range(wanted, size) if request.method == "GET" else None
        except Unsatisfiable:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers=headers)
        start, length, status = 0, (size if size > 0 else None), 200
        if span is not None:
            start, length, status = span[0], span[1] - span[0] + 1, 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
        if length is not None:
            headers["Content-Length"] = str(length)
        media_type = _content_type(source)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)

        # Read the first piece before answering, so a source that cannot be read at all
        # (Slack file deleted, CDN link expired) is a clean error, not a cut-off 200.
        pieces = aiter(source.open(start))
        try:
            first = await anext(pieces)
        except StopAsyncIteration:
            first = b""
        except Exception as exc:
            log.warning(
                "media source could not be read",
                extra={"post": post.id, "error": type(exc).__name__},
            )
            return _bare(502, "The video could not be read")
        log.info(
            "media served",
            extra={"post": post.id, "status": status, "offset": start, "bytes": length},
        )
        return StreamingResponse(
            _body(pieces, first, length, post.id),
            status_code=status,
            headers=headers,
            media_type=media_type,
        )

    return router
