"""A fake Slack: the Web API methods the bot calls, file downloads and response_urls.

slack_sdk talks to it through `base_url` (the SLACK_API_BASE setting) over
loopback, exactly as it talks to slack.com. Every call is recorded with its
token and arguments. Faults are injectable: a 429 with Retry-After for the next
N calls of a method, or a Slack error code for a method, and a latency (seconds)
for every Web API call. `sign` produces the
v0 request signature Slack puts on what it sends to apps.

Sign in with Slack (OpenID Connect): `GET /openid/connect/authorize` signs in as
`signin_as` (a user and team the test chooses) and redirects back with a code;
`openid.connect.token` is strict (client id and secret, the same redirect_uri,
each code once) and returns an id_token with Slack's claims and the nonce;
`openid.connect.userInfo` answers for its access token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends: `v0=` HMAC-SHA256 of `v0:{ts}:{body}` with the signing secret."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def interaction_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


@dataclass
class Call:
    """One recorded Web API call."""

    method: str
    token: str | None
    args: dict[str, Any]
    at: float = 0.0  # time.monotonic() when it arrived
    done: float = 0.0  # and when it was answered (after the latency)


@dataclass
class Download:
    file_id: str
    token: str | None
    bytes_sent: int


@dataclass
class _SignIn:
    """One authorize -> token exchange of Sign in with Slack."""

    user_id: str
    team_id: str
    nonce: str | None
    redirect_uri: str
    client_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def id_token(claims: dict[str, Any]) -> str:
    """A compact JWT with these claims (RS256 header; the signature is not a real one)."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "fake"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(b'fake-signature')}"


@dataclass
class _Team:
    team_id: str
    name: str
    bot_user_id: str
    bot_id: str


@dataclass
class FakeSlack:
    """State and recordings of the fake; `app` is the ASGI app to serve."""

    base_url: str = ""  # set by the test once served, e.g. http://127.0.0.1:PORT
    calls: list[Call] = field(default_factory=list)
    downloads: list[Download] = field(default_factory=list)
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, _Team] = field(default_factory=dict)
    files: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)
    # Image URLs Slack cannot download: a message showing one is refused (invalid_blocks)
    unreachable_images: set[str] = field(default_factory=set)
    # files_upload_v2: file id -> (filename, announced length, bytes received or None)
    uploads: dict[str, tuple[str, int, bytes | None]] = field(default_factory=dict)
    # files.completeUploadExternal calls that shared files: (channel, files, blocks)
    shared_uploads: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]] = field(
        default_factory=list
    )
    rate_limited: dict[str, list[int]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    latency: float = 0.0  # seconds each Web API call takes to answer
    # user id -> the `user` object users.info answers with (is_admin, is_owner, ...)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (channel, thread_ts) -> the thread's messages, oldest first (conversations.replies)
    threads: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    # OAuth: code -> team the install is for; rotation on if expires_in is set
    oauth_codes: dict[str, str] = field(default_factory=dict)
    token_expires_in: int | None = None
    # Sign in with Slack: the app's credentials, who the next sign-in is, what happened
    client_id: str = "1111.2222"
    client_secret: str = "fake-slack-client-secret"
    signin_as: tuple[str, str] | None = None  # (user id, team id)
    # users.info: user id -> their profile's IANA time zone (None: no tz set)
    user_zones: dict[str, str | None] = field(default_factory=dict)
    signin_requests: list[dict[str, str]] = field(default_factory=list)
    _signin_codes: dict[str, _SignIn] = field(default_factory=dict)
    _oidc_tokens: dict[str, _SignIn] = field(default_factory=dict)
    # Socket Mode: envelopes to push to the connected app, and what it sent back
    socket_outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    socket_received: list[dict[str, Any]] = field(default_factory=list)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _tok: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = self._build()

    # --- setup helpers ----------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/"

    def add_team(
        self, team_id: str, *, token: str, bot_user_id: str = "UBOT", bot_id: str = "BBOT"
    ) -> None:
        self.tokens[token] = _Team(team_id, f"Team {team_id}", bot_user_id, bot_id)

    def add_file(
        self, file_id: str, data: bytes, *, name: str = "clip.mp4", mimetype: str = "video/mp4"
    ) -> dict[str, Any]:
        """Register a file; returns the file object as events carry it."""
        info = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "size": len(data),
            "url_private": f"{self.base_url}/files-pri/{file_id}/{name}",
            "url_private_download": f"{self.base_url}/files-pri/{file_id}/download/{name}",
        }
        self.files[file_id] = (info, data)
        return info

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 0) -> None:
        """The next `times` calls of `method` answer 429 with `Retry-After`."""
        self.rate_limited[method] = [retry_after] * times

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # --- the app ----------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/api/{method}", methods=["GET", "POST"])
        async def api(method: str, request: Request) -> Response:
            args = await _args(request)
            token = _token(request, args)
            arrived = time.monotonic()
            if self.latency:
                await asyncio.sleep(self.latency)
            self.calls.append(Call(method, token, args, arrived, time.monotonic()))
            pending = self.rate_limited.get(method)
            if pending:
                retry_after = pending.pop(0)
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(retry_after)},
                )
            if method in self.errors:
                return JSONResponse({"ok": False, "error": self.errors[method]})
            if method == "oauth.v2.access":
                return JSONResponse(self._oauth(request, args))
            if method == "openid.connect.token":
                return JSONResponse(self._oidc_token(request, args))
            if method == "openid.connect.userInfo":
                return JSONResponse(self._oidc_userinfo(token))
            if method == "apps.connections.open":
                if not (token or "").startswith("xapp-"):
                    return JSONResponse({"ok": False, "error": "invalid_auth"})
                ws_url = self.base_url.replace("http://", "ws://", 1) + "/socket"
                return JSONResponse({"ok": True, "url": ws_url})
            team = self.tokens.get(token or "")
            if team is None:
                return JSONResponse({"ok": False, "error": "invalid_auth"})
            return JSONResponse(self._method(method, args, team))

        @app.get("/files-pri/{file_id}/download/{name}")
        async def download(file_id: str, name: str, request: Request) -> Response:
            auth = request.headers.get("authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            if file_id not in self.files or token not in self.tokens:
                # What Slack does for a missing or bad token: its login page, 200.
                self.downloads.append(Download(file_id, token, 0))
                return HTMLResponse("<html>sign in</html>")
            _, data = self.files[file_id]
            record = Download(file_id, token, 0)
            self.downloads.append(record)

            async def body() -> AsyncIterator[bytes]:
                for start in range(0, len(data), 65536):
                    chunk = data[start : start + 65536]
                    record.bytes_sent += len(chunk)
                    yield chunk

            return StreamingResponse(
                body(),
                media_type="application/octet-stream",
                headers={"content-length": str(len(data))},
            )

        @app.post("/upload/v1/{file_id}")
        async def upload(file_id: str, request: Request) -> Response:
            # What files.slack.com does with the bytes of a getUploadURLExternal URL.
            entry = self.uploads.get(file_id)
            if entry is None:
                return Response("Not Found", status_code=404)
            data = await request.body()
            if len(data) != entry[1]:
                return Response("length mismatch", status_code=400)
            self.uploads[file_id] = (entry[0], entry[1], data)
            return Response(f"OK - {len(data)}")

        @app.get("/openid/connect/authorize")
        async def authorize(request: Request) -> Response:
            query = dict(request.query_params)
            self.signin_requests.append(query)
            redirect_uri = query.get("redirect_uri", "")
            if (
                query.get("response_type") != "code"
                or "openid" not in query.get("scope", "").split()
                or query.get("client_id") != self.client_id
                or not redirect_uri
            ):
                return HTMLResponse("<html>invalid request</html>", status_code=400)
            if self.signin_as is None:
                return RedirectResponse(
                    f"{redirect_uri}?error=access_denied&state={query['state']}"
                )
            user_id, team_id = self.signin_as
            code = "oidc-" + secrets.token_urlsafe(12)
            self._signin_codes[code] = _SignIn(
                user_id, team_id, query.get("nonce"), redirect_uri, self.client_id
            )
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'code': code, 'state': query.get('state', '')})}"
            )

        @app.websocket("/socket")
        async def socket(ws: WebSocket) -> None:
            await ws.accept()
            await ws.send_json({"type": "hello", "num_connections": 1})

            async def pump() -> None:
                while True:
                    await ws.send_json(await self.socket_outbox.get())

            pumping = asyncio.create_task(pump())
            try:
                while True:
                    self.socket_received.append(json.loads(await ws.receive_text()))
            except WebSocketDisconnect:
                pass
            finally:
                pumping.cancel()

        @app.post("/response/{key}")
        async def response_url(key: str, request: Request) -> Response:
            self.webhook_posts.append({"key": key, **json.loads(await request.body() or b"{}")})
            return Response("ok")

        return app

    def _method(self, method: str, args: dict[str, Any], team: _Team) -> dict[str, Any]:
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            refused = _invalid_blocks(args.get("blocks"))
            if refused:
                return {"ok": False, "error": "invalid_blocks", "errors": [refused]}
        if method == "auth.test":
            return {
                "ok": True,
                "url": f"https://{team.team_id.lower()}.slack.com/",
                "team": team.name,
                "user": "socialops",
                "team_id": team.team_id,
                "user_id": team.bot_user_id,
                "bot_id": team.bot_id,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            if self._shows_unreachable_image(args.get("blocks")):
                return {"ok": False, "error": "invalid_blocks"}
            ts = f"1700000000.{next(self._ts):06d}"
            return {
                "ok": True,
                "channel": args.get("channel"),
                "ts": ts,
                "message": {"text": args.get("text"), "ts": ts},
            }
        if method == "chat.update":
            return {
                "ok": True,
                "channel": args.get("channel"),
                "ts": args.get("ts"),
                "text": args.get("text"),
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method == "conversations.replies":
            thread = self.threads.get((str(args.get("channel")), str(args.get("ts"))))
            if thread is None:
                return {"ok": False, "error": "thread_not_found"}
            return {"ok": True, "messages": thread, "has_more": False}
        if method == "files.getUploadURLExternal":
            return self._upload_url(args)
        if method == "files.completeUploadExternal":
            return self._complete_upload(args)
        if method == "users.info":
            user = str(args.get("user"))
            if user not in self.user_zones and user not in self.users:
                return {"ok": False, "error": "user_not_found"}
            zone = self.user_zones.get(user)
            # Slack's shape: tz (IANA), its label and offset; a user without one gets none.
            profile: dict[str, Any] = {
                "id": user,
                "team_id": team.team_id,
                "name": user,
                "is_admin": False,
                "is_owner": False,
            }
            if zone is not None:
                profile.update({"tz": zone, "tz_label": zone, "tz_offset": 0})
            profile.update(self.users.get(user, {}))
            return {"ok": True, "user": profile}
        if method == "files.info":
            entry = self.files.get(str(args.get("file")))
            if entry is None:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": entry[0]}
        return {"ok": False, "error": "unknown_method"}

    def _shows_unreachable_image(self, blocks: Any) -> bool:
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        images = [
            b.get("accessory", {}).get("image_url") or b.get("image_url")
            for b in blocks or []
            if isinstance(b, dict)
        ]
        return any(url in self.unreachable_images for url in images)

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(args.get("length", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not args.get("filename") or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{secrets.token_hex(5).upper()}"
        self.uploads[file_id] = (str(args["filename"]), length, None)
        return {
            "ok": True,
            "upload_url": f"{self.base_url}/upload/v1/{file_id}",
            "file_id": file_id,
        }

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            wanted = json.loads(str(args.get("files", "")))
            blocks = json.loads(str(args["blocks"])) if args.get("blocks") else None
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if blocks is not None and (
            not isinstance(blocks, list)
            or len(blocks) > 50
            or self._shows_unreachable_image(blocks)
        ):
            return {"ok": False, "error": "invalid_blocks"}
        out = []
        for item in wanted:
            entry = self.uploads.get(str(item.get("id")))
            if entry is None or entry[2] is None:
                return {"ok": False, "error": "file_not_found"}
            info = self.add_file(str(item["id"]), entry[2], name=entry[0], mimetype="image/png")
            info["title"] = item.get("title") or entry[0]
            channel = args.get("channel_id")
            if channel:
                ts = f"1700000000.{next(self._ts):06d}"
                info["shares"] = {"public": {channel: [{"ts": ts}]}}
            out.append(info)
        if args.get("channel_id"):
            self.shared_uploads.append((str(args["channel_id"]), out, blocks))
        return {"ok": True, "files": out}

    def _oauth(self, request: Request, args: dict[str, Any]) -> dict[str, Any]:
        if not request.headers.get("authorization", "").startswith("Basic "):
            return {"ok": False, "error": "invalid_client_id"}
        client_id, _, _ = (
            base64.b64decode(request.headers["authorization"][6:]).decode().partition(":")
        )
        if args.get("grant_type") == "refresh_token":
            team_id = self.oauth_codes.get("refresh:" + str(args.get("refresh_token")))
            if team_id is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            return self._grant(team_id)
        team_id = self.oauth_codes.pop(str(args.get("code")), None)
        if team_id is None:
            return {"ok": False, "error": "invalid_code"}
        grant = self._grant(team_id)
        grant["app_id"] = f"A-{client_id}"
        return grant

    def _client(self, request: Request, args: dict[str, Any]) -> tuple[str, str]:
        """Client credentials from HTTP Basic or the form (both are accepted by Slack)."""
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return client_id, secret
        return str(args.get("client_id", "")), str(args.get("client_secret", ""))

    def _oidc_token(self, request: Request, args: dict[str, Any]) -> dict[str, Any]:
        client_id, secret = self._client(request, args)
        if client_id != self.client_id or secret != self.client_secret:
            return {"ok": False, "error": "invalid_client_id"}
        grant = self._signin_codes.pop(str(args.get("code")), None)  # each code once
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        if args.get("redirect_uri") != grant.redirect_uri:
            return {"ok": False, "error": "bad_redirect_uri"}
        access = "xoxp-oidc-" + secrets.token_urlsafe(12)
        self._oidc_tokens[access] = grant
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "https://slack.com",
            "sub": grant.user_id,
            "aud": grant.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "https://slack.com/user_id": grant.user_id,
            "https://slack.com/team_id": grant.team_id,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        return {
            "ok": True,
            "access_token": access,
            "token_type": "Bearer",
            "id_token": id_token(claims),
        }

    def _oidc_userinfo(self, token: str | None) -> dict[str, Any]:
        grant = self._oidc_tokens.get(token or "")
        if grant is None:
            return {"ok": False, "error": "invalid_auth"}
        return {
            "ok": True,
            "sub": grant.user_id,
            "https://slack.com/user_id": grant.user_id,
            "https://slack.com/team_id": grant.team_id,
        }

    def _grant(self, team_id: str) -> dict[str, Any]:
        n = next(self._tok)
        token = f"xoxb-{team_id}-{n}"
        self.add_team(team_id, token=token, bot_user_id=f"U{team_id}BOT", bot_id=f"B{team_id}")
        grant: dict[str, Any] = {
            "ok": True,
            "access_token": token,
            "token_type": "bot",
            "scope": "app_mentions:read,channels:history,chat:write,commands,files:read,files:write,groups:history,im:history",
            "bot_user_id": f"U{team_id}BOT",
            "app_id": "A1",
            "team": {"id": team_id, "name": f"Team {team_id}"},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": "UINSTALLER"},
        }
        if self.token_expires_in is not None:
            refresh = f"xoxe-{team_id}-{n}"
            self.oauth_codes["refresh:" + refresh] = team_id
            grant["refresh_token"] = refresh
            grant["expires_in"] = self.token_expires_in
        return grant


async def _args(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body:
        if request.headers.get("content-type", "").startswith("application/json"):
            args.update(json.loads(body))
        else:
            args.update(dict(parse_qsl(body.decode())))
    return args


def _token(request: Request, args: dict[str, Any]) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:]
    token = args.get("token")
    return str(token) if token else None


def _invalid_blocks(raw: Any) -> str | None:
    """What Slack refuses in a message's blocks (the limits it enforces most often)."""
    if raw is None:
        return None
    blocks = json.loads(raw) if isinstance(raw, str) else raw
    if len(blocks) > 50:
        return "no more than 50 items allowed [json-pointer:/blocks]"
    for i, block in enumerate(blocks):
        kind = block.get("type")
        texts = [block.get("text")] if isinstance(block.get("text"), dict) else []
        if kind == "header" and len(block["text"]["text"]) > 150:
            return f"must be less than 151 characters [json-pointer:/blocks/{i}/text]"
        if kind == "section":
            fields = block.get("fields") or []
            if len(fields) > 10:
                return f"no more than 10 items allowed [json-pointer:/blocks/{i}/fields]"
            if any(len(f["text"]) > 2000 for f in fields):
                return f"must be less than 2001 characters [json-pointer:/blocks/{i}/fields]"
        if kind == "context":
            texts = [e for e in block.get("elements") or [] if "text" in e]
        for text in texts:
            if not text["text"] or len(text["text"]) > 3000:
                return f"must be 1 to 3000 characters [json-pointer:/blocks/{i}/text]"
    return None
