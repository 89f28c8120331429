"""Conflicts: records about one entity, in one check, that disagree; the object's rule picks a survivor.

Two records disagree when a field both carry has different values (when neither
carries fields, their content is compared). Among the records of an entity that
disagree with any other (the conflict set), the rule picks winners: the owner's
copy (`prefer_owner`), the latest `updated_at` (`newest`) or none (`block_all`).
Winners that disagree among themselves are no winners. A conflicting record that
agrees with every winner, and with every other such record, is kept too; the rest
are blocked. So no two records that reach the model about one entity disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from guard.checks.envelope import Envelope
from guard.checks.rules import ObjectRules
from guard.decisions import Reason, ReasonCode

_DEDUPE_ABOVE = 16
_RULE_WORDS = {
    "prefer_owner": "the policy keeps the copy from the system of record",
    "newest": "the policy keeps the copy with the latest updated_at",
    "block_all": "the policy blocks every copy when copies disagree",
}


def differences(a: Envelope, b: Envelope) -> list[str]:
    """The fields on which two records disagree (`["content"]` when only content can be compared)."""
    fa, fb = a.fields, b.fields
    if fa and fb:
        if len(fb) < len(fa):
            fa, fb = fb, fa
        return [name for name, value in fa.items() if name in fb and not same_value(value, fb[name])]
    if not fa and not fb and a.content != b.content:
        return ["content"]
    return []


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: `1 == 1.0`, but `true` is not `1`; NaN is the same as NaN (identical copies agree)."""
    try:
        if a == b:
            return (type(a) is bool) == (type(b) is bool)
    except RecursionError:  # nested too deep to compare: only the very same value agrees
        return a is b
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def resolve_conflicts(groups: Iterable[list[Envelope]], rules_of: Mapping[str, ObjectRules]) -> dict[int, Reason]:
    """CONFLICT reasons, by record index, for every entity group with disagreeing records."""
    blocked: dict[int, Reason] = {}
    for group in groups:
        if len(group) > 1:
            rules = rules_of[group[0].object]  # type: ignore[index]
            _resolve_group(group, rules, blocked)
    return blocked


def _resolve_group(group: list[Envelope], rules: ObjectRules, blocked: dict[int, Reason]) -> None:
    pairs = _disagreements(group)
    if not pairs:
        return
    partners: dict[int, dict[int, list[str]]] = {}
    for (i, j), fields in pairs.items():
        partners.setdefault(i, {})[j] = fields
        partners.setdefault(j, {})[i] = fields
    by_index = {env.index: env for env in group}
    conflicted = [env for env in group if env.index in partners]
    winners = _winners(conflicted, rules, partners)
    winner_ids = {w.index for w in winners}
    candidates = [
        env for env in conflicted if env.index not in winner_ids and not winner_ids & partners[env.index].keys()
    ]
    candidate_ids = {env.index for env in candidates}
    kept = winner_ids | {env.index for env in candidates if not candidate_ids & partners[env.index].keys()}
    for env in conflicted:
        if env.index not in kept:
            blocked[env.index] = _reason(env, rules, partners[env.index], by_index, winners)


def _disagreements(group: list[Envelope]) -> dict[tuple[int, int], list[str]]:
    """Disagreeing pairs of a group, by record index; identical copies are compared once."""
    if len(group) > _DEDUPE_ABOVE:
        return _disagreements_deduped(group)
    pairs: dict[tuple[int, int], list[str]] = {}
    for position, a in enumerate(group):
        for b in group[position + 1 :]:
            fields = differences(a, b)
            if fields:
                pairs[(a.index, b.index)] = fields
    return pairs


def _disagreements_deduped(group: list[Envelope]) -> dict[tuple[int, int], list[str]]:
    classes: dict[bytes, list[Envelope]] = {}
    for env in group:
        fingerprint = _fingerprint([env.fields or None, None if env.fields else env.content])
        classes.setdefault(fingerprint, []).append(env)
    members = list(classes.values())
    pairs: dict[tuple[int, int], list[str]] = {}
    for position, first in enumerate(members):
        for second in members[position + 1 :]:
            fields = differences(first[0], second[0])
            if fields:
                for a in first:
                    for b in second:
                        pairs[(a.index, b.index)] = fields
    return pairs


def _winners(
    conflicted: list[Envelope], rules: ObjectRules, partners: dict[int, dict[int, list[str]]]
) -> list[Envelope]:
    if rules.on_conflict == "prefer_owner":
        chosen = [env for env in conflicted if env.source == rules.owner]
    elif rules.on_conflict == "newest":
        dated = [env for env in conflicted if env.updated_at is not None]
        if not dated:
            return []
        latest = max(env.updated_at for env in dated)  # type: ignore[type-var]
        chosen = [env for env in dated if env.updated_at == latest]
    else:
        return []
    ids = {env.index for env in chosen}
    if any(ids & partners[env.index].keys() for env in chosen):
        return []
    return chosen


def _reason(
    env: Envelope,
    rules: ObjectRules,
    against: dict[int, list[str]],
    by_index: Mapping[int, Envelope],
    winners: list[Envelope],
) -> Reason:
    others = sorted(against.items())
    shown = []
    for index, fields in others[:3]:
        other = by_index[index]
        values = "; ".join(_pair(field, env, other) for field in fields[:3])
        shown.append(f"{other.source} ({other.id}) on {values}")
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    outcome = _RULE_WORDS[rules.on_conflict]
    if not winners:
        owner_copies = env.source == rules.owner or any(by_index[i].source == rules.owner for i in against)
        if rules.on_conflict == "prefer_owner" and owner_copies:
            outcome = (
                f"copies from {rules.owner}, the system of record, disagree among themselves, "
                "so every disagreeing copy is blocked"
            )
        elif rules.on_conflict == "prefer_owner":
            outcome = (
                f"no copy from {rules.owner}, the system of record, settles it, so every disagreeing copy is blocked"
            )
        elif rules.on_conflict == "newest":
            outcome = "no single copy is the newest, so every disagreeing copy is blocked"
    else:
        outcome += f" ({', '.join(w.id for w in winners)})"
    return Reason(
        ReasonCode.CONFLICT,
        f"{env.label()} disagrees with {', '.join(shown)}{more}; {outcome}",
        {
            "rule": rules.on_conflict,
            "kept": [w.id for w in winners],
            "disagrees_with": [{"id": by_index[i].id, "source": by_index[i].source, "fields": f} for i, f in others],
        },
    )


def _pair(field: str, env: Envelope, other: Envelope) -> str:
    if field == "content":
        return "content"
    mine = env.fields.get(field) if env.fields else None
    theirs = other.fields.get(field) if other.fields else None
    return f"{field} ({_short(mine)} vs {_short(theirs)})"


def _short(value: Any) -> str:
    if value is None or isinstance(value, bool):
        text = json.dumps(value)
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (ValueError, RecursionError):
            text = f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= 40 else text[:37] + "..."


def _fingerprint(value: Any) -> bytes:
    """Canonical bytes of a value: equal for identical copies, whatever their keys or nesting."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr)
    except (TypeError, RecursionError):  # text orjson cannot encode, or nested deeper than it goes
        try:
            return repr(value).encode("utf-8", "surrogatepass")
        except RecursionError:  # too deep even for repr: a class of its own, so it disagrees (blocks)
            return f"<unreadable {id(value)}>".encode()
