"""Tie a companion-app user to a chat user: `connect app` in chat, then the code in the app.

Only the chat user can ask for a code (it is shown to them privately), and only an
app user who enters it in time is tied; wrong codes count against that app user.
"""

from __future__ import annotations

from hashlib import sha256

from agent.actions.base import ActionError, Outcome
from agent.context import ActionContext, Deps
from storage import app_identities as store
from storage.app_identities import AppLink
from storage.identity import Member

CODE_TTL_SECONDS = 600
MAX_FAILED_CLAIMS = 5
FAILED_CLAIMS_WINDOW_SECONDS = 900


class TooManyAttempts(ActionError):
    """Too many wrong codes from one app user: refused without looking, for a while."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


async def connect_app(ctx: ActionContext) -> Outcome:
    """A one-time code for the app, sent to the requester only."""
    code = await store.create_code(
        ctx.deps.pool,
        ctx.deps.cipher,
        chat_user_id=ctx.identity.chat_user_id,
        ttl_seconds=CODE_TTL_SECONDS,
    )
    minutes = CODE_TTL_SECONDS // 60
    shown = f"{code[:5]}-{code[5:]}"
    return Outcome(
        text="I sent you a private code to connect the companion app.",
        private=f"Your code for the app: {shown}\n(single use, valid {minutes} minutes. "
        "Whoever enters it acts as you here: don't share it.)",
    )


async def disconnect_app(ctx: ActionContext) -> Outcome:
    """The companion app stops acting as the requester (and unused codes stop working)."""
    pool, me = ctx.deps.pool, ctx.identity.chat_user_id
    await store.drop_codes(pool, chat_user_id=me)
    if await store.disconnect(pool, chat_user_id=me):
        return Outcome("The companion app is no longer connected to your account here.")
    return Outcome("No companion app was connected to your account here.")


async def claim(deps: Deps, *, subject: str, code: str) -> AppLink:
    """Tie app user `subject` to the chat user whose code this is."""
    counter = deps.redis.key("app-claim-failures", sha256(subject.encode()).hexdigest()[:32])
    failures = int(await deps.redis.client.get(counter) or 0)
    if failures >= MAX_FAILED_CLAIMS:
        wait = await deps.redis.client.ttl(counter)
        raise TooManyAttempts(
            "Too many wrong codes; wait a while, then ask for a new one with `connect app`.",
            retry_after=float(max(wait, 1)),
        )
    normalized = store.normalize_code(code)
    chat_user_id = (
        await store.claim(deps.pool, deps.cipher, code=normalized, subject=subject)
        if normalized is not None
        else None
    )
    if chat_user_id is None:
        if await deps.redis.client.incr(counter) == 1:  # the window starts at the first miss
            await deps.redis.client.expire(counter, FAILED_CLAIMS_WINDOW_SECONDS)
        raise ActionError(
            "That code is wrong, already used or expired. Run `connect app` in chat for a new one."
        )
    await deps.redis.client.delete(counter)
    links = await store.links_for(deps.pool, subject)
    link = next(link for link in links if link.identity.chat_user_id == chat_user_id)
    # Told in chat, so a code that leaked does not go unnoticed.
    person = Member(link.identity, None)
    await deps.notify(
        link.identity.frontend,
        person.reply_to,
        "The companion app is now connected to your account here: it can do what you can. "
        "If that was not you, tell your workspace admin.",
    )
    return link


async def links(deps: Deps, subject: str) -> list[AppLink]:
    """The chat users (one per workspace) this app user acts as."""
    return await store.links_for(deps.pool, subject)
