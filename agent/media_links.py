"""Short-lived signed links to one post's video, served by our own web app at /media/{token}.

Instagram (Instagram Login) takes a video only by URL and fetches it itself, so a
file shared in chat (Slack private file, Discord CDN link, a local path) is exposed
for a little while at `PUBLIC_BASE_URL/media/{token}`. The token names the post row
and an expiry, and is MACed together with a digest of the post's source locator:
it opens exactly one post's bytes, only until it expires, and stops working if the
row's locator changes. The locator itself never appears in the URL.

Token layout (base64url, no padding)::

    0x01 | post id (u64) | expires, unix s (u64) | len(kid) (u8) | kid | HMAC-SHA256 (32)

The HMAC key is derived (HKDF) from TOKEN_ENCRYPTION_KEYS' key `kid`, so web and
worker replicas agree without another secret, and a rotation retires old links.
Hand-written on `cryptography`'s HMAC rather than a token library: itsdangerous and
PyJWT are not dependencies, and the format is a fixed binary record of a few
fields; `cryptography` (already used for AES-GCM) gives HKDF and a constant-time
`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from integrations.base import ByteSource
from storage.crypto import TokenCipher

if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hmac

_VERSION = 1
_HEAD = struct.Struct(">BQQB")  # version, post id, expires, len(kid)
_MAC_BYTES = 32
_PURPOSE = "media-url/v1"
_DOMAIN = b"socialops/media/v1\x00"  # MAC domain separation from any other HMAC use
DEFAULT_TTL_SECONDS = 2 * 3600


class MediaTokenError(Exception):
    """A media token is malformed, forged, for an unknown key, or for another locator."""


class MediaTokenExpired(MediaTokenError):
    """An authentic media token whose lifetime is over."""


@dataclass(frozen=True, slots=True)
class MediaClaim:
    """What a token says, before it is checked against the post's locator (untrusted)."""

    post_id: int
    expires_at: int
    kid: str
    signed: bytes
    mac: bytes


def locator_digest(locator: Mapping[str, Any]) -> bytes:
    """SHA-256 of the locator's canonical JSON (key order and spacing do not matter)."""
    canonical = json.dumps(dict(locator), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


def needs_public_url_message(display: str, base_url: str) -> str:
    """Why a platform that fetches videos by URL cannot get one from this bot."""
    return (
        f"{display} fetches the video from a web address, and this bot's PUBLIC_BASE_URL "
        f"({base_url}) is not reachable from the internet. Set PUBLIC_BASE_URL to the bot's "
        "public https address (for example https://bot.example.com) and try again."
    )


def is_public_base_url(url: str) -> bool:
    """False for addresses the internet cannot reach: localhost, loopback, 0.0.0.0."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a DNS name other than localhost
    return not (address.is_loopback or address.is_unspecified)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class MediaLinks:
    """Signs and checks media tokens; builds `PUBLIC_BASE_URL/media/{token}` URLs."""

    def __init__(
        self,
        *,
        cipher: TokenCipher,
        public_base_url: str,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cipher = cipher
        self._base = public_base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self.public = is_public_base_url(public_base_url)

    def __repr__(self) -> str:  # no key material
        return f"MediaLinks(base={self._base!r}, ttl_seconds={self.ttl_seconds})"

    @property
    def base_url(self) -> str:
        return self._base

    def _mac(self, kid: str, signed: bytes, locator: Mapping[str, Any]) -> hmac.HMAC:
        # Imported on first use, like storage.crypto's AES-GCM (8 MiB resident).
        from cryptography.hazmat.primitives import hashes, hmac

        try:
            _, key = self._cipher.derive_key(_PURPOSE, kid)
        except KeyError:
            raise MediaTokenError("unknown key") from None
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(_DOMAIN + signed + locator_digest(locator))
        return mac

    def sign(
        self, post_id: int, locator: Mapping[str, Any], *, expires_at: int | None = None
    ) -> str:
        """A token for post `post_id` whose source is `locator`, valid until `expires_at`."""
        kid = self._cipher.primary_kid
        expires = int(expires_at if expires_at is not None else self._clock() + self.ttl_seconds)
        kid_bytes = kid.encode()
        signed = _HEAD.pack(_VERSION, post_id, expires, len(kid_bytes)) + kid_bytes
        return _b64(signed + self._mac(kid, signed, locator).finalize())

    def url_for(self, post_id: int, locator: Mapping[str, Any]) -> str:
        """The public URL of the post's bytes (valid for `ttl_seconds`)."""
        return f"{self._base}/media/{self.sign(post_id, locator)}"

    @staticmethod
    def read(token: str) -> MediaClaim:
        """Parse a token's fields without trusting them; MediaTokenError if malformed."""
        if not token or len(token) > 512:
            raise MediaTokenError("malformed")
        try:
            raw = _unb64(token)
        except (binascii.Error, ValueError):
            raise MediaTokenError("malformed") from None
        if len(raw) < _HEAD.size + _MAC_BYTES:
            raise MediaTokenError("malformed")
        version, post_id, expires, kid_len = _HEAD.unpack_from(raw)
        end = _HEAD.size + kid_len
        if version != _VERSION or len(raw) != end + _MAC_BYTES or kid_len == 0:
            raise MediaTokenError("malformed")
        if not 0 < post_id < 2**63:  # posts.id is a bigint
            raise MediaTokenError("malformed")
        try:
            kid = raw[_HEAD.size : end].decode()
        except UnicodeDecodeError:
            raise MediaTokenError("malformed") from None
        return MediaClaim(post_id, expires, kid, raw[:end], raw[end:])

    def verify(self, claim: MediaClaim, locator: Mapping[str, Any]) -> None:
        """Raise MediaTokenError unless the claim was signed by us for this locator, and
        MediaTokenExpired if it was but has expired (the MAC is checked first)."""
        from cryptography.exceptions import InvalidSignature

        try:
            self._mac(claim.kid, claim.signed, locator).verify(claim.mac)  # constant time
        except InvalidSignature:
            raise MediaTokenError("bad signature") from None
        if self._clock() >= claim.expires_at:
            raise MediaTokenExpired("expired")


class HostedSource:
    """A ByteSource that is also reachable at `public_url` (a HostedByteSource)."""

    def __init__(self, inner: ByteSource, *, public_url: str | None) -> None:
        self._inner = inner
        self.public_url = public_url
        self.size = inner.size
        self.mime_type = inner.mime_type

    def __repr__(self) -> str:  # the URL grants access to the bytes: keep it out of reprs
        return f"HostedSource(size={self.size}, hosted={self.public_url is not None})"

    def open(self, offset: int = 0) -> AsyncIterator[bytes]:
        return self._inner.open(offset)
