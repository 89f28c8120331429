"""The outcome of a check: actions, reason codes, reasons, per-record decisions, the result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, overload

#: One business entity: (object, key), as in ("customer", "C-1042").
Entity = tuple[str, str]


class Action(StrEnum):
    """What happens to one record: allowed, allowed but flagged, or kept from the model."""

    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"


class Verdict(StrEnum):
    """The outcome of one check: everything usable, some blocked, or nothing allowed."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    PARTIAL = "partial"
    BLOCKED = "blocked"


class ReasonCode(StrEnum):
    """Stable codes for every reason a record is warned or blocked."""

    INVALID_RECORD = "INVALID_RECORD"
    UNKNOWN_OBJECT = "UNKNOWN_OBJECT"
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
    UNAUTHORIZED_SOURCE = "UNAUTHORIZED_SOURCE"
    MISSING_TIMESTAMP = "MISSING_TIMESTAMP"
    FUTURE_TIMESTAMP = "FUTURE_TIMESTAMP"
    STALE = "STALE"
    AGING = "AGING"
    SCHEMA_VIOLATION = "SCHEMA_VIOLATION"
    MISSING_PROVENANCE = "MISSING_PROVENANCE"
    PROVENANCE_BROKEN = "PROVENANCE_BROKEN"
    UNSIGNED = "UNSIGNED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    SUPERSEDED = "SUPERSEDED"
    CONFLICT = "CONFLICT"

    @property
    def action(self) -> Action:
        """The action this reason forces (AGING warns, every other code blocks)."""
        return Action.WARN if self is ReasonCode.AGING else Action.BLOCK


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a record was warned or blocked: a stable code, words for people, details for machines."""

    code: ReasonCode
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"code": self.code.value, "message": self.message, "detail": dict(self.detail)}


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision about one record of a check, with every reason that applies."""

    index: int
    id: str
    action: Action
    reasons: tuple[Reason, ...]
    object: str | None = None
    key: str | None = None
    source: str | None = None
    observed_at: datetime | None = None
    updated_at: datetime | None = None
    age_s: float | None = None

    @property
    def codes(self) -> tuple[ReasonCode, ...]:
        """The reason codes, in the order the checks found them."""
        return tuple(reason.code for reason in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the HTTP API and `--out` files carry it."""
        return {
            "id": self.id,
            "object": self.object,
            "key": self.key,
            "source": self.source,
            "action": self.action.value,
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "reasons": [reason.to_dict() for reason in self.reasons],
        }


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """Which policy a check ran under."""

    name: str
    version: int
    hash: str


class DecisionTable(Sequence[Decision]):
    """A check's decisions, kept as columns; a `Decision` is made when one is looked at.

    A big check decides 100,000 records; most of them are never looked at one by one
    (the store writes the columns), so making an object per record would be waste.
    """

    __slots__ = ("actions", "ages", "counted", "ids", "keys", "objects", "observed", "reasons", "sources", "updated")

    def __init__(
        self,
        *,
        ids: list[str],
        actions: list[Action],
        reasons: list[tuple[Reason, ...]],
        objects: list[str | None],
        keys: list[str | None],
        sources: list[str | None],
        observed: list[datetime | None],
        updated: list[datetime | None],
        ages: list[float | None],
    ) -> None:
        self.ids, self.actions, self.reasons = ids, actions, reasons
        self.objects, self.keys, self.sources = objects, keys, sources
        self.observed, self.updated, self.ages = observed, updated, ages
        #: The tallies per integration point, once `guard.tallies.tally_check` has counted them (read, never change).
        self.counted: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Decision: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Decision]: ...
    def __getitem__(self, index: int | slice) -> Decision | Sequence[Decision]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self.ids):
            raise IndexError(index)
        return Decision(
            index=index,
            id=self.ids[index],
            action=self.actions[index],
            reasons=self.reasons[index],
            object=self.objects[index],
            key=self.keys[index],
            source=self.sources[index],
            observed_at=self.observed[index],
            updated_at=self.updated[index],
            age_s=self.ages[index],
        )

    def __iter__(self) -> Iterator[Decision]:
        return (self[i] for i in range(len(self.ids)))

    def __repr__(self) -> str:
        return f"<DecisionTable of {len(self)} decisions>"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Everything one check decided. `allowed` holds the records that may reach the model."""

    run_id: str
    pipeline: str
    policy: PolicyRef
    checked_at: datetime
    decisions: DecisionTable
    allowed: tuple[Any, ...]
    duration_s: float
    consumer: Mapping[str, Any] | None = None

    @property
    def verdict(self) -> Verdict:
        """`pass` when nothing was blocked, `blocked` when nothing was allowed, else `partial`."""
        return verdict_of(self.decisions.actions)

    @property
    def counts(self) -> dict[Action, int]:
        """How many records got each action."""
        tally = Counter(self.decisions.actions)
        return {action: tally.get(action, 0) for action in Action}

    @property
    def blocked(self) -> tuple[Decision, ...]:
        """The decisions that kept a record from the model."""
        table = self.decisions
        return tuple(table[i] for i, action in enumerate(table.actions) if action is Action.BLOCK)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the result (the HTTP API's response body)."""
        table = self.decisions
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "policy": {"name": self.policy.name, "version": self.policy.version},
            "checked_at": self.checked_at.isoformat(),
            "verdict": self.verdict.value,
            "allowed": [
                rid for rid, action in zip(table.ids, table.actions, strict=True) if action is not Action.BLOCK
            ],
            "records": [decision.to_dict() for decision in table],
        }


def verdict_of_counts(counts: Mapping[Action, int]) -> Verdict:
    """The verdict of a check from how many records got each action."""
    blocked = counts.get(Action.BLOCK, 0)
    if blocked == 0:
        return Verdict.PASS
    return Verdict.BLOCKED if blocked == sum(counts.values()) else Verdict.PARTIAL


def verdict_of(actions: Sequence[Action]) -> Verdict:
    """Fold actions into a verdict; an empty check passes (nothing was kept back)."""
    blocked = actions.count(Action.BLOCK) if isinstance(actions, list) else sum(a is Action.BLOCK for a in actions)
    if blocked == 0:
        return Verdict.PASS
    return Verdict.BLOCKED if blocked == len(actions) else Verdict.PARTIAL
