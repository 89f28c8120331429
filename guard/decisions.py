"""The outcome of a check: actions, reason codes, reasons, per-record decisions, the result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    """What happens to one record: allowed, allowed but flagged, or kept from the model."""

    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"


class Verdict(StrEnum):
    """The outcome of one check: everything usable, some blocked, or nothing allowed."""

    PASS = "pass"
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


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Everything one check decided. `allowed` holds the records that may reach the model."""

    run_id: str
    pipeline: str
    policy: PolicyRef
    checked_at: datetime
    decisions: tuple[Decision, ...]
    allowed: tuple[Any, ...]
    duration_s: float
    consumer: Mapping[str, Any] | None = None

    @property
    def verdict(self) -> Verdict:
        """`pass` when nothing was blocked, `blocked` when nothing was allowed, else `partial`."""
        return verdict_of(self.decisions)

    @property
    def counts(self) -> dict[Action, int]:
        """How many records got each action."""
        tally = Counter(decision.action for decision in self.decisions)
        return {action: tally.get(action, 0) for action in Action}

    @property
    def blocked(self) -> tuple[Decision, ...]:
        """The decisions that kept a record from the model."""
        return tuple(d for d in self.decisions if d.action is Action.BLOCK)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the result (the HTTP API's response body)."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "policy": {"name": self.policy.name, "version": self.policy.version},
            "checked_at": self.checked_at.isoformat(),
            "verdict": self.verdict.value,
            "allowed": [d.id for d in self.decisions if d.action is not Action.BLOCK],
            "records": [decision.to_dict() for decision in self.decisions],
        }


def verdict_of(decisions: Sequence[Decision]) -> Verdict:
    """Fold decisions into a verdict; an empty check passes (nothing was kept back)."""
    blocked = sum(1 for d in decisions if d.action is Action.BLOCK)
    if blocked == 0:
        return Verdict.PASS
    return Verdict.BLOCKED if blocked == len(decisions) else Verdict.PARTIAL
