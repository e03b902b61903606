"""`Budgets`: every limit the bot enforces, as one object the conversation and platforms share."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

from storage.ratelimit.counters import Counter, Mode, Reading, Tally, decide
from storage.ratelimit.fallback import LocalLimits, Outage
from storage.ratelimit.ledger import Ledger
from storage.ratelimit.quotas import CounterSpec, Quota, QuotaBook
from storage.ratelimit.runs import RunSlots
from storage.ratelimit.values import (
    Admission,
    BudgetStatus,
    Decision,
    LimiterUnavailable,
    LimitPolicy,
    Scope,
    SlotClaim,
)
from storage.ratelimit.windows import Rate
from storage.redis import RedisHandle

_NO_QUOTAS: Mapping[str, Sequence[CounterSpec]] = MappingProxyType({})


class Budgets:
    """Chat rates and LLM token budgets (fail open), platform quotas (fail closed).

    `quotas` maps a platform name to the counters it declares. Keys carry a hash tag
    ({w<id>}, {<platform>}, {api}) so every key one call touches is in one cluster slot.
    """

    def __init__(
        self,
        *,
        redis: RedisHandle,
        policy: LimitPolicy,
        quotas: Mapping[str, Sequence[CounterSpec]] = _NO_QUOTAS,
        call_timeout: float = 0.5,
        outage_probe_interval: float = 1.0,
        closed_retry_after: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.policy = policy
        self._user_rate = Rate.parse(policy.user_messages)
        self._workspace_rate = Rate.parse(policy.workspace_messages)
        self._quotas = QuotaBook(quotas)
        self._outage = Outage(outage_probe_interval)
        self._ledger = Ledger(
            redis=redis,
            outage=self._outage,
            call_timeout=call_timeout,
            clock=clock or (lambda: datetime.now(UTC)),
        )
        self._local = LocalLimits()
        self._runs = RunSlots(redis=redis)
        self._closed_retry_after = closed_retry_after

    @property
    def redis_down(self) -> bool:
        """True between the first failed Redis call and the next successful one."""
        return self._outage.down

    def _messages(self, workspace_id: int, chat_user_id: int, amount: int) -> list[Counter]:
        tag = f"rl:{{w{workspace_id}}}:msg"
        user, workspace = self._user_rate, self._workspace_rate
        return [
            Counter("messages", f"{tag}:u{chat_user_id}", user.capacity, amount, user.window),
            Counter("messages", tag, workspace.capacity, amount, workspace.window),
        ]

    def _llm_tokens(
        self, workspace_id: int, chat_user_id: int | None, amount: int
    ) -> list[Counter]:
        """The user's (when there is one) and the workspace's daily token ledgers."""
        tag = f"llm:{{w{workspace_id}}}"
        policy = self.policy
        workspace = Counter("llm_tokens", tag, policy.workspace_llm_tokens_per_day, amount)
        if chat_user_id is None:
            return [workspace]
        user_limit = policy.user_llm_tokens_per_day
        return [Counter("llm_tokens", f"{tag}:u{chat_user_id}", user_limit, amount), workspace]

    # -- chat (fail open) ----------------------------------------------------------------

    async def check_message(self, *, workspace_id: int, chat_user_id: int) -> Decision:
        """Admit one chat message against the per-user and per-workspace rates."""
        counters = self._messages(workspace_id, chat_user_id, 1)
        tally = await self._ledger.run("reserve", counters)
        return decide(counters, self._local.hit(counters) if tally is None else tally)

    async def admit_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        tokens: int,
        ttl: float,
        at_least: int | None = None,
    ) -> Admission:
        """Admit a chat message bound for the agent in one Redis call: count it against
        the user's and workspace's rates, claim the user's one run at a time (for `ttl`
        seconds at most), and reserve up to `tokens` (no fewer than `at_least`, by default
        all of them) from the user's and the workspace's day, both or neither, so
        concurrent runs cannot overspend. `Admission.reserved` says how many were."""
        least = max(min(tokens if at_least is None else at_least, tokens), 1)
        messages = self._messages(workspace_id, chat_user_id, 1)
        llm = self._llm_tokens(workspace_id, chat_user_id, max(tokens, 1))
        slot_key, run = self._runs.key(workspace_id, chat_user_id), self._runs.token()
        answer = await self._ledger.admit(
            slot_key=slot_key, slot_token=run, ttl=ttl, messages=messages, tokens=llm, least=least
        )
        if answer is None:  # fail open, to this process's own counts
            return self._admit_locally(messages, llm, least, slot_key)
        stage, granted, rates, reservation = answer
        message = decide(messages, rates)
        if stage < 2:
            return Admission(message)
        if stage == 2:
            return Admission(message, None, decide(llm, reservation))
        return Admission(message, run, decide(llm, reservation, charged=True), granted)

    def _admit_locally(
        self, messages: list[Counter], llm: list[Counter], least: int, slot_key: str
    ) -> Admission:
        message = decide(messages, self._local.hit(messages))
        if not message.allowed:
            return Admission(message)
        run = self._runs.claim_local(slot_key)
        if run is None:
            return Admission(message)
        held = self._local.days("peek", [replace(c, amount=0) for c in llm])
        room = min(min(c.amount, c.limit - r.used) for c, r in zip(llm, held.readings, strict=True))
        granted = [replace(c, amount=max(room, least)) for c in llm]
        tally = self._local.days("peek", granted)
        if room < least:
            self._runs.release_local(slot_key, run)
            return Admission(message, None, decide(granted, tally))
        self._local.days("charge", granted)
        return Admission(message, run, decide(granted, tally, charged=True), room)

    async def finish_run(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        admission: Admission,
        used: int,
    ) -> None:
        """After an admitted run, in one Redis call: charge what it used beyond its
        reservation (`admission.reserved`), or give back the rest (only while the
        reservation's day lasts), and free the user's run slot if it is still this run's."""
        run, reservation = admission.run, admission.tokens
        if run is None or reservation is None:
            raise ValueError("finish_run needs an admitted run")
        slot_key = self._runs.key(workspace_id, chat_user_id)
        extra, refund = _settlement(reservation, admission.reserved, used)
        settle = extra > 0 or refund
        counters = self._llm_tokens(workspace_id, chat_user_id, abs(extra)) if settle else []
        if not self._runs.release_local(slot_key, run) and await self._ledger.finish(
            slot_key=slot_key,
            slot_token=run,
            mode="refund" if refund else "charge",
            counters=counters,
            stamp=reservation.charged_at if refund else None,
        ):
            return
        if settle:  # to this process's own ledger (a negative charge refunds)
            self._local.days("charge", self._llm_tokens(workspace_id, chat_user_id, extra))

    # -- model calls outside a run (fail open) ---------------------------------------

    async def reserve_tokens(
        self, *, workspace_id: int, chat_user_id: int | None, tokens: int
    ) -> Decision:
        """Reserve `tokens` from the user's (None: no user's) and the workspace's day, both
        or neither, in one Redis call: for model calls outside an agent run (a thread's
        summary, a digest's commentary), which neither count as a message nor take the
        user's run slot. Settle it with `settle_tokens`."""
        llm = self._llm_tokens(workspace_id, chat_user_id, max(tokens, 1))
        tally = await self._ledger.run("reserve", llm)
        if tally is not None:
            return decide(llm, tally, charged=True)
        # Redis down: reserved from this process's own day, and settled there too.
        tally = self._local.days("peek", llm)
        if tally.allowed:
            self._local.days("charge", llm)
        return replace(decide(llm, tally, charged=tally.allowed), unavailable=True)

    async def settle_tokens(
        self,
        *,
        workspace_id: int,
        chat_user_id: int | None,
        reservation: Decision,
        reserved: int,
        used: int,
    ) -> None:
        """Charge what a `reserve_tokens` call's work used beyond its reservation, or give
        back the rest (only while the reservation's day lasts): one Redis call."""
        if not reservation.allowed:
            return
        extra, refund = _settlement(reservation, reserved, used)
        if not (extra > 0 or refund):
            return
        if not reservation.unavailable:
            counters = self._llm_tokens(workspace_id, chat_user_id, abs(extra))
            stamp = reservation.charged_at if refund else None
            mode: Mode = "refund" if refund else "charge"
            if await self._ledger.run(mode, counters, stamp=stamp) is not None:
                return
        # To this process's own ledger (a negative charge refunds).
        self._local.days("charge", self._llm_tokens(workspace_id, chat_user_id, extra))

    # -- shared paces and bounds (fail open) --------------------------------------------

    async def pace(self, key: str, rate: Rate) -> Decision:
        """Take one of `rate`'s slots on a moving window every replica shares (a chat
        channel's posting rate): refused with retry_after while they are all taken."""
        counters = [Counter("pace", f"rl:{{{key}}}", rate.capacity, 1, rate.window)]
        tally = await self._ledger.run("reserve", counters)
        return decide(counters, self._local.hit(counters) if tally is None else tally)

    async def claim_slot(self, key: str, *, limit: int, ttl: float) -> SlotClaim:
        """One of at most `limit` concurrent holders of `key` across replicas, leased for
        `ttl` seconds (a holder that dies frees its slot then). Redis down: granted, so a
        bound never stops the work it only spreads out."""
        token = secrets.token_hex(8)
        answer = await self._ledger.slot("claim", f"slot:{{{key}}}", token, limit=limit, ttl=ttl)
        if answer is None:
            return SlotClaim(key, granted=True)
        claimed, retry_after = answer
        if claimed:
            return SlotClaim(key, granted=True, token=token)
        return SlotClaim(key, granted=False, retry_after=retry_after)

    async def release_slot(self, claim: SlotClaim) -> None:
        """Free a claimed slot early (best effort: its lease frees it anyway)."""
        if claim.token is not None:
            await self._ledger.slot("release", f"slot:{{{claim.key}}}", claim.token)

    # -- platform quotas (fail closed) ---------------------------------------------------

    async def reserve(
        self, platform: str, account: int | None, amounts: Mapping[str, int]
    ) -> Decision:
        """Reserve `amounts` of a platform's counters: all of them, or none.

        Zero amounts are skipped; with nothing left to charge the answer is yes at once.
        ValueError for an unknown counter, a per-account counter without `account`, or an
        amount above its limit. Redis unreachable: refused, `unavailable`, short retry_after.
        """
        counters = self._quotas.charges(platform, account, amounts, reserving=True)
        if not counters:
            return Decision(True, 0, 0, 0.0, None)
        tally = await self._ledger.run("reserve", counters)
        if tally is None:
            limit = counters[0].limit
            return Decision(False, limit, 0, self._closed_retry_after, None, unavailable=True)
        return decide(counters, tally, charged=True)

    async def refund(
        self,
        platform: str,
        account: int | None,
        amounts: Mapping[str, int],
        reservation: Decision | None = None,
    ) -> None:
        """Give back what a reservation charged for work that did not happen.

        With the reservation, its moving-window entries are removed and calendar days
        refunded only while that day lasts (refunding today for yesterday would over-grant
        today); a refused or unavailable reservation charged nothing, so nothing is given
        back. Without it, only calendar days are refunded (to today). Best effort: a refund
        lost to a Redis outage only makes the ledger conservative.
        """
        if reservation is not None and reservation.charged_at is None:
            return
        counters = self._quotas.charges(platform, account, amounts, reserving=False)
        if counters:
            stamp = reservation.charged_at if reservation is not None else None
            await self._ledger.run("refund", counters, stamp=stamp)

    # -- report --------------------------------------------------------------------------

    async def report(
        self,
        *,
        workspace_id: int,
        chat_user_id: int,
        accounts: Sequence[tuple[str, int]] = (),
    ) -> list[BudgetStatus]:
        """Used, left and reset time of every budget that applies, for the `quota` command.

        Rows: the user's and workspace's message rates and LLM tokens, each platform's
        per-app counters, and the per-account counters of each (platform, account id).
        Raises LimiterUnavailable when Redis is unreachable.
        """
        own = self._messages(workspace_id, chat_user_id, 0) + self._llm_tokens(
            workspace_id, chat_user_id, 0
        )
        tally = await self._peek(own)
        scopes: list[Scope] = ["user", "workspace", "user", "workspace"]
        labels = ["messages", "messages", "LLM tokens", "LLM tokens"]
        out = [
            _status(scope, label, c, r)
            for scope, label, c, r in zip(scopes, labels, own, tally.readings, strict=True)
        ]
        for platform in self._quotas.platforms():
            rows: list[tuple[Quota, int | None]] = [
                (q, None) for q in self._quotas.declared(platform, per_account=False)
            ]
            rows += [
                (q, account_id)
                for name, account_id in accounts
                if name == platform
                for q in self._quotas.declared(platform, per_account=True)
            ]
            if not rows:
                continue
            counters = [q.counter(account_id, 0) for q, account_id in rows]
            tally = await self._peek(counters)
            out += [
                _status(
                    "app" if account_id is None else "account",
                    q.spec.label,
                    c,
                    r,
                    platform=platform,
                    account_id=account_id,
                )
                for (q, account_id), c, r in zip(rows, counters, tally.readings, strict=True)
            ]
        return out

    async def _peek(self, counters: Sequence[Counter]) -> Tally:
        tally = await self._ledger.run("peek", counters)
        if tally is None:
            raise LimiterUnavailable("redis unreachable")
        return tally


def _settlement(reservation: Decision, reserved: int, used: int) -> tuple[int, bool]:
    """What settling a token reservation does: (tokens used beyond it, or minus the unused
    rest; whether that rest is refunded, which only a reservation Redis charged can be)."""
    extra = used - max(reserved, 1)
    return extra, extra < 0 and reservation.charged_at is not None


def _status(
    scope: Scope,
    label: str,
    counter: Counter,
    reading: Reading,
    *,
    platform: str | None = None,
    account_id: int | None = None,
) -> BudgetStatus:
    return BudgetStatus(
        scope=scope,
        counter=counter.name,
        label=label,
        used=reading.used,
        limit=counter.limit,
        remaining=max(counter.limit - reading.used, 0),
        reset_at=reading.reset_at,
        platform=platform,
        account_id=account_id,
        rolling_seconds=counter.window,
        reset_zone=None if counter.window else str(counter.zone),
    )
