"""A check's decisions counted per integration point (source, object).

What SLA health, metrics and the dashboard read: a handful of rows per check instead of
one per record. Ages are kept as a histogram over fixed bounds, so percentiles over a
window can be estimated from many checks without reading their records.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from guard.decisions import Action, DecisionTable

#: Upper bounds (seconds) of the age histogram's buckets; a last bucket takes everything older.
AGE_BOUNDS_S: tuple[float, ...] = (
    15, 30, 60, 120, 300, 600, 900, 1800, 2700, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
)  # fmt: skip

IntegrationPoint = tuple[str | None, str | None]  # (source, object), as the records named them


@dataclass(slots=True)
class Tally:
    """What one check decided about the records of one integration point."""

    source: str | None
    object: str | None
    records: int = 0
    allowed: int = 0
    warned: int = 0
    blocked: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason code -> records that carry it
    age_buckets: list[int] = field(default_factory=lambda: [0] * (len(AGE_BOUNDS_S) + 1))
    age_max_s: float | None = None
    age_sum_s: float = 0.0
    checked_at: datetime | None = None  # when the check ran, for tallies read back from the store

    def merge(self, other: Tally) -> None:
        """Add another tally of the same integration point (another check) to this one."""
        self.records += other.records
        self.allowed += other.allowed
        self.warned += other.warned
        self.blocked += other.blocked
        for code, count in other.reasons.items():
            self.reasons[code] = self.reasons.get(code, 0) + count
        self.age_buckets = [mine + theirs for mine, theirs in zip(self.age_buckets, other.age_buckets, strict=True)]
        if other.age_max_s is not None and (self.age_max_s is None or other.age_max_s > self.age_max_s):
            self.age_max_s = other.age_max_s
        self.age_sum_s += other.age_sum_s

    def age_quantile(self, quantile: float) -> float | None:
        """An estimate of the age below which `quantile` of the aged records fall (linear within a bucket)."""
        total = sum(self.age_buckets)
        if total == 0:
            return None
        return bucket_quantile(self.age_buckets, quantile, self.age_max_s)


def bucket_quantile(buckets: Sequence[int], quantile: float, observed_max: float | None) -> float:
    """The `quantile` of a histogram over AGE_BOUNDS_S, as Prometheus' histogram_quantile estimates it.

    The last (open) bucket is bounded by the largest value seen, so no estimate exceeds it;
    an empty histogram gives 0.
    """
    total = sum(buckets)
    if total == 0:
        return 0.0
    rank = quantile * total
    seen = 0
    lower = 0.0
    for position, count in enumerate(buckets):
        upper = AGE_BOUNDS_S[position] if position < len(AGE_BOUNDS_S) else (observed_max or lower)
        if count and seen + count >= rank:
            estimate = lower + (upper - lower) * ((rank - seen) / count)
            return min(estimate, observed_max) if observed_max is not None else estimate
        seen += count
        lower = upper
    return observed_max if observed_max is not None else lower


def tally_check(table: DecisionTable) -> list[Tally]:
    """One tally per integration point the check's records named, in the order first seen.

    Counted once per check: the lineage store and the metrics both ask, and share the answer (never change it).
    """
    if table.counted is not None:
        counted: list[Tally] = table.counted
        return counted
    table.counted = _count(table)
    return table.counted


def _count(table: DecisionTable) -> list[Tally]:
    found: dict[IntegrationPoint, Tally] = {}
    bounds = AGE_BOUNDS_S
    block, warn = Action.BLOCK, Action.WARN
    for source, obj, action, age, reasons in zip(
        table.sources, table.objects, table.actions, table.ages, table.reasons, strict=True
    ):
        point = (source, obj)
        tally = found.get(point)
        if tally is None:
            tally = found[point] = Tally(source, obj)
        tally.records += 1
        if action is block:
            tally.blocked += 1
        elif action is warn:
            tally.warned += 1
        else:
            tally.allowed += 1
        if reasons:
            counted = tally.reasons
            for code in {reason.code.value for reason in reasons}:
                counted[code] = counted.get(code, 0) + 1
        if age is not None:
            tally.age_buckets[bisect_left(bounds, age)] += 1
            tally.age_sum_s += age
            if tally.age_max_s is None or age > tally.age_max_s:
                tally.age_max_s = age
    return list(found.values())


def merge_tallies(tallies: Sequence[Tally]) -> dict[IntegrationPoint, Tally]:
    """Tallies of many checks summed per integration point."""
    merged: dict[IntegrationPoint, Tally] = {}
    for tally in tallies:
        point = (tally.source, tally.object)
        known = merged.get(point)
        if known is None:
            known = merged[point] = Tally(tally.source, tally.object)
        known.merge(tally)
    return merged


def reasons_ranked(reasons: Mapping[str, int]) -> list[tuple[str, int]]:
    """Reason codes, most frequent first (ties by code)."""
    return sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
