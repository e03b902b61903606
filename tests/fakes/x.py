"""A fake X (OAuth 2.0 with PKCE, API v2 users, posts, metrics and chunked media upload).

Serve `FakeX()` with `tests.fakes.server.serve_asgi` and point the plug-in at it with
`x_settings(base, fake)`. It speaks X's wire format: token answers and OAuth errors
(`{"error", "error_description"}`), problem details for API errors, partial errors
beside `data`, snowflake ids, and `x-rate-limit-limit/remaining/reset` on every answer.

It is strict, and fails loudly: anything our client should never send (an unknown
route, a bad authorize URL, an out-of-range parameter, segments out of order, a
finalize before every byte, a status poll before `check_after_secs`) is answered
with an error *and* recorded in `unexpected`, which the tests' fixture asserts empty.

OAuth: codes bound to a PKCE S256 challenge and the redirect URI; HTTP Basic client
auth on the token and revoke endpoints; access tokens that expire (`access_ttl`, on
`clock`); refresh tokens that rotate and are single use (a spent one gets X's answer,
`invalid_request` "Value passed for the token was invalid."; `refresh_error` can make
it RFC 6749's `invalid_grant`).

Faults (each one-shot unless said otherwise):
- `drop_during_append(segment=None, after_bytes=1024)`: cut the TCP connection once
  `after_bytes` of an append body (of `segment`, if given) have arrived.
- `fail_finalize_once(status=503)`: the next finalize answers a problem with `status`.
- `expire_media(media_id)`: the media id is gone from now on (appends, finalize, posts
  and status answer 400).
- `fail_next(endpoint, status, times=1, detail=...)`: the next calls of an endpoint
  answer a problem (e.g. 503, or 403 with a duplicate-content detail).
- `exhaust(endpoint, reset_in)`: the endpoint's window has nothing left until
  `reset_in` seconds from now (429 with the reset header until then);
  `set_window(endpoint, remaining=, reset_in=)` sets any window (persistent).
- `plan_processing(pending=1, in_progress=2, check_after_secs=2, fail=None)`: what
  finalize and the status polls report for the next finalized media (persistent).
- `expire_access_tokens()`; `post_caps(user=None, app=None)`: 24-hour post caps,
  answered as X does (429 with `x-user-limit-24hour-*` / `x-app-limit-24hour-*`).

Counters: `requests[endpoint]`, `append_body_bytes` (bytes of append bodies received,
framing included), `media_bytes` (segment bytes accepted), `posts`, `media`,
`private_metric_ids` (ids whose non-public metrics were asked for), `revoked`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from twitter_text import parse_tweet

SNOWFLAKE_EPOCH_MS = 1288834974657
SCOPES = {"tweet.read", "tweet.write", "users.read", "media.write", "offline.access"}
MAX_SEGMENT = 5_000_000  # "<= 5 MB"
MAX_TOTAL = 512 * 1024 * 1024
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm", "video/mp2t"}
WINDOW_SECONDS = 15 * 60
PRIVATE_FIELDS = ("non_public_metrics", "organic_metrics")
PROBLEMS = "https://api.x.com/2/problems/"

# Per-user limits per 15 minutes (docs.x.com rate limits); the OAuth ones are ours.
DEFAULT_LIMITS = {
    "POST /2/oauth2/token": 1000,
    "POST /2/oauth2/revoke": 1000,
    "GET /2/users/me": 75,
    "GET /2/users/:id/tweets": 900,
    "GET /2/tweets": 5000,
    "POST /2/tweets": 100,
    "POST /2/media/upload/initialize": 1875,
    "POST /2/media/upload/:id/append": 5000,
    "POST /2/media/upload/:id/finalize": 1875,
    "GET /2/media/upload": 5000,
}
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("GET", r"^/i/oauth2/authorize$", "GET /i/oauth2/authorize"),
        ("POST", r"^/2/oauth2/token$", "POST /2/oauth2/token"),
        ("POST", r"^/2/oauth2/revoke$", "POST /2/oauth2/revoke"),
        ("GET", r"^/2/users/me$", "GET /2/users/me"),
        ("GET", r"^/2/users/(?P<id>\d+)/tweets$", "GET /2/users/:id/tweets"),
        ("GET", r"^/2/tweets$", "GET /2/tweets"),
        ("POST", r"^/2/tweets$", "POST /2/tweets"),
        ("POST", r"^/2/media/upload/initialize$", "POST /2/media/upload/initialize"),
        ("POST", r"^/2/media/upload/(?P<id>\d+)/append$", "POST /2/media/upload/:id/append"),
        ("POST", r"^/2/media/upload/(?P<id>\d+)/finalize$", "POST /2/media/upload/:id/finalize"),
        ("GET", r"^/2/media/upload$", "GET /2/media/upload"),
    )
)
APPEND = "POST /2/media/upload/:id/append"


class FakeClock:
    """Wall time that only moves when slept on; shared by the fake and the client."""

    def __init__(self, start: float | None = None) -> None:
        self.t = time.time() if start is None else start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


@dataclass
class FakeUser:
    id: str
    username: str
    name: str
    followers: int = 1200


@dataclass
class FakePost:
    id: str
    author_id: str
    text: str
    created_at: float
    media_keys: list[str] = field(default_factory=list)
    # X field name -> value; a field not here is not reported.
    public: dict[str, int] = field(default_factory=dict)
    non_public: dict[str, int] = field(default_factory=dict)
    organic: dict[str, int] = field(default_factory=dict)


@dataclass
class AccessGrant:
    user_id: str
    scopes: set[str]
    expires_at: float


@dataclass
class RefreshGrant:
    user_id: str
    scopes: set[str]
    used: bool = False


@dataclass
class FakeMedia:
    id: str
    key: str
    user_id: str
    media_type: str
    total: int
    expires_at: float
    segments: dict[int, int] = field(default_factory=dict)  # index -> bytes
    finalized: bool = False
    states: list[str] = field(default_factory=list)  # still to report, in order
    state: str | None = None
    fail: str | None = None
    check_after: int = 1
    not_before: float = 0.0
    polls: int = 0


@dataclass
class Window:
    limit: int
    remaining: int
    reset_at: float


@dataclass
class ProcessingPlan:
    pending: int = 1
    in_progress: int = 2
    check_after_secs: int = 2
    fail: str | None = None  # e.g. "InvalidMedia": the last state is "failed"


@dataclass
class _Fault:
    endpoint: str
    status: int
    times: int
    detail: str


def problem(status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any) -> Any:
    body = {"title": title, "detail": detail, "type": kind, "status": status, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def invalid(detail: str) -> Any:
    return problem(400, "Invalid Request", detail, PROBLEMS + "invalid-request")


def snowflake(at: float, seq: int) -> str:
    return str(((int(at * 1000) - SNOWFLAKE_EPOCH_MS) << 22) | (seq & 0x3FFFFF))


def pkce_s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class AppendBody:
    """An append's multipart/form-data body, parsed as it arrives (python-multipart's push
    parser): the small fields' values, and the media part's size. The media bytes are
    counted, never kept nor copied: the parser's search for the boundary (about 10-15 ms
    for 64 MiB here) is most of what it costs, under what the same bytes take over
    loopback, so an upload bench measures the client, not the fake. (Buffering each
    append whole and splitting copies of it took the fake's process about 200 ms of CPU
    for a 64 MiB upload in bench/x.py; now about 50, the anchor's sink 20.)

    Strict: a part without a name, a name sent twice, a field other than `media` longer
    than `MAX_FIELD`, or a body that is not well-formed multipart (checked as it arrives,
    and at the end for the closing boundary) raises ValueError.
    """

    MAX_FIELD = 64

    def __init__(self, boundary: bytes) -> None:
        self.fields: dict[str, bytes] = {}
        self.media_bytes: int | None = None  # None until a `media` part starts
        self._header = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._value = bytearray()
        self._failure: str | None = None
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    @property
    def segment_index(self) -> int | None:
        """The `segment_index` field, once its part has fully arrived and is a number."""
        raw = self.fields.get("segment_index", b"")
        return int(raw) if raw.isdigit() else None

    def feed(self, data: bytes) -> None:
        try:
            self._parser.write(data)
        except MultipartParseError as exc:
            raise ValueError(f"not multipart: {exc}") from None
        if self._failure is not None:
            raise ValueError(self._failure)

    def close(self) -> None:
        """The body ended: it must have ended with the closing boundary."""
        if self._parser.state != MultipartState.END:
            raise ValueError("the body ended before its closing boundary")

    def _part_begin(self) -> None:
        self._headers, self._name, self._value = {}, None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        name = self._header.lower()
        self._headers[name] = self._headers.get(name, b"") + data[start:end]

    def _header_end(self) -> None:
        self._header = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("latin-1")
        if not name or name in self.fields or (name == "media" and self.media_bytes is not None):
            self._failure = self._failure or f"part named {name!r}"
            return
        self._name = name
        if name == "media":
            self.media_bytes = 0

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name == "media":
            assert self.media_bytes is not None
            self.media_bytes += end - start
        elif self._name is not None:
            self._value += data[start:end]
            if len(self._value) > self.MAX_FIELD:
                self._failure = self._failure or f"field {self._name!r} too long"

    def _part_end(self) -> None:
        if self._name is not None and self._name != "media":
            self.fields[self._name] = bytes(self._value)


class FakeX:
    """In-memory X with the faults tests need. An ASGI app: serve the instance itself."""

    def __init__(
        self,
        *,
        client_id: str = "fake-x-client-id",
        client_secret: str = "fake-x-client-secret",
        clock: FakeClock | None = None,
        access_ttl: int = 7200,
        media_ttl: int = 86400,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock or FakeClock()
        self.access_ttl = access_ttl
        self.media_ttl = media_ttl
        self.refresh_error = "invalid_request"
        self.users: dict[str, FakeUser] = {}
        self.login_user: str | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, AccessGrant] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.revoked: list[str] = []
        self.posts: dict[str, FakePost] = {}
        self.media: dict[str, FakeMedia] = {}
        self.windows: dict[str, Window] = {}
        self.requests: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.append_body_bytes = 0
        self.media_bytes = 0
        self.private_metric_ids: list[str] = []
        self.processing = ProcessingPlan()
        self.user_post_cap: int | None = None
        self.app_post_cap: int | None = None
        self._faults: list[_Fault] = []
        self._drop: tuple[int | None, int] | None = None
        self._fail_finalize: int | None = None
        self._seq = 0

    # --- seeding and faults -----------------------------------------------------------

    def _id(self, at: float | None = None) -> str:
        self._seq += 1
        return snowflake(self.clock.now() if at is None else at, self._seq)

    def add_user(self, username: str = "creator", *, name: str = "A Creator") -> FakeUser:
        user = FakeUser(self._id(self.clock.now() - 400 * 86400), username, name)
        self.users[user.id] = user
        self.login_user = self.login_user or user.id
        return user

    def add_post(
        self, user: FakeUser, text: str = "a post", *, age_days: float = 1.0, **metrics: Any
    ) -> FakePost:
        created = self.clock.now() - age_days * 86400
        post = FakePost(self._id(created), user.id, text, created, **metrics)
        self.posts[post.id] = post
        return post

    def issue_tokens(self, user: FakeUser, scopes: set[str] | None = None) -> dict[str, Any]:
        granted = set(SCOPES if scopes is None else scopes)
        access = "x-at-" + secrets.token_urlsafe(24)
        self.access[access] = AccessGrant(user.id, granted, self.clock.now() + self.access_ttl)
        body: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": self.access_ttl,
            "access_token": access,
            "scope": " ".join(sorted(granted)),
        }
        if "offline.access" in granted:
            refresh = "x-rt-" + secrets.token_urlsafe(24)
            self.refresh[refresh] = RefreshGrant(user.id, granted)
            body["refresh_token"] = refresh
        return body

    def expire_access_tokens(self) -> None:
        for grant in self.access.values():
            grant.expires_at = self.clock.now() - 1

    def drop_during_append(self, *, segment: int | None = None, after_bytes: int = 1024) -> None:
        self._drop = (segment, after_bytes)

    def fail_finalize_once(self, status: int = 503) -> None:
        self._fail_finalize = status

    def expire_media(self, media_id: str) -> None:
        self.media[media_id].expires_at = self.clock.now() - 1

    def fail_next(
        self, endpoint: str, status: int, *, times: int = 1, detail: str = "Service Unavailable"
    ) -> None:
        self._faults.append(_Fault(endpoint, status, times, detail))

    def set_window(self, endpoint: str, *, remaining: int, reset_in: float) -> None:
        """The endpoint's current window: `remaining` calls left until `reset_in` s from now."""
        limit = DEFAULT_LIMITS.get(endpoint, 100)
        self.windows[endpoint] = Window(limit, remaining, math.ceil(self.clock.now() + reset_in))

    def exhaust(self, endpoint: str, *, reset_in: float) -> None:
        self.set_window(endpoint, remaining=0, reset_in=reset_in)

    def plan_processing(
        self,
        *,
        pending: int = 1,
        in_progress: int = 2,
        check_after_secs: int = 2,
        fail: str | None = None,
    ) -> None:
        self.processing = ProcessingPlan(pending, in_progress, check_after_secs, fail)

    def post_caps(self, *, user: int | None = None, app: int | None = None) -> None:
        self.user_post_cap, self.app_post_cap = user, app

    def posts_by(self, user: FakeUser) -> list[FakePost]:
        return [p for p in self.posts.values() if p.author_id == user.id]

    # --- ASGI -------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for verb, pattern, name in ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                return name, match.groupdict()
        return None

    def _window(self, endpoint: str) -> Window:
        now = self.clock.now()
        window = self.windows.get(endpoint)
        if window is None or window.reset_at <= now:
            limit = DEFAULT_LIMITS.get(endpoint, 100)
            window = Window(limit, limit, math.ceil(now + WINDOW_SECONDS))  # whole seconds
            self.windows[endpoint] = window
        return window

    def _gate(self, endpoint: str) -> tuple[Any | None, dict[str, str]]:
        """Take one call from the endpoint's window (429 when none is left) and apply an
        injected failure; returns (an error response or None, the rate headers)."""
        window = self._window(endpoint)
        refused = window.remaining <= 0
        if not refused:
            window.remaining -= 1
        headers = {
            "x-rate-limit-limit": str(window.limit),
            "x-rate-limit-remaining": str(window.remaining),
            "x-rate-limit-reset": str(int(window.reset_at)),
        }
        if refused:
            return problem(429, "Too Many Requests", "Too Many Requests"), headers
        for fault in self._faults:
            if fault.endpoint == endpoint and fault.times > 0:
                fault.times -= 1
                title = "Forbidden" if fault.status == 403 else "Service Unavailable"
                return problem(fault.status, title, fault.detail), headers
        return None, headers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        route = self._route(scope["method"], scope["path"])
        if route is None:
            self.unexpected.append(f"{scope['method']} {scope['path']}")
            await _drain(receive)
            response = problem(404, "Not Found Error", "Sorry, that page does not exist")
            await response(scope, receive, send)
            return
        endpoint, params = route
        self.requests[endpoint] += 1
        refused, headers = self._gate(endpoint)
        if refused is not None:
            await _drain(receive)
            refused.headers.update(headers)
            await refused(scope, receive, send)
            return
        if endpoint == APPEND:
            response = await self._append(scope, receive, params["id"])
            if response is None:
                return  # the connection was cut on purpose
        else:
            response = await self._dispatch(endpoint, Request(scope, receive), params)
        response.headers.update(headers)
        await response(scope, receive, send)

    def _bug(self, what: str) -> None:
        """Our client sent something it never should: answer, and make the test fail."""
        self.unexpected.append(what)

    async def _dispatch(self, endpoint: str, request: Request, params: dict[str, str]) -> Any:
        if endpoint == "GET /i/oauth2/authorize":
            return self._authorize(request)
        if endpoint == "POST /2/oauth2/token":
            return await self._token(request)
        if endpoint == "POST /2/oauth2/revoke":
            return await self._revoke(request)
        grant = self._bearer(request)
        if grant is None:
            return problem(401, "Unauthorized", "Unauthorized")
        needs = {
            "GET /2/users/me": {"users.read", "tweet.read"},
            "GET /2/users/:id/tweets": {"users.read", "tweet.read"},
            "GET /2/tweets": {"users.read", "tweet.read"},
            "POST /2/tweets": {"tweet.write", "users.read", "tweet.read"},
        }.get(endpoint, {"media.write"})
        if not needs <= grant.scopes:
            return problem(403, "Forbidden", "You are not permitted to perform this action.")
        user = self.users[grant.user_id]
        if endpoint == "GET /2/users/me":
            return self._me(user, request)
        if endpoint == "GET /2/users/:id/tweets":
            return self._timeline(user, params["id"], request)
        if endpoint == "GET /2/tweets":
            return self._lookup(user, request)
        if endpoint == "POST /2/tweets":
            return await self._create_post(user, request)
        if endpoint == "POST /2/media/upload/initialize":
            return await self._initialize(user, request)
        if endpoint == "POST /2/media/upload/:id/finalize":
            return self._finalize(user, params["id"])
        return self._status(user, request)

    # --- OAuth ------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Any:
        q = request.query_params
        wrong = [
            name
            for name, ok in (
                ("client_id", q.get("client_id") == self.client_id),
                ("response_type", q.get("response_type") == "code"),
                ("code_challenge_method", q.get("code_challenge_method") == "S256"),
                ("code_challenge", bool(q.get("code_challenge"))),
                ("state", bool(q.get("state"))),
                ("redirect_uri", bool(q.get("redirect_uri"))),
                ("scope", bool(q.get("scope")) and set(q["scope"].split(" ")) <= SCOPES),
            )
            if not ok
        ]
        if wrong:
            self._bug(f"authorize: {wrong}")
            return JSONResponse({"error": "invalid_request", "bad": wrong}, 400)
        user = self.login_user or self.add_user().id
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "user": user,
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "scopes": set(q["scope"].split(" ")),
        }
        target = q["redirect_uri"] + "?" + urlencode({"state": q["state"], "code": code})
        return RedirectResponse(target, status_code=302)

    def _client_auth(self, request: Request) -> Any | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "Missing valid authorization header",
                },
                401,
            )
        cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if cid != self.client_id or secret != self.client_secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                401,
            )
        return None

    async def _form(self, request: Request) -> dict[str, str] | None:
        if request.headers.get("content-type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ):
            self._bug("oauth: not form-encoded")
            return None
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))

    async def _token(self, request: Request) -> Any:
        refused = self._client_auth(request)
        form = await self._form(request)
        if refused is not None:
            return refused
        if form is None:
            return JSONResponse({"error": "invalid_request"}, 400)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)
            if (
                entry is None
                or entry["redirect_uri"] != form.get("redirect_uri")
                or pkce_s256(form.get("code_verifier", "")) != entry["challenge"]
            ):
                return JSONResponse(
                    {
                        "error": "invalid_request",
                        "error_description": "Value passed for the authorization code was invalid.",
                    },
                    400,
                )
            return JSONResponse(self.issue_tokens(self.users[entry["user"]], entry["scopes"]))
        if grant == "refresh_token":
            held = self.refresh.get(form.get("refresh_token", ""))
            if held is None or held.used:
                return JSONResponse(
                    {
                        "error": self.refresh_error,
                        "error_description": "Value passed for the token was invalid.",
                    },
                    400,
                )
            held.used = True  # single use: the answer carries its successor
            return JSONResponse(self.issue_tokens(self.users[held.user_id], held.scopes))
        self._bug(f"token: grant_type {grant!r}")
        return JSONResponse({"error": "unsupported_grant_type"}, 400)

    async def _revoke(self, request: Request) -> Any:
        refused = self._client_auth(request)
        form = await self._form(request)
        if refused is not None:
            return refused
        if form is None or form.get("token_type_hint") not in ("access_token", "refresh_token"):
            self._bug("revoke: token_type_hint")
            return JSONResponse({"error": "invalid_request"}, 400)
        value = form.get("token", "")
        if self.access.pop(value, None) is not None or self.refresh.pop(value, None) is not None:
            self.revoked.append(value)
        return JSONResponse({"revoked": True})

    def _bearer(self, request: Request) -> AccessGrant | None:
        header = request.headers.get("authorization", "")
        grant = (
            self.access.get(header.removeprefix("Bearer "))
            if header.startswith("Bearer ")
            else None
        )
        if grant is None or grant.expires_at <= self.clock.now():
            return None
        return grant

    # --- users and posts --------------------------------------------------------------

    def _me(self, user: FakeUser, request: Request) -> Any:
        fields = set(request.query_params.get("user.fields", "").split(","))
        data: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
        if "public_metrics" in fields:
            data["public_metrics"] = {
                "followers_count": user.followers,
                "following_count": 10,
                "tweet_count": len(self.posts_by(user)),
                "listed_count": 1,
                "like_count": 5,
            }
        return JSONResponse({"data": data})

    def _post_json(self, post: FakePost, fields: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": post.id,
            "text": post.text,
            "edit_history_tweet_ids": [post.id],
        }
        if "created_at" in fields:
            moment = datetime.fromtimestamp(post.created_at, UTC)
            out["created_at"] = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if "attachments" in fields and post.media_keys:
            out["attachments"] = {"media_keys": list(post.media_keys)}
        for name, values in (
            ("public_metrics", post.public),
            ("non_public_metrics", post.non_public),
            ("organic_metrics", post.organic),
        ):
            if name in fields and values:
                out[name] = dict(values)
        return out

    def _private_refused(self, user: FakeUser, post: FakePost, fields: set[str]) -> str | None:
        asked = [f for f in PRIVATE_FIELDS if f in fields]
        if not asked:
            return None
        self.private_metric_ids.append(post.id)
        too_old = self.clock.now() - post.created_at > 30 * 86400
        return asked[0] if post.author_id != user.id or too_old else None

    def _lookup(self, user: FakeUser, request: Request) -> Any:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        fields = set(request.query_params.get("tweet.fields", "").split(","))
        if not 1 <= len(ids) <= 100 or not all(i.isdigit() for i in ids):
            self._bug(f"GET /2/tweets with {len(ids)} ids")
            return invalid("The `ids` query parameter value must be 1 to 100 numeric ids.")
        data, errors = [], []
        for post_id in ids:
            post = self.posts.get(post_id)
            if post is None:
                errors.append(
                    {
                        "value": post_id,
                        "detail": f"Could not find tweet with ids: [{post_id}].",
                        "title": "Not Found Error",
                        "resource_type": "tweet",
                        "parameter": "ids",
                        "resource_id": post_id,
                        "type": PROBLEMS + "resource-not-found",
                    }
                )
                continue
            denied = self._private_refused(user, post, fields)
            if denied is not None:
                errors.append(
                    {
                        "resource_id": post_id,
                        "field": denied,
                        "title": "Field Authorization Error",
                        "resource_type": "tweet",
                        "section": "data",
                        "detail": f"Sorry, you are not authorized to access '{denied}' on a Tweet.",
                        "type": PROBLEMS + "not-authorized-for-field",
                    }
                )
                continue
            data.append(self._post_json(post, fields))
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        if errors:
            body["errors"] = errors
        return JSONResponse(body)

    def _timeline(self, user: FakeUser, user_id: str, request: Request) -> Any:
        q = request.query_params
        fields = set(q.get("tweet.fields", "").split(","))
        try:
            size = int(q.get("max_results", "10"))
        except ValueError:
            size = 0
        if not 5 <= size <= 100 or any(f in fields for f in PRIVATE_FIELDS):
            self._bug(f"timeline: max_results={q.get('max_results')} fields={sorted(fields)}")
            return invalid("One or more parameters to your request was invalid.")
        if user_id not in self.users:
            return problem(
                404, "Not Found Error", "Could not find user.", PROBLEMS + "resource-not-found"
            )
        excluded = set(q.get("exclude", "").split(","))
        if excluded != {"retweets", "replies"}:
            self._bug(f"timeline: exclude={sorted(excluded)}")
        posts = sorted(
            (p for p in self.posts.values() if p.author_id == user_id),
            key=lambda p: -p.created_at,
        )
        for bound, keep in (("start_time", True), ("end_time", False)):
            if bound in q:
                limit = datetime.fromisoformat(q[bound].replace("Z", "+00:00")).timestamp()
                posts = [p for p in posts if (p.created_at >= limit) == keep]
        start = int(q.get("pagination_token", "0"))
        page = posts[start : start + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0].id, page[-1].id
        if start + size < len(posts):
            meta["next_token"] = str(start + size)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [self._post_json(p, fields) for p in page]
        return JSONResponse(body)

    async def _create_post(self, user: FakeUser, request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            self._bug("POST /2/tweets: not JSON")
            return invalid("Request body is not valid JSON.")
        text = body.get("text") if isinstance(body, dict) else None
        media_ids = ((body.get("media") or {}) if isinstance(body, dict) else {}).get("media_ids")
        if not isinstance(text, str) or not isinstance(media_ids, list):
            self._bug(
                f"POST /2/tweets: body keys {sorted(body) if isinstance(body, dict) else body}"
            )
            return invalid("One or more parameters to your request was invalid.")
        if not parse_tweet(text).valid:
            return invalid("Your Tweet text is too long.")
        now = self.clock.now()
        media = [self.media.get(str(m)) for m in media_ids]
        if not media or any(
            m is None or m.user_id != user.id or m.state != "succeeded" or m.expires_at <= now
            for m in media
        ):
            return invalid("Your media IDs are invalid.")
        mine = self.posts_by(user)
        if any(p.text == text for p in mine):
            return problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        day = [p for p in self.posts.values() if p.created_at > now - 86400 and p.media_keys]
        for scope, cap, used in (
            ("user", self.user_post_cap, [p for p in day if p.author_id == user.id]),
            ("app", self.app_post_cap, day),
        ):
            if cap is not None and len(used) >= cap:
                refused = problem(429, "Too Many Requests", "Too Many Requests")
                refused.headers[f"x-{scope}-limit-24hour-limit"] = str(cap)
                refused.headers[f"x-{scope}-limit-24hour-remaining"] = "0"
                refused.headers[f"x-{scope}-limit-24hour-reset"] = str(int(now + 3600))
                return refused
        post = FakePost(self._id(), user.id, text, now, [m.key for m in media if m is not None])
        self.posts[post.id] = post
        return JSONResponse(
            {"data": {"id": post.id, "text": text, "edit_history_tweet_ids": [post.id]}},
            status_code=201,
        )

    # --- media upload -----------------------------------------------------------------

    def _own_media(self, user: FakeUser, media_id: str) -> FakeMedia | Any:
        media = self.media.get(media_id)
        if media is None or media.user_id != user.id:
            return invalid(f"Media id {media_id} is invalid.")
        if media.expires_at <= self.clock.now():
            return invalid(f"Media id {media_id} has expired.")
        return media

    async def _initialize(self, user: FakeUser, request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            body = None
        ok = (
            isinstance(body, dict)
            and body.get("media_category") == "tweet_video"
            and body.get("media_type") in VIDEO_TYPES
            and isinstance(body.get("total_bytes"), int)
            and 0 < body["total_bytes"] <= MAX_TOTAL
        )
        if not ok:
            self._bug(f"initialize: {body!r}"[:200])
            return invalid("One or more parameters to your request was invalid.")
        media_id = self._id()
        media = FakeMedia(
            media_id,
            f"7_{media_id}",
            user.id,
            body["media_type"],
            body["total_bytes"],
            self.clock.now() + self.media_ttl,
        )
        self.media[media_id] = media
        return JSONResponse(
            {
                "data": {
                    "id": media_id,
                    "media_key": media.key,
                    "expires_after_secs": self.media_ttl,
                }
            }
        )

    async def _append(self, scope: dict[str, Any], receive: Any, media_id: str) -> Any | None:
        """Raw ASGI, so the fake can count bytes as they arrive and really cut the connection
        (uvicorn's receive callable is a method of the cycle that owns the transport)."""
        request = Request(scope)
        grant = self._bearer(request)
        _, options = parse_options_header(request.headers.get("content-type"))
        body = AppendBody(options.get(b"boundary") or b"-")
        received = 0
        malformed: str | None = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            piece = message.get("body", b"")
            received += len(piece)
            self.append_body_bytes += len(piece)
            if malformed is None:
                try:
                    body.feed(piece)
                except ValueError as exc:
                    malformed = str(exc)  # read the rest, then answer
            if self._drop is not None and received >= self._drop[1]:
                segment, _ = self._drop
                if segment is None or body.segment_index == segment:
                    self._drop = None
                    receive.__self__.transport.close()
                    return None
            if not message.get("more_body", False):
                break
        if grant is None:
            return problem(401, "Unauthorized", "Unauthorized")
        if "media.write" not in grant.scopes:
            return problem(403, "Forbidden", "You are not permitted to perform this action.")
        media = self._own_media(self.users[grant.user_id], media_id)
        if not isinstance(media, FakeMedia):
            return media
        if malformed is None:
            try:
                body.close()
            except ValueError as exc:
                malformed = str(exc)
        index, size = body.segment_index, body.media_bytes
        if malformed is not None or index is None or size is None:
            self._bug(f"append: malformed multipart ({malformed or 'a field is missing'})")
            return invalid("One or more parameters to your request was invalid.")
        expected = len(media.segments)
        problem_text = None
        if media.finalized:
            problem_text = "append after finalize"
        elif not 0 <= index <= 999:
            problem_text = f"segment_index {index} out of range"
        elif index > expected:
            problem_text = f"segment {index} before segment {expected}"
        elif size > MAX_SEGMENT or not size:
            problem_text = f"segment of {size} bytes"
        elif sum(n for i, n in media.segments.items() if i != index) + size > media.total:
            problem_text = "more bytes than total_bytes"
        if problem_text is not None:
            self._bug(f"append: {problem_text}")
            return invalid(f"Invalid segment: {problem_text}.")
        media.segments[index] = size
        self.media_bytes += size
        return JSONResponse({"data": {"expires_at": int(media.expires_at)}})

    def _finalize(self, user: FakeUser, media_id: str) -> Any:
        if self._fail_finalize is not None:
            status, self._fail_finalize = self._fail_finalize, None
            return problem(status, "Service Unavailable", "Service Unavailable")
        media = self._own_media(user, media_id)
        if not isinstance(media, FakeMedia):
            return media
        indices = sorted(media.segments)
        if media.finalized:
            self._bug("finalize twice")
            return invalid("Media already finalized.")
        if indices != list(range(len(indices))) or sum(media.segments.values()) != media.total:
            self._bug(f"finalize with {sum(media.segments.values())} of {media.total} bytes")
            return invalid("File size mismatch: not every byte was appended.")
        media.finalized = True
        plan = self.processing
        media.states = ["pending"] * plan.pending + ["in_progress"] * plan.in_progress
        media.fail, media.check_after = plan.fail, plan.check_after_secs
        data: dict[str, Any] = {
            "id": media.id,
            "media_key": media.key,
            "size": media.total,
            "expires_after_secs": int(media.expires_at - self.clock.now()),
        }
        if media.states or media.fail:
            data["processing_info"] = self._advance(media)
        else:
            media.state = "succeeded"
        return JSONResponse({"data": data})

    def _advance(self, media: FakeMedia) -> dict[str, Any]:
        if media.states:
            media.state = media.states.pop(0)
            media.not_before = self.clock.now() + media.check_after
            percent = 0 if media.state == "pending" else 50
            return {
                "state": media.state,
                "check_after_secs": media.check_after,
                "progress_percent": percent,
            }
        if media.fail:
            media.state = "failed"
            return {
                "state": "failed",
                "progress_percent": 100,
                "error": {"code": 1, "name": media.fail, "message": "Unsupported video format"},
            }
        media.state = "succeeded"
        return {"state": "succeeded", "progress_percent": 100}

    def _status(self, user: FakeUser, request: Request) -> Any:
        q = request.query_params
        if q.get("command", "STATUS") != "STATUS":
            self._bug(f"status: command={q.get('command')}")
        media = self._own_media(user, q.get("media_id", ""))
        if not isinstance(media, FakeMedia):
            return media
        if not media.finalized:
            self._bug("status before finalize")
            return invalid("Media not finalized.")
        media.polls += 1
        if media.state in ("pending", "in_progress"):
            if self.clock.now() < media.not_before:
                self._bug(f"status polled {media.not_before - self.clock.now():.1f} s early")
            info = self._advance(media)
        else:
            info = {"state": media.state, "progress_percent": 100}
        return JSONResponse(
            {
                "data": {
                    "id": media.id,
                    "media_key": media.key,
                    "expires_after_secs": int(media.expires_at - self.clock.now()),
                    "processing_info": info,
                }
            }
        )


async def _drain(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return


def x_settings(base: str, fake: FakeX, **overrides: Any) -> dict[str, Any]:
    """X's plug-in settings (X_* names) pointing every URL at the fake."""
    values: dict[str, Any] = {
        "x_client_id": fake.client_id,
        "x_client_secret": fake.client_secret,
        "x_auth_url": f"{base}/i/oauth2/authorize",
        "x_token_url": f"{base}/2/oauth2/token",
        "x_revoke_url": f"{base}/2/oauth2/revoke",
        "x_api_base": base,
        "x_upload_segment_bytes": 256 * 1024,
        "x_processing_timeout_seconds": 120,
    }
    values.update(overrides)
    return values


def use_clock(platform: Any, clock: FakeClock) -> None:
    """Make a built XPlatform read time from, and sleep on, the fake's clock."""
    platform.clock.now = clock.now
    platform.clock.sleep = clock.sleep
