"""When a scheduled post goes out: a few words of chat ("at 18:00 tomorrow") to one UTC instant.

The phrases:
- `in 2h`, `in 90m`, `in 3d`, `in 2 hours` (from now; no zone needed);
- `at 18:00 [today|tomorrow|<weekday>|YYYY-MM-DD] [Area/City|UTC]`;
- `on <weekday>|YYYY-MM-DD [at] 09:30 [Area/City|UTC]`, `tomorrow [at] 09:30`;
- an ISO 8601 time (`2026-12-01T18:00`, with or without an offset), which the
  upload tool's `publish_at` also takes.

A local time is read in the zone the phrase names, else the requester's zone; with
neither, `NeedZone` (never a silent guess). A time without a day is its next
occurrence (today if still ahead, else tomorrow); a weekday is the next such day
(today if the time is still ahead).

Daylight-saving changes, one documented rule (the help and README say it too):
- a wall-clock time that does not exist that day (clocks jump forward over it) is
  refused, naming the first valid time after the gap;
- a wall-clock time that happens twice (clocks go back) means the FIRST of the two
  instants (the earlier one, still in summer time); the approval shows its UTC time.

Why hand-written: dateparser and friends guess silently (zone, day order, DST
fold); the rules above must be exact and testable, and the grammar is tiny.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.actions.base import ActionError

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?(am|pm)?$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPAN = re.compile(r"^(\d{1,5})\s*(m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)$", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
# Words that start a time phrase at the end of a command.
LEADS = ("at", "on", "in", "tomorrow", "today")


class NeedZone(ActionError):
    """A local time was given but the requester's time zone is not known."""


@dataclass(frozen=True, slots=True)
class When:
    """A resolved time: the UTC instant, and the zone its wall-clock reading is shown in."""

    at: datetime  # aware, UTC
    zone: ZoneInfo | None  # the zone the phrase was read in (None: relative "in 2h")


def zone_named(name: str) -> ZoneInfo:
    """An IANA zone by name; ActionError with an example for anything else."""
    cleaned = name.strip()
    if cleaned.upper() == "UTC":
        return ZoneInfo("UTC")
    try:
        if not cleaned or cleaned.startswith(("/", ".")) or ".." in cleaned:
            raise ValueError(cleaned)
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, as `America`
        raise ActionError(
            f"'{cleaned[:40]}' is not a time zone; use an IANA name such as Europe/Paris."
        ) from None


def local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in `zone` (the DST rule in the module doc)."""
    naive = datetime.combine(day, clock.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        # Not a time on that day's clock: it fell into the gap of a spring-forward.
        after = utc.astimezone(zone)  # the same moment on the clock after the jump
        raise ActionError(
            f"{clock:%H:%M} does not exist on {day:%a %d %b %Y} in {zone.key}: the clocks"
            f" jump forward then. Pick another time (e.g. {after:%H:%M})."
        )
    return utc  # fold=0: the first of two readings when the clocks go back


def show(at: datetime, zone: ZoneInfo | None) -> str:
    """'Fri 04 Dec 2026 18:00 Europe/Paris (17:00 UTC)', or just UTC with no zone."""
    utc = at.astimezone(UTC)
    if zone is None or zone.key == "UTC":
        return f"{utc:%a %d %b %Y %H:%M} UTC"
    local = utc.astimezone(zone)
    return f"{local:%a %d %b %Y %H:%M} {zone.key} ({utc:%H:%M} UTC{_day_note(local, utc)})"


def _day_note(local: datetime, utc: datetime) -> str:
    return "" if local.date() == utc.date() else f" {utc:%a %d %b}"


def _looks_iso(word: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}T\d{1,2}:\d{2}", word))


@dataclass(frozen=True, slots=True)
class _Phrase:
    """A phrase read but not resolved: a span from now, or a wall-clock time."""

    span: timedelta | None = None
    clock: time | None = None
    day_word: str | None = None
    zone: ZoneInfo | None = None
    iso: datetime | None = None


def looks_like_time(words: list[str]) -> bool:
    """Whether these words read as a time phrase (the grammar splits them off a command)."""
    try:
        _read(words)
    except ActionError:
        return False
    return True


def _read(words: list[str]) -> _Phrase:
    """The phrase's parts; ActionError says what cannot be read."""
    if not words:
        raise ActionError("When? e.g. `at 18:00 tomorrow`, `on friday 09:30`, `in 2h`.")
    lowered = [w.lower() for w in words]
    if len(words) == 1 and _looks_iso(words[0]):
        try:
            return _Phrase(iso=datetime.fromisoformat(words[0]))
        except ValueError:
            raise ActionError(f"'{words[0][:40]}' is not an ISO 8601 time.") from None
    if lowered[0] == "in":
        span = _SPAN.match("".join(lowered[1:]))
        if len(words) < 2 or span is None:
            raise ActionError("`in` takes an amount: `in 90m`, `in 2h`, `in 3d`.")
        return _Phrase(span=timedelta(seconds=int(span[1]) * _UNIT_SECONDS[span[2][0]]))
    if lowered[0] not in LEADS:
        raise ActionError("A time starts with `at`, `on`, `in`, `today` or `tomorrow`.")
    phrase = _Phrase()
    for word, original in zip(lowered, words, strict=True):
        if word in ("at", "on"):
            continue
        if phrase.clock is None and (c := _clock(word)) is not None:
            phrase = replace(phrase, clock=c)
        elif phrase.day_word is None and (day := _day_word(word)) is not None:
            phrase = replace(phrase, day_word=day)
        elif phrase.zone is None and ("/" in word or word == "utc"):
            phrase = replace(phrase, zone=zone_named(original))
        else:
            raise ActionError(
                f"I could not read '{word[:30]}' as part of a time."
                " Try `at 18:00 tomorrow`, `on friday 09:30 Europe/Paris` or `in 2h`."
            )
    if phrase.clock is None:
        raise ActionError("At what time? e.g. `at 18:00 tomorrow`.")
    return phrase


def _day_word(word: str) -> str | None:
    if word in ("today", "tomorrow") or word in _WEEKDAYS or _DATE.match(word):
        return word
    return _weekday_prefix(word)


def parse_when(words: list[str], *, now: datetime, zone: ZoneInfo | None) -> When:
    """Read a time phrase (see the module doc). ActionError says what is wrong with it."""
    now = now.astimezone(UTC)
    phrase = _read(words)
    if phrase.span is not None:
        return When(now + phrase.span, zone)
    if phrase.iso is not None:
        return _iso(phrase.iso, zone)
    assert phrase.clock is not None
    where = phrase.zone or zone
    if where is None:
        raise NeedZone(
            "I don't know your time zone, so I can't tell when that is. Set it once with"
            " `timezone Area/City` (e.g. `timezone Europe/Paris`), or add a zone to the time"
            " (`at 18:00 tomorrow Europe/Paris`), or say `in 2h`."
        )
    today = now.astimezone(where).date()
    day_word = phrase.day_word
    candidates = _candidate_days(day_word, today)
    for day in candidates:
        at = local_instant(day, phrase.clock, where)
        # A named date or "tomorrow" stands even if past (the window check says so);
        # no day, or a weekday, means the next one still ahead.
        if at > now or (len(candidates) == 1 and day_word != "today"):
            return When(at, where)
    raise ActionError(f"{phrase.clock:%H:%M} today has already passed in {where.key}.")


def _candidate_days(day_word: str | None, today: date) -> list[date]:
    if day_word is None:
        return [today, today + timedelta(days=1)]
    if day_word == "today":
        return [today]
    if day_word == "tomorrow":
        return [today + timedelta(days=1)]
    if day_word in _WEEKDAYS:
        ahead = (_WEEKDAYS.index(day_word) - today.weekday()) % 7
        return [today + timedelta(days=ahead), today + timedelta(days=ahead + 7)]
    try:
        return [date.fromisoformat(day_word)]
    except ValueError:
        raise ActionError(f"'{day_word}' is not a date (YYYY-MM-DD).") from None


def _weekday_prefix(word: str) -> str | None:
    if len(word) < 3:
        return None
    found = [d for d in _WEEKDAYS if d.startswith(word)]
    return found[0] if len(found) == 1 else None


def _clock(word: str) -> time | None:
    match = _CLOCK.match(word)
    if match is None or (match[2] is None and match[3] is None):
        return None  # a bare number is not a time ("at 18" is ambiguous with a day)
    hour, minute = int(match[1]), int(match[2] or 0)
    if match[3]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match[3].lower() == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _iso(parsed: datetime, zone: ZoneInfo | None) -> When:
    if parsed.tzinfo is not None:
        return When(parsed.astimezone(UTC), zone)
    if zone is None:
        raise NeedZone(
            "I don't know your time zone, so that time is ambiguous. Set it once with"
            " `timezone Area/City` (e.g. `timezone Europe/Paris`), or give the time with"
            " an offset."
        )
    return When(local_instant(parsed.date(), parsed.time(), zone), zone)


def check_window(when: When, *, now: datetime, max_days: int) -> None:
    """Refuse a time in the past or more than `max_days` ahead (before any approval)."""
    if when.at <= now:
        raise ActionError(f"{show(when.at, when.zone)} is in the past; pick a later time.")
    if when.at > now + timedelta(days=max_days):
        raise ActionError(
            f"{show(when.at, when.zone)} is more than {max_days} days ahead; posts can be"
            f" scheduled up to {max_days} days in advance."
        )
