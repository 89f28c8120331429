"""An SLA's schedule: when syncs are expected (cron `active`) and by when loads are due (`expected_by`).

Pure: the schedule, `now` and the newest sync go in. Cron expressions are read in the schedule's
time zone, with Vixie cron's rule for days: when both day of month and weekday are restricted,
either may match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

from guard.policy.model import ScheduleSpec

#: How far back the start of an active period is looked for (a longer period counts from this far back).
LOOKBACK = timedelta(days=8)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """Where `now` falls in a schedule."""

    paused: bool  # outside the `active` minutes: freshness lag is not judged
    active_since: datetime | None  # start of the current active period (lag counts from here at the earliest)
    due: datetime | None  # the latest `expected_by` deadline passed
    missed: bool  # no sync arrived between the deadline before `due` and `due`
    next_due: datetime | None
    at_risk: bool = False  # within `warn_before` of `next_due`, and no sync has arrived since `due`


def view(schedule: ScheduleSpec, now: datetime, last_sync: datetime | None) -> ScheduleView:
    """Where `now` falls in `schedule`, given the newest sync."""
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    paused, since = False, None
    if schedule.active is not None:
        minutes = _Minutes.of(schedule.active)
        start = local.replace(second=0, microsecond=0)
        paused = not minutes.match(start)
        if not paused:
            since = minutes.run_start(start)
    due = upcoming = None
    missed = False
    if schedule.expected_by is not None:
        upcoming = croniter(schedule.expected_by, local).get_next(datetime)
        deadlines = croniter(schedule.expected_by, local)
        due = deadlines.get_prev(datetime)
        previous = deadlines.get_prev(datetime)
        missed = last_sync is None or last_sync <= previous
    at_risk = (
        upcoming is not None
        and due is not None
        and schedule.warn_before is not None
        and local >= upcoming - schedule.warn_before
        and (last_sync is None or last_sync <= due)
    )
    return ScheduleView(paused, since, due, missed, upcoming, at_risk)


class _Minutes:
    """The minutes a cron expression matches, as sets: fast enough to walk back a week minute by minute."""

    def __init__(self, expression: str) -> None:
        minute, hour, day, month, weekday = croniter(expression).expanded
        self.minutes = _set(minute)
        self.hours = _set(hour)
        self.days = _set(day)
        self.months = _set(month)
        self.weekdays = _set(weekday, sunday_is=0)

    @staticmethod
    @lru_cache(maxsize=64)
    def of(expression: str) -> _Minutes:
        return _Minutes(expression)

    def match(self, local: datetime) -> bool:
        if (self.minutes is not None and local.minute not in self.minutes) or (
            self.hours is not None and local.hour not in self.hours
        ):
            return False
        if self.months is not None and local.month not in self.months:
            return False
        weekday = local.isoweekday() % 7  # cron: Sunday is 0
        if self.days is not None and self.weekdays is not None:
            return local.day in self.days or weekday in self.weekdays
        if self.days is not None:
            return local.day in self.days
        return self.weekdays is None or weekday in self.weekdays

    def run_start(self, local: datetime) -> datetime:
        """The first minute of the run of matching minutes that `local` is in (at most LOOKBACK back)."""
        start, earliest = local, local - LOOKBACK
        while start > earliest and self.match(start - _MINUTE):
            start -= _MINUTE
        return start


def _set(values: Sequence[int | str], sunday_is: int | None = None) -> frozenset[int] | None:
    """A cron field's values; None when it is `*` (any)."""
    if values == ["*"]:
        return None
    numbers = {int(value) for value in values}
    if sunday_is is not None and 7 in numbers:
        numbers = (numbers - {7}) | {sunday_is}
    return frozenset(numbers)
