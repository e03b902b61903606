"""Gather one digest: each member's figures for the day, compared with the latest
earlier day stored, the views chart's last 14 days, the top posts, relink flags, and
(with a model) a guarded commentary."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.actions.schedule import coming_day
from agent.context import Deps
from agent.credentials import relink_message
from agent.digest_content import (
    CHART_DAYS,
    AccountSection,
    ChartLine,
    Digest,
    Relink,
    account_section,
    top_posts,
)
from agent.digest_insights import guard
from agent.ports import MetricsReport, PlatformOps
from integrations.base import Metric
from integrations.errors import IntegrationError
from storage import accounts, metrics
from storage.accounts import LinkedAccount
from storage.digests import Member, Workspace
from storage.identity import Identity

log = logging.getLogger(__name__)

COMMENTARY_SECONDS = 30.0


async def gather(
    deps: Deps,
    ops: PlatformOps,
    workspace: Workspace,
    members: Sequence[Member],
    *,
    title: str,
    now: datetime,
    zone: ZoneInfo,
) -> Digest:
    """The digest of these members' accounts, and their posts scheduled for the next
    24 hours (times in the digest's zone)."""
    display = deps.platforms.display
    sections: list[AccountSection] = []
    relinks: list[Relink] = []
    unavailable: list[tuple[str, str]] = []
    reports: list[tuple[MetricsReport, dict[str, LinkedAccount]]] = []
    account_ids: list[int] = []
    for member in members:
        owned = await accounts.list_for_owner(
            deps.pool, workspace_id=workspace.id, owner_id=member.chat_user_id
        )
        account_ids += [a.id for a in owned]
        by_ref = {a.ref: a for a in owned}
        to_relink = {a.platform for a in owned if a.status == "needs_relink"}
        relinks += [
            Relink(
                member.external_id,
                display(a.platform),
                a.handle.lstrip("@"),
                relink_message(a, display(a.platform)),
            )
            for a in owned
            if a.status == "needs_relink"
        ]
        ident = Identity(
            workspace_id=workspace.id,
            chat_user_id=member.chat_user_id,
            frontend=workspace.frontend,
            workspace_external_id=workspace.external_id,
            user_external_id=member.external_id,
        )
        try:
            report = await ops.metrics(ident, days=1)
        except IntegrationError as exc:
            unavailable.append(("Figures", exc.user_message))
            continue
        reports.append((report, by_ref))
        # A platform that is down says so; the rest of the digest still posts.
        unavailable += [
            (display(p), reason) for p, reason in report.unavailable.items() if p not in to_relink
        ]
        for ref, acct in report.accounts:
            account = by_ref.get(ref)
            if account is None:
                continue
            before = await metrics.latest_day_before(
                deps.pool, account_id=account.id, before=acct.end
            )
            sections.append(
                account_section(
                    account,
                    display(account.platform),
                    acct.end,
                    acct.figures,
                    before.day if before else None,
                    before.metrics if before else None,
                )
            )
    digest = Digest(
        title=title,
        as_of=now,
        accounts=sections,
        top_posts=top_posts(reports, display),
        unavailable=sorted(set(unavailable)),
        relinks=relinks,
        scheduled=await coming_day(
            deps, workspace_id=workspace.id, zone=zone, now=now, account_ids=account_ids
        ),
    )
    digest = await _with_chart(deps, digest, reports)
    return await with_insights(deps, digest, workspace_id=workspace.id)


async def _with_chart(
    deps: Deps, digest: Digest, reports: Sequence[tuple[MetricsReport, dict[str, LinkedAccount]]]
) -> Digest:
    """Views per day over the last 14 days, one line per account, from stored days."""
    if not digest.accounts:
        return digest
    ids = {
        s.ref: by_ref[s.ref].id for _, by_ref in reports for s in digest.accounts if s.ref in by_ref
    }
    last = max(s.day for s in digest.accounts)
    first = last - timedelta(days=CHART_DAYS - 1)
    rows = await metrics.days_between(
        deps.pool, account_ids=sorted(set(ids.values())), first=first, last=last
    )
    lines = []
    for section in digest.accounts:
        points = [
            (row.day, float(row.metrics[str(Metric.VIEWS)]["value"]))
            for row in rows
            if row.account_id == ids.get(section.ref) and str(Metric.VIEWS) in row.metrics
        ]
        if points:
            lines.append(ChartLine(section.label, points))
    return replace(digest, chart=lines, chart_days=(first, last) if lines else None)


async def with_insights(deps: Deps, digest: Digest, *, workspace_id: int) -> Digest:
    """The model's three points, kept only if every number in them is the digest's; paid
    from the workspace's model budget (none when it is spent)."""
    if deps.commentary is None or not digest.accounts:
        return digest
    facts = digest.facts()
    call = deps.commentary(facts, budgets=deps.budgets, workspace_id=workspace_id)
    try:
        answer = await asyncio.wait_for(call, timeout=COMMENTARY_SECONDS)
    except Exception as exc:  # commentary is optional: the digest posts without it
        log.warning("digest commentary failed", extra={"error": type(exc).__name__})
        return digest
    if answer is None:
        log.info("digest commentary skipped: the workspace's model budget is spent")
        return digest
    kept = guard(answer, facts)
    return replace(digest, insights=kept) if kept else digest
