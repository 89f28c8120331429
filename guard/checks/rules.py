"""What the checks know about each object of a policy, compiled once per policy."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from guard._durations import humanize_seconds
from guard.checks.contract import Contract
from guard.policy.model import ObjectSpec, Policy

#: `humanize_seconds`, remembered: a big check words thousands of ages, limits and gaps, of few distinct values.
humanized = functools.lru_cache(maxsize=8192)(humanize_seconds)


@dataclass(frozen=True, slots=True)
class ObjectRules:
    """What the checks need to know about one object."""

    name: str
    owner: str
    replicas: tuple[str, ...]
    allowed_sources: frozenset[str]
    max_age_s: float
    warn_age_s: float | None
    on_conflict: str
    require_lineage: bool
    contract: Contract
    agreed_with: str

    @classmethod
    def build(cls, name: str, spec: ObjectSpec, policy: Policy) -> ObjectRules:
        """Compile one object of a policy."""
        team = policy.team_of(spec.owner)
        return cls(
            name=name,
            owner=spec.owner,
            replicas=tuple(spec.replicas),
            allowed_sources=frozenset((spec.owner, *spec.replicas)),
            max_age_s=spec.max_age.total_seconds(),
            warn_age_s=spec.warn_age.total_seconds() if spec.warn_age is not None else None,
            on_conflict=spec.on_conflict,
            require_lineage=spec.require_lineage,
            contract=Contract(name, spec.fields, naive_is_utc=policy.naive_timestamps == "utc", origin=policy.origin),
            agreed_with=team or f"{spec.owner}'s owners",
        )

    @property
    def max_age_text(self) -> str:
        """The freshness limit as people read it."""
        return humanized(self.max_age_s)
