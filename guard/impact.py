"""What an incident touched: the one definition the API, the dashboard and the alerts all use.

An incident's window runs from when its breach most likely began (a second earlier, so that the
check that revealed it counts) to its recovery, or to now while it is open. Its impact is:

- `checks`: the checks (runs) that decided records of the breached integration point in that window;
- `checks_let_through`: those that let at least one such record through (allowed or warned);
- `records_let_through`: how many records of the point those checks allowed or warned;
- `records_withheld`: how many they blocked;
- `model_calls`: the model calls linked to the checks that let records through.

A warned record reaches the model just as an allowed one does, so both count as let through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guard.lineage.store import LineageStore

#: The check that revealed a breach may be stamped just before the estimated start: count it.
_LEAD = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class ModelCall:
    """A model call linked to a check."""

    model: str
    call_id: str | None
    extra: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ImpactedCheck:
    """One check that decided records of the breached point during the incident."""

    run_id: str
    pipeline: str
    checked_at: datetime
    records: int
    allowed: int
    warned: int
    blocked: int
    model_calls: tuple[ModelCall, ...]

    @property
    def let_through(self) -> int:
        """Records of the point this check allowed or warned: they reached the model."""
        return self.allowed + self.warned


@dataclass(frozen=True, slots=True)
class Impact:
    """An incident's impact: every check in its window, and the totals that matter at 3 a.m."""

    checks: tuple[ImpactedCheck, ...]
    #: The totals kept with the incident before a prune removed its checks (then `checks` is empty).
    kept: Mapping[str, int] | None = None

    @property
    def checks_let_through(self) -> int:
        """Checks that let at least one record of the point through."""
        if self.kept is not None:
            return self.kept["checks_let_through"]
        return sum(1 for check in self.checks if check.let_through > 0)

    @property
    def records_let_through(self) -> int:
        """Records of the point let through to the model."""
        if self.kept is not None:
            return self.kept["records_let_through"]
        return sum(check.let_through for check in self.checks)

    @property
    def records_withheld(self) -> int:
        """Records of the point withheld from the model."""
        if self.kept is not None:
            return self.kept["records_withheld"]
        return sum(check.blocked for check in self.checks)

    @property
    def model_calls(self) -> int:
        """Model calls fed by the checks that let records through."""
        if self.kept is not None:
            return self.kept["model_calls"]
        return sum(len(check.model_calls) for check in self.checks if check.let_through > 0)

    @property
    def check_count(self) -> int:
        """Checks that decided records of the point during the incident."""
        return self.kept["checks"] if self.kept is not None else len(self.checks)

    def totals(self) -> dict[str, int]:
        """The figures as the API and the alerts give them."""
        return {
            "checks": self.check_count,
            "checks_let_through": self.checks_let_through,
            "records_let_through": self.records_let_through,
            "records_withheld": self.records_withheld,
            "model_calls": self.model_calls,
        }

    def sentence(self) -> str:
        """`64 records let through to the model by 5 of 9 checks, feeding 5 model calls; 12 withheld`."""
        if not self.check_count:
            return "no check used this integration point during the incident"
        let = self.records_let_through
        records = "record" if let == 1 else "records"
        calls = "model call" if self.model_calls == 1 else "model calls"
        return (
            f"{let:,} {records} let through to the model by {self.checks_let_through} of {self.check_count} "
            f"checks, feeding {self.model_calls:,} {calls}; {self.records_withheld:,} withheld"
        )


def window(started_at: datetime, recovered_at: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The span an incident's impact is counted over."""
    return started_at - _LEAD, recovered_at or now


def from_rows(rows: Sequence[Mapping[str, Any]]) -> Impact:
    """An impact from the store's rows (`LineageStore.incident_impact`)."""
    return Impact(
        tuple(
            ImpactedCheck(
                run_id=row["run_id"], pipeline=row["pipeline"], checked_at=row["checked_at"], records=row["records"],
                allowed=row["allowed"], warned=row["warned"], blocked=row["blocked"],
                model_calls=tuple(ModelCall(call["model"], call["call_id"], call["extra"] or {})
                                  for call in row["model_calls"]),
            )
            for row in rows
        )
    )  # fmt: skip


def of_incident(store: LineageStore, incident: Mapping[str, Any], now: datetime) -> Impact:
    """The impact of an incident row (as `LineageStore.incident` gives it) as of `now`.

    Once a prune has removed checks of a recovered incident, its totals are the ones kept with it.
    """
    if incident.get("impact"):
        return Impact((), kept=incident["impact"])
    start, end = window(incident["started_at"], incident["recovered_at"], now)
    return from_rows(store.incident_impact(incident["source"], incident["object"], start, end))
