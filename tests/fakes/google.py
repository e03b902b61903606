"""A fake Google (OAuth 2.0, YouTube Data API v3, resumable uploads, Analytics v2) on loopback.

It speaks the real wire protocol closely enough for our httpx clients and for
google-api-python-client, and lets a test inject faults:

- OAuth: codes bound to a PKCE S256 challenge and redirect URI, refresh-token rotation,
  `invalid_grant` for unknown/revoked refresh tokens, a refresh delay to widen races.
- OAuth: answer the next token calls with given error statuses (`token_failures`).
- Uploads: drop the connection once the session holds byte N, drop the next N chunk
  PUTs before any of their bytes is kept, hold (stall) at byte N, pause at byte N
  until the test says `resume` (the upload then goes on normally), answer 503 once to
  the Nth chunk, forget the Nth chunk (308 with the previous Range),
  an error on session creation (quotaExceeded, uploadLimitExceeded, 401, 403), and an
  unverified project that forces every upload to private.

Upload chunk PUTs are handled as raw ASGI so the fake can really cut the TCP connection
(uvicorn's h11 cycle exposes its transport on the `receive` callable's owner).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

UPLOAD_PATH = "/upload/youtube/v3/videos"
SINK_PATH = "/bench/sink"


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


def _publish_at_problem(status: dict[str, Any]) -> str | None:
    """What YouTube says of a bad `status.publishAt`: RFC 3339, future, private video only."""
    if "publishAt" not in status:
        return None
    try:
        at = datetime.fromisoformat(str(status["publishAt"]).replace("Z", "+00:00"))
    except ValueError:
        return "publishAt is not an RFC 3339 time"
    if at.tzinfo is None:
        return "publishAt has no offset"
    if status.get("privacyStatus") != "private":
        return "publishAt can only be set on a private video"
    if at <= datetime.now(UTC):
        return "publishAt is in the past"
    return None


def google_error(status: int, reason: str, message: str = "error") -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "youtube", "reason": reason}],
            }
        },
        status_code=status,
    )


@dataclass
class UploadFaults:
    drop_at_byte: int | None = None
    drop_chunk_puts: int = 0
    hold_at_byte: int | None = None
    pause_at_byte: int | None = None
    fail_503_at_chunk: int | None = None
    forget_chunk: int | None = None
    insert_error: tuple[int, str] | None = None
    insert_error_times: int = 1
    force_private: bool = False


@dataclass
class UploadSession:
    id: str
    channel_id: str
    total: int
    content_type: str
    metadata: dict[str, Any]
    received: int = 0
    wire_bytes: int = 0
    chunk_puts: int = 0
    status_queries: int = 0
    video_id: str | None = None
    hasher: Any = field(default_factory=hashlib.sha256)

    @property
    def sha256(self) -> str:
        return str(self.hasher.hexdigest())


@dataclass
class Channel:
    id: str
    title: str
    custom_url: str
    subscribers: int = 1000
    videos: list[str] = field(default_factory=list)

    @property
    def uploads_playlist(self) -> str:
        return "UU" + self.id[2:]


class FakeGoogle:
    """State and ASGI app of the fake. `base` must be set to the served URL before use."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        access_ttl: int = 3600,
        hash_uploads: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_ttl = access_ttl
        self.hash_uploads = hash_uploads
        self.base = ""
        self.channels: dict[str, Channel] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self.status_updates: list[tuple[str, dict[str, Any]]] = []  # videos.update calls
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.revoked: list[str] = []
        self.rotate_refresh_tokens = False
        self.refresh_delay = 0.0
        self.refresh_count = 0
        self.exchange_count = 0
        self.token_failures: list[int] = []  # statuses the next token calls answer with
        self.login_channel: str | None = None
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.faults = UploadFaults()
        self.sessions: dict[str, UploadSession] = {}
        self.held = asyncio.Event()
        self.paused = asyncio.Event()  # set when an upload reaches `pause_at_byte`
        self.resume = asyncio.Event()  # set by the test to let it go on
        self.sink_bytes = 0
        self.latency = 0.0  # seconds every API call (not upload bytes) takes to answer
        self._api = self._build_api()

    # --- seeding ----------------------------------------------------------------------
    def add_channel(self, title: str = "Test Channel", *, custom_url: str | None = None) -> Channel:
        channel_id = "UC" + secrets.token_hex(11)
        channel = Channel(channel_id, title, custom_url or "@" + title.lower().replace(" ", ""))
        self.channels[channel_id] = channel
        if self.login_channel is None:
            self.login_channel = channel_id
        return channel

    def add_video(
        self,
        channel: Channel,
        *,
        title: str = "video",
        views: int = 100,
        likes: int | None = 10,
        comments: int = 2,
        published: str = "2026-11-01T12:00:00Z",
    ) -> str:
        video_id = secrets.token_urlsafe(8)[:11]
        stats: dict[str, str] = {"viewCount": str(views), "commentCount": str(comments)}
        if likes is not None:
            stats["likeCount"] = str(likes)
        self.videos[video_id] = {
            "id": video_id,
            "channel": channel.id,
            "snippet": {
                "title": title,
                "publishedAt": published,
                "channelId": channel.id,
                "thumbnails": {
                    size: {"url": f"https://i.ytimg.example/vi/{video_id}/{name}.jpg"}
                    for size, name in (("default", "default"), ("medium", "mqdefault"))
                },
            },
            "statistics": stats,
            "status": {"privacyStatus": "public"},
        }
        channel.videos.insert(0, video_id)
        return video_id

    def issue_tokens(self, channel_id: str, *, expires_in: int | None = None) -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(24)
        refresh = "1//" + secrets.token_urlsafe(24)
        ttl = self.access_ttl if expires_in is None else expires_in
        self.access_tokens[access] = (channel_id, time.time() + ttl)
        self.refresh_tokens[refresh] = channel_id
        return {"access_token": access, "refresh_token": refresh, "expires_in": ttl}

    def expire_access_tokens(self) -> None:
        for token, (channel, _) in list(self.access_tokens.items()):
            self.access_tokens[token] = (channel, 0.0)

    def calls_to(self, path_suffix: str) -> list[dict[str, str]]:
        return [q for (_, p, q) in self.calls if p.endswith(path_suffix)]

    @property
    def videos_created(self) -> list[str]:
        return [s.video_id for s in self.sessions.values() if s.video_id]

    # --- ASGI -------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT":
            if scope["path"] == UPLOAD_PATH:
                await self._upload_put(scope, receive, send)
                return
            if scope["path"] == SINK_PATH:
                await self._sink(receive, send)
                return
        await self._api(scope, receive, send)

    def _channel_for(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        entry = self.access_tokens.get(header[7:])
        if entry is None or entry[1] < time.time():
            return None
        return entry[0]

    def _build_api(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            fake.calls.append((request.method, request.url.path, dict(request.query_params)))
            if fake.latency:
                await asyncio.sleep(fake.latency)
            return await call_next(request)

        @app.get("/o/oauth2/v2/auth")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            problems = []
            if q.get("client_id") != fake.client_id:
                problems.append("client_id")
            if q.get("response_type") != "code":
                problems.append("response_type")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                problems.append("pkce")
            if not q.get("state") or not q.get("redirect_uri"):
                problems.append("state/redirect_uri")
            if problems:
                return JSONResponse({"error": "invalid_request", "bad": problems}, 400)
            channel = fake.login_channel or fake.add_channel().id
            code = "4/" + secrets.token_urlsafe(16)
            fake.codes[code] = {
                "challenge": q["code_challenge"],
                "redirect_uri": q["redirect_uri"],
                "channel": channel,
                "scope": q.get("scope", ""),
            }
            target = q["redirect_uri"] + "?" + urlencode({"state": q["state"], "code": code})
            return RedirectResponse(target, status_code=302)

        @app.post("/token")
        async def token(request: Request) -> Response:
            form = _form(await request.body())
            cid, secret = form.get("client_id"), form.get("client_secret")
            header = request.headers.get("authorization", "")
            if header.startswith("Basic "):
                cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            if fake.token_failures:
                status = fake.token_failures.pop(0)
                return JSONResponse({"error": "server_error"}, status)
            if cid != fake.client_id or secret != fake.client_secret:
                return JSONResponse({"error": "invalid_client"}, 401)
            grant = form.get("grant_type")
            if grant == "authorization_code":
                fake.exchange_count += 1
                entry = fake.codes.pop(str(form.get("code")), None)
                if entry is None or entry["redirect_uri"] != form.get("redirect_uri"):
                    return JSONResponse({"error": "invalid_grant"}, 400)
                verifier = str(form.get("code_verifier") or "")
                digest = hashlib.sha256(verifier.encode()).digest()
                challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if challenge != entry["challenge"]:
                    return JSONResponse(
                        {"error": "invalid_grant", "error_description": "code_verifier"}, 400
                    )
                tokens = fake.issue_tokens(entry["channel"])
                return JSONResponse({**tokens, "scope": entry["scope"], "token_type": "Bearer"})
            if grant == "refresh_token":
                fake.refresh_count += 1
                if fake.refresh_delay:
                    await asyncio.sleep(fake.refresh_delay)
                old = str(form.get("refresh_token"))
                channel = fake.refresh_tokens.get(old)
                if channel is None:
                    return JSONResponse(
                        {
                            "error": "invalid_grant",
                            "error_description": "Token has been expired or revoked.",
                        },
                        400,
                    )
                tokens = fake.issue_tokens(channel)
                body: dict[str, Any] = {
                    "access_token": tokens["access_token"],
                    "expires_in": tokens["expires_in"],
                    "token_type": "Bearer",
                }
                if fake.rotate_refresh_tokens:
                    del fake.refresh_tokens[old]
                    body["refresh_token"] = tokens["refresh_token"]
                else:
                    del fake.refresh_tokens[tokens["refresh_token"]]
                return JSONResponse(body)
            return JSONResponse({"error": "unsupported_grant_type"}, 400)

        @app.post("/revoke")
        async def revoke(request: Request) -> Response:
            form = _form(await request.body())
            value = str(form.get("token") or "")
            known = fake.refresh_tokens.pop(value, None) or fake.access_tokens.pop(value, None)
            if known is None:
                return JSONResponse({"error": "invalid_token"}, 400)
            fake.revoked.append(value)
            return JSONResponse({})

        @app.get("/youtube/v3/channels")
        async def channels(request: Request) -> Response:
            channel_id = fake._channel_for(request)
            if channel_id is None:
                return google_error(401, "authError", "Invalid Credentials")
            if request.query_params.get("mine") != "true":
                return google_error(400, "missingParameter")
            ch = fake.channels[channel_id]
            return JSONResponse(
                {
                    "items": [
                        {
                            "id": ch.id,
                            "snippet": {"title": ch.title, "customUrl": ch.custom_url},
                            "contentDetails": {
                                "relatedPlaylists": {"uploads": ch.uploads_playlist}
                            },
                            "statistics": {"subscriberCount": str(ch.subscribers)},
                        }
                    ]
                }
            )

        @app.get("/youtube/v3/playlistItems")
        async def playlist_items(request: Request) -> Response:
            channel_id = fake._channel_for(request)
            if channel_id is None:
                return google_error(401, "authError", "Invalid Credentials")
            q = request.query_params
            ch = fake.channels[channel_id]
            if q.get("playlistId") != ch.uploads_playlist:
                return google_error(404, "playlistNotFound")
            size = int(q.get("maxResults", "5"))
            if size > 50:
                return google_error(400, "invalidValue")
            start = int(q.get("pageToken") or 0)
            ids = ch.videos[start : start + size]
            body: dict[str, Any] = {
                "items": [
                    {
                        "snippet": {
                            "title": fake.videos[v]["snippet"]["title"],
                            "publishedAt": fake.videos[v]["snippet"]["publishedAt"],
                        },
                        "contentDetails": {
                            "videoId": v,
                            "videoPublishedAt": fake.videos[v]["snippet"]["publishedAt"],
                        },
                    }
                    for v in ids
                ]
            }
            if start + size < len(ch.videos):
                body["nextPageToken"] = str(start + size)
            return JSONResponse(body)

        @app.get("/youtube/v3/videos")
        async def videos(request: Request) -> Response:
            if fake._channel_for(request) is None:
                return google_error(401, "authError", "Invalid Credentials")
            ids = [i for i in request.query_params.get("id", "").split(",") if i]
            if not ids or len(ids) > 50:
                return google_error(400, "invalidFilters", "id takes 1 to 50 ids")
            items = []
            for v in ids:
                video = fake.videos.get(v)
                if video is not None:
                    items.append({k: video[k] for k in ("id", "snippet", "statistics", "status")})
            return JSONResponse({"items": items})

        @app.put("/youtube/v3/videos")
        async def update_video(request: Request) -> Response:
            """videos.update, part=status only: the whole status part is replaced."""
            channel_id = fake._channel_for(request)
            if channel_id is None:
                return google_error(401, "authError", "Invalid Credentials")
            if request.query_params.get("part") != "status":
                return google_error(400, "badRequest", "only part=status is faked")
            body = await request.json()
            video = fake.videos.get(str(body.get("id")))
            if video is None or video["channel"] != channel_id:
                return google_error(404, "videoNotFound", "video not found")
            status = dict(body.get("status") or {})
            if "privacyStatus" not in status:
                return google_error(400, "invalidVideoMetadata", "privacyStatus is required")
            if (problem := _publish_at_problem(status)) is not None:
                return google_error(400, "invalidPublishAt", problem)
            video["status"] = status
            fake.status_updates.append((video["id"], status))
            return JSONResponse({k: video[k] for k in ("id", "status")})

        @app.get("/v2/reports")
        async def reports(request: Request) -> Response:
            channel_id = fake._channel_for(request)
            if channel_id is None:
                return google_error(401, "authError", "Invalid Credentials")
            q = request.query_params
            if q.get("ids") != "channel==MINE":
                return google_error(400, "badRequest", "ids")
            metrics = q.get("metrics", "").split(",")
            start, end = date.fromisoformat(q["startDate"]), date.fromisoformat(q["endDate"])
            days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
            dims = q.get("dimensions")
            if dims == "day":
                rows = [[d.isoformat(), *fake.day_row(i, metrics)] for i, d in enumerate(days)]
                headers = [{"name": "day", "columnType": "DIMENSION", "dataType": "STRING"}]
            elif dims == "video":
                ch = fake.channels[channel_id]
                ranked = sorted(
                    ch.videos,
                    key=lambda v: -int(fake.videos[v]["statistics"]["viewCount"]),
                )[: int(q.get("maxResults", "10"))]
                rows = [[v, *fake.video_row(v, metrics)] for v in ranked]
                headers = [{"name": "video", "columnType": "DIMENSION", "dataType": "STRING"}]
            else:
                rows = [fake.total_row(len(days), metrics)]
                headers = []
            headers += [{"name": m, "columnType": "METRIC", "dataType": "INTEGER"} for m in metrics]
            return JSONResponse(
                {"kind": "youtubeAnalytics#resultTable", "columnHeaders": headers, "rows": rows}
            )

        # Control endpoints for out-of-process use (benchmarks).
        @app.get("/_fake/sessions")
        async def list_sessions() -> Response:
            return JSONResponse(
                [
                    {
                        "id": s.id,
                        "total": s.total,
                        "received": s.received,
                        "wire_bytes": s.wire_bytes,
                        "chunk_puts": s.chunk_puts,
                        "status_queries": s.status_queries,
                        "video_id": s.video_id,
                    }
                    for s in fake.sessions.values()
                ]
            )

        @app.post("/_fake/faults")
        async def set_faults(request: Request) -> Response:
            fake.faults = UploadFaults(**(await request.json()))
            fake.held.clear()
            return JSONResponse({"ok": True})

        @app.post(UPLOAD_PATH)
        async def start_upload(request: Request) -> Response:
            channel_id = fake._channel_for(request)
            if channel_id is None:
                return google_error(401, "authError", "Invalid Credentials")
            q = request.query_params
            if q.get("uploadType") != "resumable" or "snippet" not in q.get("part", ""):
                return google_error(400, "badRequest", "uploadType/part")
            if fake.faults.insert_error and fake.faults.insert_error_times > 0:
                fake.faults.insert_error_times -= 1
                status, reason = fake.faults.insert_error
                return google_error(status, reason)
            try:
                total = int(request.headers["x-upload-content-length"])
                content_type = request.headers["x-upload-content-type"]
            except (KeyError, ValueError):
                return google_error(400, "badRequest", "X-Upload-Content-*")
            metadata = await request.json()
            if (problem := _publish_at_problem(metadata.get("status") or {})) is not None:
                return google_error(400, "invalidPublishAt", problem)
            session = UploadSession(
                secrets.token_urlsafe(12), channel_id, total, content_type, metadata
            )
            fake.sessions[session.id] = session
            location = (
                f"{fake.base or str(request.base_url).rstrip('/')}{UPLOAD_PATH}?"
                + urlencode({"uploadType": "resumable", "upload_id": session.id})
            )
            return Response(status_code=200, headers={"Location": location})

        return app

    # Deterministic analytics figures.
    @staticmethod
    def day_row(i: int, metrics: list[str]) -> list[int]:
        values = {
            "views": 10 * (i + 1),
            "likes": i + 1,
            "comments": 1,
            "shares": 1,
            "estimatedMinutesWatched": 20 * (i + 1),
            "averageViewDuration": 120,
            "subscribersGained": 2,
            "subscribersLost": 1,
        }
        return [values.get(m, 0) for m in metrics]

    def total_row(self, n_days: int, metrics: list[str]) -> list[int]:
        rows = [self.day_row(i, metrics) for i in range(n_days)]
        out = [sum(col) for col in zip(*rows, strict=True)] if rows else [0] * len(metrics)
        if "averageViewDuration" in metrics:
            out[metrics.index("averageViewDuration")] = 120
        return out

    def video_row(self, video_id: str, metrics: list[str]) -> list[int]:
        stats = self.videos[video_id]["statistics"]
        values = {
            "views": int(stats["viewCount"]),
            "likes": int(stats.get("likeCount", 0)),
            "comments": int(stats["commentCount"]),
        }
        return [values.get(m, 0) for m in metrics]

    # --- resumable upload: raw ASGI -----------------------------------------------------
    async def _respond(
        self, send: Any, status: int, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def _error(self, send: Any, status: int, reason: str) -> None:
        body = json.dumps(
            {"error": {"code": status, "message": reason, "errors": [{"reason": reason}]}}
        ).encode()
        await self._respond(send, status, {"content-type": "application/json"}, body)

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

    def _range_headers(self, session: UploadSession) -> dict[str, str]:
        if session.received == 0:
            return {}
        return {"Range": f"bytes=0-{session.received - 1}"}

    async def _sink(self, receive: Any, send: Any) -> None:
        n = await self._drain(receive)
        self.sink_bytes += n
        await self._respond(
            send, 200, {"content-type": "application/json"}, json.dumps({"received": n}).encode()
        )

    async def _upload_put(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        self.calls.append(("PUT", scope["path"], {"upload_id": query.get("upload_id", "")}))
        session = self.sessions.get(query.get("upload_id", ""))
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if session is None:
            await self._drain(receive)
            await self._error(send, 404, "notFound")
            return
        content_range = headers.get("content-range", "")
        if not content_range.startswith("bytes "):
            await self._drain(receive)
            await self._error(send, 400, "badContentRange")
            return
        span, _, total_text = content_range[6:].partition("/")
        if total_text != str(session.total):
            await self._drain(receive)
            await self._error(send, 400, "badContentRange")
            return
        if span == "*":
            session.status_queries += 1
            await self._drain(receive)
            if session.video_id:
                await self._respond(
                    send, 200, {"content-type": "application/json"}, self._video_json(session)
                )
            else:
                await self._respond(send, 308, self._range_headers(session))
            return
        start, _, end = span.partition("-")
        first, last = int(start), int(end)
        session.chunk_puts += 1
        faults = self.faults
        if first != session.received or last < first or last >= session.total:
            n = await self._drain(receive)
            session.wire_bytes += n
            await self._error(send, 400, "badContentRange")
            return
        if faults.fail_503_at_chunk == session.chunk_puts:
            faults.fail_503_at_chunk = None
            session.wire_bytes += await self._drain(receive)
            await self._error(send, 503, "backendError")
            return
        forget = faults.forget_chunk == session.chunk_puts
        if forget:
            faults.forget_chunk = None
        got = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-chunk; keep what arrived
            piece = message.get("body", b"")
            if piece and faults.drop_chunk_puts > 0:
                faults.drop_chunk_puts -= 1
                receive.__self__.transport.close()  # cut before any byte of it is kept
                return
            if piece and not forget:
                position = session.received
                pause = faults.pause_at_byte
                if pause is not None and position < pause <= position + len(piece):
                    faults.pause_at_byte = None
                    self.paused.set()
                    await self.resume.wait()  # the client waits on its read, as on a slow link
                for limit, kind in ((faults.drop_at_byte, "drop"), (faults.hold_at_byte, "hold")):
                    if limit is not None and position < limit <= position + len(piece):
                        keep = piece[: limit - position]
                        session.wire_bytes += len(keep)  # the rest never arrives
                        self._commit(session, keep)
                        if kind == "drop":
                            faults.drop_at_byte = None
                            # Cut the TCP connection without a response, as a network would.
                            receive.__self__.transport.close()
                            return
                        faults.hold_at_byte = None
                        self.held.set()
                        await self._drain(receive)  # stall until the client gives up
                        return
                self._commit(session, piece)
            session.wire_bytes += len(piece)
            got += len(piece)
            if not message.get("more_body", False):
                break
        if got != last - first + 1:
            await self._error(send, 400, "badContentLength")
            return
        if session.received == session.total and not session.video_id:
            self._finish(session)
            await self._respond(
                send, 201, {"content-type": "application/json"}, self._video_json(session)
            )
            return
        await self._respond(send, 308, self._range_headers(session))

    def _commit(self, session: UploadSession, data: bytes) -> None:
        if self.hash_uploads:
            session.hasher.update(data)
        session.received += len(data)

    def _finish(self, session: UploadSession) -> None:
        video_id = secrets.token_urlsafe(8)[:11]
        session.video_id = video_id
        status = dict(session.metadata.get("status") or {})
        if self.faults.force_private:
            status["privacyStatus"] = "private"
        channel = self.channels[session.channel_id]
        self.videos[video_id] = {
            "id": video_id,
            "channel": channel.id,
            "snippet": {
                **(session.metadata.get("snippet") or {}),
                "publishedAt": "2026-11-25T00:00:00Z",
            },
            "statistics": {"viewCount": "0", "likeCount": "0", "commentCount": "0"},
            "status": status,
        }
        channel.videos.insert(0, video_id)

    def _video_json(self, session: UploadSession) -> bytes:
        video = self.videos[str(session.video_id)]
        return json.dumps(
            {"kind": "youtube#video", **{k: video[k] for k in ("id", "snippet", "status")}}
        ).encode()


def run_standalone(port: int, ready: Any = None, **kwargs: Any) -> None:
    """Serve a FakeGoogle in this process (benchmarks run it in a child process)."""
    import logging

    import uvicorn

    # A cut connection makes uvicorn complain on stderr; that is the point here.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    fake = FakeGoogle(**kwargs)
    fake.base = f"http://127.0.0.1:{port}"
    channel = fake.add_channel("Bench Channel")
    fake.access_tokens["bench-token"] = (channel.id, time.time() + 86400)
    config = uvicorn.Config(
        fake, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    if ready is not None:
        ready.set()
    server.run()


def youtube_settings(base: str, fake: FakeGoogle, **overrides: Any) -> dict[str, Any]:
    """YouTube's plug-in settings (GOOGLE_*/YOUTUBE_* names) pointing every URL at the fake."""
    values: dict[str, Any] = {
        "google_client_id": fake.client_id,
        "google_client_secret": fake.client_secret,
        "google_auth_url": f"{base}/o/oauth2/v2/auth",
        "google_token_url": f"{base}/token",
        "google_revoke_url": f"{base}/revoke",
        "youtube_api_base": f"{base}/youtube/v3",
        "youtube_upload_base": f"{base}/upload",
        "youtube_analytics_base": f"{base}/v2",
        "youtube_upload_chunk_bytes": 256 * 1024,
    }
    values.update(overrides)
    return values


def youtube_config(base: str, fake: FakeGoogle, **overrides: Any) -> Any:
    """A YouTubeConfig pointing every URL at the fake."""
    from integrations.youtube import YouTubeConfig

    values: dict[str, Any] = {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "auth_url": f"{base}/o/oauth2/v2/auth",
        "token_url": f"{base}/token",
        "revoke_url": f"{base}/revoke",
        "api_base": f"{base}/youtube/v3",
        "upload_base": f"{base}/upload",
        "analytics_base": f"{base}/v2",
        "chunk_bytes": 256 * 1024,
    }
    values.update(overrides)
    return YouTubeConfig(**values)


class MemorySource:
    """A ByteSource over bytes, yielding small pieces (for tests)."""

    def __init__(
        self, data: bytes, *, mime_type: str = "video/mp4", piece: int = 64 * 1024
    ) -> None:
        self.data = data
        self.size = len(data)
        self.mime_type = mime_type
        self.piece = piece
        self.opens: list[int] = []
        self.bytes_read = 0  # everything handed to the uploader: what it could have sent

    async def open(self, offset: int = 0) -> Any:
        self.opens.append(offset)
        for i in range(offset, self.size, self.piece):
            piece = self.data[i : i + self.piece]
            self.bytes_read += len(piece)
            yield piece


class MemoryCheckpoint:
    """An UploadCheckpoint in memory (tests of the integration alone)."""

    def __init__(self) -> None:
        self.session: str | None = None
        self.confirmed = 0
        self.saves: list[int] = []

    async def load(self) -> tuple[str | None, int]:
        return self.session, self.confirmed

    async def save(self, session_uri: str | None, confirmed: int) -> None:
        self.session, self.confirmed = session_uri, confirmed
        self.saves.append(confirmed)
