"""ChatOpsService: the front-end-neutral conversation core.

An adapter hands it an `IncomingMessage` and a `ReplySink`. It resolves who is
talking, applies the message limits, routes slash commands and exact command
lines to the grammar and everything else to the agent, keeps per-thread
history, delivers private links and approval prompts, and turns every error
into a clear reply. It never raises into an adapter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from agent import commands
from agent.actions import approvals
from agent.actions.base import USER_ERRORS, Outcome, user_message
from agent.context import ActionContext, Deps
from agent.limits import Budgets, Decision
from agent.session import AttachmentInfo, ChatContext
from agent.summaries import SummaryConfig, ThreadSummaries
from agent.tokens import RunFailed, estimate_tokens
from bot.core import shares
from bot.core.messages import ApprovalRequest, IncomingMessage, Reply, ReplySink
from bot.telemetry import traced_message
from integrations.errors import format_wait
from storage import approvals as approval_store
from storage import conversations, identity
from storage.conversations import Turn
from storage.identity import Identity
from storage.redis import RedisHandle

if TYPE_CHECKING:  # LangChain loads only in processes that run a model
    from langchain_core.language_models import BaseChatModel

    from agent.runner import AgentRunner

log = logging.getLogger(__name__)

NO_MODEL = "Free-form chat needs a model; try `help` for the commands."
MODEL_DOWN = "The model is not answering right now. Commands still work: try `help`."
INTERNAL = "Something went wrong on my side. Please try again in a moment."
BUSY = "I'm still working on your previous request; send this again once I've answered it."
TOO_LONG = (
    "That message is too long for the assistant (the limit is about {limit:,} tokens). "
    "Shorten it, or use a command: try `help`."
)
SHARE_GONE = "That answer can no longer be shared (it expired or was shared already); ask again."
_IDENTITY_CACHE_MAX = 10_000


class ChatOpsService:
    """The conversation core shared by every front-end."""

    def __init__(
        self,
        *,
        deps: Deps | Callable[[], Deps],
        runner: AgentRunner | None = None,
        history_turns: int = 12,
        keep_messages: int = 50,
        summary: SummaryConfig | None = None,
        summary_model: BaseChatModel | None = None,
    ) -> None:
        # Deps may be built lazily: the pool exists only once the process has initialized.
        self._deps_source = deps
        self.runner = runner
        self._history_limit = max(history_turns, 0) * 2
        self._keep = max(keep_messages, self._history_limit + 2)
        # Older turns: a summary cut to its budget, rewritten by `summary_model` if any,
        # in batches that come due before the cut folds them (past `keep`).
        summary = summary or SummaryConfig()
        room = self._keep - self._history_limit
        self._summary = dataclasses.replace(summary, batch=min(summary.batch, room))
        self._summaries = (
            None
            if summary_model is None
            else ThreadSummaries(model=summary_model, config=self._summary)
        )
        # Least recently used identities are forgotten first (a busy workspace's members
        # stay cached however many one-off users pass through).
        self._identities: LRUCache[tuple[str, str, str], Identity] = LRUCache(
            maxsize=_IDENTITY_CACHE_MAX
        )
        # Work that runs after the reply is out, chained per key to keep its order: a
        # thread's history writes ("thread", workspace, thread) and a run's settlement
        # ("run", workspace, user), which the next run in the thread or of the user waits
        # for; and a thread's written summary ("summary", workspace, thread), which
        # nothing waits for.
        self._writes: dict[tuple[str, int, str | int], asyncio.Task[None]] = {}

    @property
    def deps(self) -> Deps:
        source = self._deps_source
        return source if isinstance(source, Deps) else source()

    def _budgets(self, deps: Deps) -> Budgets:
        return deps.budgets

    async def _identity(
        self,
        deps: Deps,
        *,
        frontend: str,
        workspace_id: str,
        user_id: str,
        workspace_name: str | None = None,
        user_name: str | None = None,
    ) -> Identity:
        key = (frontend, workspace_id, user_id)
        found: Identity | None = self._identities.get(key)
        if found is not None:
            return found
        ident = await identity.resolve(
            deps.pool,
            frontend=frontend,
            workspace_external_id=workspace_id,
            user_external_id=user_id,
            workspace_name=workspace_name,
            user_display_name=user_name,
        )
        self._identities[key] = ident
        return ident

    # -- messages ---------------------------------------------------------------------

    async def handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        """Answer one message. Never raises: every failure becomes a reply."""
        try:
            await self._handle(message, sink)
        except Exception:
            log.exception("message handling failed", extra={"frontend": message.frontend})
            await _send_quietly(sink, Reply(INTERNAL), private=_private(message))

    @traced_message
    async def _handle(self, message: IncomingMessage, sink: ReplySink) -> None:
        if "\x00" in message.text:
            # Postgres text cannot hold U+0000, and it never means anything in chat.
            message = dataclasses.replace(message, text=message.text.replace("\x00", ""))
        deps = self.deps
        ident = await self._identity(
            deps,
            frontend=message.frontend,
            workspace_id=message.workspace_id,
            user_id=message.user_id,
            workspace_name=message.workspace_name,
            user_name=message.user_name,
        )
        limiter = self._budgets(deps)
        parsed = commands.parse(message.text, deps.platforms)
        runner = self.runner
        to_agent = (
            runner is not None
            and not message.is_command
            and not isinstance(parsed, commands.Command)
            and estimate_tokens(message.text) <= runner.config.max_input_tokens
        )
        waiting: asyncio.Task[bool] | bool = False
        if not (to_agent and self._history_limit):
            # Whether approvals wait for this person: read alongside the message's own work
            # and needed only once it is answered, so it adds no round trip to the reply.
            # (The agent path reads it with the thread's history, in the same query.)
            waiting = asyncio.create_task(
                approval_store.has_unshown(
                    deps.pool, workspace_id=ident.workspace_id, chat_user_id=ident.chat_user_id
                ),
                name="chatops:waiting",
            )
            waiting.add_done_callback(_retrieved)  # a refused message never looks at it
        chat = ChatContext(
            action=ActionContext(identity=ident, deps=deps),
            channel_id=message.channel_id,
            reply_to={
                "frontend": message.frontend,
                "workspace_id": message.workspace_id,
                "channel_id": message.channel_id,
                "thread_id": message.thread_id,
                "user_id": message.user_id,
            },
            attachments=tuple(
                AttachmentInfo(a.name, a.size, a.mime_type, dict(a.locator))
                for a in message.attachments
            ),
            allow_local_files=message.frontend == "local",
            is_admin=message.admin_check,
        )
        if runner is not None and to_agent:
            # The agent path counts the message in the same Redis call as its run slot
            # and token reservation, and stores its own history (with token counts).
            asked = await self._run_agent(runner, chat, message, sink, limiter)
            if asked is None:
                return
            await self._ask_waiting(
                waiting if isinstance(waiting, asyncio.Task) else asked, ident, deps, message, sink
            )
            return
        decision = await limiter.check_message(
            workspace_id=ident.workspace_id, chat_user_id=ident.chat_user_id
        )
        if not decision.allowed:
            await _too_many(sink, decision, private=_private(message))
            return
        if isinstance(parsed, commands.Command):
            reply = await self._run_command(parsed, chat, message, sink)
            kept = commands.history_text(parsed, message.text)
            await self._remember(chat, dataclasses.replace(message, text=kept), reply)
        elif message.is_command or (runner is None and isinstance(parsed, commands.Usage)):
            reply = (
                parsed.message
                if isinstance(parsed, commands.Usage)
                else commands.usage_for_unknown(message.text)
            )
            await _answer(message, sink, Reply(reply))
            await self._remember(chat, message, reply)
        elif runner is None:
            await sink.send(Reply(NO_MODEL))
            await self._remember(chat, message, NO_MODEL)
        else:
            await sink.send(Reply(TOO_LONG.format(limit=runner.config.max_input_tokens)))
        await self._ask_waiting(waiting, ident, deps, message, sink)

    async def _ask_waiting(
        self,
        check: asyncio.Task[bool] | bool,
        ident: Identity,
        deps: Deps,
        message: IncomingMessage,
        sink: ReplySink,
    ) -> None:
        """Put approvals made for this person outside their conversation in front of them.

        A member asking for an account this person owns creates such an approval
        (`agent.ops.linking`); it is asked here, once, the next time they talk. `check`
        (a read on a partial index, or its answer) says whether there is any; only then
        is the claim, a write, made.
        """
        if not (check if isinstance(check, bool) else await check):
            return
        waiting = await approval_store.claim_unshown(
            deps.pool, workspace_id=ident.workspace_id, chat_user_id=ident.chat_user_id
        )
        for pending in waiting:
            left = (pending.expires_at - datetime.now(UTC)).total_seconds()
            await sink.ask_approval(
                ApprovalRequest(
                    action_id=pending.id,
                    summary=pending.summary,
                    requester_user_id=message.user_id,
                    expires_in_seconds=max(int(left), 60),
                )
            )

    async def _run_command(
        self,
        command: commands.Command,
        chat: ChatContext,
        message: IncomingMessage,
        sink: ReplySink,
    ) -> str:
        shareable = command.name in commands.SHAREABLE
        try:
            outcome = await commands.execute(command, chat)
        except USER_ERRORS as exc:
            outcome, shareable = Outcome(user_message(exc)), False
        # An answer that points to a private part ("sent you … privately") has nothing
        # worth sharing: the private part is the answer, and it stays private.
        if outcome.private is not None or outcome.private_digest is not None:
            shareable = False
        if outcome.approval is None:
            reply = Reply(outcome.text, layout=outcome.layout)
            kept_in = self.deps.redis if shareable else None
            await _answer(message, sink, reply, share=command.share, shareable_in=kept_in)
        await self._deliver(outcome, message, sink)
        return outcome.text

    async def _run_agent(
        self,
        runner: AgentRunner,
        chat: ChatContext,
        message: IncomingMessage,
        sink: ReplySink,
        limiter: Budgets,
    ) -> bool | None:
        """One agent run: the message counted, one run per user at a time and its worst
        case reserved before it starts (one limiter call), its real use settled after,
        failures included. None when the message rates refused it; else whether approvals
        wait for the person (read with the thread's history; False without history).

        The admission and the thread's history are asked for at once (Redis and Postgres,
        one round trip's wait instead of two): before the history is read, the admission
        reserves for the largest history the run may carry, or as much of that as the
        budgets have left but no less than a run without history needs; once the history
        is in, the run's exact worst case must fit in what was reserved. So a run is
        admitted exactly when its worst case fits, and what it holds beyond that is
        given back when it is settled, seconds later.
        """
        ident = chat.action.identity
        who = {"workspace_id": ident.workspace_id, "chat_user_id": ident.chat_user_id}
        run_key = ("run", ident.workspace_id, ident.chat_user_id)
        read = asyncio.create_task(self._history(runner, chat, message), name="chatops:history")
        try:
            await self._settled(run_key)
            admission = await limiter.admit_run(
                **who,
                tokens=runner.worst_case(message.text),
                at_least=runner.worst_case(message.text, ()),
                ttl=runner.config.run_ttl_seconds,
            )
        except BaseException:
            read.cancel()
            raise
        used = 0

        def settle() -> None:  # after the reply (one Redis call off its path)
            if admission.allowed:
                work = functools.partial(limiter.finish_run, **who, admission=admission, used=used)
                self._later(run_key, work, "could not settle a model run")

        try:
            history, waiting = await read
        except BaseException:
            settle()
            raise
        reservation = admission.tokens
        if not admission.message.allowed:
            await _too_many(sink, admission.message)
            return None
        if reservation is None:
            await sink.send(Reply(BUSY))
            return waiting
        worst = runner.worst_case(message.text, history)
        if not admission.allowed or worst > admission.reserved:
            settle()  # what it reserved goes back
            left = reservation.remaining + (admission.reserved if admission.allowed else 0)
            when = (
                f" It resets at {reservation.reset_at:%H:%M} UTC." if reservation.reset_at else ""
            )
            await sink.send(
                Reply(
                    f"Not enough model budget left today for this request ({left:,} "
                    f"tokens left; a request may use up to {worst:,}).{when} "
                    "Commands still work: try `help`."
                )
            )
            return waiting
        # What the tools propose now is the assistant's suggestion, made after this message.
        chat.action = dataclasses.replace(
            chat.action, origin="assistant", request_text=message.text
        )
        try:
            result = await runner.run(history=history, text=message.text, chat=chat)
            used = result.tokens
        except Exception as exc:
            used = exc.tokens if isinstance(exc, RunFailed) else 0
            log.exception("agent run failed")
            # Approvals the tools queued before the failure are still real requests.
            await self._flush(chat, message, sink)
            await sink.send(Reply(MODEL_DOWN))
            return waiting
        finally:
            settle()  # failures included
        await sink.send(Reply(result.text))
        await self._flush(chat, message, sink)
        self._store_later(chat, message, result.text, result.tokens)
        return waiting

    async def _history(
        self, runner: AgentRunner, chat: ChatContext, message: IncomingMessage
    ) -> tuple[list[Turn], bool]:
        """The thread's history that fits the model's budget, once the thread's last write
        is in, and whether approvals wait for the person (in the same query)."""
        if not self._history_limit:
            return [], False
        ident = chat.action.identity
        await self._settled(("thread", ident.workspace_id, message.thread_key))
        turns, waiting = await conversations.recent_and_waiting(
            chat.action.deps.pool,
            workspace_id=ident.workspace_id,
            thread_key=message.thread_key,
            limit=self._history_limit,
            chat_user_id=ident.chat_user_id,
        )
        return runner.fit_history(turns), waiting

    async def _flush(self, chat: ChatContext, message: IncomingMessage, sink: ReplySink) -> None:
        outbox, chat.outbox = chat.outbox, []
        for outcome in outbox:
            await self._deliver(outcome, message, sink)

    async def _deliver(self, outcome: Outcome, message: IncomingMessage, sink: ReplySink) -> None:
        """What an outcome says besides its answer: a private message, an approval to ask."""
        if outcome.private is not None:
            await sink.send_private(Reply(outcome.private, digest=outcome.private_digest))
        if outcome.approval is not None:
            ticket = outcome.approval
            await sink.ask_approval(
                ApprovalRequest(
                    action_id=ticket.action_id,
                    summary=ticket.summary,
                    requester_user_id=message.user_id,
                    expires_in_seconds=ticket.expires_in_seconds,
                )
            )

    async def _remember(self, chat: ChatContext, message: IncomingMessage, reply: str) -> None:
        """Commands go into the thread's history too, so the agent knows what happened."""
        self._store_later(chat, message, reply, 0)

    def _store_later(
        self, chat: ChatContext, message: IncomingMessage, reply: str, tokens: int
    ) -> None:
        """Store the exchange after the reply is out (off the reply's critical path).

        Chained per thread: the write waits for the thread's previous write, and the
        next agent run in the thread waits for this one before reading history.
        """
        if not self._history_limit:
            return
        ident = chat.action.identity
        pool = chat.action.deps.pool

        async def write() -> None:
            held = await conversations.append_exchange(
                pool,
                workspace_id=ident.workspace_id,
                thread_key=message.thread_key,
                chat_user_id=ident.chat_user_id,
                user_text=message.text,
                reply_text=reply,
                tokens=tokens,
                keep=self._keep,
                summary_bytes=self._summary.summary_bytes,
            )
            self._summarise_later(chat, message.thread_key, held)

        # History is a convenience: a failed write is logged, never fails the conversation.
        key = ("thread", ident.workspace_id, message.thread_key)
        self._later(key, write, "could not store conversation history")

    def _summarise_later(self, chat: ChatContext, thread_key: str, held: int) -> None:
        """Have the model rewrite the thread's summary once a batch of its `held` messages
        is past the read window: in the background, one at a time per thread, and off
        the thread's chain, so the next message neither waits for it nor is told BUSY."""
        summaries = self._summaries
        ident = chat.action.identity
        key = ("summary", ident.workspace_id, thread_key)
        if summaries is None or key in self._writes:
            return
        if not summaries.due(held - self._history_limit):
            return
        deps = chat.action.deps

        async def summarise() -> None:
            await summaries.refresh(
                deps.pool,
                self._budgets(deps),
                workspace_id=ident.workspace_id,
                chat_user_id=ident.chat_user_id,
                thread_key=thread_key,
                window=self._history_limit,
                limit=self._keep,
            )

        self._later(key, summarise, "could not summarise a thread")

    def _later(
        self,
        key: tuple[str, int, str | int],
        work: Callable[[], Awaitable[None]],
        failure: str,
    ) -> None:
        """Run `work` after the previous work under `key`, in the background."""
        previous = self._writes.get(key)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await work()
            except Exception:
                log.exception(failure)

        task = asyncio.create_task(run(), name=f"chatops:{key[0]}")
        self._writes[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._writes.get(key) is done:
                del self._writes[key]

        task.add_done_callback(forget)

    async def _settled(self, key: tuple[str, int, str | int]) -> None:
        pending = self._writes.get(key)
        if pending is not None:
            await asyncio.wait([pending])

    async def drain(self, grace: float = 10.0) -> None:
        """Wait up to `grace` seconds for pending history writes and run settlements (call
        before closing the pool and Redis).

        Work still running after that is cancelled: the pool closes next, and a
        task left pending would fail on it or be destroyed with the loop.
        """
        deadline = asyncio.get_running_loop().time() + grace
        # A finished history write may start its thread's summary: wait for that too.
        while tasks := list(self._writes.values()):
            left = deadline - asyncio.get_running_loop().time()
            _, late = await asyncio.wait(tasks, timeout=max(left, 0))
            for task in late:
                task.cancel()
            if late:
                log.warning("history writes cut short at shutdown", extra={"tasks": len(late)})
                await asyncio.gather(*late, return_exceptions=True)

    # -- sharing ----------------------------------------------------------------------

    async def share(
        self, *, frontend: str, workspace_id: str, user_id: str, share_id: str, sink: ReplySink
    ) -> bool:
        """A "Share to channel" click: the private answer posted publicly, once; True when
        it was. Never raises."""
        try:
            owner = shares.Owner(frontend, workspace_id, user_id)
            reply = await shares.take(self.deps.redis, owner, share_id)
            if reply is None:
                await sink.send_private(Reply(SHARE_GONE))
                return False
            await sink.send(dataclasses.replace(reply, shared_by=user_id))
            return True
        except Exception:
            log.exception("sharing failed")
            await _send_quietly(sink, Reply(INTERNAL), private=True)
            return False

    # -- approvals --------------------------------------------------------------------

    async def resolve_approval(
        self,
        *,
        frontend: str,
        workspace_id: str,
        user_id: str,
        action_id: str,
        approved: bool,
        sink: ReplySink,
    ) -> None:
        """A person clicked approve/reject (or answered y/n). Never raises."""
        try:
            deps = self.deps
            ident = await self._identity(
                deps, frontend=frontend, workspace_id=workspace_id, user_id=user_id
            )
            ctx = ActionContext(identity=ident, deps=deps)
            # Long work (an upload) only queues a job here; its worker tells the progress.
            text = await approvals.resolve(ctx, action_id, approved=approved)
            await sink.send(Reply(text))
        except USER_ERRORS as exc:
            await _send_quietly(sink, Reply(user_message(exc)))
        except Exception:
            log.exception("approval handling failed")
            await _send_quietly(sink, Reply(INTERNAL))


def _private(message: IncomingMessage) -> bool:
    """Slash commands answer the asker alone; mentions answer in their thread."""
    return message.is_command


async def _answer(
    message: IncomingMessage,
    sink: ReplySink,
    reply: Reply,
    *,
    share: bool = False,
    shareable_in: RedisHandle | None = None,
) -> None:
    """Where an answer goes: to the channel when the request was a mention, or when the
    person asked for that (`share`) and the answer may be shared; else privately. A
    shareable private answer outside DMs is kept in `shareable_in` for its "Share to
    channel" button (`bot.core.shares`)."""
    if share and shareable_in is not None:
        await sink.send(dataclasses.replace(reply, shared_by=message.user_id))
    elif not _private(message):
        await sink.send(reply)
    else:
        if shareable_in is not None and not message.is_dm:
            owner = shares.Owner(message.frontend, message.workspace_id, message.user_id)
            share_id = await shares.keep(shareable_in, owner, reply)
            reply = dataclasses.replace(reply, share_id=share_id)
        await sink.send_private(reply)


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a background read's outcome as seen (its failure matters only if awaited)."""
    if not task.cancelled():
        task.exception()


async def _too_many(sink: ReplySink, decision: Decision, *, private: bool = False) -> None:
    wait = format_wait(decision.retry_after)
    reply = Reply(f"Too many messages; please wait {wait} and try again.")
    await (sink.send_private(reply) if private else sink.send(reply))


async def _send_quietly(sink: ReplySink, reply: Reply, *, private: bool = False) -> Any:
    try:
        return await (sink.send_private(reply) if private else sink.send(reply))
    except Exception:
        log.exception("could not deliver a reply")
        return None
