"""Integration points over time: freshness lag and block rate, sampled for charts. Pure: no clock, no I/O."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from guard.tallies import Tally

Point = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Sample:
    """A value at a moment (None: nothing known then)."""

    at: datetime
    value: float | None


def sample_times(start: datetime, end: datetime, count: int) -> list[datetime]:
    """`count` moments from `start` to `end`, both included, evenly spaced."""
    if count < 2 or end <= start:
        return [end]
    step = (end - start) / (count - 1)
    return [start + step * index for index in range(count)]


def lag_series(heartbeats: Iterable[Mapping[str, Any]], point: Point, times: Sequence[datetime]) -> list[Sample]:
    """The freshness lag at each moment: the stalest writer's newest sync received by then.

    A writer counts from its first heartbeat; before any, the lag is unknown (None).
    """
    source, obj = point
    by_writer: dict[str, list[tuple[datetime, datetime]]] = {}
    for beat in heartbeats:
        if beat["source"] == source and beat["object"] == obj:
            by_writer.setdefault(beat.get("writer") or "", []).append((beat["received_at"], beat["synced_at"]))
    received: dict[str, tuple[list[datetime], list[datetime]]] = {}
    for writer, beats in by_writer.items():
        beats.sort()
        newest: list[datetime] = []
        for _, synced in beats:
            newest.append(synced if not newest or synced > newest[-1] else newest[-1])
        received[writer] = ([at for at, _ in beats], newest)
    out: list[Sample] = []
    for moment in times:
        lags = []
        for arrivals, newest in received.values():
            position = bisect_right(arrivals, moment)
            if position:
                lags.append(max((moment - newest[position - 1]).total_seconds(), 0.0))
        out.append(Sample(moment, max(lags) if lags else None))
    return out


@dataclass(frozen=True, slots=True)
class Bucket:
    """What the checks of one span decided for a point."""

    start: datetime
    end: datetime
    records: int
    blocked: int

    @property
    def block_rate(self) -> float | None:
        """blocked / records, None without records."""
        return self.blocked / self.records if self.records else None


def block_rate_series(
    tallies: Iterable[Tally], point: Point, start: datetime, end: datetime, count: int
) -> list[Bucket]:
    """The records and blocks of `point` in `count` equal spans from `start` to `end`."""
    width = (end - start) / count if count > 0 and end > start else timedelta(0)
    records = [0] * max(count, 1)
    blocked = [0] * max(count, 1)
    for tally in tallies:
        if (tally.source, tally.object) != point or tally.checked_at is None:
            continue
        if not start <= tally.checked_at < end or not width:
            continue
        index = min(int((tally.checked_at - start) / width), count - 1)
        records[index] += tally.records
        blocked[index] += tally.blocked
    return [
        Bucket(start + width * index, start + width * (index + 1), records[index], blocked[index])
        for index in range(max(count, 1))
    ]


def reasons_over(tallies: Iterable[Tally], point: Point | None = None) -> dict[str, int]:
    """Records per reason code over these tallies (of one point, or all)."""
    counts: dict[str, int] = {}
    for tally in tallies:
        if point is not None and (tally.source, tally.object) != point:
            continue
        for code, count in tally.reasons.items():
            counts[code] = counts.get(code, 0) + count
    return counts
