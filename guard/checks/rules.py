"""A policy compiled for checking: lookups the engine needs, built once per policy."""

from __future__ import annotations

import functools
from collections.abc import Mapping
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


class CompiledPolicy:
    """A policy plus its compiled rules, its hash and the signing keys of its sources."""

    def __init__(self, policy: Policy, signing_keys: Mapping[str, bytes]) -> None:
        self.policy = policy
        self.hash = policy.content_hash()
        self.objects = {name: ObjectRules.build(name, spec, policy) for name, spec in policy.objects.items()}
        self.sources = frozenset(policy.sources)
        self.signing_keys = dict(signing_keys)
        self.clock_skew_s = policy.clock_skew.total_seconds()
        self.naive_is_utc = policy.naive_timestamps == "utc"
        #: What the first pass reads per object, made once here rather than on every check:
        #: (rules, the age past which a copy gets STALE or AGING, allowed sources, owner, require_lineage).
        self.screen_limits: dict[str, tuple[ObjectRules, float, frozenset[str], str, bool]] = {
            name: (
                rules,
                float(rules.warn_age_s if rules.warn_age_s is not None else rules.max_age_s),
                rules.allowed_sources,
                rules.owner,
                bool(rules.require_lineage),
            )
            for name, rules in self.objects.items()
        }
        self.owners = {name: rules.owner for name, rules in self.objects.items()}
