"""What a daily digest says, front-end neutral: per-account figures with their changes
since the previous digest, the views chart's data, the top posts, who must relink, and
which platforms were down. Front-ends lay it out (`bot.digest_layout`); `text()` is the
plain fallback every front-end can show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from agent.metric_labels import LABELS
from agent.ports import MetricsReport
from integrations.base import Figure, Metric, PostMetrics
from storage.accounts import LinkedAccount

CHART_DAYS = 14
TOP_POSTS = 3
UP, DOWN, SAME = "▲", "▼", "="


def number(value: float) -> str:
    """1204 -> '1,204'; 16.5 -> '16.5'."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def label_of(metric: Metric) -> str:
    """'Views', 'Watch time', 'Avg view'."""
    label = LABELS[metric][0]
    return label[:1].upper() + label[1:]


def value_text(metric: Metric, value: float) -> str:
    """'1,204', '1,004 min', '4.21 %'."""
    if metric is Metric.ENGAGEMENT_RATE:
        return f"{value * 100:.2f} %"
    return f"{number(value)}{LABELS[metric][1]}"


def figure_text(metric: Metric, value: float) -> str:
    """'Views 1,204', 'Watch time 1,004 min', 'Engagement 4.21 %'."""
    return f"{label_of(metric)} {value_text(metric, value)}"


SCHEDULED_HEADING = "Scheduled for the next 24 hours"


@dataclass(frozen=True, slots=True)
class Change:
    """A metric's value on the digest's day and on the day it is compared with."""

    metric: Metric
    value: float
    previous: float | None

    @property
    def percent(self) -> float | None:
        if self.previous is None or self.previous == 0:
            return None
        return (self.value - self.previous) / abs(self.previous) * 100

    def arrow(self) -> str:
        """'▲ 12 %', '▼ 3.5 %', '= 0 %', '▲ from 0', '▲ 0.23 pt' (a rate), or '' (nothing
        to compare with)."""
        if self.previous is None:
            return ""
        if self.value == self.previous:
            return f"{SAME} 0 %"
        mark = UP if self.value > self.previous else DOWN
        if self.metric is Metric.ENGAGEMENT_RATE:  # a rate moves in points, not percent
            return f"{mark} {abs(self.value - self.previous) * 100:.2f} pt"
        pct = self.percent
        if pct is None:
            return f"{mark} from 0"
        size = abs(pct)
        shown = f"{size:.0f}" if size >= 10 else f"{size:.1f}"
        return f"{mark} {shown} %"

    def text(self) -> str:
        arrow = self.arrow()
        return figure_text(self.metric, self.value) + (f" {arrow}" if arrow else "")


@dataclass(frozen=True, slots=True)
class AccountSection:
    """One account's figures for `day`, each with its change since `compared_with`."""

    ref: str
    platform_title: str
    handle: str
    day: date
    changes: list[Change]
    compared_with: date | None  # None: no earlier figures (its first digest)

    @property
    def label(self) -> str:
        return f"{self.platform_title} @{self.handle}"

    def comparison(self) -> str:
        """What the arrows compare with, when it is not simply the day before."""
        if self.compared_with is None:
            return "first figures: nothing to compare with yet"
        if self.compared_with != self.day - timedelta(days=1):
            return f"vs {self.compared_with:%b %-d} (no figures for the days between)"
        return f"vs {self.compared_with:%b %-d}"


@dataclass(frozen=True, slots=True)
class TopPost:
    platform_title: str
    handle: str
    post_id: str
    title: str | None
    url: str | None
    thumbnail_url: str | None
    views: float
    figures: dict[Metric, Figure]


@dataclass(frozen=True, slots=True)
class Relink:
    """An account whose owner must link it again before it shows figures."""

    owner_external_id: str
    platform_title: str
    handle: str
    message: str


@dataclass(frozen=True, slots=True)
class ChartLine:
    label: str
    points: list[tuple[date, float]]


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one digest says; `notice` alone when there is nothing to show."""

    title: str
    as_of: datetime
    accounts: list[AccountSection] = field(default_factory=list)
    top_posts: list[TopPost] = field(default_factory=list)
    chart: list[ChartLine] = field(default_factory=list)
    chart_days: tuple[date, date] | None = None
    unavailable: list[tuple[str, str]] = field(default_factory=list)  # (platform, reason)
    relinks: list[Relink] = field(default_factory=list)
    insights: list[str] = field(default_factory=list)
    notice: str | None = None
    # Posts scheduled for the next 24 hours, one line each (agent.actions.schedule.coming_day)
    scheduled: list[str] = field(default_factory=list)

    @property
    def first(self) -> bool:
        """No account has earlier figures: the first digest, nothing to compare with."""
        return bool(self.accounts) and all(a.compared_with is None for a in self.accounts)

    def text(self) -> str:
        """The plain-text digest (fallback for clients without blocks or embeds)."""
        lines = [self.title + (f": {self.notice}" if self.notice else "")]
        if self.first:
            lines.append("First digest: nothing to compare with yet.")
        for acct in self.accounts:
            lines.append(f"- {acct.label} ({acct.day:%b %-d}; {acct.comparison()}):")
            lines.append("    " + (", ".join(c.text() for c in acct.changes) or "no figures"))
        if self.top_posts:
            lines.append("Top posts:")
            for i, post in enumerate(self.top_posts, 1):
                name = f'"{post.title}"' if post.title else post.post_id
                link = f" {post.url}" if post.url else ""
                lines.append(
                    f"  {i}. {name} ({post.platform_title} @{post.handle}), "
                    f"{number(post.views)} views{link}"
                )
        for platform, reason in self.unavailable:
            lines.append(f"- {platform}: unavailable ({reason})")
        for r in self.relinks:
            lines.append(f"- {r.platform_title} @{r.handle} needs relinking by its owner")
        if self.scheduled:
            lines.append(f"{SCHEDULED_HEADING}:")
            lines += [f"  {line}" for line in self.scheduled]
        if self.insights:
            lines.append("Insights:")
            lines += [f"• {line}" for line in self.insights]
        return "\n".join(lines)

    def facts(self) -> str:
        """The digest's numbers as plain lines: all a model is given to comment on."""
        lines = []
        for acct in self.accounts:
            lines.append(f"{acct.label}, {acct.day.isoformat()} ({acct.comparison()}):")
            for c in acct.changes:
                prev = "" if c.previous is None else f" (previous {number(c.previous)}"
                pct = c.percent
                if prev:
                    prev += f", change {pct:+.1f} %)" if pct is not None else ")"
                lines.append(f"  {LABELS[c.metric][0]}: {number(c.value)}{prev}")
        for post in self.top_posts:
            name = f'"{post.title}"' if post.title else post.post_id
            lines.append(f"top post {name} on {post.platform_title}: views {number(post.views)}")
        for line in self.chart:
            series = ", ".join(f"{d:%m-%d} {number(v)}" for d, v in line.points)
            lines.append(f"views per day, {line.label}: {series}")
        return "\n".join(lines)


def account_section(
    account: LinkedAccount,
    platform_title: str,
    day: date,
    figures: Mapping[Metric, Figure],
    previous_day: date | None,
    previous: Mapping[str, object] | None,
) -> AccountSection:
    """An account's figures with their changes (`previous`: the earlier day's stored
    metrics, normalized name -> {"value", ...})."""
    changes = []
    for metric, figure in figures.items():
        before = None
        if previous is not None:
            stored = previous.get(str(metric))
            if isinstance(stored, Mapping) and isinstance(stored.get("value"), int | float):
                before = float(stored["value"])
        changes.append(Change(metric, float(figure.value), before))
    return AccountSection(
        ref=account.ref,
        platform_title=platform_title,
        handle=account.handle,
        day=day,
        changes=changes,
        compared_with=previous_day if previous is not None else None,
    )


def top_posts(
    reports: Sequence[tuple[MetricsReport, Mapping[str, LinkedAccount]]],
    title_of: Callable[[str], str],
    limit: int = TOP_POSTS,
) -> list[TopPost]:
    """The most viewed posts across every member's report (each post once)."""
    seen: dict[tuple[str, str], tuple[PostMetrics, str]] = {}
    for report, by_ref in reports:
        candidates = [(ref, p) for ref, p in report.posts]
        candidates += [(ref, p) for ref, acct in report.accounts for p in acct.top_posts]
        for ref, post in candidates:
            account = by_ref.get(ref)
            if post.value(Metric.VIEWS) is None or account is None:
                continue
            seen.setdefault((post.platform, post.post_id), (post, account.handle))
    ranked = sorted(
        seen.values(), key=lambda item: (-(item[0].value(Metric.VIEWS) or 0.0), item[0].post_id)
    )
    return [
        TopPost(
            platform_title=title_of(post.platform),
            handle=handle,
            post_id=post.post_id,
            title=post.title,
            url=post.url,
            thumbnail_url=post.thumbnail_url,
            views=post.value(Metric.VIEWS) or 0.0,
            figures=post.figures,
        )
        for post, handle in ranked[:limit]
    ]
