"""Open a source locator (a plain dict kept on the post row) as a streaming ByteSource.

Kinds: ``{"kind": "file", "path": ..., "mime_type"?: ...}`` and
``{"kind": "http", "url": ..., "size": ..., "mime_type": ...}`` (a Discord attachment);
``{"kind": "url", ...}`` likewise, a link the companion app gave (any public https host).
Front-ends add their own kinds with `register_source_opener` (Slack's private URLs
need the bot token, injected at open time so it is never stored in the locator).
Nothing here reads a whole file: bytes stream in pieces, and HTTP resumes with Range.

Every HTTP download of a chat-hosted file goes through `DownloadHosts`, the one rule
for where such bytes may come from: the chat platform's own file hosts over https,
at public addresses, on every redirect hop; or a host explicitly configured as the
platform's API base (SLACK_API_BASE, DISCORD_API_BASE), which tests point at loopback.
A locator is data that outlives the request that made it, so it is never trusted to
name an internal address (cloud metadata, a database, our own admin ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import mimetypes
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from integrations.base import ByteSource
from integrations.errors import InvalidRequest, PlatformUnavailable

PIECE_BYTES = 1024 * 1024
_SOURCE = "source"

# The chat platforms' own file hosts (where `url_private_download` and attachment URLs point).
SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
DISCORD_FILE_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
MAX_REDIRECTS = 5
_REFUSED = "I can only download videos from the chat platform's own file servers."

Resolver = Callable[[str], Awaitable[list[str]]]
Origin = tuple[str, str, int]


async def _resolve(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _origin(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local, shared and reserved ranges.
    return ip.is_global and not ip.is_multicast


def _refused(detail: str) -> InvalidRequest:
    # `detail` names no URL (it may carry a signature); it is for logs via `reason`.
    return InvalidRequest(_REFUSED, platform=_SOURCE, reason=f"download refused: {detail}")


class DownloadHosts:
    """Where one chat platform's files may be downloaded from; checked on every hop.

    Allowed: https on one of `hosts` when every address the name resolves to is public,
    or any URL on the origin of one of `api_bases` (configured, so trusted as they are).
    Redirects are followed here, hop by hop, rather than by httpx, so each target is
    checked before it is fetched, and credentials never follow a hop to another origin.
    """

    def __init__(
        self, hosts: Iterable[str], *, api_bases: Iterable[str] = (), resolve: Resolver = _resolve
    ) -> None:
        self._hosts = frozenset(host.lower() for host in hosts)
        self._bases = frozenset(_origin(httpx.URL(base)) for base in api_bases)
        self._resolve = resolve

    def __repr__(self) -> str:
        return f"DownloadHosts(hosts={sorted(self._hosts)}, api_bases={len(self._bases)})"

    def allows_name(self, url: str) -> bool:
        """The checks that need no DNS: a configured API base, or https on a file host."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        if _origin(parsed) in self._bases:
            return True
        return parsed.scheme == "https" and parsed.host in self._hosts

    async def check(self, url: httpx.URL) -> None:
        """Raise InvalidRequest unless `url` may be fetched (see the class docstring)."""
        if _origin(url) in self._bases:
            return
        if url.scheme != "https" or url.host not in self._hosts:
            raise _refused("not a file host of the platform")
        try:
            addresses = await self._resolve(url.host)
        except OSError:
            raise PlatformUnavailable(
                "Downloading the video failed (the file server's name did not resolve).",
                platform=_SOURCE,
            ) from None
        if not addresses or not all(_is_public(a) for a in addresses):
            raise _refused("the file host resolves to a non-public address")

    @contextlib.asynccontextmanager
    async def get(
        self, client: httpx.AsyncClient, url: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """GET `url` as a streamed response, following up to MAX_REDIRECTS checked hops."""
        sent = httpx.Headers(headers)
        target = httpx.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            await self.check(target)
            request = client.build_request("GET", target, headers=sent)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                if not response.has_redirect_location:
                    yield response
                    return
                following = target.join(response.headers["location"])
            finally:
                await response.aclose()
            if _origin(following) != _origin(target):
                sent.pop("authorization", None)  # a token is for the origin it was meant for
            target = following
        raise _refused("too many redirects")


class PublicHosts(DownloadHosts):
    """Any https host whose every address is public, checked on every hop: videos the
    companion app names by URL (`url` locators). Never an internal address."""

    def __init__(self, *, resolve: Resolver = _resolve) -> None:
        super().__init__((), resolve=resolve)

    def __repr__(self) -> str:
        return "PublicHosts()"

    def allows_name(self, url: str) -> bool:
        try:
            return httpx.URL(url).scheme == "https"
        except httpx.InvalidURL:
            return False

    async def check(self, url: httpx.URL) -> None:
        if url.scheme != "https" or not url.host:
            raise InvalidRequest("Only https links to a video can be uploaded.", platform=_SOURCE)
        try:
            addresses = await self._resolve(url.host)
        except OSError:
            raise InvalidRequest(
                "That link's server name does not resolve.", platform=_SOURCE
            ) from None
        if not addresses or not all(_is_public(a) for a in addresses):
            raise InvalidRequest(
                "That link points to a private or local address.",
                platform=_SOURCE,
                reason="download refused: non-public address",
            )


async def probe_url(
    url: str, *, hosts: DownloadHosts, client: httpx.AsyncClient
) -> tuple[int, str]:
    """(size, media type) of the video at `url`, read from the response headers only."""
    try:
        async with hosts.get(client, url) as response:
            if response.status_code != 200:
                raise InvalidRequest(
                    f"That link did not give a file (HTTP {response.status_code}).",
                    platform=_SOURCE,
                )
            size = response.headers.get("content-length", "")
            mime = response.headers.get("content-type", "video/*").split(";")[0].strip()
    except httpx.TransportError as exc:
        raise PlatformUnavailable(
            f"Reading that link failed ({type(exc).__name__}).", platform=_SOURCE
        ) from None
    if not size.isdigit() or int(size) <= 0:
        raise InvalidRequest("That link does not say how big the file is.", platform=_SOURCE)
    return int(size), mime


SourceOpener = Callable[[Mapping[str, Any]], ByteSource]


class SourceOpeners:
    """Locator kind -> how to open it. One per process, owned by the composition root;
    front-ends add their own kinds (Slack's private files) as they are built.

    By default: local files, `http` downloads from Discord's CDN only, and `url`
    downloads (the companion app's links) from public https hosts only.
    """

    def __init__(self) -> None:
        self._by_kind: dict[str, SourceOpener] = {
            "file": _open_file,
            "http": http_opener(DownloadHosts(DISCORD_FILE_HOSTS)),
            "url": http_opener(PublicHosts()),
        }

    def register(self, kind: str, opener: SourceOpener) -> None:
        """Teach a locator kind (a later registration replaces an earlier one)."""
        self._by_kind[kind] = opener

    def open(self, locator: Mapping[str, Any]) -> ByteSource:
        """The ByteSource for a locator; InvalidRequest with a readable message if unusable."""
        kind = locator.get("kind")
        opener = self._by_kind.get(str(kind))
        if opener is None:
            raise InvalidRequest(f"I can't read a video from a '{kind}' source.", platform=_SOURCE)
        return opener(locator)


class FileByteSource:
    """A local file, read off the event loop: streamed in 1 MiB pieces, or a byte range
    in one read (`RangeByteSource`)."""

    def __init__(self, path: Path, *, mime_type: str | None = None) -> None:
        try:
            self.size = path.stat().st_size
        except OSError:
            raise InvalidRequest(
                "The video file is not there any more.", platform=_SOURCE
            ) from None
        self.path = path
        self.mime_type = mime_type or mimetypes.guess_type(path.name)[0] or "video/*"

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self.path, "rb")
        try:
            await asyncio.to_thread(handle.seek, offset)
            while True:
                piece = await asyncio.to_thread(handle.read, PIECE_BYTES)
                if not piece:
                    return
                yield piece
        finally:
            await asyncio.to_thread(handle.close)

    async def read_range(self, offset: int, length: int) -> bytes:
        return await asyncio.to_thread(_pread, self.path, offset, length)


def _pread(path: Path, offset: int, length: int) -> bytes:
    """Bytes [offset, offset + length) of the file at `path`, fewer only at its end."""
    fd = os.open(path, os.O_RDONLY)
    try:
        # A regular file reads short only at its end (chunks are megabytes, far under
        # the 2 GiB one read can return on Linux).
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


class HttpByteSource:
    """An HTTP download streamed with `Range: bytes=N-` so a resume does not start over.

    `headers` may carry credentials (a Slack bot token); they are used only on the wire.
    """

    def __init__(
        self,
        url: str,
        *,
        size: int,
        mime_type: str,
        hosts: DownloadHosts,
        headers: Mapping[str, str] | None = None,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self.url = url
        self.size = size
        self.mime_type = mime_type
        self._hosts = hosts
        self._headers = dict(headers or {})
        self._client_factory = client_factory or (
            lambda: httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        )

    def __repr__(self) -> str:  # no URL or headers in reprs: they may grant access
        return f"HttpByteSource(size={self.size}, mime_type={self.mime_type!r})"

    async def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        headers = dict(self._headers)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        async with self._client_factory() as client:
            try:
                async with self._hosts.get(client, self.url, headers=headers) as response:
                    if response.status_code not in (200, 206):
                        raise PlatformUnavailable(
                            f"Downloading the video failed (HTTP {response.status_code}).",
                            platform=_SOURCE,
                            status=response.status_code,
                        )
                    # A server that ignores Range sends everything: skip what we have.
                    skip = offset if (offset and response.status_code == 200) else 0
                    async for piece in response.aiter_raw(PIECE_BYTES):
                        if skip:
                            if len(piece) <= skip:
                                skip -= len(piece)
                                continue
                            piece, skip = piece[skip:], 0
                        yield piece
            except httpx.TransportError as exc:
                raise PlatformUnavailable(
                    f"Downloading the video failed ({type(exc).__name__}).", platform=_SOURCE
                ) from None


def _size(locator: Mapping[str, Any]) -> int:
    try:
        size = int(locator["size"])
    except (KeyError, TypeError, ValueError):
        raise InvalidRequest("The video's size is unknown.", platform=_SOURCE) from None
    if size <= 0:
        raise InvalidRequest("The video file is empty.", platform=_SOURCE)
    return size


def _open_file(locator: Mapping[str, Any]) -> ByteSource:
    path = locator.get("path")
    if not path:
        raise InvalidRequest("The file source has no path.", platform=_SOURCE)
    return FileByteSource(Path(os.fspath(path)), mime_type=locator.get("mime_type"))


def http_opener(hosts: DownloadHosts) -> SourceOpener:
    """The opener for `http` locators (Discord attachments), downloading only as `hosts` allow."""

    def open_http(locator: Mapping[str, Any]) -> ByteSource:
        url = str(locator.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest("The download link is not an http(s) URL.", platform=_SOURCE)
        if not hosts.allows_name(url):
            raise _refused("not a file host of the platform")
        return HttpByteSource(
            url,
            size=_size(locator),
            mime_type=str(locator.get("mime_type") or "video/*"),
            hosts=hosts,
        )

    return open_http
