"""Runs every check over a batch and folds the reasons into decisions. Pure: no clock, no I/O.

A check is two passes so that the caller can look up watermarks in between:

    batch = screen(records, compiled, now)        # every per-record check
    table = finish(batch, watermarks_for(batch.entities))   # contract, supersession, conflicts

The first pass reads each record once in a tight loop. A record that is plainly in
order (known object, allowed source, parseable timestamps within `warn_age`, no
signature to verify, a well-formed lineage) gets no reasons and costs well under a
microsecond; any other record goes through the check modules in `guard.checks`,
which alone decide what its reasons are. `screen(..., fast=False)` sends every
record through the modules; a property test holds both ways to the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from guard.checks.compiled import CompiledPolicy
from guard.checks.conflicts import resolve_conflicts
from guard.checks.contract import Violation, describe
from guard.checks.envelope import Envelope, read_envelope
from guard.checks.freshness import age_reason, check_freshness
from guard.checks.ownership import check_ownership
from guard.checks.provenance import check_provenance
from guard.checks.signature import check_signature
from guard.checks.supersession import superseded_reason
from guard.decisions import Action, DecisionTable, Entity, Reason, ReasonCode
from guard.limits import MAX_ID_LENGTH
from guard.signing import signature_matches

#: From this many records of one object in a check, the contract runs through pandera itself.
DEFAULT_PANDERA_THRESHOLD = 2000

_fromiso = datetime.fromisoformat


class Batch:
    """A batch after the first pass: what each record says, and the reasons found so far."""

    __slots__ = (
        "ages",
        "compiled",
        "envelopes",
        "fields",
        "ids",
        "keys",
        "now",
        "objects",
        "observed",
        "raw",
        "reasons",
        "sources",
        "uncheckable",
        "unnamed",
        "updated",
    )

    def __init__(self, raw: Sequence[Any], compiled: CompiledPolicy, now: datetime) -> None:
        size = len(raw)
        self.raw = raw
        self.compiled = compiled
        self.now = now
        self.ids: list[str] = [""] * size
        self.objects: list[str | None] = [None] * size
        self.keys: list[str | None] = [None] * size
        self.sources: list[str | None] = [None] * size
        self.observed: list[datetime | None] = [None] * size
        self.updated: list[datetime | None] = [None] * size
        self.ages: list[float | None] = [None] * size
        self.fields: list[Mapping[str, Any] | None] = [None] * size
        self.reasons: list[list[Reason] | None] = [None] * size
        self.envelopes: dict[int, Envelope] = {}
        self.unnamed: set[int] = set()  # records without an id, decided under a "#<position>" stand-in
        self.uncheckable: set[int] = set()  # records whose contract cannot be checked: a broken envelope

    def entities(self) -> set[Entity]:
        """The entities whose supersession watermark the check needs (records with `updated_at`)."""
        known = self.compiled.objects
        return {
            (obj, key)  # type: ignore[misc]
            for obj, key, updated in zip(self.objects, self.keys, self.updated, strict=True)
            if updated is not None and obj in known
        }

    def label(self, index: int) -> str:
        """How messages name a record: `customer C-1042 from sap`."""
        return f"{self.objects[index]} {self.keys[index]} from {self.sources[index]}"

    def envelope(self, index: int) -> Envelope:
        """The full envelope of a record (read on demand for records that passed the screen)."""
        env = self.envelopes.get(index)
        if env is None:
            env = self.envelopes[index] = read_envelope(index, self.raw[index], self.compiled.naive_is_utc)
        return env


def screen(records: Sequence[Any], compiled: CompiledPolicy, now: datetime, *, fast: bool = True) -> Batch:
    """First pass: envelope, ownership, freshness, provenance and signature checks of every record.

    `fast=False` sends every record through the check modules; both ways decide alike.
    """
    batch = Batch(records, compiled, now)
    limits = compiled.screen_limits
    signing = compiled.signing_keys
    skew = compiled.clock_skew_s
    parsed: dict[str, tuple[datetime, float]] = {}
    ids, objs, keys, srcs = batch.ids, batch.objects, batch.keys, batch.sources
    observed, updated, ages, fields_col = batch.observed, batch.updated, batch.ages, batch.fields
    reasons = batch.reasons
    slow = full_path
    for index, record in enumerate(records):
        if not fast or type(record) is not dict:
            slow(batch, index)
            continue
        get = record.get
        rid, obj, key, src = get("id"), get("object"), get("key"), get("source")
        if (
            type(rid) is not str
            or type(obj) is not str
            or type(key) is not str
            or type(src) is not str
            or not (rid and obj and key and src)
            # Text the store may not keep (too long, a NUL, perhaps a lone surrogate): the envelope check judges it.
            or len(rid) > MAX_ID_LENGTH
            or len(key) > MAX_ID_LENGTH
            or not (rid.isascii() and key.isascii())
            or "\x00" in rid
            or "\x00" in key
        ):
            slow(batch, index)
            continue
        limit = limits.get(obj)
        if limit is None or src not in limit[2]:
            slow(batch, index)
            continue
        rules, late_after = limit[0], limit[1]
        # Timestamps as (aware datetime, age in seconds), parsed once per text in a check.
        o, u = get("observed_at"), get("updated_at")
        od = ud = None
        if o is not None:
            od = parsed.get(o) if type(o) is str else None
            if od is None and (od := _stamp(o, now, parsed)) is None:
                slow(batch, index)
                continue
        if u is not None:
            ud = parsed.get(u) if type(u) is str else None
            if ud is None and (ud := _stamp(u, now, parsed)) is None:
                slow(batch, index)
                continue
        stamp = od if od is not None else ud
        # In the future beyond the clock skew: `-age` is exactly what freshness computes as `ahead`.
        if stamp is None or -stamp[1] > skew or (ud is not None and -ud[1] > skew):
            slow(batch, index)
            continue
        hops = get("lineage")
        if (hops is not None and not _plain_lineage(hops, rules.owner, now, parsed)) or (
            hops is None and rules.require_lineage
        ):
            slow(batch, index)
            continue
        f = get("fields")
        signature = get("signature")
        if (
            (f is not None and type(f) is not dict)
            or type(get("content", "")) not in _TEXT_OR_NONE
            or (signature is not None and type(signature) is not str)
        ):
            slow(batch, index)
            continue
        key_bytes = signing.get(src)
        if key_bytes is not None and (signature is None or not signature_matches(record, signature, key_bytes)):
            slow(batch, index)
            continue
        ids[index], objs[index], keys[index], srcs[index], fields_col[index] = rid, obj, key, src, f
        if od is not None:
            observed[index] = od[0]
        if ud is not None:
            updated[index] = ud[0]
        age = stamp[1] if stamp[1] > 0 else 0.0
        ages[index] = age
        if age > late_after:  # the only reason such a record can have: its age, in the freshness module's words
            found = age_reason(f"{obj} {key} from {src}", age, "observed_at" if od is not None else "updated_at", rules)
            if found is not None:
                reasons[index] = [found]
    return batch


_TEXT_OR_NONE = (str, type(None))


def _stamp(value: object, now: datetime, parsed: dict[str, tuple[datetime, float]]) -> tuple[datetime, float] | None:
    """A timestamp as (aware datetime, exact age at `now` in seconds), parsed once per check.

    None for what the full path must judge: not text, not ISO 8601, no offset, or outside
    years 1-9999 once in UTC.
    """
    if type(value) is not str:
        return None
    found = parsed.get(value)
    if found is None:
        try:
            moment = _fromiso(value)
            if moment.tzinfo is None:
                return None
            if moment.tzinfo is not UTC:  # kept in UTC, as the envelope check keeps it
                moment = moment.astimezone(UTC)  # OverflowError outside years 1-9999, as the envelope check refuses
        except (ValueError, OverflowError):
            return None
        found = parsed[value] = (moment, (now - moment).total_seconds())
    return found


def _plain_lineage(hops: object, owner: str, now: datetime, parsed: dict[str, tuple[datetime, float]]) -> bool:
    """Whether a lineage chain is well-formed, starts at the owner and moves forward in time."""
    if type(hops) is not list or not hops:
        return False
    previous: datetime | None = None
    for position, hop in enumerate(hops):
        if type(hop) is not dict:
            return False
        system, at = hop.get("system"), hop.get("at")
        if type(system) is not str or not system or (position == 0 and system != owner):
            return False
        moment = _stamp(at, now, parsed)
        if moment is None:
            return False
        if previous is not None and moment[0] < previous:  # datetimes: exact, as the provenance check compares
            return False
        previous = moment[0]
    return True


def full_path(batch: Batch, index: int) -> None:
    """Every per-record check module, for a record the screen did not clear."""
    compiled = batch.compiled
    env = batch.envelope(index)
    out: list[Reason] = []
    batch.reasons[index] = out
    batch.ids[index] = env.id
    if env.unnamed:
        batch.unnamed.add(index)
    batch.objects[index], batch.keys[index], batch.sources[index] = env.object, env.key, env.source
    if env.fatal:
        out.append(invalid_reason(env))
        batch.uncheckable.add(index)
        return
    batch.observed[index], batch.updated[index] = env.observed_at, env.updated_at
    batch.fields[index] = env.fields
    if env.problems:
        out.append(invalid_reason(env))
        if any(problem.startswith("`fields`") for problem in env.problems):
            batch.uncheckable.add(index)
    rules = compiled.objects.get(env.object)  # type: ignore[arg-type]
    if rules is None or env.source not in rules.allowed_sources:
        check_ownership(env, compiled, rules, out)
    batch.ages[index] = check_freshness(env, rules, batch.now, compiled.clock_skew_s, out)
    key = compiled.signing_keys.get(env.source)  # type: ignore[arg-type]
    if rules is None:
        if key is not None:
            check_signature(env, key, out)
        return
    if env.lineage or rules.require_lineage:
        check_provenance(env, rules, out)
    if key is not None:
        check_signature(env, key, out)


def finish(
    batch: Batch, watermarks: Mapping[Entity, datetime], *, pandera_threshold: int = DEFAULT_PANDERA_THRESHOLD
) -> DecisionTable:
    """Second pass: unique ids, supersession, the contract, conflicts; then every record's action."""
    _unique_ids(batch)
    if watermarks:
        _supersession(batch, watermarks)
    _contracts(batch, pandera_threshold)
    _conflicts(batch)
    actions, reasons = fold_reasons(batch.reasons)
    return DecisionTable(
        ids=batch.ids,
        actions=actions,
        reasons=reasons,
        objects=batch.objects,
        keys=batch.keys,
        sources=batch.sources,
        observed=batch.observed,
        updated=batch.updated,
        ages=batch.ages,
    )


def _reasons_of(batch: Batch, index: int) -> list[Reason]:
    found = batch.reasons[index]
    if found is None:
        found = batch.reasons[index] = []
    return found


def _unique_ids(batch: Batch) -> None:
    if len(set(batch.ids)) == len(batch.ids):
        return
    seen: dict[str, int] = {}
    for index, rid in enumerate(batch.ids):
        first = seen.setdefault(rid, index)
        if first != index and index not in batch.unnamed:
            _reasons_of(batch, index).append(duplicate_id_reason(batch.envelope(index).label(), rid, first))


def duplicate_id_reason(label: str, rid: str, first: int) -> Reason:
    """INVALID_RECORD for the record named `label` that reuses the id of record #`first`."""
    return Reason(
        ReasonCode.INVALID_RECORD,
        f"{label} reuses id {rid!r}, already taken by record #{first} of this check; ids must be unique within a check",
        {"problems": [f"duplicate id {rid!r}"], "first_index": first},
    )


def _supersession(batch: Batch, watermarks: Mapping[Entity, datetime]) -> None:
    objects, reasons = batch.compiled.objects, batch.reasons
    for index, mark in superseded_copies(batch, watermarks):
        obj, key, updated = batch.objects[index], batch.keys[index], batch.updated[index]
        if updated is None:  # never: a copy without a version is never superseded
            continue
        rules = objects.get(obj)  # type: ignore[arg-type]
        if rules is None:  # a watermark learned under an earlier policy
            continue
        found = reasons[index]
        if found is None:
            found = reasons[index] = []
        # Named from the batch's columns, as the envelope would name it (the record is not fatal: it has a version).
        found.append(superseded_reason(f"{obj} {key} from {batch.sources[index]}", updated, rules, mark))


def superseded_copies(batch: Batch, watermarks: Mapping[Entity, datetime]) -> list[tuple[int, datetime]]:
    """(position, watermark) of every copy whose `updated_at` is older than its entity's watermark."""
    found = []
    for index, (obj, key, updated) in enumerate(zip(batch.objects, batch.keys, batch.updated, strict=True)):
        if updated is None:
            continue
        mark = watermarks.get((obj, key))  # type: ignore[arg-type]
        if mark is not None and updated < mark:
            found.append((index, mark))
    return found


def contract_members(batch: Batch) -> dict[str, tuple[list[int], list[Mapping[str, Any] | None]]]:
    """For each object with a contract: the positions of its checkable records, and their `fields`."""
    wanted = tuple(name for name, rules in batch.compiled.objects.items() if rules.contract)
    by_object: dict[str, tuple[list[int], list[Mapping[str, Any] | None]]] = {name: ([], []) for name in wanted}
    skip, fields = batch.uncheckable, batch.fields
    for index, obj in enumerate(batch.objects):
        members = by_object.get(obj)  # type: ignore[arg-type]  # None (a fatal record) is in no list
        if members is not None and index not in skip:
            members[0].append(index)
            members[1].append(fields[index])
    return by_object


def _contracts(batch: Batch, pandera_threshold: int) -> None:
    objects = batch.compiled.objects
    label = batch.label
    for name, (indexes, rows) in contract_members(batch).items():
        if not indexes:
            continue
        contract = objects[name].contract
        if len(rows) >= pandera_threshold:
            failed = contract.failures(rows)
        else:
            failed = {position: found for position, row in enumerate(rows) if (found := contract.check_one(row))}
        specs = batch.compiled.policy.objects[name].fields
        for position, reason in worded_failures(failed, lambda p: label(indexes[p]), name, specs):  # noqa: B023
            _reasons_of(batch, indexes[position]).append(reason)


def worded_failures(
    failed: Mapping[int, list[Violation]], label: Callable[[int], str], name: str, specs: Mapping[str, Any]
) -> Iterator[tuple[int, Reason]]:
    """SCHEMA_VIOLATION for each position that failed the `name` contract; `label(position)` names the record."""
    words: dict[tuple[Any, ...], tuple[str, list[dict[str, Any]]]] = {}  # broken copies break alike
    for position, violations in failed.items():
        named = label(position)
        token = _violations_token(violations)
        said = words.get(token) if token is not None else None
        if said is None:
            reason = schema_reason(named, name, violations, specs)
            if token is not None:
                words[token] = (reason.message[len(named) :], reason.detail["violations"])
        else:
            reason = Reason(ReasonCode.SCHEMA_VIOLATION, named + said[0], {"violations": [dict(v) for v in said[1]]})
        yield position, reason


def _violations_token(violations: list[Violation]) -> tuple[Any, ...] | None:
    """What decides a SCHEMA_VIOLATION's words and detail, as a key; None when a value cannot be one."""
    try:
        token = tuple(
            (v.field, v.check, type(v.value), repr(v.value) if type(v.value) is float else v.value) for v in violations
        )
        hash(token)
    except TypeError:
        return None
    return token


def _conflicts(batch: Batch) -> None:
    groups = conflict_groups(batch)
    if not groups:
        return
    raw = batch.raw
    disputed = [m for m in groups if not identical_copies([raw[i] for i in m])]
    if not disputed:
        return
    envelope = batch.envelope
    blocked = resolve_conflicts(([envelope(i) for i in members] for members in disputed), batch.compiled.objects)
    for index, reason in blocked.items():
        _reasons_of(batch, index).append(reason)


def conflict_groups(batch: Batch) -> list[list[int]]:
    """The positions of each entity seen more than once among the records that may take part in a conflict.

    Those are the records with no reason but AGING. Groups come in the order they form.
    """
    # One pass; a list is made only for an entity seen twice.
    reasons = batch.reasons
    aging = ReasonCode.AGING
    first: dict[tuple[str | None, str | None], int] = {}
    groups: dict[tuple[str | None, str | None], list[int]] = {}
    for index, entity in enumerate(zip(batch.objects, batch.keys, strict=True)):
        found = reasons[index]
        if found and (found[0].code is not aging or any(r.code is not aging for r in found)):
            continue
        seen = first.setdefault(entity, index)
        if seen != index:
            members = groups.get(entity)
            if members is None:
                groups[entity] = [seen, index]
            else:
                members.append(index)
    return list(groups.values())


def identical_copies(records: list[Any]) -> bool:
    """Whether copies carry equal fields of equal types and equal content, so that none can disagree.

    A cheap, conservative pre-filter: False sends the group to the exact comparison.
    """
    first = records[0]
    fields, content = first.get("fields"), first.get("content")
    try:
        for other in records[1:]:
            theirs = other.get("fields")
            if theirs != fields or other.get("content") != content:
                return False
            # Equal dicts may list their keys in different orders: compare types field by field.
            if fields and not all(type(value) is type(theirs[name]) for name, value in fields.items()):
                return False
    except (RecursionError, KeyError):  # nested deeper than `==` goes; a mapping whose `==` is its own
        return False
    return True


def schema_reason(label: str, name: str, violations: list[Violation], specs: Mapping[str, Any]) -> Reason:
    """SCHEMA_VIOLATION listing each field and failed check in words."""
    words = "; ".join(describe(v, specs[v.field]) for v in violations)
    return Reason(
        ReasonCode.SCHEMA_VIOLATION,
        f"{label} breaks the {name} contract: {words}",
        {"violations": [v.to_dict() for v in violations]},
    )


def invalid_reason(env: Envelope) -> Reason:
    """INVALID_RECORD listing what is malformed about the envelope."""
    return Reason(
        ReasonCode.INVALID_RECORD,
        f"{env.label()} is malformed: {'; '.join(env.problems)}; the sending integration must fix it",
        {"problems": list(env.problems)},
    )


def action_of(reasons: Sequence[Reason]) -> Action:
    """The most severe action among the reasons (no reason: allow)."""
    action = Action.ALLOW
    for reason in reasons:
        if reason.code is not ReasonCode.AGING:
            return Action.BLOCK
        action = Action.WARN
    return action


def fold_reasons(found: list[list[Reason] | None]) -> tuple[list[Action], list[tuple[Reason, ...]]]:
    """Each record's action (`action_of` its reasons) and its reasons as a tuple."""
    return (
        [Action.ALLOW if reasons is None else action_of(reasons) for reasons in found],
        [() if reasons is None else tuple(reasons) for reasons in found],
    )


def owner_versions(batch: Batch, table: DecisionTable) -> dict[Entity, datetime]:
    """The newest `updated_at` per entity among the owner's records this check allowed."""
    owners = batch.compiled.owners
    block = Action.BLOCK
    learned: dict[Entity, datetime] = {}
    for obj, key, source, updated, action in zip(
        batch.objects, batch.keys, batch.sources, batch.updated, table.actions, strict=True
    ):
        if updated is None or action is block or obj is None or owners.get(obj) != source:
            continue
        entity = (obj, key)
        known = learned.get(entity)  # type: ignore[arg-type]
        if known is None or updated > known:
            learned[entity] = updated  # type: ignore[index]
    return learned
