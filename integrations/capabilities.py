"""What makes one platform different from another, declared as data.

Every platform package builds one frozen `PlatformCapabilities` from its settings;
the rest of the bot (actions, grammar, limiter, doctor, captions) reads it instead
of naming a platform. A figure says where it came from (`source=`), so a reader can
check it against the platform's documentation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, get_args

# Privacy words people type and the upload tool's schema offers. A platform accepts
# a subset and maps each to its own API value inside its package.
PrivacyWord = Literal["public", "unlisted", "followers", "friends", "private"]
PRIVACY_WORDS: tuple[str, ...] = get_args(PrivacyWord)

# A hashtag or mention starts at a word boundary: "a#b" and "me@example.com" are neither.
HASHTAG = re.compile(r"(?<![\w#])#\w+")
MENTION = re.compile(r"(?<![\w.@])@[\w.]+")


@dataclass(frozen=True, slots=True)
class Privacy:
    """The privacy words a platform accepts, and the one used when none is given."""

    values: tuple[str, ...]
    default: str

    def __post_init__(self) -> None:
        unknown = [v for v in (*self.values, self.default) if v not in PRIVACY_WORDS]
        if unknown or self.default not in self.values:
            raise ValueError(f"privacy values must come from {PRIVACY_WORDS}: {unknown}")

    @property
    def fixed(self) -> bool:
        """Only one value exists (Instagram: every Reel is public)."""
        return len(self.values) == 1


@dataclass(frozen=True, slots=True)
class MetricsLimits:
    """How metrics reads are batched and how far back they reach."""

    max_ids_per_call: int
    max_period_days: int
    recent_page_size: int = 50
    # Metrics (`integrations.base.Metric` values) the platform reports as estimates,
    # which answers say so (YouTube's estimatedMinutesWatched).
    estimated: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CaptionRules:
    """Limits a post's text must meet; None means no limit of that kind.

    `length` measures text as the platform counts it (plain characters, or X's
    weighted count where a URL is 23 whatever its length).
    """

    title_max_chars: int | None = None
    description_max_chars: int | None = None
    caption_max_chars: int | None = None
    hashtags_max: int | None = None
    mentions_max: int | None = None
    tags_max_chars_total: int | None = None
    forbidden_chars: str = ""
    length: Callable[[str], int] = len

    @property
    def has_title(self) -> bool:
        return self.title_max_chars is not None

    @property
    def body_max_chars(self) -> int | None:
        return self.caption_max_chars or self.description_max_chars

    def problems(self, *, title: str | None, body: str, tags: tuple[str, ...] = ()) -> list[str]:
        """What breaks these rules, as short phrases; empty when the text fits."""
        found: list[str] = []
        if title is not None and self.title_max_chars is not None:
            if self.length(title) > self.title_max_chars:
                found.append(f"title over {self.title_max_chars} characters")
        limit = self.body_max_chars
        if limit is not None and self.length(body) > limit:
            found.append(f"text over {limit} characters")
        if self.hashtags_max is not None and len(HASHTAG.findall(body)) > self.hashtags_max:
            found.append(f"more than {self.hashtags_max} hashtags")
        if self.mentions_max is not None and len(MENTION.findall(body)) > self.mentions_max:
            found.append(f"more than {self.mentions_max} @mentions")
        if self.tags_max_chars_total is not None:
            # Each tag plus a separator, and quotes around a tag with a space (YouTube's count).
            total = sum(len(t) + 1 + (2 if " " in t else 0) for t in tags)
            if total > self.tags_max_chars_total:
                found.append(f"tags over {self.tags_max_chars_total} characters in total")
        for ch in self.forbidden_chars:
            if ch in body or (title and ch in title):
                found.append(f"contains '{ch}'")
        return found


@dataclass(frozen=True, slots=True)
class QuotaCounter:
    """One budget a platform enforces, and how it resets.

    A calendar-day counter (`rolling_seconds` None) resets at midnight in
    `reset_zone`; a rolling one holds at most `limit` within any `rolling_seconds`.
    `per_account` budgets are kept per linked account, the others per app
    (one Google Cloud project, one Meta app).
    """

    name: str
    label: str
    limit: int
    per_account: bool = False
    rolling_seconds: int | None = None
    reset_zone: str = "UTC"
    source: str = ""


@dataclass(frozen=True, slots=True)
class QuotaSpec:
    """A platform's budgets and what each operation costs against them.

    Operations: "upload" (once per upload), "profile", "account_metrics" (once per
    call), "recent_posts" (once per page), "post_metrics" (once per batch), "reschedule"
    (moving or clearing a natively scheduled post's time).
    """

    counters: tuple[QuotaCounter, ...] = ()
    costs: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = {c.name for c in self.counters}
        for op, cost in self.costs.items():
            if not set(cost) <= names:
                raise ValueError(f"cost of {op!r} names unknown counters: {set(cost) - names}")

    def cost(self, operation: str, times: int = 1) -> dict[str, int]:
        """The amounts `times` calls of `operation` take from each counter (zeros left out)."""
        return {
            name: amount * times
            for name, amount in self.costs.get(operation, {}).items()
            if amount * times > 0
        }


@dataclass(frozen=True, slots=True)
class Scheduling:
    """How a post at a later time is made.

    `native`: the platform takes the publish time with the upload (the bot uploads
    at once, the platform publishes at the time, and the video is processed by
    then); otherwise the bot keeps the post and a deferred job publishes it at the
    time. `source` says where the figure comes from.
    """

    native: bool = False
    source: str = "no scheduling API: the bot publishes at the time"
    # The privacy a natively scheduled post goes out with (YouTube: public at publishAt).
    publishes_as: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformCapabilities:
    """Everything the rest of the bot may know about one platform."""

    name: str
    display_name: str
    account_prefix: str  # opaque account refs look like "<prefix>-1a2b3c4d"
    privacy: Privacy
    # "push": we send the bytes; "public_url": the platform fetches them from a URL.
    media: Literal["push", "public_url"]
    metrics: MetricsLimits
    caption_rules: CaptionRules
    quota: QuotaSpec
    aliases: tuple[str, ...] = ()
    # Renew tokens this long before they expire (tokens that die unless refreshed);
    # None: refresh on use only.
    refresh_ahead: timedelta | None = None
    # Said before approval, when an app's review status limits what a post can be.
    posting_note: str | None = None
    # The platform's brand colour (0xRRGGBB), for front-ends that colour an answer by it.
    colour: int | None = None
    scheduling: Scheduling = field(default_factory=Scheduling)

    @property
    def words(self) -> tuple[str, ...]:
        """Every word that names this platform in chat (lower case)."""
        return (self.name, *self.aliases)

    def handle(self, handle: str) -> str:
        """An account's handle as shown to people: one '@', whatever the platform stored."""
        return "@" + handle.lstrip("@")
