"""A fake Discord that discord.py really talks to, over loopback.

REST (under `/api/v10`): login (`GET /users/@me`), application info, `GET /gateway/bot`,
command sync, channel messages (create/edit), typing, DM channel creation,
interaction callbacks, webhook follow-ups and their edits. Every call is recorded
in `calls`. A CDN route serves attachment bytes in chunks, counting bytes sent.

Gateway (websocket at the URL `/gateway/bot` returns): HELLO (op 10), heartbeats
(op 1 -> op 11), IDENTIFY (op 2) -> READY and one GUILD_CREATE per guild; RESUME
(op 6) of a known session -> RESUMED, of an unknown one -> INVALID_SESSION (op 9);
`drop_connections` simulates a network blip. Tests inject MESSAGE_CREATE and
INTERACTION_CREATE dispatches with `dispatch`. Frames are compressed as the client
asks (`zlib-stream` or `zstd-stream`), like the real gateway.

Faults: `fail_next(method, path_regex, status, code)` makes the next matching REST
call fail with Discord's JSON error body. `interaction_token_ttl` (seconds; Discord's
is 15 minutes) makes every webhook call with an older interaction token answer 401
with code 50027 (Invalid Webhook Token), as Discord does once a token has lapsed.

OAuth2 (what a person's sign-in uses): `GET /oauth2/authorize` (outside the API
prefix, like discord.com) signs in as `signin_user` and redirects back with a code;
`POST /api/v10/oauth2/token` is strict (client id and secret, the same redirect_uri,
each code once); `GET /api/v10/users/@me` with that Bearer token is the person.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import itertools
import json
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.fakes.server import serve_asgi

API_PREFIX = "/api/v10"
_ids = itertools.count(1_300_000_000_000_000_000)


def snowflake() -> str:
    """A fresh, increasing Discord id."""
    return str(next(_ids))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class Call:
    """One REST request the client made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: int


@dataclass(eq=False)
class _Connection:
    ws: WebSocket
    compress: Callable[[bytes], bytes] | None
    seq: int = 0
    session_id: str = ""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        async with self.lock:
            if self.compress is None:
                await self.ws.send_text(raw.decode())
            else:
                await self.ws.send_bytes(self.compress(raw))


def _compressor(kind: str | None) -> Callable[[bytes], bytes] | None:
    if kind == "zlib-stream":
        obj = zlib.compressobj()
        return lambda data: obj.compress(data) + obj.flush(zlib.Z_SYNC_FLUSH)
    if kind == "zstd-stream":
        try:
            import zstandard
        except ImportError:
            return None
        zobj = zstandard.ZstdCompressor().compressobj()
        return lambda data: zobj.compress(data) + zobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return None


class FakeDiscord:
    """State and recordings of one fake Discord; serve it with `running()`."""

    def __init__(self, *, token: str = "fake-bot-token", heartbeat_ms: int = 41_250) -> None:
        self.token = token
        self.heartbeat_ms = heartbeat_ms
        self.app_id = snowflake()
        self.bot_user = {
            "id": self.app_id,
            "username": "socialops",
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
        }
        self.owner = self.user("owner")
        self.guilds: dict[str, dict[str, Any]] = {}
        self.dm_channels: dict[str, dict[str, Any]] = {}  # DM channels opened by the bot
        self.messages: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # messages the bot created, in order
        self.calls: list[Call] = []
        self.identifies: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.gateway_queries: list[dict[str, str]] = []
        self.resumes: list[dict[str, Any]] = []
        self._sessions: dict[str, int] = {}  # session id -> last sequence sent
        self.files: dict[str, tuple[bytes, str]] = {}
        # Files sent with messages (multipart `files[n]`): message id -> [(name, type, bytes)]
        self.message_files: dict[str, list[tuple[str, str, bytes]]] = {}
        self.bytes_served: dict[str, int] = {}
        self.commands: list[dict[str, Any]] = []
        self._interaction_channels: dict[str, str] = {}  # token -> channel id
        self._originals: dict[str, str] = {}  # token -> id of the message "@original" names
        self.interaction_token_ttl: float | None = None
        self._token_born: dict[str, float] = {}  # interaction token -> when it was issued
        self.base_url = ""
        # OAuth2 for people: the app's credentials, who the next sign-in is, what happened.
        self.client_id = snowflake()
        self.client_secret = "fake-discord-client-secret"
        self.signin_user: dict[str, Any] | None = None
        self.authorize_requests: list[dict[str, str]] = []
        self._oauth_codes: dict[str, tuple[dict[str, Any], str]] = {}  # code -> (user, uri)
        self._oauth_tokens: dict[str, dict[str, Any]] = {}  # bearer token -> user
        self._faults: list[_Fault] = []
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Condition()
        self.app = Starlette(
            routes=[
                Route(
                    API_PREFIX + "/{path:path}",
                    self._rest,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                ),
                Route("/cdn/{name}", self._cdn, methods=["GET"]),
                Route("/oauth2/authorize", self._authorize, methods=["GET"]),
                WebSocketRoute("/gateway", self._gateway),
            ]
        )

    # --- test helpers -----------------------------------------------------------------
    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeDiscord]:
        async with serve_asgi(self.app) as base:
            self.base_url = base
            try:
                yield self
            finally:
                for conn in list(self._connections):
                    with contextlib.suppress(Exception):
                        await conn.ws.close(code=1000)

    @staticmethod
    def user(name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": snowflake(),
            "username": name,
            "global_name": name.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
        }

    def add_guild(self, name: str = "Creators", *, guild_id: str | None = None) -> dict[str, Any]:
        guild_id = guild_id or snowflake()
        channel = {
            "id": snowflake(),
            "type": 0,
            "guild_id": guild_id,
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
        }
        guild = {
            "id": guild_id,
            "name": name,
            "icon": None,
            "owner_id": self.owner["id"],
            "unavailable": False,
            "member_count": 3,
            "large": False,
            "features": [],
            "roles": [
                {
                    "id": guild_id,
                    "name": "@everyone",
                    "permissions": "0",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                },
            ],
            "emojis": [],
            "stickers": [],
            "channels": [channel],
            "threads": [],
            "members": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "joined_at": _now(),
        }
        self.guilds[guild_id] = guild
        return guild

    def add_member(
        self, guild: dict[str, Any], user_id: str, *, permissions: int = 0
    ) -> dict[str, Any]:
        """A guild member with one role of its own carrying `permissions` (a bit set)."""
        role = {"id": snowflake(), "name": f"role-{user_id}", "permissions": str(permissions)}
        guild["roles"].append(role)
        member = {"user": {"id": user_id, "username": f"u{user_id}"}, "roles": [role["id"]]}
        guild["members"].append(member)
        return member

    def add_file(self, name: str, data: bytes, content_type: str = "video/mp4") -> dict[str, Any]:
        """Host bytes on the fake CDN; returns a Discord attachment object for them."""
        self.files[name] = (data, content_type)
        return {
            "id": snowflake(),
            "filename": name,
            "size": len(data),
            "url": f"{self.base_url}/cdn/{name}",
            "proxy_url": f"{self.base_url}/cdn/{name}",
            "content_type": content_type,
        }

    def fail_next(self, method: str, path_regex: str, *, status: int, code: int = 0) -> None:
        self._faults.append(_Fault(method, re.compile(path_regex), status, code))

    def message_payload(
        self,
        *,
        author: dict[str, Any],
        content: str,
        channel_id: str,
        guild_id: str | None = None,
        mentions: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        webhook_id: str | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE `d` as the gateway sends it."""
        data: dict[str, Any] = {
            "id": snowflake(),
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions or [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }
        if guild_id is not None:
            data["guild_id"] = guild_id
            data["member"] = {
                "roles": [],
                "joined_at": _now(),
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        if webhook_id is not None:
            data["webhook_id"] = webhook_id
        return data

    def interaction_payload(
        self,
        *,
        user: dict[str, Any],
        guild_id: str | None,
        channel: dict[str, Any],
        type: int,
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE `d` (2 = application command, 3 = component)."""
        payload: dict[str, Any] = {
            "id": snowflake(),
            "application_id": self.app_id,
            "type": type,
            "data": data,
            "token": "itoken-" + snowflake(),
            "version": 1,
            "channel": channel,
            "channel_id": channel["id"],
            "locale": "en-US",
            "app_permissions": "0",
            "attachment_size_limit": 10 * 1024 * 1024,
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 0 if guild_id else 1,
        }
        if guild_id is not None:
            payload["guild_id"] = guild_id
            payload["guild_locale"] = "en-US"
            payload["member"] = {
                "user": user,
                "roles": [],
                "joined_at": _now(),
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": "0",
            }
        else:
            payload["user"] = user
        if message is not None:
            payload["message"] = message
            self._originals[payload["token"]] = message["id"]
        self._interaction_channels[payload["token"]] = channel["id"]
        self._token_born[payload["token"]] = time.monotonic()
        return payload

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a dispatch (op 0) to every identified gateway connection."""
        conns = [c for c in self._connections if c.ready.is_set()]
        if not conns:
            raise AssertionError("no identified gateway connection to dispatch to")
        for conn in conns:
            conn.seq += 1
            self._sessions[conn.session_id] = conn.seq
            await conn.send({"op": 0, "t": event, "s": conn.seq, "d": data})

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every gateway connection as a network blip would (4000: resumable)."""
        for conn in list(self._connections):
            conn.ready.clear()
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code)

    async def wait_for(
        self, predicate: Callable[[FakeDiscord], Any], *, timeout: float = 10.0
    ) -> Any:
        """Wait until `predicate(self)` is truthy (re-checked after each recorded call)."""

        async def check() -> Any:
            async with self._changed:
                while not (result := predicate(self)):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(check(), timeout)

    def find(self, method: str, path_regex: str) -> list[Call]:
        pattern = re.compile(path_regex)
        return [c for c in self.calls if c.method == method and pattern.fullmatch(c.path)]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- REST ---------------------------------------------------------------------
    async def _rest(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        body: Any = None
        raw = await request.body()
        if raw:
            content_type = request.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                body = json.loads(raw)
            elif content_type.startswith("multipart/form-data"):
                body = await _multipart(request)
            else:
                body = raw
        call = Call(request.method, path, dict(request.query_params), body)
        self.calls.append(call)
        try:
            return await self._route(request, call)
        finally:
            await self._notify()

    def _error(self, status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse({"code": code, "message": message}, status_code=status)

    async def _route(self, request: Request, call: Call) -> Response:
        method, path, body = call.method, call.path, call.body
        if method == "POST" and path == "/oauth2/token":
            return self._token(request, body)
        bearer = request.headers.get("authorization", "")
        if method == "GET" and path == "/users/@me" and bearer.startswith("Bearer "):
            person = self._oauth_tokens.get(bearer.removeprefix("Bearer "))
            return JSONResponse(person) if person else self._error(401, 0, "401: Unauthorized")
        is_webhook = path.startswith("/webhooks/") or path.startswith("/interactions/")
        if not is_webhook and request.headers.get("authorization") != f"Bot {self.token}":
            return self._error(401, 0, "401: Unauthorized")
        if is_webhook and self._token_lapsed(path):
            return self._error(401, 50027, "Invalid Webhook Token")
        for fault in list(self._faults):
            if fault.method == method and fault.pattern.fullmatch(path):
                self._faults.remove(fault)
                return self._error(fault.status, fault.code, "injected fault")

        if method == "GET" and path == "/users/@me":
            return JSONResponse(self.bot_user)
        if method == "GET" and path == "/oauth2/applications/@me":
            return JSONResponse(
                {
                    "id": self.app_id,
                    "name": "socialops",
                    "description": "",
                    "icon": None,
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": self.owner,
                    "verify_key": "00" * 32,
                    "flags": 0,
                }
            )
        if method == "GET" and path == "/gateway/bot":
            ws = self.base_url.replace("http://", "ws://") + "/gateway"
            return JSONResponse(
                {
                    "url": ws,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if m := re.fullmatch(r"/applications/(\d+)/commands", path):
            if method == "PUT":
                self.commands = [
                    {
                        **cmd,
                        "id": snowflake(),
                        "application_id": m[1],
                        "version": snowflake(),
                        "default_member_permissions": None,
                        "type": cmd.get("type", 1),
                    }
                    for cmd in body
                ]
                return JSONResponse(self.commands)
            return JSONResponse(self.commands)
        if m := re.fullmatch(r"/channels/(\d+)/typing", path):
            return Response(status_code=204)
        if method in ("POST", "PATCH") and (refused := _over_limits(body)):
            return self._error(400, 50035, f"Invalid Form Body: {refused}")
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            if method == "POST":
                return JSONResponse(self._create_message(m[1], body))
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path):
            if method == "PATCH":
                return self._edit_message(m[2], body)
        if method == "POST" and path == "/users/@me/channels":
            recipient = body["recipient_id"]
            dm = {
                "id": snowflake(),
                "type": 1,
                "last_message_id": None,
                "recipients": [{**self.user("dm-user"), "id": str(recipient)}],
            }
            self.dm_channels[dm["id"]] = dm
            return JSONResponse(dm)
        if method == "GET" and (m := re.fullmatch(r"/guilds/(\d+)", path)):
            guild = self.guilds.get(m[1])
            if guild is None:
                return self._error(404, 10004, "Unknown Guild")
            return JSONResponse({k: guild[k] for k in ("id", "name", "owner_id", "roles")})
        if method == "GET" and (m := re.fullmatch(r"/guilds/(\d+)/members/(\d+)", path)):
            guild = self.guilds.get(m[1])
            member = next(
                (x for x in (guild or {}).get("members", []) if x["user"]["id"] == m[2]), None
            )
            if member is None:
                return self._error(404, 10007, "Unknown Member")
            return JSONResponse(member)
        if method == "GET" and (m := re.fullmatch(r"/channels/(\d+)", path)):
            found = self.dm_channels.get(m[1]) or next(
                (c for g in self.guilds.values() for c in g["channels"] if c["id"] == m[1]), None
            )
            return JSONResponse(found) if found else self._error(404, 10003, "Unknown Channel")
        if m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            return JSONResponse(self._interaction_callback(m[1], m[2], body))
        if m := re.fullmatch(r"/webhooks/(\d+)/([^/]+)", path):
            if method == "POST":
                loading = self.messages.get(self._originals.get(m[2], ""))
                if loading is not None and loading["flags"] & 128:
                    # The first follow-up after a "thinking" defer becomes the loading
                    # message, which keeps its visibility (an ephemeral flag here is ignored).
                    for key in ("content", "embeds", "components"):
                        loading[key] = body.get(key) or loading[key]
                    loading["flags"] &= ~128
                    return JSONResponse(loading)
                channel_id = self._interaction_channels.get(m[2], "0")
                message = self._create_message(channel_id, body, webhook=m[1])
                return JSONResponse(message)
        if m := re.fullmatch(r"/webhooks/(\d+)/([^/]+)/messages/([^/]+)", path):
            message_id = self._originals.get(m[2], m[3]) if m[3] == "@original" else m[3]
            if method == "PATCH":
                return self._edit_message(message_id, body)
            if method == "DELETE":
                if self.messages.pop(message_id, None) is None:
                    return self._error(404, 10008, "Unknown Message")
                return Response(status_code=204)
            if method == "GET":
                found = self.messages.get(message_id)
                return JSONResponse(found) if found else self._error(404, 10008, "Unknown Message")
        return self._error(404, 0, f"fake Discord has no route {method} {path}")

    def _token_lapsed(self, path: str) -> bool:
        if self.interaction_token_ttl is None:
            return False
        m = re.match(r"/(?:webhooks|interactions)/\d+/([^/]+)", path)
        born = self._token_born.get(m[1]) if m else None
        return born is not None and time.monotonic() - born > self.interaction_token_ttl

    def _create_message(
        self, channel_id: str, body: dict[str, Any], *, webhook: str | None = None
    ) -> dict[str, Any]:
        message = {
            "id": snowflake(),
            "channel_id": channel_id,
            "author": self.bot_user,
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "pinned": False,
            "type": 19 if body.get("message_reference") else 0,
            "flags": body.get("flags") or 0,
            "components": body.get("components") or [],
        }
        if body.get("message_reference"):
            message["message_reference"] = body["message_reference"]
        uploads = body.get(_FILES) or []
        if uploads:
            declared = {a.get("id"): a for a in body.get("attachments") or []}
            message["attachments"] = [
                {
                    "id": snowflake(),
                    "filename": (declared.get(n) or {}).get("filename", name),
                    "size": len(data),
                    "content_type": kind,
                    "url": f"{self.base_url}/cdn/{name}",
                }
                for n, (name, kind, data) in enumerate(uploads)
            ]
            self.message_files[message["id"]] = uploads
        if webhook is not None:
            message["webhook_id"] = webhook
            message["application_id"] = webhook
        self.messages[message["id"]] = message
        self.created.append(message)
        return message

    def _edit_message(self, message_id: str, body: dict[str, Any]) -> Response:
        message = self.messages.get(message_id)
        if message is None:
            return self._error(404, 10008, "Unknown Message")
        if "content" in body:
            message["content"] = body["content"]
        if "components" in body:
            message["components"] = body["components"]
        message["edited_timestamp"] = _now()
        return JSONResponse(message)

    def _interaction_callback(
        self, interaction_id: str, token: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        kind = body["type"]
        flags = (body.get("data") or {}).get("flags") or 0
        response: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "activity_instance_id": None,
                "response_message_id": None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & 64),
            }
        }
        channel_id = self._interaction_channels.get(token, "0")
        if kind == 5:  # "thinking": Discord shows a loading message that @original names
            loading = self._create_message(channel_id, {"flags": flags | 128}, webhook=self.app_id)
            self._originals[token] = loading["id"]
        if kind == 4:
            message = self._create_message(channel_id, body.get("data") or {}, webhook=self.app_id)
            self._originals[token] = message["id"]
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"] = {"type": kind, "message": message}
        return response

    # --- OAuth2 for people ----------------------------------------------------------
    async def _authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorize_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if (
            query.get("response_type") != "code"
            or query.get("client_id") != self.client_id
            or "identify" not in query.get("scope", "").split()
            or not redirect_uri
        ):
            return self._error(400, 0, "invalid OAuth2 request")
        state = query.get("state", "")
        if self.signin_user is None:
            return RedirectResponse(f"{redirect_uri}?error=access_denied&state={state}")
        code = "dc-" + secrets.token_urlsafe(12)
        self._oauth_codes[code] = (self.signin_user, redirect_uri)
        return RedirectResponse(f"{redirect_uri}?code={code}&state={state}")

    def _token(self, request: Request, body: Any) -> Response:
        form = dict(parse_qsl(body.decode())) if isinstance(body, bytes) else {}
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if client_id != self.client_id or secret != self.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self._oauth_codes.pop(form.get("code", ""), None)  # each code once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        user, redirect_uri = grant
        if form.get("redirect_uri") != redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access = "dc-access-" + secrets.token_urlsafe(12)
        self._oauth_tokens[access] = user
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 604800,
                "refresh_token": "dc-refresh-" + secrets.token_urlsafe(12),
                "scope": "identify",
            }
        )

    # --- CDN ----------------------------------------------------------------------
    async def _cdn(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.calls.append(Call("GET", f"/cdn/{name}", dict(request.query_params), None))
        if name not in self.files:
            return Response(status_code=404)
        data, content_type = self.files[name]
        self.bytes_served[name] = 0

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 16 * 1024):
                piece = data[start : start + 16 * 1024]
                self.bytes_served[name] += len(piece)
                yield piece

        return StreamingResponse(
            chunks(), media_type=content_type, headers={"content-length": str(len(data))}
        )

    # --- gateway ------------------------------------------------------------------
    async def _gateway(self, ws: WebSocket) -> None:
        await ws.accept()
        self.gateway_queries.append(dict(ws.query_params))
        conn = _Connection(ws, _compressor(ws.query_params.get("compress")))
        self._connections.add(conn)
        try:
            await conn.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_ms}})
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("text") or (message.get("bytes") or b"").decode()
                payload = json.loads(raw)
                await self._gateway_op(conn, payload)
        except WebSocketDisconnect:
            return
        finally:
            self._connections.discard(conn)
            await self._notify()

    async def _gateway_op(self, conn: _Connection, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        if op == 1:
            self.heartbeats += 1
            await conn.send({"op": 11})
        elif op == 2:
            identify = payload["d"]
            self.identifies.append(identify)
            if identify.get("token") != self.token:
                await conn.ws.close(code=4004)
                return
            conn.seq += 1
            conn.session_id = "session-" + snowflake()
            # A shard gets the guilds Discord routes to it: (guild_id >> 22) % shard_count.
            shard_id, shard_count = identify.get("shard") or [0, 1]
            guilds = [
                g for gid, g in self.guilds.items() if (int(gid) >> 22) % shard_count == shard_id
            ]
            await conn.send(
                {
                    "op": 0,
                    "t": "READY",
                    "s": conn.seq,
                    "d": {
                        "v": 10,
                        "user": self.bot_user,
                        "guilds": [{"id": g["id"], "unavailable": True} for g in guilds],
                        "session_id": conn.session_id,
                        "resume_gateway_url": self.base_url.replace("http://", "ws://")
                        + "/gateway",
                        "shard": [shard_id, shard_count],
                        "application": {"id": self.app_id, "flags": 0},
                        "private_channels": [],
                        "relationships": [],
                    },
                }
            )
            for guild in guilds:
                conn.seq += 1
                await conn.send({"op": 0, "t": "GUILD_CREATE", "s": conn.seq, "d": guild})
            self._sessions[conn.session_id] = conn.seq
            conn.ready.set()
            await self._notify()
        elif op == 6:
            resume = payload["d"]
            self.resumes.append(resume)
            known = self._sessions.get(resume.get("session_id", ""))
            if known is None or resume.get("token") != self.token:
                await conn.send({"op": 9, "d": False})  # not resumable: identify again
                return
            conn.session_id = resume["session_id"]
            conn.seq = known + 1
            await conn.send({"op": 0, "t": "RESUMED", "s": conn.seq, "d": {}})
            self._sessions[conn.session_id] = conn.seq
            conn.ready.set()
            await self._notify()


_FILES = "__files__"  # where `_multipart` puts the uploaded files in a body


async def _multipart(request: Request) -> dict[str, Any]:
    """A message sent as multipart: `payload_json` plus `files[n]` parts (Discord's
    way to attach files); the files land under `_FILES` as (name, type, bytes)."""
    from email import policy
    from email.parser import BytesParser

    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    form = BytesParser(policy=policy.HTTP).parsebytes(head + await request.body())
    body: dict[str, Any] = {}
    files = []
    for part in form.iter_parts():
        name = str(part.get_param("name", header="content-disposition") or "")
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        if name == "payload_json":
            body.update(json.loads(data))
        elif name.startswith("files["):
            files.append((part.get_filename() or name, part.get_content_type(), data))
    body[_FILES] = files
    return body


def _over_limits(body: Any) -> str | None:
    """What Discord refuses in a message body: too much content, too many or too big embeds."""
    if not isinstance(body, dict):
        return None
    if len(body.get("content") or "") > 2000:
        return "content over 2000"
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        return "more than 10 embeds"
    total = 0
    for embed in embeds:
        fields = embed.get("fields") or []
        if len(fields) > 25:
            return "more than 25 fields"
        if len(embed.get("title") or "") > 256 or len(embed.get("description") or "") > 4096:
            return "embed title or description too long"
        for f in fields:
            if not f.get("name") or not f.get("value"):
                return "empty field"
            if len(f["name"]) > 256 or len(f["value"]) > 1024:
                return "field too long"
        footer = (embed.get("footer") or {}).get("text") or ""
        if len(footer) > 2048:
            return "footer too long"
        total += len(embed.get("title") or "") + len(embed.get("description") or "")
        total += len(footer) + sum(len(f["name"]) + len(f["value"]) for f in fields)
    if total > 6000:
        return "embeds over 6000 characters"
    return None
