"""Engagement figures for the requester's accounts and posts."""

from __future__ import annotations

import json
import re

from agent.actions.accounts import resolve_account
from agent.actions.base import ActionError, Outcome, normalize_platform
from agent.context import ActionContext
from agent.ports import MetricsReport
from integrations.base import Figure, Metric
from integrations.registry import Platforms
from storage import accounts as account_store

PERIODS = {"today": 1, "1d": 1, "7d": 7, "28d": 28, "90d": 90}
DEFAULT_PERIOD = "7d"


def days_text(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


# Platform post ids (YouTube video ids, Instagram media ids) are short and URL-safe;
# anything else could steer which Graph path or query a post read hits.
POST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


# How each figure reads: a label and, where it has one, its unit.
LABELS: dict[Metric, tuple[str, str]] = {
    Metric.VIEWS: ("views", ""),
    Metric.LIKES: ("likes", ""),
    Metric.COMMENTS: ("comments", ""),
    Metric.SHARES: ("shares", ""),
    Metric.SAVES: ("saves", ""),
    Metric.WATCH_TIME_MINUTES: ("watch time", " min"),
    Metric.AVG_VIEW_DURATION_SECONDS: ("avg view", " s"),
    Metric.FOLLOWERS_GAINED: ("new followers", ""),
    Metric.FOLLOWERS_LOST: ("followers lost", ""),
    Metric.FOLLOWERS: ("followers", ""),
    Metric.REACH: ("reach", ""),
    Metric.ENGAGEMENT_RATE: ("engagement", ""),
}


def format_figure(metric: Metric, figure: Figure) -> str:
    """'views 1,204', 'watch time 1,004 min', 'avg view 16 s', 'engagement 4.21%'."""
    label, unit = LABELS[metric]
    if metric is Metric.ENGAGEMENT_RATE:
        return f"{label} {figure.value * 100:.2f}%"
    value = figure.value
    number = f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"
    return f"{label} {number}{unit}"


def _figures(figures: dict[Metric, Figure]) -> str:
    return ", ".join(format_figure(m, f) for m, f in figures.items()) or "no figures"


def _title(title: str | None) -> str:
    """A post's title quoted as data, or nothing when it has none."""
    return f" {json.dumps(title)}" if title else ""


def render(report: MetricsReport, period: str, platforms: Platforms) -> str:
    """Plain text; platform-supplied strings (titles) are quoted as data."""
    title_of = platforms.display
    lines = [f"Metrics ({period}), as of {report.as_of:%Y-%m-%d %H:%M} UTC:"]
    wanted = PERIODS.get(period, 0)
    for ref, acct in report.accounts:
        span = (acct.end - acct.start).days + 1
        shorter = f" (last {days_text(span)}: as far back as it reports)" if span < wanted else ""
        lines.append(f"- {title_of(acct.platform)} {ref}{shorter}: {_figures(acct.figures)}")
        for post in acct.top_posts[:3]:
            lines.append(
                f"    top post {post.post_id}{_title(post.title)}: {_figures(post.figures)}"
            )
    for ref, post in report.posts:
        lines.append(
            f"- {title_of(post.platform)} {ref} post {post.post_id}{_title(post.title)}:"
            f" {_figures(post.figures)}"
        )
    for platform, reason in report.unavailable.items():
        lines.append(f"- {title_of(platform)}: unavailable ({reason})")
    if len(lines) == 1:
        lines.append("No figures yet.")
    return "\n".join(lines)


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
    return Outcome(render(report, period or DEFAULT_PERIOD, ctx.deps.platforms))


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
