"""Runs every check over a batch and folds the reasons into decisions. Pure: no clock, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from guard.checks.conflicts import resolve_conflicts
from guard.checks.contract import Violation, describe
from guard.checks.envelope import Envelope, read_envelope
from guard.checks.freshness import check_freshness
from guard.checks.ownership import check_ownership
from guard.checks.provenance import check_provenance
from guard.checks.rules import CompiledPolicy
from guard.checks.signature import check_signature
from guard.checks.supersession import check_supersession
from guard.decisions import Action, Decision, Reason, ReasonCode

Entity = tuple[str, str]

#: From this many records of one object in a check, the contract runs through pandera itself.
DEFAULT_PANDERA_THRESHOLD = 2000


def read_batch(records: Sequence[Any], compiled: CompiledPolicy) -> list[Envelope]:
    """Read every record's envelope (first pass; tells which entities the check is about)."""
    naive_is_utc = compiled.naive_is_utc
    return [read_envelope(index, raw, naive_is_utc) for index, raw in enumerate(records)]


def entities_to_look_up(envelopes: Sequence[Envelope], compiled: CompiledPolicy) -> set[Entity]:
    """The entities whose supersession watermark the check needs."""
    objects = compiled.objects
    return {
        (env.object, env.key)  # type: ignore[misc]
        for env in envelopes
        if env.updated_at is not None and env.object in objects
    }


def decide(
    envelopes: Sequence[Envelope],
    compiled: CompiledPolicy,
    now: datetime,
    watermarks: Mapping[Entity, datetime],
    *,
    pandera_threshold: int = DEFAULT_PANDERA_THRESHOLD,
) -> list[Decision]:
    """Decide every record: all checks run, the most severe reason sets the action."""
    objects = compiled.objects
    keys = compiled.signing_keys
    skew = compiled.clock_skew_s
    reasons: list[list[Reason]] = []
    ages: list[float | None] = []
    contract_rows: dict[str, list[int]] = {}
    for env in envelopes:
        out: list[Reason] = []
        reasons.append(out)
        if env.fatal:
            out.append(_invalid(env))
            ages.append(None)
            continue
        if env.problems:
            out.append(_invalid(env))
        rules = objects.get(env.object)  # type: ignore[arg-type]
        if rules is None or env.source not in rules.allowed_sources:
            check_ownership(env, compiled, rules, out)
        ages.append(check_freshness(env, rules, now, skew, out))
        if rules is None:
            continue
        if env.lineage or rules.require_lineage:
            check_provenance(env, rules, out)
        key = keys.get(env.source)  # type: ignore[arg-type]
        if key is not None:
            check_signature(env, key, out)
        if watermarks:
            check_supersession(env, rules, watermarks.get((rules.name, env.key)), out)  # type: ignore[arg-type]
        if rules.contract:
            contract_rows.setdefault(rules.name, []).append(env.index)
    _check_contracts(envelopes, compiled, contract_rows, reasons, pandera_threshold)
    groups: dict[Entity, list[Envelope]] = {}
    for env, out in zip(envelopes, reasons, strict=True):
        if not out or all(reason.code is ReasonCode.AGING for reason in out):
            groups.setdefault((env.object, env.key), []).append(env)  # type: ignore[arg-type]
    conflicts = resolve_conflicts((g for g in groups.values() if len(g) > 1), objects)
    for index, reason in conflicts.items():
        reasons[index].append(reason)
    return [
        Decision(
            index=env.index,
            id=env.id,
            action=_action(out),
            reasons=tuple(out),
            object=env.object,
            key=env.key,
            source=env.source,
            observed_at=env.observed_at,
            updated_at=env.updated_at,
            age_s=age,
        )
        for env, out, age in zip(envelopes, reasons, ages, strict=True)
    ]


def _check_contracts(
    envelopes: Sequence[Envelope],
    compiled: CompiledPolicy,
    rows_by_object: Mapping[str, list[int]],
    reasons: list[list[Reason]],
    pandera_threshold: int,
) -> None:
    for name, indexes in rows_by_object.items():
        rules = compiled.objects[name]
        contract = rules.contract
        if len(indexes) >= pandera_threshold:
            found = contract.check_many([envelopes[i].fields for i in indexes])
        else:
            found = [contract.check_one(envelopes[i].fields) for i in indexes]
        specs = compiled.policy.objects[name].fields
        for index, violations in zip(indexes, found, strict=True):
            if violations:
                reasons[index].append(_schema_reason(envelopes[index], name, violations, specs))


def _schema_reason(env: Envelope, name: str, violations: list[Violation], specs: Mapping[str, Any]) -> Reason:
    words = "; ".join(describe(v, specs[v.field]) for v in violations)
    return Reason(
        ReasonCode.SCHEMA_VIOLATION,
        f"{env.label()} breaks the {name} contract: {words}",
        {"violations": [v.to_dict() for v in violations]},
    )


def _invalid(env: Envelope) -> Reason:
    return Reason(
        ReasonCode.INVALID_RECORD,
        f"{env.label()} is malformed: {'; '.join(env.problems)}; the sending integration must fix it",
        {"problems": list(env.problems)},
    )


def _action(out: list[Reason]) -> Action:
    if not out:
        return Action.ALLOW
    for reason in out:
        if reason.code is not ReasonCode.AGING:
            return Action.BLOCK
    return Action.WARN


def owner_versions(envelopes: Sequence[Envelope], decisions: Sequence[Decision], compiled: CompiledPolicy) -> dict[Entity, datetime]:
    """The newest `updated_at` per entity among the owner's records this check allowed."""
    learned: dict[Entity, datetime] = {}
    objects = compiled.objects
    for env, decision in zip(envelopes, decisions, strict=True):
        if decision.action is Action.BLOCK or env.updated_at is None:
            continue
        rules = objects.get(env.object)  # type: ignore[arg-type]
        if rules is not None and env.source == rules.owner:
            entity = (rules.name, env.key)
            known = learned.get(entity)  # type: ignore[arg-type]
            if known is None or env.updated_at > known:
                learned[entity] = env.updated_at  # type: ignore[index]
    return learned
