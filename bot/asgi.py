"""Small pure-ASGI pieces: read a request body under a cap, hand it on, answer plainly.

Shared by `bot.web.BodyLimit` (the app's routes) and the endpoints served ahead of
the app (`bot.web.ExactPaths`), so a body cap is one rule wherever it is applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message, Receive, Scope, Send

TEXT = b"text/plain; charset=utf-8"


async def read_capped_body(scope: Scope, receive: Receive, send: Send, *, cap: int) -> bytes | None:
    """The whole request body, or None once a 400/413 is sent (or the client went away).

    A declared `Content-Length` over `cap` is refused before a byte is read; otherwise
    the body is counted as it streams (chunked bodies too) and refused as soon as it
    passes the cap, so nothing buffers more than `cap`."""
    declared = [v for k, v in scope["headers"] if k == b"content-length"]
    if declared:
        if len(declared) > 1 or not declared[0].isdigit() or len(declared[0]) > 18:
            await _refuse(send, 400, b"Bad Request")
            return None
        if int(declared[0]) > cap:
            await _refuse(send, 413, b"Request body too large")
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away before the body was complete
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            await _refuse(send, 413, b"Request body too large")
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the already-read `body` once, then the client's own
    messages (a disconnect)."""
    pending: Message | None = {"type": "http.request", "body": body, "more_body": False}

    async def replay() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replay


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = TEXT,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """A complete response in two messages."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, text: bytes) -> None:
    # Connection: close, since the rest of the body is left unread on the socket.
    await respond(send, status, text, headers=[(b"connection", b"close")])
