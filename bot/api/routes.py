"""/api/v1: the companion app's front-end. Routes translate HTTP to the same actions
chat uses (with an ActionContext for the chat user the app user connected) and the
actions' answers back to JSON; every rule (tenancy, approvals, limits) is in the actions.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# definition time, and they name dependencies local to build_router.
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import date
from http import HTTPStatus
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from agent.actions import (
    accounts,
    app_link,
    approvals,
    audit,
    best_time,
    captions,
    digest,
    metrics,
    posts,
    quota,
    schedule,
)
from agent.actions import upload as uploads
from agent.actions.base import Outcome
from agent.actions.schedule_time import show
from agent.context import ActionContext, AdminCheck, Deps
from agent.layout import plain_channels
from bot.api import models
from bot.api.auth import AppUser, InvalidToken, SupabaseVerifier
from bot.api.problems import MEDIA_TYPE, ApiProblem, Problem, ProblemRoute, retry_after
from bot.api.uploads import UploadRejected, UploadStore
from storage.app_identities import AppLink
from storage.schedule import ScheduledPost

PREFIX = "/api/v1"
# A JSON request body is a few fields; a video comes as multipart (bot.api.uploads).
MAX_JSON_BYTES = 64 * 1024
# Approval refusals (agent.actions.approvals.REFUSALS) as HTTP statuses.
_REFUSAL_STATUS = {"not_found": 404, "wrong_user": 404, "already_decided": 409, "expired": 410}
_PROBLEM_STATUSES = (400, 401, 403, 404, 409, 410, 422, 429, 503)
_PROBLEMS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "description": HTTPStatus(status).phrase}
    for status in _PROBLEM_STATUSES
}
# Only POST /uploads answers these: a file over the cap, a body that is neither form.
_UPLOAD_PROBLEMS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "description": HTTPStatus(status).phrase} for status in (413, 415)
}
_Model = TypeVar("_Model", bound=BaseModel)
# A scheduled post's number, as chat names it (agent.actions.schedule reads up to 18 digits).
PostNumber = Annotated[int, Path(ge=1, le=10**18 - 1, description="The number GET /queue shows")]

DepsFactory = Callable[[], Deps]
# A route handler that proposes an action: the action's outcome carries the approval.
Proposer = Callable[..., Awaitable[Outcome]]


def _approval(outcome: Outcome) -> models.Approval:
    ticket = outcome.approval
    if ticket is None:  # every action routed here proposes one
        raise RuntimeError("the action did not ask for an approval")
    return models.Approval(
        approval_id=ticket.action_id,
        # Channel tokens (`<#C1>`) are for chat clients; the app shows them as `#C1`.
        summary=plain_channels(ticket.summary),
        expires_in_seconds=ticket.expires_in_seconds,
        message=plain_channels(outcome.text),
    )


def _workspace(link: AppLink) -> models.Workspace:
    return models.Workspace(
        workspace=link.identity.workspace_id,
        frontend=link.identity.frontend,
        name=link.workspace_name,
    )


def _validated(model: type[_Model], data: object) -> _Model:
    """`data` as `model`, or the same 422 problem a declared body would give."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


async def _json_body(request: Request, model: type[_Model]) -> _Model:
    """A JSON body of at most MAX_JSON_BYTES (read as it arrives), as `model`."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise ApiProblem(413, "The JSON body is too large.")
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiProblem(422, "The body is not valid JSON.") from None
    return _validated(model, data)


def published_openapi(routes: list[Any]) -> dict[str, Any]:
    """The OpenAPI document of `routes`, with errors as the problem+json they are sent as."""
    doc = get_openapi(title="socialops companion API", version="1", routes=routes)
    for operation in (op for path in doc["paths"].values() for op in path.values()):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if (
                int(status) in (*_PROBLEM_STATUSES, *_UPLOAD_PROBLEMS)
                and "application/json" in content
            ):
                response["content"] = {MEDIA_TYPE: content["application/json"]}
    return doc


def build_router(
    *, deps: DepsFactory, verifier: SupabaseVerifier, upload_store: UploadStore
) -> APIRouter:
    """Every /api/v1 route, plus its OpenAPI document and docs page; files sent to
    POST /uploads go to `upload_store`."""
    router = APIRouter(prefix=PREFIX, route_class=ProblemRoute, responses=_PROBLEMS)
    bearer = HTTPBearer(auto_error=False, description="A Supabase access token")

    async def app_user(
        creds: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> AppUser:
        if creds is None:
            raise InvalidToken("no bearer token")
        return await verifier.verify(creds.credentials)

    async def caller(
        user: Annotated[AppUser, Depends(app_user)],
        workspace: Annotated[
            int | None, Query(description="Which workspace, when you act in several.")
        ] = None,
    ) -> ActionContext:
        """The chat user this app user acts as, after the per-user message limit."""
        d = deps()
        links = await app_link.links(d, user.subject)
        if workspace is not None:
            links = [link for link in links if link.identity.workspace_id == workspace]
        if not links:
            raise ApiProblem(
                403,
                "This app account is not connected to a chat user"
                + (" in that workspace" if workspace is not None else "")
                + ": run `connect app` in chat and enter the code at POST /identity/claim.",
            )
        if len(links) > 1:
            ids = ", ".join(str(link.identity.workspace_id) for link in links)
            raise ApiProblem(400, f"You act in several workspaces; add ?workspace= (one of {ids}).")
        ident = links[0].identity
        decision = await d.budgets.check_message(
            workspace_id=ident.workspace_id, chat_user_id=ident.chat_user_id
        )
        if not decision.allowed:
            raise ApiProblem(
                429, "Too many requests; slow down.", headers=retry_after(decision.retry_after)
            )
        return ActionContext(identity=ident, deps=d, origin="command")

    Caller = Annotated[ActionContext, Depends(caller)]

    def admin_check(ctx: Caller) -> AdminCheck:
        """Whether the caller administers the workspace, asked only if an action needs it."""
        return functools.partial(ctx.deps.is_admin, ctx.identity)

    Admin = Annotated[AdminCheck, Depends(admin_check)]

    def proposes(
        method: str, path: str, summary: str, **route: Any
    ) -> Callable[[Proposer], Proposer]:
        """Declares a route whose action asks for an approval: it answers 202 with the
        pending action (nothing happens until the person approves it)."""

        def declare(propose: Proposer) -> Proposer:
            @functools.wraps(propose)
            async def endpoint(*args: Any, **kwargs: Any) -> models.Approval:
                return _approval(await propose(*args, **kwargs))

            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                status_code=202,
                response_model=models.Approval,
                summary=f"{summary} (after approval)",
                **route,
            )
            return propose

        return declare

    # Each route: the caller resolved by `Caller` (or `app_user`), one action called, its
    # answer converted to the response model; refusals leave through ProblemRoute.

    @router.get("/identity", summary="Where you can act")
    async def identity(user: Annotated[AppUser, Depends(app_user)]) -> models.Workspaces:
        links = await app_link.links(deps(), user.subject)
        return models.Workspaces(workspaces=[_workspace(link) for link in links])

    @router.post("/identity/claim", summary="Connect to chat")
    async def claim(
        body: models.Claim, user: Annotated[AppUser, Depends(app_user)]
    ) -> models.Workspace:
        return _workspace(await app_link.claim(deps(), subject=user.subject, code=body.code))

    @router.delete("/identity", summary="Disconnect the app")
    async def disconnect(ctx: Caller) -> models.Message:
        return models.Message(message=(await app_link.disconnect_app(ctx)).text)

    @router.get("/accounts", summary="Your linked accounts")
    async def list_accounts(ctx: Caller) -> models.Accounts:
        own = await accounts.own_accounts(ctx)
        return models.Accounts(
            accounts=[
                models.Account(id=a.ref, platform=a.platform, handle=a.handle, status=a.status)
                for a in own
            ]
        )

    @proposes("DELETE", "/accounts/{account_id}", "Unlink an account")
    async def unlink(ctx: Caller, account_id: Annotated[str, Path(max_length=100)]) -> Outcome:
        return await accounts.request_unlink(ctx, platform=None, account=account_id)

    @router.post("/approvals/{approval_id}", summary="Approve or reject")
    async def decide(
        ctx: Caller, approval_id: Annotated[str, Path(max_length=64)], body: models.Decision
    ) -> models.Message:
        said = await approvals.resolve(ctx, approval_id, approved=body.approve)
        for refusal, text in approvals.REFUSALS.items():
            if said == text:
                raise ApiProblem(_REFUSAL_STATUS[refusal], said)
        return models.Message(message=plain_channels(said))

    @router.get("/metrics", summary="Engagement figures")
    async def get_metrics(
        ctx: Caller,
        platform: Annotated[str | None, Query(max_length=40)] = None,
        period: Annotated[
            str | None,
            Query(
                max_length=8,
                description="today, 7d, 28d or 90d (default: 7d, or less "
                "where a platform reports less)",
            ),
        ] = None,
        post: Annotated[str | None, Query(max_length=64)] = None,
    ) -> models.Metrics:
        report = await metrics.metrics_report(ctx, platform=platform, period=period, post=post)
        return models.Metrics(
            period=period or metrics.DEFAULT_PERIOD,
            as_of=report.as_of,
            accounts=[
                models.Figures(
                    platform=a.platform,
                    account=ref,
                    as_of=a.as_of,
                    figures={m.value: f.value for m, f in a.figures.items()},
                )
                for ref, a in report.accounts
            ],
            posts=[
                models.PostFigures(
                    platform=p.platform,
                    account=ref,
                    as_of=p.as_of,
                    figures={m.value: f.value for m, f in p.figures.items()},
                    post_id=p.post_id,
                    title=p.title,
                )
                for ref, p in report.posts
            ],
            unavailable=report.unavailable,
        )

    @router.get("/posts", summary="Your posts and upload status")
    async def list_posts(
        ctx: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 50
    ) -> models.Posts:
        found = await posts.list_posts(ctx, limit=limit)
        return models.Posts(
            posts=[
                models.Post(
                    id=p.id,
                    platform=p.platform,
                    platform_post_id=p.platform_post_id,
                    title=p.title,
                    status=p.status,
                    bytes_total=p.bytes_total,
                    bytes_confirmed=p.bytes_confirmed,
                    error=p.error,
                    created_at=p.created_at,
                    updated_at=p.updated_at,
                )
                for p in found
            ]
        )

    @proposes(
        "POST",
        "/uploads",
        "Upload a video by https link or in the request",
        responses=_UPLOAD_PROBLEMS,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": models.UploadByUrl.model_json_schema()},
                    "multipart/form-data": {"schema": models.upload_form_schema()},
                },
            }
        },
    )
    async def upload(ctx: Caller, request: Request) -> Outcome:
        # The body is read here, after the caller was authenticated and counted: a
        # stranger's request never reaches the disk.
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await _json_body(request, models.UploadByUrl)
            return await uploads.request_upload_from_url(
                ctx, url=body.url, **body.model_dump(exclude={"url"})
            )
        try:
            boundary = upload_store.precheck(
                request.headers.get("content-type"), request.headers.get("content-length")
            )
            received = await upload_store.receive(boundary=boundary, body=request.stream())
        except UploadRejected as exc:
            raise ApiProblem(exc.status, exc.detail) from None
        try:
            fields = dict(received.fields)
            tags = [t for t in fields.pop("tags", "").split(",") if t.strip()]
            details = _validated(models.UploadDetails, {**fields, "tags": tags})
            outcome = await uploads.request_upload(
                ctx,
                source={
                    "kind": "file",
                    "path": str(received.path),
                    "size": received.size,
                    "mime_type": received.mime_type,
                },
                source_name=received.filename,
                **details.model_dump(),
            )
        except BaseException:
            await upload_store.discard(received)
            raise
        return outcome

    @router.get("/queue", summary="Scheduled posts (yours, or the workspace's)")
    async def get_queue(
        ctx: Caller,
        is_admin: Admin,
        scope: Annotated[
            Literal["mine", "workspace"],
            Query(description="workspace: everyone's posts, for workspace admins (403 otherwise)"),
        ] = "mine",
    ) -> models.Queue:
        found = await schedule.scheduled_posts(
            ctx, workspace=scope == "workspace", is_admin=is_admin
        )
        zone, _ = await schedule.requester_zone(ctx)
        me = ctx.identity.chat_user_id
        return models.Queue(
            scope=scope,
            posts=[
                models.ScheduledPost(
                    number=p.run_id,
                    publish_at=p.publish_at,
                    local_time=show(p.publish_at, zone),
                    platform=p.platform,
                    account=p.account_ref,
                    handle=p.handle,
                    title=p.title,
                    status=p.status,
                    error=p.error,
                    yours=p.chat_user_id == me,
                )
                for p in found
            ],
        )

    async def own_scheduled(ctx: ActionContext, number: int) -> ScheduledPost:
        found = await schedule.find_scheduled(ctx, str(number))
        if found is None:  # someone else's is as unknown as one that never was
            raise ApiProblem(404, f"You have no scheduled post {number} (GET /queue lists yours).")
        return found

    @proposes("DELETE", "/queue/{number}", "Cancel a scheduled post")
    async def cancel_scheduled(ctx: Caller, number: PostNumber) -> Outcome:
        return await schedule.request_cancel(ctx, await own_scheduled(ctx, number))

    @proposes("PATCH", "/queue/{number}", "Move a scheduled post to a new time")
    async def reschedule(ctx: Caller, number: PostNumber, body: models.Reschedule) -> Outcome:
        found = await own_scheduled(ctx, number)
        return await schedule.request_reschedule(
            ctx, str(found.run_id), body.publish_at, body.time_zone
        )

    @router.get("/best-time", summary="When your posts do best")
    async def get_best_time(
        ctx: Caller, platform: Annotated[str | None, Query(max_length=40)] = None
    ) -> models.BestTimes:
        best = await best_time.best_times(ctx, platform=platform)
        return models.BestTimes(
            platform=best.platform,
            account=best.ref,
            zone=best.zone.key,
            posts=best.posts,
            min_posts=best_time.MIN_POSTS,
            slots=[
                models.Slot(
                    at=s.at,
                    local_time=show(s.at, best.zone),
                    weekday=f"{s.at.astimezone(best.zone):%A}",
                    hour=s.slot.hour,
                    mean_views=s.slot.mean_views,
                    posts=s.slot.posts,
                )
                for s in best.suggestions
            ],
        )

    @router.get("/digests", summary="Your workspace's digests")
    async def list_digests(ctx: Caller) -> models.Digests:
        subs = await digest.subscriptions(ctx)
        return models.Digests(
            digests=[
                models.Digest(channel=s.channel_id, time=f"{s.local_time:%H:%M}", zone=s.time_zone)
                for s in subs
            ]
        )

    @proposes("PUT", "/digests/{channel}", "Re-time a digest you set up")
    async def retime_digest(
        ctx: Caller, channel: Annotated[str, Path(max_length=80)], body: models.DigestTime
    ) -> Outcome:
        return await digest.request_change_elsewhere(
            ctx, enabled=True, channel=channel, at=body.time, zone=body.zone
        )

    @proposes("DELETE", "/digests/{channel}", "Stop a digest you set up")
    async def stop_digest(ctx: Caller, channel: Annotated[str, Path(max_length=80)]) -> Outcome:
        return await digest.request_change_elsewhere(ctx, enabled=False, channel=channel)

    @router.get("/quota", summary="What you have left")
    async def get_quota(ctx: Caller) -> models.Quota:
        found = await quota.budgets(ctx)
        return models.Quota(
            budgets=[
                models.Budget(
                    label=label,
                    scope=s.scope,
                    platform=s.platform,
                    used=s.used,
                    limit=s.limit,
                    remaining=s.remaining,
                    reset_at=s.reset_at,
                )
                for label, s in found
            ]
        )

    @router.get("/audit", summary="Who asked for what (workspace admins)")
    async def get_audit(
        ctx: Caller,
        is_admin: Admin,
        user: Annotated[str | None, Query(max_length=80, description="A member's chat id")] = None,
        action: Annotated[str | None, Query(pattern="^[a-z_]{1,40}$")] = None,
        since: Annotated[date | None, Query(description="From this day (UTC)")] = None,
    ) -> models.AuditLog:
        found = await audit.entries(
            ctx, is_admin=is_admin, user=user, action=action, since=since, limit=200
        )
        return models.AuditLog(
            entries=[
                models.AuditEntry(
                    at=e.at,
                    action=e.action,
                    target=e.target,
                    outcome=e.outcome,
                    actor=e.actor_external_id,
                    actor_name=e.actor_name,
                    requested_by=e.requester_external_id,
                    requested_by_name=e.requester_name,
                )
                for e in found
            ]
        )

    @router.post("/captions", summary="Caption ideas")
    async def get_captions(ctx: Caller, body: models.CaptionRequest) -> models.Captions:
        display, found = await captions.options(
            ctx,
            platform=body.platform,
            description=body.description,
            tone=body.tone,
            variants=body.variants,
        )
        return models.Captions(
            platform=display,
            captions=[
                models.Caption(title=c.title, body=c.body, hashtags=list(c.hashtags)) for c in found
            ],
        )

    api_routes = list(router.routes)

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(published_openapi(api_routes))

    @router.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{PREFIX}/openapi.json", title="socialops API")

    return router
