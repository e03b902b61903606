"""Platform quotas as data: the counters each platform declares, checked once at start.

Storage cannot import `integrations`, so `CounterSpec` describes structurally what it
reads of a platform's counter declaration; the platform's own dataclass satisfies it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.ratelimit.counters import Counter


class CounterSpec(Protocol):
    """One quota counter a platform declares: a limit per calendar day or moving window."""

    @property
    def name(self) -> str:
        """Short key, unique within the platform ("units", "publishes")."""

    @property
    def label(self) -> str:
        """What it counts, for people ("quota units")."""

    @property
    def limit(self) -> int:
        """The most that may be charged per day or per window."""

    @property
    def per_account(self) -> bool:
        """True: one budget per linked account; False: one per app."""

    @property
    def rolling_seconds(self) -> int | None:
        """Length of a moving window; None for a calendar day."""

    @property
    def reset_zone(self) -> str:
        """IANA zone whose midnight starts a calendar day (unused for moving windows)."""


@dataclass(frozen=True, slots=True)
class Quota:
    """A declared counter with its day's zone resolved."""

    platform: str
    spec: CounterSpec
    zone: tzinfo

    def counter(self, account: int | None, amount: int) -> Counter:
        """This counter in a ledger call. Every key of a platform shares one hash tag, so
        one call can charge its per-app and per-account counters in one cluster slot."""
        parts = ["quota", f"{{{self.platform}}}"]
        if self.spec.per_account:
            parts.append(f"a{account}")
        parts.append(self.spec.name)
        return Counter(
            self.spec.name,
            ":".join(parts),
            self.spec.limit,
            amount,
            self.spec.rolling_seconds,
            self.zone,
        )


class QuotaBook:
    """Every platform's counters, validated at construction so a bad declaration fails at start."""

    def __init__(self, quotas: Mapping[str, Sequence[CounterSpec]]) -> None:
        self._by_platform: dict[str, dict[str, Quota]] = {}
        for platform, specs in quotas.items():
            if not platform or "{" in platform or "}" in platform:
                raise ValueError(f"bad platform name for a quota: {platform!r}")
            counters: dict[str, Quota] = {}
            for spec in specs:
                if spec.name in counters:
                    raise ValueError(f"{platform}: counter {spec.name!r} declared twice")
                if spec.limit <= 0 or (
                    spec.rolling_seconds is not None and spec.rolling_seconds <= 0
                ):
                    raise ValueError(
                        f"{platform}: counter {spec.name!r} needs a positive limit and window"
                    )
                try:
                    zone = UTC if spec.rolling_seconds is not None else ZoneInfo(spec.reset_zone)
                except (ZoneInfoNotFoundError, ValueError) as exc:
                    raise ValueError(f"{platform}: unknown time zone {spec.reset_zone!r}") from exc
                counters[spec.name] = Quota(platform, spec, zone)
            self._by_platform[platform] = counters

    def charges(
        self, platform: str, account: int | None, amounts: Mapping[str, int], *, reserving: bool
    ) -> list[Counter]:
        """The counters `amounts` names, with their amounts; zero amounts are left out.

        ValueError for an unknown counter, a negative amount, a per-account counter without
        an account, and (when `reserving`) an amount above the limit: it could never fit.
        """
        declared = self._by_platform.get(platform, {})
        out: list[Counter] = []
        for name, amount in amounts.items():
            quota = declared.get(name)
            if quota is None:
                raise ValueError(f"{platform} declares no quota counter {name!r}")
            if amount < 0:
                raise ValueError(f"{platform} {name}: amount must be >= 0, not {amount}")
            if quota.spec.per_account and account is None:
                raise ValueError(f"{platform} {name} is counted per account: pass the account")
            if reserving and amount > quota.spec.limit:
                raise ValueError(
                    f"{platform} {name}: {amount} exceeds the limit of {quota.spec.limit}"
                )
            if amount:
                out.append(quota.counter(account, amount))
        return out

    def platforms(self) -> list[str]:
        """Every platform that declared counters."""
        return list(self._by_platform)

    def declared(self, platform: str, *, per_account: bool) -> Iterator[Quota]:
        """A platform's per-app (or per-account) counters, in declaration order."""
        for quota in self._by_platform.get(platform, {}).values():
            if quota.spec.per_account == per_account:
                yield quota
