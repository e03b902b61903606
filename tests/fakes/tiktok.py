"""A fake TikTok (Login Kit OAuth v2, Content Posting API, Display API v2) on loopback.

Serve a `FakeTikTok` with `tests.fakes.server.serve_asgi`, set `fake.base` to the
served URL, and point the plug-in at it with `tiktok_settings(base, fake)`. It is as
strict as TikTok's documentation and fails loudly on anything else (`unexpected`
lists requests it did not understand; the test fixture asserts it stays empty):

- OAuth: `client_key`/`client_secret` checked on every token call; codes bound to
  their redirect URI and (when the consent carried one) to a PKCE challenge in
  TikTok's desktop form, hex SHA-256 of the verifier; comma-separated scopes; refresh
  tokens rotate on use (`rotate_refresh_tokens`), and a rotated-away, revoked or
  lapsed refresh token answers `invalid_grant` in TikTok's flat OAuth shape; an
  expired access token answers `access_token_invalid`.
- Scopes: each endpoint and each user field checks the scope TikTok documents.
- Posting: creator_info privacy options (public accounts: PUBLIC_TO_EVERYONE,
  MUTUAL_FOLLOW_FRIENDS, SELF_ONLY; private ones FOLLOWER_OF_CREATOR instead of
  public); `privacy_level_option_mismatch`; the chunk rules of the media transfer
  guide at init (5 MiB..64 MB chunks, floor count, last chunk up to 128 MB, whole
  files under 5 MiB, 1..1000 chunks) and on every PUT (order, size, Content-Range,
  Content-Length, Content-Type); status polling that passes through
  PROCESSING_UPLOAD (or PROCESSING_DOWNLOAD for PULL_FROM_URL) before
  PUBLISH_COMPLETE or SEND_TO_USER_INBOX; posts per creator per 24 h and pending
  inbox drafts capped as documented.

Faults: `fail_next(path, code, ...)`, `rate_limit(path, ...)`, `errors_in_200`,
`drop_connection_at(byte)`, `hold_at(byte)` (+ `held`), `fail_chunk(n, status)`,
`unaudited`, `processing_polls`, `fail_processing(reason)`, `grant_only(scopes)`,
`require_pkce`, `expire_access_tokens()`, `page_cap`. Counters: `requests` (per
path), `bytes_received`, `calls`, `posts_created`.

Chunk PUTs are served as raw ASGI so the fake can really cut the TCP connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

AUTHORIZE = "/v2/auth/authorize/"
TOKEN = "/v2/oauth/token/"
REVOKE = "/v2/oauth/revoke/"
USER_INFO = "/v2/user/info/"
VIDEO_LIST = "/v2/video/list/"
VIDEO_QUERY = "/v2/video/query/"
CREATOR_INFO = "/v2/post/publish/creator_info/query/"
DIRECT_INIT = "/v2/post/publish/video/init/"
INBOX_INIT = "/v2/post/publish/inbox/video/init/"
STATUS = "/v2/post/publish/status/fetch/"
UPLOAD = "/upload/video/"

ALL_SCOPES = (
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.list",
    "video.publish",
    "video.upload",
)
USER_FIELDS = {
    "open_id": "user.info.basic",
    "union_id": "user.info.basic",
    "avatar_url": "user.info.basic",
    "display_name": "user.info.basic",
    "bio_description": "user.info.profile",
    "profile_deep_link": "user.info.profile",
    "is_verified": "user.info.profile",
    "username": "user.info.profile",
    "follower_count": "user.info.stats",
    "following_count": "user.info.stats",
    "likes_count": "user.info.stats",
    "video_count": "user.info.stats",
}
VIDEO_FIELDS = {
    "id",
    "create_time",
    "cover_image_url",
    "share_url",
    "video_description",
    "duration",
    "height",
    "width",
    "title",
    "embed_html",
    "embed_link",
    "like_count",
    "comment_count",
    "share_count",
    "view_count",
}
PRIVACY_PUBLIC = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")
PRIVACY_PRIVATE = ("FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")
VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm")
# The strictest reading of "5 MB" / "64 MB" / "128 MB" (binary for minimums, decimal for maximums).
MIN_CHUNK = 5 * 1024 * 1024
MAX_CHUNK = 64_000_000
MAX_LAST_CHUNK = 128_000_000
MAX_CHUNKS = 1000
DAY = 24 * 3600
# The HTTP status TikTok documents for each error code.
STATUS_OF = {
    "access_token_invalid": 401,
    "scope_not_authorized": 401,
    "scope_permission_missed": 400,
    "invalid_params": 400,
    "invalid_param": 400,
    "rate_limit_exceeded": 429,
    "internal_error": 500,
    "spam_risk_too_many_posts": 403,
    "spam_risk_too_many_pending_share": 403,
    "spam_risk_user_banned_from_posting": 403,
    "reached_active_user_cap": 403,
    "unaudited_client_can_only_post_to_private_accounts": 403,
    "url_ownership_unverified": 403,
    "privacy_level_option_mismatch": 403,
}
CHUNK_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8).upper()


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class FakeVideo:
    id: str
    title: str
    create_time: int
    views: int = 0
    likes: int = 0
    comments: int = 0
    shares: int = 0
    public: bool = True

    def field(self, name: str, username: str) -> Any:
        values: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "video_description": self.title,
            "create_time": self.create_time,
            "share_url": f"https://www.tiktok.com/@{username}/video/{self.id}",
            "cover_image_url": f"https://p16-sign.tiktokcdn.example/{self.id}.jpeg",
            "view_count": self.views,
            "like_count": self.likes,
            "comment_count": self.comments,
            "share_count": self.shares,
            "duration": 15,
            "height": 1920,
            "width": 1080,
            "embed_link": f"https://www.tiktok.com/embed/v2/{self.id}",
            "embed_html": "<blockquote></blockquote>",
        }
        return values[name]


@dataclass
class FakeCreator:
    open_id: str
    username: str
    display_name: str
    followers: int = 1000
    likes: int = 5000
    is_private: bool = False
    comment_disabled: bool = False
    duet_disabled: bool = False
    stitch_disabled: bool = False
    max_duration: int = 600
    videos: list[FakeVideo] = field(default_factory=list)  # newest first

    @property
    def privacy_options(self) -> tuple[str, ...]:
        return PRIVACY_PRIVATE if self.is_private else PRIVACY_PUBLIC


@dataclass
class Grant:
    open_id: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class Publish:
    id: str
    mode: str  # "direct" | "inbox"
    open_id: str
    source: str  # "FILE_UPLOAD" | "PULL_FROM_URL"
    post_info: dict[str, Any]
    video_size: int = 0
    chunk_size: int = 0
    chunk_count: int = 0
    video_url: str | None = None
    upload_id: str = ""
    upload_token: str = ""
    issued_at: float = 0.0
    chunks_done: int = 0
    received: int = 0
    wire_bytes: int = 0
    chunk_puts: int = 0
    processing_left: int = 0
    status: str = "PROCESSING_UPLOAD"
    fail_reason: str = ""
    video_id: str | None = None
    privacy_level: str = ""
    created_at: float = field(default_factory=time.time)
    hasher: Any = field(default_factory=hashlib.sha256)

    @property
    def sha256(self) -> str:
        return str(self.hasher.hexdigest())

    def span(self, index: int) -> tuple[int, int]:
        first = index * self.chunk_size
        last = self.video_size - 1 if index == self.chunk_count - 1 else first + self.chunk_size - 1
        return first, last

    @property
    def uploaded(self) -> bool:
        return self.source == "PULL_FROM_URL" or self.chunks_done == self.chunk_count


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Injected:
    path: str
    code: str
    status: int
    times: int
    retry_after: float | None = None


class FakeTikTok:
    """State and ASGI app of the fake. Set `base` to the served URL before posting."""

    def __init__(
        self,
        *,
        client_key: str = "awfaketiktokkey01",
        client_secret: str = "tt-secret-4f1c9e2a7b",
        access_ttl: int = 86_400,
        refresh_ttl: int = 31_536_000,
        hash_uploads: bool = True,
    ) -> None:
        self.client_key = client_key
        self.client_secret = client_secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.hash_uploads = hash_uploads
        self.base = ""
        self.creators: dict[str, FakeCreator] = {}
        self.login: str | None = None  # the open_id that consents
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.revoked: list[str] = []
        self.publishes: dict[str, Publish] = {}
        self.verified_url_prefixes: list[str] = ["https://bot.example.com/media/"]
        # Behaviour switches and faults (see the module docstring).
        self.rotate_refresh_tokens = True
        self.require_pkce = False
        self.unaudited = False
        self.errors_in_200 = False
        self.processing_polls = 1
        self.posts_per_day = 15
        self.page_cap = 20
        self.url_ttl = 3600.0
        self._granted: tuple[str, ...] | None = None
        self._injected: list[Injected] = []
        self._fail_processing: str | None = None
        self._drop_at: int | None = None
        self._hold_at: int | None = None
        self._fail_chunk: tuple[int, int] | None = None
        self.held = asyncio.Event()
        # Counters.
        self.requests: Counter[str] = Counter()
        self.calls: list[Call] = []
        self.bytes_received = 0
        self.unexpected: list[str] = []
        self.refresh_count = 0
        self.sink_bytes = 0
        self._ids = 7_300_000_000_000_000_000
        self._app = Starlette(
            routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PUT", "DELETE"])]
        )
        self._routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("GET", AUTHORIZE): self._authorize,
            ("POST", TOKEN): self._token,
            ("POST", REVOKE): self._revoke,
            ("GET", USER_INFO): self._user_info,
            ("POST", VIDEO_LIST): self._video_list,
            ("POST", VIDEO_QUERY): self._video_query,
            ("POST", CREATOR_INFO): self._creator_info,
            ("POST", DIRECT_INIT): self._direct_init,
            ("POST", INBOX_INIT): self._inbox_init,
            ("POST", STATUS): self._status,
        }

    # --- seeding ----------------------------------------------------------------------

    def _next_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def add_creator(
        self, username: str = "creator", *, display_name: str = "A Creator", **kw: Any
    ) -> FakeCreator:
        creator = FakeCreator(
            open_id="-000" + secrets.token_hex(14),
            username=username,
            display_name=display_name,
            **kw,
        )
        self.creators[creator.open_id] = creator
        if self.login is None:
            self.login = creator.open_id
        return creator

    def add_video(self, creator: FakeCreator, title: str = "a video", **kw: Any) -> FakeVideo:
        newest = creator.videos[0].create_time if creator.videos else 1_760_000_000
        video = FakeVideo(id=self._next_id(), title=title, create_time=newest + 60, **kw)
        creator.videos.insert(0, video)
        return video

    def issue_tokens(
        self,
        creator: FakeCreator,
        *,
        scopes: tuple[str, ...] = ALL_SCOPES,
        expires_in: int | None = None,
    ) -> dict[str, Any]:
        """A token answer as /v2/oauth/token/ gives it (tests link accounts with it)."""
        access = "act." + secrets.token_urlsafe(32)
        refresh = "rft." + secrets.token_urlsafe(32)
        ttl = self.access_ttl if expires_in is None else expires_in
        now = time.time()
        self.access_tokens[access] = Grant(creator.open_id, scopes, now + ttl)
        self.refresh_tokens[refresh] = Grant(creator.open_id, scopes, now + self.refresh_ttl)
        return {
            "access_token": access,
            "expires_in": ttl,
            "open_id": creator.open_id,
            "refresh_expires_in": self.refresh_ttl,
            "refresh_token": refresh,
            "scope": ",".join(scopes),
            "token_type": "Bearer",
        }

    # --- faults -----------------------------------------------------------------------

    def fail_next(
        self,
        path: str,
        code: str,
        *,
        status: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """The next `times` requests to `path` answer TikTok's error `code` (with its
        documented status unless `status` is given; 200 when `errors_in_200`)."""
        self._injected.append(
            Injected(path, code, status or STATUS_OF.get(code, 400), times, retry_after)
        )

    def rate_limit(self, path: str, *, times: int = 1, retry_after: float | None = None) -> None:
        """429 `rate_limit_exceeded` with TikTok's body and headers (Retry-After if given)."""
        self.fail_next(path, "rate_limit_exceeded", times=times, retry_after=retry_after)

    def drop_connection_at(self, byte: int) -> None:
        """Cut the TCP connection once, mid-chunk, when the upload holds byte `byte`."""
        self._drop_at = byte

    def hold_at(self, byte: int) -> None:
        """Stall the chunk holding `byte` there (sets `held`) until the client goes away."""
        self._hold_at = byte
        self.held.clear()

    def fail_chunk(self, n: int, status: int = 503) -> None:
        """Answer `status` to the `n`th chunk PUT (1-based, counted per post), once."""
        self._fail_chunk = (n, status)

    def fail_processing(self, reason: str) -> None:
        """The next posts fail after upload with `fail_reason` = `reason`."""
        self._fail_processing = reason

    def grant_only(self, scopes: tuple[str, ...]) -> None:
        """The next consent grants only these scopes (the creator unticked the rest)."""
        self._granted = scopes

    def expire_access_tokens(self) -> None:
        for grant in self.access_tokens.values():
            grant.expires_at = 0.0

    # --- counters ---------------------------------------------------------------------

    @property
    def posts_created(self) -> list[Publish]:
        """Posts that reached PUBLISH_COMPLETE or the inbox."""
        return [
            p
            for p in self.publishes.values()
            if p.status in ("PUBLISH_COMPLETE", "SEND_TO_USER_INBOX")
        ]

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    # --- wire helpers -----------------------------------------------------------------

    def error(
        self, code: str, message: str = "", *, status: int | None = None, **headers: str
    ) -> JSONResponse:
        """TikTok's v2 error envelope (data is empty on errors)."""
        log_id = _log_id()
        body = {
            "data": {},
            "error": {"code": code, "message": message or code, "log_id": log_id},
        }
        real = status or STATUS_OF.get(code, 400)
        return JSONResponse(
            body,
            status_code=200 if self.errors_in_200 else real,
            headers={"x-tt-logid": log_id, **headers},
        )

    def oauth_error(self, error: str, description: str, status: int = 400) -> JSONResponse:
        """The OAuth endpoints' flat error shape."""
        log_id = _log_id()
        return JSONResponse(
            {"error": error, "error_description": description, "log_id": log_id},
            status_code=200 if self.errors_in_200 else status,
            headers={"x-tt-logid": log_id},
        )

    @staticmethod
    def ok(data: dict[str, Any]) -> JSONResponse:
        log_id = _log_id()
        return JSONResponse(
            {"data": data, "error": {"code": "ok", "message": "", "log_id": log_id}},
            headers={"x-tt-logid": log_id},
        )

    def _bad(self, path: str, message: str, code: str = "invalid_params") -> JSONResponse:
        """A request our client should never send: answered as TikTok would, and recorded."""
        self.unexpected.append(f"{path}: {message}")
        return self.error(code, message)

    def _injection(self, path: str) -> JSONResponse | None:
        for item in self._injected:
            if item.path == path and item.times > 0:
                item.times -= 1
                headers = (
                    {} if item.retry_after is None else {"Retry-After": str(int(item.retry_after))}
                )
                return self.error(item.code, f"injected {item.code}", status=item.status, **headers)
        return None

    def _grant(self, request: Request, *scopes: str) -> Grant | JSONResponse:
        """The bearer token's grant, holding one of `scopes` (any, when none are named)."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return self.error("access_token_invalid", "The access token is missing.")
        grant = self.access_tokens.get(header[7:])
        if grant is None or grant.expires_at < time.time():
            return self.error(
                "access_token_invalid", "Access token is invalid or expired, refresh and retry."
            )
        if scopes and not set(scopes) & set(grant.scopes):
            return self.error(
                "scope_not_authorized", f"The user did not authorize the scope {scopes[0]}."
            )
        return grant

    async def _json(self, request: Request) -> dict[str, Any] | None:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # --- ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT":
            if scope["path"] == UPLOAD:
                await self._upload_put(scope, receive, send)
                return
            if scope["path"] == "/bench/sink":
                await self._sink(receive, send)
                return
        await self._app(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        self.requests[path] += 1
        handler = self._routes.get((request.method, path))
        if handler is None:
            self.unexpected.append(f"{request.method} {path}")
            return self.error("invalid_params", "unknown endpoint", status=404)
        injected = self._injection(path)
        if injected is not None:
            self.calls.append(Call(request.method, path, dict(request.query_params), None))
            return injected
        return await handler(request)

    # --- OAuth ------------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        self.calls.append(Call("GET", AUTHORIZE, dict(q), None))
        problems = []
        if q.get("client_key") != self.client_key:
            problems.append("client_key")
        if q.get("response_type") != "code":
            problems.append("response_type")
        scopes = tuple(q.get("scope", "").split(","))
        if not q.get("scope") or any(s not in ALL_SCOPES for s in scopes):
            problems.append("scope (comma-separated, known scopes)")
        if not q.get("state") or not q.get("redirect_uri"):
            problems.append("state/redirect_uri")
        challenge = q.get("code_challenge")
        if challenge and (
            q.get("code_challenge_method") != "S256" or not re.fullmatch(r"[0-9a-f]{64}", challenge)
        ):
            problems.append("code_challenge (hex SHA-256, S256)")
        if self.require_pkce and not challenge:
            problems.append("code_challenge required (desktop app)")
        if problems:
            self.unexpected.append(f"authorize: {problems}")
            return JSONResponse({"error": "invalid_request", "bad": problems}, status_code=400)
        open_id = self.login or self.add_creator().open_id
        granted = tuple(s for s in scopes if self._granted is None or s in self._granted)
        self._granted = None
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "open_id": open_id,
            "redirect_uri": q["redirect_uri"],
            "challenge": challenge,
            "scopes": granted,
        }
        target = (
            q["redirect_uri"]
            + "?"
            + urlencode({"code": code, "scopes": ",".join(granted), "state": q["state"]})
        )
        return RedirectResponse(target, status_code=302)

    async def _form(self, request: Request, path: str) -> dict[str, str] | JSONResponse:
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            self.unexpected.append(f"{path}: not form-encoded")
            return self.oauth_error("invalid_request", "Content-Type must be form-urlencoded.")
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        shown = {k: ("***" if "secret" in k or "token" in k else v) for k, v in form.items()}
        self.calls.append(Call("POST", path, {}, shown))
        if (
            form.get("client_key") != self.client_key
            or form.get("client_secret") != self.client_secret
        ):
            return self.oauth_error("invalid_client", "Client key or secret is invalid.", 401)
        return form

    async def _token(self, request: Request) -> Response:
        form = await self._form(request, TOKEN)
        if isinstance(form, JSONResponse):
            return form
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)
            if entry is None or entry["redirect_uri"] != form.get("redirect_uri"):
                return self.oauth_error("invalid_grant", "Authorization code is expired.")
            if entry["challenge"]:
                verifier = form.get("code_verifier", "")
                if hashlib.sha256(verifier.encode()).hexdigest() != entry["challenge"]:
                    return self.oauth_error(
                        "invalid_request", "Code verifier or code challenge is invalid."
                    )
            creator = self.creators[entry["open_id"]]
            return JSONResponse(self.issue_tokens(creator, scopes=entry["scopes"]))
        if grant_type == "refresh_token":
            self.refresh_count += 1
            old = form.get("refresh_token", "")
            grant = self.refresh_tokens.get(old)
            if grant is None or grant.expires_at < time.time():
                return self.oauth_error("invalid_grant", "Refresh token is invalid or expired.")
            creator = self.creators[grant.open_id]
            answer = self.issue_tokens(creator, scopes=grant.scopes)
            new = answer["refresh_token"]
            if self.rotate_refresh_tokens:
                del self.refresh_tokens[old]
            else:
                del self.refresh_tokens[new]
                answer["refresh_token"] = old
            return JSONResponse(answer)
        return self.oauth_error("unsupported_grant_type", "Unsupported grant type.")

    async def _revoke(self, request: Request) -> Response:
        form = await self._form(request, REVOKE)
        if isinstance(form, JSONResponse):
            return form
        grant = self.access_tokens.get(form.get("token", ""))
        if grant is None or grant.expires_at < time.time():
            return self.error("access_token_invalid", "Access token is invalid or expired.")
        for store in (self.access_tokens, self.refresh_tokens):
            for value, other in list(store.items()):
                if other.open_id == grant.open_id:
                    del store[value]
        self.revoked.append(grant.open_id)
        return Response(status_code=200)

    # --- Display API ------------------------------------------------------------------

    def _fields(self, request: Request, allowed: set[str] | dict[str, str]) -> list[str] | None:
        raw = request.query_params.get("fields", "")
        fields = [f for f in raw.split(",") if f]
        if not fields or any(f not in allowed for f in fields):
            self.unexpected.append(f"{request.url.path}: fields {raw!r}")
            return None
        return fields

    async def _user_info(self, request: Request) -> Response:
        self.calls.append(Call("GET", USER_INFO, dict(request.query_params), None))
        grant = self._grant(request)
        if isinstance(grant, JSONResponse):
            return grant
        fields = self._fields(request, USER_FIELDS)
        if fields is None:
            return self._bad(USER_INFO, "fields")
        missing = [f for f in fields if USER_FIELDS[f] not in grant.scopes]
        if missing:
            return self.error(
                "scope_permission_missed", f"Fields {missing} need additional scopes."
            )
        creator = self.creators[grant.open_id]
        values = {
            "open_id": creator.open_id,
            "union_id": "u" + creator.open_id,
            "avatar_url": "https://p16-sign.tiktokcdn.example/avatar.jpeg",
            "display_name": creator.display_name,
            "bio_description": "",
            "profile_deep_link": f"https://vm.tiktok.example/{creator.username}",
            "is_verified": False,
            "username": creator.username,
            "follower_count": creator.followers,
            "following_count": 12,
            "likes_count": creator.likes,
            "video_count": len(creator.videos),
        }
        return self.ok({"user": {f: values[f] for f in fields}})

    async def _video_list(self, request: Request) -> Response:
        body = await self._json(request)
        self.calls.append(Call("POST", VIDEO_LIST, dict(request.query_params), body))
        grant = self._grant(request, "video.list")
        if isinstance(grant, JSONResponse):
            return grant
        fields = self._fields(request, VIDEO_FIELDS)
        if fields is None or body is None:
            return self._bad(VIDEO_LIST, "fields/body")
        max_count = body.get("max_count", 10)
        cursor = body.get("cursor")
        if not isinstance(max_count, int) or not 1 <= max_count <= 20:
            return self._bad(VIDEO_LIST, "max_count must be 1..20")
        if cursor is not None and not isinstance(cursor, int):
            return self._bad(VIDEO_LIST, "cursor must be an int64")
        creator = self.creators[grant.open_id]
        public = [v for v in creator.videos if v.public]
        older = [v for v in public if cursor is None or v.create_time * 1000 < cursor]
        page = older[: min(max_count, self.page_cap)]
        has_more = len(older) > len(page)
        next_cursor = page[-1].create_time * 1000 if page else (cursor or 0)
        return self.ok(
            {
                "videos": [{f: v.field(f, creator.username) for f in fields} for v in page],
                "cursor": next_cursor,
                "has_more": has_more,
            }
        )

    async def _video_query(self, request: Request) -> Response:
        body = await self._json(request)
        self.calls.append(Call("POST", VIDEO_QUERY, dict(request.query_params), body))
        grant = self._grant(request, "video.list")
        if isinstance(grant, JSONResponse):
            return grant
        fields = self._fields(request, VIDEO_FIELDS)
        filters = (body or {}).get("filters")
        ids = filters.get("video_ids") if isinstance(filters, dict) else None
        if fields is None or not isinstance(ids, list) or not ids:
            return self._bad(VIDEO_QUERY, "filters.video_ids is required")
        if len(ids) > 20:
            return self._bad(VIDEO_QUERY, "At most 20 video ids per request.")
        creator = self.creators[grant.open_id]
        mine = {v.id: v for v in creator.videos}
        found = [mine[i] for i in ids if i in mine]  # others' or deleted ids: absent
        return self.ok(
            {
                "videos": [{f: v.field(f, creator.username) for f in fields} for v in found],
                "cursor": 0,
                "has_more": False,
            }
        )

    # --- Content Posting API ----------------------------------------------------------

    async def _creator_info(self, request: Request) -> Response:
        self.calls.append(Call("POST", CREATOR_INFO, {}, await self._json(request)))
        grant = self._grant(request, "video.publish")
        if isinstance(grant, JSONResponse):
            return grant
        creator = self.creators[grant.open_id]
        return self.ok(
            {
                "creator_avatar_url": "https://p16-sign.tiktokcdn.example/avatar.jpeg",
                "creator_username": creator.username,
                "creator_nickname": creator.display_name,
                "privacy_level_options": list(creator.privacy_options),
                "comment_disabled": creator.comment_disabled,
                "duet_disabled": creator.duet_disabled or creator.is_private,
                "stitch_disabled": creator.stitch_disabled or creator.is_private,
                "max_video_post_duration_sec": creator.max_duration,
            }
        )

    def _source(self, info: Any) -> dict[str, Any] | str:
        """Validated source_info, or what is wrong with it (the media transfer guide)."""
        if not isinstance(info, dict):
            return "source_info is required"
        if info.get("source") == "PULL_FROM_URL":
            url = info.get("video_url")
            if set(info) != {"source", "video_url"} or not isinstance(url, str):
                return "PULL_FROM_URL takes video_url only"
            return dict(info)
        if info.get("source") != "FILE_UPLOAD":
            return "source must be FILE_UPLOAD or PULL_FROM_URL"
        size, chunk, count = (
            info.get(k) for k in ("video_size", "chunk_size", "total_chunk_count")
        )
        if not all(isinstance(v, int) and v > 0 for v in (size, chunk, count)):
            return "video_size, chunk_size and total_chunk_count are required"
        assert isinstance(size, int) and isinstance(chunk, int) and isinstance(count, int)
        if size < MIN_CHUNK and (chunk != size or count != 1):
            return "a video under 5 MB goes whole, in one chunk"
        if size >= MIN_CHUNK and not MIN_CHUNK <= chunk <= MAX_CHUNK and chunk != size:
            return "chunk_size must be 5 MB..64 MB"
        if size > MAX_CHUNK and count < 2:
            return "a video over 64 MB must be sent in several chunks"
        if count != size // chunk:
            return "total_chunk_count must be video_size / chunk_size, rounded down"
        if not 1 <= count <= MAX_CHUNKS:
            return "1 to 1000 chunks"
        if size - (count - 1) * chunk > MAX_LAST_CHUNK:
            return "the last chunk may be at most 128 MB"
        return dict(info)

    def _new_publish(
        self, mode: str, grant: Grant, post_info: dict[str, Any], source: dict[str, Any]
    ) -> JSONResponse:
        prefix = "v_pub_" if mode == "direct" else "v_inbox_"
        kind = "url" if source["source"] == "PULL_FROM_URL" else "file"
        publish = Publish(
            id=f"{prefix}{kind}~v2.{self._next_id()}",
            mode=mode,
            open_id=grant.open_id,
            source=source["source"],
            post_info=post_info,
            video_size=source.get("video_size", 0),
            chunk_size=source.get("chunk_size", 0),
            chunk_count=source.get("total_chunk_count", 0),
            video_url=source.get("video_url"),
            upload_id=self._next_id(),
            upload_token=secrets.token_urlsafe(16),
            issued_at=time.time(),
            processing_left=self.processing_polls,
            status="PROCESSING_DOWNLOAD" if kind == "url" else "PROCESSING_UPLOAD",
            fail_reason=self._fail_processing or "",
        )
        self._fail_processing = None
        self.publishes[publish.id] = publish
        data = {"publish_id": publish.id}
        if kind == "file":
            query = urlencode(
                {"upload_id": publish.upload_id, "upload_token": publish.upload_token}
            )
            data["upload_url"] = f"{self.base}{UPLOAD}?{query}"
        return self.ok(data)

    def _within_day(self, open_id: str, mode: str, statuses: tuple[str, ...]) -> int:
        since = time.time() - DAY
        return sum(
            1
            for p in self.publishes.values()
            if p.open_id == open_id
            and p.mode == mode
            and p.created_at > since
            and p.status in statuses
        )

    async def _direct_init(self, request: Request) -> Response:
        body = await self._json(request)
        self.calls.append(Call("POST", DIRECT_INIT, {}, body))
        grant = self._grant(request, "video.publish")
        if isinstance(grant, JSONResponse):
            return grant
        if body is None or set(body) - {"post_info", "source_info"}:
            return self._bad(DIRECT_INIT, "post_info and source_info only", "invalid_param")
        info = body.get("post_info")
        if not isinstance(info, dict) or not isinstance(info.get("privacy_level"), str):
            return self._bad(DIRECT_INIT, "post_info.privacy_level is required", "invalid_param")
        title = info.get("title", "")
        if not isinstance(title, str) or _utf16(title) > 2200:
            return self._bad(DIRECT_INIT, "title: at most 2200 UTF-16 runes", "invalid_param")
        for flag in ("disable_comment", "disable_duet", "disable_stitch"):
            if flag in info and not isinstance(info[flag], bool):
                return self._bad(DIRECT_INIT, f"{flag} must be a boolean", "invalid_param")
        source = self._source(body.get("source_info"))
        if isinstance(source, str):
            return self._bad(DIRECT_INIT, source, "invalid_param")
        creator = self.creators[grant.open_id]
        if info["privacy_level"] not in creator.privacy_options:
            return self.error("privacy_level_option_mismatch", "privacy_level is not offered")
        if self.unaudited and not creator.is_private:
            return self.error(
                "unaudited_client_can_only_post_to_private_accounts",
                "Unaudited clients can only post to private accounts.",
            )
        if source["source"] == "PULL_FROM_URL" and not any(
            source["video_url"].startswith(p) for p in self.verified_url_prefixes
        ):
            return self.error("url_ownership_unverified", "The URL prefix is not verified.")
        if self._within_day(creator.open_id, "direct", ("PUBLISH_COMPLETE",)) >= self.posts_per_day:
            return self.error("spam_risk_too_many_posts", "The daily post cap from API is reached.")
        post_info = dict(info)
        if self.unaudited:
            post_info["privacy_level"] = (
                "SELF_ONLY"  # unaudited content is private, whatever was asked
            )
        return self._new_publish("direct", grant, post_info, source)

    async def _inbox_init(self, request: Request) -> Response:
        body = await self._json(request)
        self.calls.append(Call("POST", INBOX_INIT, {}, body))
        grant = self._grant(request, "video.upload")
        if isinstance(grant, JSONResponse):
            return grant
        if body is None or set(body) != {"source_info"}:
            return self._bad(INBOX_INIT, "source_info only", "invalid_param")
        source = self._source(body["source_info"])
        if isinstance(source, str):
            return self._bad(INBOX_INIT, source, "invalid_param")
        if self._within_day(grant.open_id, "inbox", ("SEND_TO_USER_INBOX",)) >= 5:
            return self.error(
                "spam_risk_too_many_pending_share", "At most 5 pending shares in 24 hours."
            )
        return self._new_publish("inbox", grant, {}, source)

    async def _status(self, request: Request) -> Response:
        body = await self._json(request)
        self.calls.append(Call("POST", STATUS, {}, body))
        grant = self._grant(request, "video.publish", "video.upload")
        if isinstance(grant, JSONResponse):
            return grant
        publish = self.publishes.get(str((body or {}).get("publish_id")))
        if publish is None or publish.open_id != grant.open_id:
            return self._bad(STATUS, "publish_id not found")
        self._advance(publish)
        data: dict[str, Any] = {"status": publish.status}
        if publish.status == "FAILED":
            data["fail_reason"] = publish.fail_reason
        if publish.status == "PUBLISH_COMPLETE":
            data["publicaly_available_post_id"] = [publish.video_id] if publish.video_id else []
        if publish.source == "FILE_UPLOAD":
            data["uploaded_bytes"] = publish.received
        return self.ok(data)

    def _advance(self, publish: Publish) -> None:
        """One status read's worth of processing once the bytes are in."""
        if (
            publish.status not in ("PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD")
            or not publish.uploaded
        ):
            return
        if publish.processing_left > 0:
            publish.processing_left -= 1
            return
        if publish.fail_reason:
            publish.status = "FAILED"
            return
        if publish.mode == "inbox":
            publish.status = "SEND_TO_USER_INBOX"
            return
        creator = self.creators[publish.open_id]
        privacy = publish.post_info["privacy_level"]
        video = self.add_video(
            creator, publish.post_info.get("title", ""), public=privacy != "SELF_ONLY"
        )
        publish.privacy_level = privacy
        # Private posts get no public id (content-posting-api-reference-get-video-status).
        publish.video_id = video.id if video.public else None
        publish.status = "PUBLISH_COMPLETE"

    # --- chunk PUTs: raw ASGI ---------------------------------------------------------

    async def _respond(self, send: Any, status: int, body: dict[str, Any] | None = None) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = [(b"content-length", str(len(raw)).encode()), (b"x-tt-logid", _log_id().encode())]
        if body is not None:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    async def _refuse(self, send: Any, receive: Any, status: int, message: str) -> None:
        self.bytes_received += await self._drain(receive)
        self.unexpected.append(f"upload: {message}")
        code = "invalid_params" if status < 500 else "internal_error"
        await self._respond(
            send, status, {"error": {"code": code, "message": message, "log_id": _log_id()}}
        )

    @staticmethod
    async def _drain(receive: Any) -> int:
        n = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return n
            n += len(message.get("body", b""))
            if not message.get("more_body", False):
                return n

    async def _sink(self, receive: Any, send: Any) -> None:
        received = await self._drain(receive)
        self.sink_bytes += received
        await self._respond(send, 200, {"received": received})

    async def _upload_put(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.requests[UPLOAD] += 1
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.calls.append(Call("PUT", UPLOAD, {"upload_id": query.get("upload_id", "")}, None))
        publish = next(
            (p for p in self.publishes.values() if p.upload_id == query.get("upload_id")), None
        )
        if publish is None or publish.upload_token != query.get("upload_token"):
            await self._refuse(send, receive, 404, "unknown upload_url")
            return
        if time.time() - publish.issued_at > self.url_ttl:
            await self._refuse(send, receive, 403, "the upload_url has expired")
            return
        if publish.uploaded:
            await self._refuse(send, receive, 400, "every chunk is in already")
            return
        publish.chunk_puts += 1
        if headers.get("content-type") not in VIDEO_TYPES:
            await self._refuse(send, receive, 400, "Content-Type must be a video type")
            return
        match = CHUNK_RANGE.fullmatch(headers.get("content-range", ""))
        first, last = publish.span(publish.chunks_done)
        if match is None or int(match[3]) != publish.video_size:
            await self._refuse(send, receive, 400, "bad Content-Range")
            return
        if (int(match[1]), int(match[2])) != (first, last):
            # A chunk out of order, a missing one, a resent one, or the wrong size.
            await self._refuse(
                send, receive, 400, f"expected bytes {first}-{last}, got {match[1]}-{match[2]}"
            )
            return
        length = last - first + 1
        if headers.get("content-length") != str(length):
            await self._refuse(send, receive, 400, "Content-Length must be the chunk's size")
            return
        if self._fail_chunk is not None and self._fail_chunk[0] == publish.chunk_puts:
            status, self._fail_chunk = self._fail_chunk[1], None
            self.bytes_received += await self._drain(receive)
            await self._respond(
                send,
                status,
                {"error": {"code": "internal_error", "message": "", "log_id": _log_id()}},
            )
            return
        # Hash into a copy: a chunk that does not arrive whole must leave no trace.
        hasher = publish.hasher.copy() if self.hash_uploads else None
        got = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-chunk: the partial chunk counts for nothing
            piece = message.get("body", b"")
            position = first + got
            for limit, kind in ((self._drop_at, "drop"), (self._hold_at, "hold")):
                if limit is not None and position <= limit < position + len(piece):
                    arrived = limit - position
                    self.bytes_received += arrived
                    publish.wire_bytes += arrived
                    if kind == "drop":
                        self._drop_at = None
                        # Cut the TCP connection without an answer, as a network would.
                        receive.__self__.transport.close()
                        return
                    self._hold_at = None
                    self.held.set()
                    await self._drain(receive)  # stall until the client gives up
                    return
            self.bytes_received += len(piece)
            publish.wire_bytes += len(piece)
            got += len(piece)
            if hasher is not None:
                hasher.update(piece)
            if not message.get("more_body", False):
                break
        if got != length:
            self.unexpected.append(f"upload: body of {got} bytes, announced {length}")
            await self._respond(
                send,
                400,
                {"error": {"code": "invalid_params", "message": "length", "log_id": _log_id()}},
            )
            return
        if hasher is not None:
            publish.hasher = hasher
        publish.chunks_done += 1
        publish.received += length
        await self._respond(send, 201 if publish.uploaded else 206)


def tiktok_settings(base: str, fake: FakeTikTok, **overrides: Any) -> dict[str, Any]:
    """TikTok's plug-in settings (TIKTOK_* names) pointing every URL at the fake."""
    values: dict[str, Any] = {
        "tiktok_client_key": fake.client_key,
        "tiktok_client_secret": fake.client_secret,
        "tiktok_auth_url": f"{base}{AUTHORIZE}",
        "tiktok_token_url": f"{base}{TOKEN}",
        "tiktok_revoke_url": f"{base}{REVOKE}",
        "tiktok_api_base": base,
        "tiktok_chunk_bytes": MIN_CHUNK,
        "tiktok_poll_seconds": 0.01,
        "tiktok_publish_timeout_seconds": 5,
    }
    values.update(overrides)
    return values


def run_standalone(port: int, ready: Any = None) -> None:
    """Serve a FakeTikTok in this process (benchmarks run it in a child process), with a
    creator whose access token is "bench-token"."""
    import logging

    import uvicorn

    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    fake = FakeTikTok(hash_uploads=False)
    fake.base = f"http://127.0.0.1:{port}"
    fake.processing_polls = 0
    fake.posts_per_day = 10**9
    creator = fake.add_creator("bench")
    for i in range(1000):  # the bench's largest size
        fake.add_video(creator, f"bench {i}", views=i, likes=i // 2)
    fake.access_tokens["bench-token"] = Grant(creator.open_id, ALL_SCOPES, time.time() + DAY)
    config = uvicorn.Config(
        fake, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    if ready is not None:
        ready.set()
    server.run()
