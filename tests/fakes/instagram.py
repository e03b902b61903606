"""A fake Instagram (OAuth + Graph API with Instagram Login) speaking the real wire format.

Serve `FakeInstagram().app` with `tests.fakes.server.serve_asgi` and point
`auth_url`/`token_url`/`graph_base` at it. Shapes follow the Instagram Platform
reference: token answers, `{"data": [...]}` lists with `paging`, insights rows with
`values`/`total_value`, multiple-id reads (`/?ids=a,b`), containers with
`status_code`, and Graph's error envelope
`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`.

Faults: `expire(token)`, `rate_limit(...)`, `fail_with_500(...)`,
`plan_containers(in_progress_polls=..., error=...)`, `publish_limit_reached`,
`unreachable_video_url()`.
Every request is recorded in `calls` for assertions.

With `fetch_video_urls=True` the fake does what Instagram's fetcher does when a
container is created: it downloads `video_url` (HEAD, then GET; in `Range` pieces
of `fetch_range_bytes` if set) and records the byte count and SHA-256 on the
container; a failed download makes the container ERROR (subcode 2207052). `hosts`
maps a public host (``bot.example.com``) to a loopback base URL, standing in for DNS.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

VERSION = re.compile(r"^v\d+\.\d+$")
DEFAULT_SCOPES = (
    "instagram_business_basic,instagram_business_content_publish,instagram_business_manage_insights"
)
MEDIA_METRICS = {
    "REELS": {
        "views",
        "reach",
        "likes",
        "comments",
        "shares",
        "saved",
        "total_interactions",
        "ig_reels_avg_watch_time",
        "ig_reels_video_view_total_time",
    },
    "FEED": {"views", "reach", "likes", "comments", "shares", "saved", "total_interactions"},
    "STORY": {"views", "reach", "shares", "total_interactions", "replies", "navigation"},
}
ACCOUNT_TOTAL_METRICS = {
    "views",
    "reach",
    "likes",
    "comments",
    "shares",
    "saves",
    "total_interactions",
    "accounts_engaged",
    "follows_and_unfollows",
}
ACCOUNT_SERIES_METRICS = {"reach", "follower_count"}


@dataclass
class FakeMedia:
    id: str
    caption: str
    media_type: str = "VIDEO"
    media_product_type: str = "REELS"
    timestamp: str = "2026-11-01T10:00:00+0000"
    like_count: int = 0
    comments_count: int = 0
    # Instagram metric name -> value; a metric not here returns no row (not 0).
    insights: dict[str, float] = field(default_factory=dict)

    @property
    def permalink(self) -> str:
        return f"https://www.instagram.com/reel/{self.id}/"


@dataclass
class FakeUser:
    user_id: str
    app_scoped_id: str
    username: str
    name: str
    followers: int = 0
    media: list[FakeMedia] = field(default_factory=list)  # newest first
    account_totals: dict[str, float] = field(default_factory=dict)
    follows: tuple[int, int] | None = None  # (follows, unfollows) in any range
    daily: dict[date, dict[str, float]] = field(default_factory=dict)
    published_count: int = 0


@dataclass
class FakeToken:
    user_id: str
    kind: str  # "short" | "long"
    expired: bool = False


@dataclass
class FakeContainer:
    id: str
    user_id: str
    caption: str
    video_url: str
    in_progress_polls: int
    error: str | None
    status_code: str = "IN_PROGRESS"
    # What the fetcher got from video_url (fetch_video_urls=True only).
    fetched_bytes: int | None = None
    fetched_sha256: str | None = None
    fetch_error: str | None = None


@dataclass
class Fetch:
    """One request the fake's video fetcher made."""

    method: str
    url: str
    range: str | None
    status: int | None
    headers: dict[str, str]


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    auth: str | None


class FakeInstagram:
    """In-memory Instagram with the faults tests need."""

    def __init__(
        self,
        *,
        client_id: str = "1234567890",
        client_secret: str = "ig-app-secret-9f8e7d6c",
        fetch_video_urls: bool = False,
        fetch_range_bytes: int | None = None,
        hosts: dict[str, str] | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.users: dict[str, FakeUser] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (user_id, redirect_uri)
        self.tokens: dict[str, FakeToken] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[Call] = []
        self.page_size_cap = 25
        self.long_lived_seconds = 60 * 24 * 3600
        self.publish_limit_reached = False
        self.multi_id_supported = True
        # Graph names the missing ids of a multiple-id read (#803); off: a not-found
        # that names none.
        self.names_missing_ids = True
        self._next_in_progress = 0
        self._next_error: str | None = None
        self._faults: list[dict[str, Any]] = []
        self.fetch_video_urls = fetch_video_urls
        self.fetch_range_bytes = fetch_range_bytes
        self.hosts = dict(hosts or {})
        self.fetches: list[Fetch] = []
        self._unreachable = 0
        # Ids start at a random point: posts of several tests share one database, and a
        # platform's post ids are unique, so two fakes must not hand out the same ones.
        self._ids = 17_900_000_000_000_000 + secrets.randbelow(10**12) * 1000
        self.app = self._build_app()

    # --- setup helpers -------------------------------------------------------------------

    def _new_id(self) -> str:
        self._ids += 1
        return str(self._ids)

    def add_user(
        self, username: str = "creator", *, name: str = "A Creator", followers: int = 1200
    ) -> FakeUser:
        user = FakeUser(
            user_id=self._new_id(),
            app_scoped_id=self._new_id(),
            username=username,
            name=name,
            followers=followers,
        )
        self.users[user.user_id] = user
        return user

    def add_media(self, user: FakeUser, caption: str = "", **kw: Any) -> FakeMedia:
        media = FakeMedia(id=self._new_id(), caption=caption, **kw)
        user.media.insert(0, media)
        return media

    def issue_code(self, user: FakeUser, redirect_uri: str) -> str:
        code = "AQ" + secrets.token_urlsafe(24)
        self.codes[code] = (user.user_id, redirect_uri)
        return code

    def issue_token(self, user: FakeUser, kind: str = "long") -> str:
        token = "IGAA" + secrets.token_urlsafe(32)
        self.tokens[token] = FakeToken(user.user_id, kind)
        return token

    def expire(self, token: str) -> None:
        self.tokens[token].expired = True

    def rate_limit(self, *, times: int = 1, minutes: int = 5, path: str | None = None) -> None:
        self._faults.append({"kind": "rate", "times": times, "minutes": minutes, "path": path})

    def fail_with_500(self, *, times: int = 1, path: str | None = None) -> None:
        self._faults.append({"kind": "500", "times": times, "path": path})

    def plan_containers(self, *, in_progress_polls: int = 0, error: str | None = None) -> None:
        """The next containers stay IN_PROGRESS for `in_progress_polls` status reads, then
        become FINISHED, or ERROR with `error` as their `status` text."""
        self._next_in_progress = in_progress_polls
        self._next_error = error

    def unreachable_video_url(self, *, times: int = 1) -> None:
        """The next `times` video fetches fail as if the URL's host could not be reached."""
        self._unreachable += times

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    # --- wire helpers --------------------------------------------------------------------

    @staticmethod
    def error(
        status: int,
        message: str,
        code: int,
        subcode: int | None = None,
        *,
        type_: str = "OAuthException",
        headers: dict[str, str] | None = None,
        transient: bool = False,
    ) -> JSONResponse:
        body: dict[str, Any] = {
            "message": message,
            "type": type_,
            "code": code,
            "fbtrace_id": "A" + secrets.token_hex(8),
        }
        if subcode is not None:
            body["error_subcode"] = subcode
        if transient:
            body["is_transient"] = True
        return JSONResponse({"error": body}, status_code=status, headers=headers)

    def _fault(self, path: str, user_id: str | None) -> JSONResponse | None:
        for fault in self._faults:
            if fault["times"] <= 0 or (fault["path"] is not None and fault["path"] != path):
                continue
            fault["times"] -= 1
            if fault["kind"] == "500":
                return self.error(
                    500,
                    "An unexpected error has occurred. Please retry your request later.",
                    2,
                    transient=True,
                )
            usage = {
                user_id or "0": [
                    {
                        "type": "instagram",
                        "call_count": 100,
                        "total_cputime": 20,
                        "total_time": 30,
                        "estimated_time_to_regain_access": fault["minutes"],
                    }
                ]
            }
            return self.error(
                400,
                "(#4) Application request limit reached",
                4,
                1349193,
                headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
            )
        return None

    def _auth(
        self, request: Request, params: dict[str, str]
    ) -> tuple[FakeUser | None, JSONResponse | None, str | None]:
        header = request.headers.get("authorization")
        token = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() in {"bearer", "oauth"}:
                token = value.strip()
        token = token or params.get("access_token")
        if not token:
            return (
                None,
                self.error(
                    400,
                    "An active access token must be used to query information about the current user.",
                    2500,
                ),
                None,
            )
        record = self.tokens.get(token)
        if record is None:
            return (
                None,
                self.error(400, "Invalid OAuth access token - Cannot parse access token", 190),
                header,
            )
        if record.expired:
            return (
                None,
                self.error(400, "Error validating access token: Session has expired.", 190, 463),
                header,
            )
        return self.users[record.user_id], None, header

    # --- app -----------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/oauth/access_token")
        async def oauth_token(request: Request) -> JSONResponse:
            form = await _form(request)
            self.calls.append(Call("POST", "/oauth/access_token", form, None))
            if (
                form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
            ):
                return JSONResponse(
                    {
                        "error_type": "OAuthException",
                        "code": 400,
                        "error_message": "Invalid platform app",
                    },
                    status_code=400,
                )
            if form.get("grant_type") != "authorization_code":
                return JSONResponse(
                    {
                        "error_type": "OAuthException",
                        "code": 400,
                        "error_message": "Unsupported grant_type",
                    },
                    status_code=400,
                )
            entry = self.codes.pop(form.get("code", ""), None)
            if entry is None or entry[1] != form.get("redirect_uri"):
                return JSONResponse(
                    {
                        "error_type": "OAuthException",
                        "code": 400,
                        "error_message": "Invalid authorization code",
                    },
                    status_code=400,
                )
            user = self.users[entry[0]]
            token = self.issue_token(user, "short")
            return JSONResponse(
                {
                    "data": [
                        {
                            "access_token": token,
                            "user_id": user.user_id,
                            "permissions": DEFAULT_SCOPES,
                        }
                    ]
                }
            )

        @app.get("/access_token")
        async def exchange(request: Request) -> JSONResponse:
            params = dict(request.query_params)
            self.calls.append(Call("GET", "/access_token", params, None))
            if (
                params.get("grant_type") != "ig_exchange_token"
                or params.get("client_secret") != self.client_secret
            ):
                return self.error(400, "Invalid client_secret or grant_type", 101)
            record = self.tokens.get(params.get("access_token", ""))
            if record is None or record.kind != "short" or record.expired:
                return self.error(
                    400, "Invalid OAuth access token - Cannot parse access token", 190
                )
            token = self.issue_token(self.users[record.user_id], "long")
            return JSONResponse(
                {
                    "access_token": token,
                    "token_type": "bearer",
                    "expires_in": self.long_lived_seconds,
                }
            )

        @app.get("/refresh_access_token")
        async def refresh(request: Request) -> JSONResponse:
            params = dict(request.query_params)
            self.calls.append(Call("GET", "/refresh_access_token", params, None))
            if params.get("grant_type") != "ig_refresh_token":
                return self.error(400, "Unsupported grant_type", 100)
            record = self.tokens.get(params.get("access_token", ""))
            if record is None:
                return self.error(
                    400, "Invalid OAuth access token - Cannot parse access token", 190
                )
            if record.expired:
                return self.error(
                    400, "Error validating access token: Session has expired.", 190, 463
                )
            token = self.issue_token(self.users[record.user_id], "long")
            return JSONResponse(
                {
                    "access_token": token,
                    "token_type": "bearer",
                    "expires_in": self.long_lived_seconds,
                }
            )

        @app.api_route("/{version}/{path:path}", methods=["GET", "POST"])
        async def graph(version: str, path: str, request: Request) -> JSONResponse:
            params = dict(request.query_params)
            if request.method == "POST":
                params.update(await _form(request))
            path = path.strip("/")
            user, failure, auth = self._auth(request, params)
            self.calls.append(Call(request.method, path, params, auth))
            if not VERSION.match(version):
                return self.error(400, "Unknown path components", 2500)
            if failure is not None:
                return failure
            assert user is not None
            fault = self._fault(path, user.user_id)
            if fault is not None:
                return fault
            if request.method == "POST":
                response = self._post(user, path, params)
                if path == "me/media" and response.status_code == 200 and self.fetch_video_urls:
                    await self._fetch_video(self.containers[json.loads(response.body)["id"]])
                return response
            return self._get(user, path, params)

        return app

    # --- GET -----------------------------------------------------------------------------

    def _get(self, user: FakeUser, path: str, params: dict[str, str]) -> JSONResponse:
        fields = _split_fields(params.get("fields", ""))
        if path == "me":
            return JSONResponse(self._profile(user, fields))
        if path == "me/media":
            return self._media_list(user, fields, params)
        if path == "me/insights":
            return self._account_insights(user, params)
        if path == "":
            if not self.multi_id_supported:
                return self.error(400, "(#100) Tried accessing nonexisting field (ids)", 100)
            ids = [i for i in params.get("ids", "").split(",") if i]
            if not ids:
                return self.error(400, "(#100) The parameter ids is required", 100)
            out: dict[str, Any] = {}
            missing: list[str] = []
            for object_id in ids:
                node = self._node(user, object_id, fields)
                if isinstance(node, JSONResponse):
                    if not self.names_missing_ids:
                        return self.error(400, "Unsupported get request.", 100, 33)
                    missing.append(object_id)
                else:
                    out[object_id] = node
            if missing:
                message = (
                    f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}"
                )
                return self.error(404, message, 803, type_="OAuthException")
            return JSONResponse(out)
        if path.endswith("/insights"):
            media = self._media(user, path.removesuffix("/insights"))
            if media is None:
                return self._missing(path)
            rows = self._media_insights(media, params.get("metric", "").split(","))
            return rows if isinstance(rows, JSONResponse) else JSONResponse({"data": rows})
        node = self._node(user, path, fields)
        return node if isinstance(node, JSONResponse) else JSONResponse(node)

    def _missing(self, object_id: str) -> JSONResponse:
        return self.error(
            400,
            f"Unsupported get request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation",
            100,
            33,
            type_="GraphMethodException",
        )

    def _profile(self, user: FakeUser, fields: list[str]) -> dict[str, Any]:
        values = {
            "id": user.app_scoped_id,
            "user_id": user.user_id,
            "username": user.username,
            "name": user.name,
            "account_type": "MEDIA_CREATOR",
            "profile_picture_url": "https://scontent.example/p.jpg",
            "followers_count": user.followers,
            "follows_count": 10,
            "media_count": len(user.media),
        }
        return {"id": user.app_scoped_id, **{f: values[f] for f in fields if f in values}}

    def _media(self, user: FakeUser, media_id: str) -> FakeMedia | None:
        return next((m for m in user.media if m.id == media_id), None)

    def _media_fields(self, media: FakeMedia, fields: list[str]) -> dict[str, Any] | JSONResponse:
        values = {
            "id": media.id,
            "caption": media.caption,
            "media_type": media.media_type,
            "media_product_type": media.media_product_type,
            "permalink": media.permalink,
            "timestamp": media.timestamp,
            "like_count": media.like_count,
            "comments_count": media.comments_count,
        }
        out: dict[str, Any] = {"id": media.id}
        for f in fields:
            if f.startswith("insights"):
                match = re.fullmatch(r"insights\.metric\(([^)]*)\)", f)
                rows = self._media_insights(media, match.group(1).split(",") if match else [])
                if isinstance(rows, JSONResponse):
                    return rows
                out["insights"] = {"data": rows}
            elif f in values:
                out[f] = values[f]
        return out

    def _media_insights(
        self, media: FakeMedia, metrics: list[str]
    ) -> list[dict[str, Any]] | JSONResponse:
        allowed = MEDIA_METRICS.get(media.media_product_type, set())
        rows = []
        for metric in [m for m in metrics if m]:
            if metric not in allowed:
                return self.error(
                    400,
                    f"(#100) The Media Insights API does not support the {metric} "
                    f"metric for this media product type.",
                    100,
                )
            if metric in media.insights:
                rows.append(
                    {
                        "name": metric,
                        "period": "lifetime",
                        "values": [{"value": media.insights[metric]}],
                        "title": metric.replace("_", " ").title(),
                        "description": "",
                        "id": f"{media.id}/insights/{metric}/lifetime",
                    }
                )
        return rows

    def _node(
        self, user: FakeUser, object_id: str, fields: list[str]
    ) -> dict[str, Any] | JSONResponse:
        container = self.containers.get(object_id)
        if container is not None and container.user_id == user.user_id:
            if container.status_code == "IN_PROGRESS":
                if container.in_progress_polls > 0:
                    container.in_progress_polls -= 1
                else:
                    container.status_code = "ERROR" if container.error else "FINISHED"
            status = {
                "IN_PROGRESS": "In Progress",
                "FINISHED": "Finished",
                "PUBLISHED": "Published",
                "ERROR": container.error or "Error",
            }[container.status_code]
            values = {"id": container.id, "status_code": container.status_code, "status": status}
            return {"id": container.id, **{f: values[f] for f in fields if f in values}}
        media = self._media(user, object_id)
        if media is None:
            return self._missing(object_id)
        return self._media_fields(media, fields)

    def _media_list(
        self, user: FakeUser, fields: list[str], params: dict[str, str]
    ) -> JSONResponse:
        limit = min(int(params.get("limit", "25")), self.page_size_cap)
        start = int(params["after"]) if params.get("after", "").isdigit() else 0
        page = user.media[start : start + limit]
        data = []
        for media in page:
            node = self._media_fields(media, fields)
            if isinstance(node, JSONResponse):
                return node
            data.append(node)
        body: dict[str, Any] = {"data": data}
        end = start + len(page)
        if page:
            body["paging"] = {"cursors": {"before": str(start), "after": str(end)}}
            if end < len(user.media):
                body["paging"]["next"] = (
                    f"https://graph.instagram.com/v25.0/me/media?after={end}&access_token=REDACTED"
                )
        return JSONResponse(body)

    def _account_insights(self, user: FakeUser, params: dict[str, str]) -> JSONResponse:
        metrics = [m for m in params.get("metric", "").split(",") if m]
        metric_type = params.get("metric_type", "time_series")
        if params.get("period") != "day":
            return self.error(
                400, "(#100) period must be one of the following values: day, lifetime", 100
            )
        try:
            since = datetime.fromtimestamp(int(params["since"]), UTC)
            until = datetime.fromtimestamp(int(params["until"]), UTC)
        except (KeyError, ValueError):
            return self.error(400, "(#100) since and until are required", 100)
        if until - since > timedelta(days=30):
            return self.error(400, "(#100) The since and until range cannot exceed 30 days", 100)
        rows = []
        for metric in metrics:
            allowed = (
                ACCOUNT_TOTAL_METRICS if metric_type == "total_value" else ACCOUNT_SERIES_METRICS
            )
            if metric not in allowed:
                return self.error(
                    400,
                    f"(#100) metric[{metrics.index(metric)}] must be one of the following values",
                    100,
                )
            row: dict[str, Any] = {
                "name": metric,
                "period": "day",
                "title": metric,
                "description": "",
                "id": f"{user.user_id}/insights/{metric}/day",
            }
            if metric_type == "total_value":
                if metric == "follows_and_unfollows":
                    if params.get("breakdown") != "follow_type" or user.follows is None:
                        continue
                    gained, lost = user.follows
                    row["total_value"] = {
                        "breakdowns": [
                            {
                                "dimension_keys": ["follow_type"],
                                "results": [
                                    {"dimension_values": ["FOLLOWER"], "value": gained},
                                    {"dimension_values": ["NON_FOLLOWER"], "value": lost},
                                ],
                            }
                        ]
                    }
                elif metric in user.account_totals:
                    row["total_value"] = {"value": user.account_totals[metric]}
                else:
                    continue
            else:
                values = []
                day = since.date()
                while datetime.combine(day, time(), UTC) < until:
                    if metric in user.daily.get(day, {}):
                        end_time = datetime.combine(day + timedelta(days=1), time(8), UTC)
                        values.append(
                            {
                                "value": user.daily[day][metric],
                                "end_time": end_time.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                            }
                        )
                    day += timedelta(days=1)
                if not values:
                    continue
                row["values"] = values
            rows.append(row)
        return JSONResponse({"data": rows})

    # --- POST ----------------------------------------------------------------------------

    def _post(self, user: FakeUser, path: str, params: dict[str, str]) -> JSONResponse:
        if path == "me/media":
            if params.get("media_type") != "REELS" or not params.get("video_url"):
                return self.error(400, "(#100) The parameter video_url is required", 100)
            container = FakeContainer(
                id=self._new_id(),
                user_id=user.user_id,
                caption=params.get("caption", ""),
                video_url=params["video_url"],
                in_progress_polls=self._next_in_progress,
                error=self._next_error,
            )
            self.containers[container.id] = container
            return JSONResponse({"id": container.id})
        if path == "me/media_publish":
            container = self.containers.get(params.get("creation_id", ""))
            if container is None or container.user_id != user.user_id:
                return self._missing(params.get("creation_id", ""))
            if self.publish_limit_reached:
                return self.error(
                    400, "Application request limit reached", 9, 2207042, type_="OAuthException"
                )
            if container.status_code != "FINISHED":
                return self.error(400, "Media ID is not available", 9007, 2207027)
            container.status_code = "PUBLISHED"
            media = self.add_media(
                user,
                container.caption,
                timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
            )
            user.published_count += 1
            return JSONResponse({"id": media.id})
        return self.error(400, "Unsupported post request.", 100)

    # --- the video fetcher -----------------------------------------------------------------

    def _resolve(self, url: str) -> str:
        parts = urlsplit(url)
        base = self.hosts.get(parts.netloc)
        if base is None:
            return url
        return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")

    async def _fetch_video(self, container: FakeContainer) -> None:
        """Download the container's video_url as Instagram would; ERROR the container if
        that fails (a real Instagram reports it on the container, not on the POST)."""
        try:
            if self._unreachable > 0:
                self._unreachable -= 1
                raise httpx.ConnectError("unreachable (fault)")
            size, digest = await self._download(self._resolve(container.video_url))
        except (httpx.HTTPError, ValueError) as exc:
            container.fetch_error = f"{type(exc).__name__}: {exc}"
            container.error = "Error: Media upload has failed with error code 2207052"
            return
        container.fetched_bytes, container.fetched_sha256 = size, digest

    async def _download(self, url: str) -> tuple[int, str]:
        digest = hashlib.sha256()
        got = 0
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
            head = await client.head(url)
            self.fetches.append(Fetch("HEAD", url, None, head.status_code, dict(head.headers)))
            if head.status_code != 200:
                raise ValueError(f"HEAD answered {head.status_code}")
            size = int(head.headers["content-length"])
            if not head.headers.get("content-type", "").startswith("video/"):
                raise ValueError("not a video content type")
            step = self.fetch_range_bytes or size
            while got < size:
                wanted = (
                    f"bytes={got}-{min(got + step, size) - 1}" if self.fetch_range_bytes else None
                )
                headers = {"Range": wanted} if wanted else {}
                async with client.stream("GET", url, headers=headers) as response:
                    self.fetches.append(
                        Fetch("GET", url, wanted, response.status_code, dict(response.headers))
                    )
                    if response.status_code != (206 if wanted else 200):
                        raise ValueError(f"GET answered {response.status_code}")
                    if wanted and response.headers.get("content-range") != (
                        f"bytes {wanted.removeprefix('bytes=')}/{size}"
                    ):
                        raise ValueError("wrong Content-Range")
                    async for chunk in response.aiter_bytes():
                        digest.update(chunk)
                        got += len(chunk)
                if not wanted:
                    break
        if got != size:
            raise ValueError(f"got {got} of {size} bytes")
        return got, digest.hexdigest()


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed by hand: no python-multipart)."""
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def _split_fields(raw: str) -> list[str]:
    """Split a Graph `fields` list at top-level commas (`a,insights.metric(x,y)`)."""
    out, depth, current = [], 0, ""
    for char in raw:
        if char == "," and depth == 0:
            if current:
                out.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current:
        out.append(current)
    return out


def instagram_settings(base: str, fake: FakeInstagram, **overrides: Any) -> dict[str, Any]:
    """Instagram's plug-in settings (INSTAGRAM_* names) pointing every URL at the fake."""
    values: dict[str, Any] = {
        "instagram_client_id": fake.client_id,
        "instagram_client_secret": fake.client_secret,
        "instagram_auth_url": f"{base}/oauth/authorize",
        "instagram_token_url": f"{base}/oauth/access_token",
        "instagram_graph_base": base,
        "instagram_api_version": "v25.0",
        "instagram_publish_poll_seconds": 0.01,
        "instagram_publish_timeout_seconds": 5,
    }
    values.update(overrides)
    return values
