"""Engagement figures for the requester's accounts and posts."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta

from agent.actions.accounts import resolve_account
from agent.actions.base import ActionError, Outcome, normalize_platform
from agent.context import ActionContext
from agent.layout import Entry, Field, Layout, Section
from agent.metric_labels import LABELS
from agent.ports import MetricsReport
from integrations.base import AccountMetrics, Figure, Metric, PostMetrics
from integrations.registry import Platforms
from storage import accounts as account_store

PERIODS = {"today": 1, "1d": 1, "7d": 7, "28d": 28, "90d": 90}
DEFAULT_PERIOD = "7d"


def days_text(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


# Platform post ids (YouTube video ids, Instagram media ids) are short and URL-safe;
# anything else could steer which Graph path or query a post read hits.
POST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


TOP_POSTS = 3


def figure_value(metric: Metric, figure: Figure) -> str:
    """'1,204', '1,004 min', '16 s', '4.21%'."""
    if metric is Metric.ENGAGEMENT_RATE:
        return f"{figure.value * 100:.2f}%"
    value = figure.value
    number = f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{number}{LABELS[metric][1]}"


def format_figure(metric: Metric, figure: Figure) -> str:
    """'Views 1,204', 'Watch time 1,004 min', 'Avg view 16 s', 'Engagement 4.21%'."""
    return f"{LABELS[metric][0]} {figure_value(metric, figure)}"


def _figures(figures: dict[Metric, Figure]) -> str:
    return " · ".join(format_figure(m, f) for m, f in figures.items()) or "no figures"


def _fields(figures: dict[Metric, Figure]) -> list[Field]:
    return [Field(LABELS[m][0], figure_value(m, f)) for m, f in figures.items()]


def change_text(now: float, before: float) -> str | None:
    """'+12 %', '-3 %', '±0 %'; None when there is nothing to compare with."""
    if before <= 0:
        return None
    pct = round((now - before) / before * 100)
    return "±0 %" if pct == 0 else f"{pct:+d} %"


def _latest_day(acct: AccountMetrics, today: date) -> Field | None:
    """("Yesterday", "Views 210, +12 % vs the day before") from the daily series, where it
    has two days; the label is the day's date when that is not yesterday."""
    days = [(day, f[Metric.VIEWS].value) for day, f in acct.series if Metric.VIEWS in f]
    if len(days) < 2:
        return None
    (_, before), (day, now) = days[-2], days[-1]
    change = change_text(now, before)
    views = format_figure(Metric.VIEWS, Figure(now, "series"))
    tail = f", {change} vs the day before" if change else ""
    label = "Yesterday" if day == today - timedelta(days=1) else f"{day:%b} {day.day}"
    return Field(label, f"{views}{tail}")


def _entry(post: PostMetrics, known: PostMetrics | None) -> Entry:
    """A top post: its title (from the post's own read when the ranking has none)."""
    title = post.title or (known.title if known else None)
    return Entry(
        title=title or f"Post {post.post_id}",
        quoted=bool(title),
        detail=_figures(post.figures),
        url=post.url or (known.url if known else None),
        thumbnail_url=post.thumbnail_url or (known.thumbnail_url if known else None),
    )


def _views(post: PostMetrics) -> float:
    return post.value(Metric.VIEWS) or 0.0


def metrics_layout(
    report: MetricsReport, period: str, platforms: Platforms, *, post: str | None = None
) -> Layout:
    """Figures laid out per account: fields, top posts with links and pictures, and a
    context line (as of, which figures are estimates, which platforms did not answer).
    Platform-supplied titles are quoted as data."""
    wanted = PERIODS.get(period, 0)
    read = {(ref, p.post_id): p for ref, p in report.posts}
    sections: list[Section] = []
    estimated: dict[str, None] = {}
    for ref, acct in report.accounts:
        caps = platforms.capabilities(acct.platform)
        span = (acct.end - acct.start).days + 1
        body = f"Last {days_text(span)}: as far back as it reports." if span < wanted else ""
        fields = _fields(acct.figures)
        latest = _latest_day(acct, report.as_of.date())
        if latest is not None:
            fields.append(latest)
        ranked = acct.top_posts or sorted(
            (p for r, p in report.posts if r == ref), key=_views, reverse=True
        )
        entries = (
            () if post else tuple(_entry(p, read.get((ref, p.post_id))) for p in ranked[:TOP_POSTS])
        )
        estimated.update({LABELS[m][0]: None for m in acct.figures if m in caps.metrics.estimated})
        heading = f"{caps.display_name} {ref}"
        sections.append(Section(heading, tuple(fields), body, entries, colour=caps.colour))
    if post:
        for ref, pm in report.posts:
            caps = platforms.capabilities(pm.platform)
            entry = _entry(pm, None)
            sections.append(
                Section(
                    f"{caps.display_name} {ref} · post {pm.post_id}",
                    tuple(_fields(pm.figures)),
                    entries=(dataclasses.replace(entry, detail=""),),
                    colour=caps.colour,
                )
            )
    notes = []
    if estimated:
        notes.append("estimated: " + ", ".join(estimated))
    if report.unavailable:
        notes.append(
            "unavailable: "
            + "; ".join(f"{platforms.display(p)} ({why})" for p, why in report.unavailable.items())
        )
    return Layout(
        title=f"Metrics ({period})",
        sections=tuple(sections),
        notes=tuple(notes),
        as_of=report.as_of,
        intro="" if sections or report.unavailable else "No figures yet.",
    )


def render(report: MetricsReport, period: str, platforms: Platforms) -> str:
    """The figures as plain text (the layout's)."""
    return metrics_layout(report, period, platforms).plain_text()


async def get_metrics(
    ctx: ActionContext,
    *,
    platform: str | None = None,
    account: str | None = None,
    period: str | None = None,
    post: str | None = None,
) -> Outcome:
    """The figures as chat shows them."""
    report = await metrics_report(ctx, platform=platform, account=account, period=period, post=post)
    layout = metrics_layout(report, period or DEFAULT_PERIOD, ctx.deps.platforms, post=post)
    return Outcome.laid_out(layout)


async def metrics_report(
    ctx: ActionContext,
    *,
    platform: str | None = None,
    account: str | None = None,
    period: str | None = None,
    post: str | None = None,
) -> MetricsReport:
    """Figures over `period` (7d when none is asked; then each platform reads as far back
    as it can, while a period asked for explicitly is refused where it is too long).
    Read once here: chat renders the report, the API lists it."""
    asked = period is not None
    period = period or DEFAULT_PERIOD
    if period not in PERIODS:
        raise ActionError(f"Period must be one of: {', '.join(p for p in PERIODS if p != '1d')}.")
    if post is not None and not POST_ID.fullmatch(post):
        raise ActionError("That is not a post id (letters, digits, - and _ only).")
    plat = normalize_platform(ctx, platform)
    days = PERIODS[period]
    account_ref = None
    if account:
        chosen = await resolve_account(ctx, account, platform=plat)
        account_ref = chosen.ref
        plat = chosen.platform
    elif plat is not None:
        own = await account_store.list_for_owner(
            ctx.deps.pool,
            workspace_id=ctx.identity.workspace_id,
            owner_id=ctx.identity.chat_user_id,
            platform=plat,
        )
        if not own:
            title = ctx.deps.platforms.display(plat)
            raise ActionError(f"You have no linked {title} account. Try `link {plat}`.")
    if plat is not None and post is None and asked:
        caps = ctx.deps.platforms.capabilities(plat)
        longest = caps.metrics.max_period_days
        if days > longest:
            fits = [p for p, d in PERIODS.items() if d <= longest and p != "1d"]
            raise ActionError(
                f"{caps.display_name} gives figures for at most {days_text(longest)} at a "
                f"time; try {fits[-1]}."
            )
    if ctx.deps.ops is None or not ctx.deps.platforms.configured():
        raise ActionError("No platform is configured on this bot yet.")
    return await ctx.deps.ops.metrics(
        ctx.identity,
        platform=plat,
        account_ref=account_ref,
        days=days,
        post_id=post,
        shorten=not asked,
    )
