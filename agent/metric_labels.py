"""How each figure reads: a label and, where it has one, its unit (one table for the
metrics answer and the digest)."""

from __future__ import annotations

from integrations.base import Metric

LABELS: dict[Metric, tuple[str, str]] = {
    Metric.VIEWS: ("Views", ""),
    Metric.LIKES: ("Likes", ""),
    Metric.COMMENTS: ("Comments", ""),
    Metric.SHARES: ("Shares", ""),
    Metric.SAVES: ("Saves", ""),
    Metric.WATCH_TIME_MINUTES: ("Watch time", " min"),
    Metric.AVG_VIEW_DURATION_SECONDS: ("Avg view", " s"),
    Metric.FOLLOWERS_GAINED: ("New followers", ""),
    Metric.FOLLOWERS_LOST: ("Followers lost", ""),
    Metric.FOLLOWERS: ("Followers", ""),
    Metric.REACH: ("Reach", ""),
    Metric.ENGAGEMENT_RATE: ("Engagement", ""),
}
