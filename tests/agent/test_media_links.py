"""Signed media tokens: round trip, expiry, tampering, scope, key rotation, public base URLs."""

from __future__ import annotations

import base64

import pytest

from agent.media_links import (
    MediaLinks,
    MediaTokenError,
    MediaTokenExpired,
    is_public_base_url,
    locator_digest,
)
from storage.crypto import TokenCipher, generate_key_spec, parse_keys

LOCATOR = {"kind": "file", "path": "/srv/videos/clip.mp4", "mime_type": "video/mp4"}
NOW = 1_800_000_000.0


def _cipher(*specs: str) -> TokenCipher:
    return TokenCipher([k for spec in specs for k in parse_keys(spec)])


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _links(cipher: TokenCipher, clock: Clock, ttl: int = 7200) -> MediaLinks:
    return MediaLinks(
        cipher=cipher, public_base_url="https://bot.example.com/", ttl_seconds=ttl, clock=clock
    )


def _flip(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_round_trip_names_the_post_and_expiry():
    clock = Clock()
    links = _links(_cipher(generate_key_spec("m1")), clock)
    token = links.sign(42, LOCATOR)
    claim = links.read(token)
    assert (claim.post_id, claim.expires_at, claim.kid) == (42, int(NOW) + 7200, "m1")
    links.verify(claim, LOCATOR)  # no exception
    # Key order in the locator does not matter (JSONB may reorder keys).
    links.verify(claim, dict(reversed(list(LOCATOR.items()))))


def test_url_holds_neither_the_locator_nor_a_key():
    links = _links(_cipher(generate_key_spec("m1")), Clock())
    url = links.url_for(7, LOCATOR)
    assert url.startswith("https://bot.example.com/media/")
    token = url.rsplit("/", 1)[1]
    assert "/" not in token and "?" not in token
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"clip.mp4" not in raw and b"/srv" not in raw
    assert "clip" not in repr(links)


def test_expiry_is_enforced_after_the_signature():
    clock = Clock()
    links = _links(_cipher(generate_key_spec("m1")), clock, ttl=60)
    claim = links.read(links.sign(1, LOCATOR))
    clock.now = NOW + 59
    links.verify(claim, LOCATOR)
    clock.now = NOW + 60
    with pytest.raises(MediaTokenExpired):
        links.verify(claim, LOCATOR)
    # An expired token that was also tampered with is "forged", not "expired".
    forged = links.read(_flip(links.sign(1, LOCATOR), -1))
    with pytest.raises(MediaTokenError) as caught:
        links.verify(forged, LOCATOR)
    assert not isinstance(caught.value, MediaTokenExpired)


@pytest.mark.parametrize(
    "index",
    [
        1,  # post id
        16,  # expiry (last byte)
        -1,  # MAC
        -32,  # MAC (first byte)
    ],
)
def test_any_changed_byte_fails(index: int):
    links = _links(_cipher(generate_key_spec("m1")), Clock())
    tampered = _flip(links.sign(9, LOCATOR), index)
    with pytest.raises(MediaTokenError):
        links.verify(links.read(tampered), LOCATOR)


def test_a_later_expiry_cannot_be_forged():
    links = _links(_cipher(generate_key_spec("m1")), Clock())
    good = links.read(links.sign(9, LOCATOR))
    longer = links.read(links.sign(9, LOCATOR, expires_at=int(NOW) + 10**6))
    # Splice the long expiry onto the short token's MAC: rejected.
    spliced = type(good)(good.post_id, longer.expires_at, good.kid, longer.signed, good.mac)
    with pytest.raises(MediaTokenError):
        links.verify(spliced, LOCATOR)


def test_token_is_bound_to_the_locator():
    links = _links(_cipher(generate_key_spec("m1")), Clock())
    claim = links.read(links.sign(3, LOCATOR))
    with pytest.raises(MediaTokenError):
        links.verify(claim, {**LOCATOR, "path": "/etc/passwd"})
    assert locator_digest(LOCATOR) != locator_digest({**LOCATOR, "path": "/etc/passwd"})


def test_another_servers_key_is_refused_and_rotation_keeps_old_links():
    old, new, stranger = (generate_key_spec(k) for k in ("old", "new", "x"))
    clock = Clock()
    token = _links(_cipher(old), clock).sign(5, LOCATOR)
    with pytest.raises(MediaTokenError):
        _links(_cipher(stranger), clock).verify(MediaLinks.read(token), LOCATOR)
    # After rotation the old key is secondary: links signed before still work until expiry.
    rotated = _links(_cipher(new, old), clock)
    rotated.verify(MediaLinks.read(token), LOCATOR)
    assert MediaLinks.read(rotated.sign(5, LOCATOR)).kid == "new"
    # Once the old key is removed they stop working.
    with pytest.raises(MediaTokenError):
        _links(_cipher(new), clock).verify(MediaLinks.read(token), LOCATOR)


def test_derived_key_is_not_the_encryption_key():
    spec = generate_key_spec("m1")
    cipher = _cipher(spec)
    kid, key = cipher.derive_key("media-url/v1")
    assert kid == "m1" and len(key) == 32
    assert key != parse_keys(spec)[0][1]
    assert cipher.derive_key("something-else")[1] != key


@pytest.mark.parametrize(
    "token",
    ["", "!!!", "AAAA", "A" * 600, base64.urlsafe_b64encode(b"\x02" + b"\x00" * 60).decode()],
)
def test_malformed_tokens_are_refused(token: str):
    with pytest.raises(MediaTokenError):
        MediaLinks.read(token)


def test_post_id_out_of_bigint_range_is_malformed():
    links = _links(_cipher(generate_key_spec("m1")), Clock())
    with pytest.raises(MediaTokenError):
        MediaLinks.read(links.sign(2**63, LOCATOR))


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("http://localhost:8000", False),
        ("http://127.0.0.1:8000", False),
        ("http://127.0.0.2", False),
        ("http://[::1]:8000", False),
        ("http://0.0.0.0:8000", False),
        ("http://app.localhost", False),
        ("not a url", False),
        ("https://bot.example.com", True),
        ("https://203.0.113.7", True),
    ],
)
def test_public_base_url(url: str, public: bool):
    assert is_public_base_url(url) is public
