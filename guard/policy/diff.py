"""What a new version of a policy changes, in words: the review step before publishing.

`diff_policies(old, new)` lists every difference of meaning once, each with a sentence an
owner can check ("customer: max_age tightened from 1h to 30m"). *Tightened* means more records
will be warned or blocked, *loosened* fewer. Order does not matter where the policy gives it no
meaning (replicas, allowed values, notify channels, the list of SLAs).

Whatever differs in meaning is listed: a difference no sentence below covers (a member added to
the model before the diff learnt to word it) still comes out as "<member> changed", so a review
can never pass a real change as "no change".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from guard._durations import format_duration
from guard.policy.model import (
    FieldSpec,
    NotifySpec,
    ObjectSpec,
    Policy,
    Scalar,
    ScheduleSpec,
    SLASpec,
    SourceSpec,
)


class ChangeKind(StrEnum):
    """How a change moves the policy."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    TIGHTENED = "tightened"  # more records will be warned or blocked
    LOOSENED = "loosened"  # fewer records will be warned or blocked
    VERSION = "version"  # the version number, and whether it can be published


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two policies: where (`objects.customer.max_age`), how, and in words."""

    path: str
    kind: ChangeKind
    message: str

    def __str__(self) -> str:
        return self.message


def diff_policies(old: Policy, new: Policy) -> list[Change]:
    """Every difference of meaning between two policies, once each; an empty list when they mean the same."""
    changes = [
        *_named_settings(old, new),
        *_keyed(
            "sources", old.sources, new.sources, changed=_source_changes, added=_source_added, removed=_source_removed
        ),
        *_keyed(
            "objects", old.objects, new.objects, changed=_object_changes, added=_object_added, removed=_object_removed
        ),
        *_keyed(
            "slas",
            _slas_by_point(old.slas),
            _slas_by_point(new.slas),
            changed=_sla_changes,
            added=_sla_added,
            removed=_sla_removed,
        ),
        *_keyed(
            "notify", old.notify, new.notify, changed=_notify_changes, added=_notify_added, removed=_notify_removed
        ),
    ]
    changes += _unworded(old, new, changes)
    version = _version_change(old, new, changed=bool(changes))
    return [version, *changes] if version is not None else changes


_MEMBERS = ("policy", "clock_skew", "naive_timestamps", "sources", "objects", "slas", "notify")


def _unworded(old: Policy, new: Policy, changes: Sequence[Change]) -> list[Change]:
    """A generic line for each top-level member whose meaning differs but that no sentence above covers."""
    before, after = meaning(old), meaning(new)
    missing = [
        member
        for member in _MEMBERS
        if before[member] != after[member]
        and not any(change.path == member or change.path.startswith(f"{member}.") for change in changes)
    ]
    return [
        Change(member, ChangeKind.CHANGED, f"{member} changed (compare the two files: this diff cannot word it yet)")
        for member in missing
    ]


def meaning(policy: Policy) -> dict[str, object]:
    """A policy as plain data, without its version, in the form the diff compares.

    Lists whose order means nothing are sorted, an SLA without a schedule has the default one (always
    active, no deadlines), and cron expressions have single spaces between their fields.
    """
    document = policy.model_dump(mode="json", by_alias=True, exclude={"version"})
    for spec in document["objects"].values():
        spec["replicas"] = sorted(spec["replicas"])
        for field in spec["fields"].values():
            if field["in"] is not None:
                field["in"] = sorted(field["in"], key=lambda value: (type(value).__name__, repr(value)))
    for sla, spec in zip(document["slas"], policy.slas, strict=True):
        sla["notify"] = sorted(sla["notify"])
        sla["schedule"] = _schedule_terms(spec.schedule)
    document["slas"] = sorted(document["slas"], key=lambda sla: (sla["source"], sla["object"]))
    return document


def _version_change(old: Policy, new: Policy, *, changed: bool) -> Change | None:
    if new.version > old.version:
        tail = "" if changed else " (nothing else changes)"
        return Change("version", ChangeKind.VERSION, f"version raised from {old.version} to {new.version}{tail}")
    if new.version < old.version:
        return Change(
            "version",
            ChangeKind.VERSION,
            f"version goes down from {old.version} to {new.version}: publishing it will be refused; "
            f"raise it to {old.version + 1}",
        )
    if changed:
        return Change(
            "version",
            ChangeKind.VERSION,
            f"version stays at {new.version}: a published policy needs a higher version; raise it to {new.version + 1}",
        )
    return None


def _named_settings(old: Policy, new: Policy) -> Iterator[Change]:
    if old.policy != new.policy:
        yield Change("policy", ChangeKind.CHANGED, f"policy renamed from {old.policy} to {new.policy}")
    yield from _duration("clock_skew", "clock_skew", old.clock_skew, new.clock_skew, shorter_is_tighter=True)
    if old.naive_timestamps != new.naive_timestamps:
        kind = ChangeKind.LOOSENED if new.naive_timestamps == "utc" else ChangeKind.TIGHTENED
        words = {"utc": "read as UTC", "reject": "refused"}
        yield Change(
            "naive_timestamps",
            kind,
            f"naive_timestamps {kind} from {old.naive_timestamps} to {new.naive_timestamps}: timestamps without "
            f"a UTC offset are now {words[new.naive_timestamps]}",
        )


# --- collections keyed by name ------------------------------------------------------------------

_T = TypeVar("_T")


def _keyed(
    section: str,
    old: Mapping[str, _T],
    new: Mapping[str, _T],
    *,
    changed: Callable[[str, str, _T, _T], Iterator[Change]],
    added: Callable[[str, str, _T], Change],
    removed: Callable[[str, str, _T], Change],
) -> Iterator[Change]:
    for name in sorted(old.keys() - new.keys()):
        yield removed(f"{section}.{name}", name, old[name])
    for name in sorted(new.keys() - old.keys()):
        yield added(f"{section}.{name}", name, new[name])
    for name in sorted(old.keys() & new.keys()):
        if old[name] != new[name]:
            yield from changed(f"{section}.{name}", name, old[name], new[name])


# --- sources ------------------------------------------------------------------------------------


def _source_added(path: str, name: str, spec: SourceSpec) -> Change:
    extras = [f"team {spec.team}"] if spec.team else []
    if spec.signing_key_env:
        extras.append(f"signed with the key in ${spec.signing_key_env}")
    return Change(path, ChangeKind.ADDED, f"source {name} added" + (f" ({', '.join(extras)})" if extras else ""))


def _source_removed(path: str, name: str, spec: SourceSpec) -> Change:
    return Change(path, ChangeKind.REMOVED, f"source {name} removed: its records will be blocked UNKNOWN_SOURCE")


def _source_changes(path: str, name: str, old: SourceSpec, new: SourceSpec) -> Iterator[Change]:
    if old.team != new.team:
        yield Change(f"{path}.team", ChangeKind.CHANGED, f"source {name}: team {_from_to(old.team, new.team)}")
    if old.signing_key_env != new.signing_key_env:
        before, after = old.signing_key_env, new.signing_key_env
        if before is None:
            kind, words = ChangeKind.TIGHTENED, f"records must now be signed (key in ${after})"
        elif after is None:
            kind, words = ChangeKind.LOOSENED, f"records no longer need a signature (the key was in ${before})"
        else:
            kind, words = ChangeKind.CHANGED, f"signing key now read from ${after} (was ${before})"
        yield Change(f"{path}.signing_key_env", kind, f"source {name}: {words}")


# --- objects ------------------------------------------------------------------------------------


def _object_added(path: str, name: str, spec: ObjectSpec) -> Change:
    return Change(
        path, ChangeKind.ADDED, f"{name}: added (owner {spec.owner}, max_age {format_duration(spec.max_age)})"
    )


def _object_removed(path: str, name: str, spec: ObjectSpec) -> Change:
    return Change(path, ChangeKind.REMOVED, f"{name}: removed: its records will be blocked UNKNOWN_OBJECT")


def _object_changes(path: str, name: str, old: ObjectSpec, new: ObjectSpec) -> Iterator[Change]:
    if old.owner != new.owner:
        yield Change(f"{path}.owner", ChangeKind.CHANGED, f"{name}: owner changed from {old.owner} to {new.owner}")
    for replica in sorted(set(new.replicas) - set(old.replicas)):
        yield Change(f"{path}.replicas.{replica}", ChangeKind.ADDED, f"{name}: replica {replica} added")
    for replica in sorted(set(old.replicas) - set(new.replicas)):
        fate = "it is the owner now" if replica == new.owner else "its copies will be blocked UNAUTHORIZED_SOURCE"
        yield Change(f"{path}.replicas.{replica}", ChangeKind.REMOVED, f"{name}: replica {replica} removed: {fate}")
    yield from _duration(f"{path}.max_age", f"{name}: max_age", old.max_age, new.max_age, shorter_is_tighter=True)
    yield from _duration(f"{path}.warn_age", f"{name}: warn_age", old.warn_age, new.warn_age, shorter_is_tighter=True)
    if old.on_conflict != new.on_conflict:
        yield Change(
            f"{path}.on_conflict",
            ChangeKind.CHANGED,
            f"{name}: on_conflict changed from {old.on_conflict} to {new.on_conflict}",
        )
    if old.require_lineage != new.require_lineage:
        kind = ChangeKind.TIGHTENED if new.require_lineage else ChangeKind.LOOSENED
        words = "records must now carry a lineage chain" if new.require_lineage else "a lineage chain is now optional"
        yield Change(f"{path}.require_lineage", kind, f"{name}: {words}")
    yield from _keyed(
        f"{path}.fields",
        old.fields,
        new.fields,
        changed=lambda p, field, a, b: _field_changes(p, f"{name}.{field}", a, b),
        added=lambda p, field, spec: Change(
            p, ChangeKind.ADDED, f"{name}: field {field} added ({describe_field(spec)})"
        ),
        removed=lambda p, field, _: Change(
            p, ChangeKind.REMOVED, f"{name}: field {field} removed: it is no longer checked"
        ),
    )


def describe_field(spec: FieldSpec) -> str:
    """A field's contract in a few words: `str, required, pattern '^[A-Z]{3}$'`."""
    words: list[str] = [spec.type]
    if spec.required:
        words.append("required")
    if spec.nullable:
        words.append("nullable")
    for name in ("min", "max", "min_length", "max_length"):
        value = getattr(spec, name)
        if value is not None:
            words.append(f"{name} {_number(value)}")
    if spec.in_ is not None:
        words.append(f"one of {_values(spec.in_)}")
    if spec.pattern is not None:
        words.append(f"pattern {spec.pattern!r}")
    return ", ".join(words)


def _field_changes(path: str, label: str, old: FieldSpec, new: FieldSpec) -> Iterator[Change]:
    if old.type != new.type:
        yield Change(f"{path}.type", ChangeKind.CHANGED, f"{label}: type changed from {old.type} to {new.type}")
    if old.required != new.required:
        kind = ChangeKind.TIGHTENED if new.required else ChangeKind.LOOSENED
        yield Change(f"{path}.required", kind, f"{label}: {'now required' if new.required else 'no longer required'}")
    if old.nullable != new.nullable:
        kind = ChangeKind.LOOSENED if new.nullable else ChangeKind.TIGHTENED
        words = "null is now allowed" if new.nullable else "null is no longer allowed"
        yield Change(f"{path}.nullable", kind, f"{label}: {words}")
    for name, higher_is_tighter in (("min", True), ("max", False), ("min_length", True), ("max_length", False)):
        before, after = getattr(old, name), getattr(new, name)
        yield from _bound(f"{path}.{name}", f"{label}: {name}", before, after, higher_is_tighter=higher_is_tighter)
    if _value_set(old.in_) != _value_set(new.in_):
        yield _allowed_values(f"{path}.in", label, old.in_, new.in_)
    if old.pattern != new.pattern:
        if old.pattern is None:
            kind, words = ChangeKind.TIGHTENED, f"pattern {new.pattern!r} added"
        elif new.pattern is None:
            kind, words = ChangeKind.LOOSENED, f"pattern {old.pattern!r} removed"
        else:
            kind, words = ChangeKind.CHANGED, f"pattern changed from {old.pattern!r} to {new.pattern!r}"
        yield Change(f"{path}.pattern", kind, f"{label}: {words}")


def _allowed_values(path: str, label: str, old: Sequence[Scalar] | None, new: Sequence[Scalar] | None) -> Change:
    if old is None and new is not None:
        return Change(path, ChangeKind.TIGHTENED, f"{label}: values now limited to {_values(new)}")
    if new is None and old is not None:
        return Change(path, ChangeKind.LOOSENED, f"{label}: any value now allowed (was one of {_values(old)})")
    before, after = _value_set(old) or frozenset(), _value_set(new) or frozenset()
    gained = [value for value in new or () if _key(value) in after - before]
    lost = [value for value in old or () if _key(value) in before - after]
    parts = ([f"{_values(gained)} now allowed"] if gained else []) + ([f"{_values(lost)} no longer"] if lost else [])
    kind = ChangeKind.CHANGED if gained and lost else ChangeKind.LOOSENED if gained else ChangeKind.TIGHTENED
    return Change(path, kind, f"{label}: allowed values {kind}: {'; '.join(parts)}")


def _key(value: Scalar) -> tuple[str, Scalar]:
    # `1`, `1.0` and `True` are equal in Python, but not the same allowed value in a contract.
    return (type(value).__name__, value)


def _value_set(values: Sequence[Scalar] | None) -> frozenset[tuple[str, Scalar]] | None:
    return None if values is None else frozenset(_key(value) for value in values)


# --- SLAs and notify channels -------------------------------------------------------------------


def _slas_by_point(slas: Sequence[SLASpec]) -> dict[str, SLASpec]:
    """SLAs keyed by integration point (`sap→customer`); a point listed twice is told apart by its place."""
    keyed: dict[str, SLASpec] = {}
    for sla in slas:
        point = f"{sla.source}→{sla.object}"
        count = sum(1 for known in keyed if known == point or known.startswith(f"{point} #"))
        keyed[point if count == 0 else f"{point} #{count + 1}"] = sla
    return keyed


def _sla_added(path: str, point: str, sla: SLASpec) -> Change:
    return Change(path, ChangeKind.ADDED, f"slas {point}: added ({_sla_terms(sla)})")


def _sla_removed(path: str, point: str, sla: SLASpec) -> Change:
    return Change(path, ChangeKind.REMOVED, f"slas {point}: removed (was {_sla_terms(sla)})")


def _sla_terms(sla: SLASpec) -> str:
    terms = [f"max_lag {format_duration(sla.max_lag)}"] if sla.max_lag is not None else []
    if sla.max_block_rate is not None:
        terms.append(f"max_block_rate {_percent(sla.max_block_rate)}")
    terms.append(f"window {format_duration(sla.window)}")
    if sla.recovery is not None:
        terms.append(f"recovery {format_duration(sla.recovery)}")
    return ", ".join(terms)


def _sla_changes(path: str, point: str, old: SLASpec, new: SLASpec) -> Iterator[Change]:
    label = f"slas {point}"
    yield from _duration(f"{path}.max_lag", f"{label}: max_lag", old.max_lag, new.max_lag, shorter_is_tighter=True)
    if old.max_block_rate != new.max_block_rate:
        yield _rate(f"{path}.max_block_rate", f"{label}: max_block_rate", old.max_block_rate, new.max_block_rate)
    yield from _duration(f"{path}.window", f"{label}: window", old.window, new.window, shorter_is_tighter=None)
    yield from _duration(f"{path}.recovery", f"{label}: recovery", old.recovery, new.recovery, shorter_is_tighter=True)
    for channel in sorted(set(new.notify) - set(old.notify)):
        yield Change(f"{path}.notify.{channel}", ChangeKind.ADDED, f"{label}: now notifies {channel}")
    for channel in sorted(set(old.notify) - set(new.notify)):
        yield Change(f"{path}.notify.{channel}", ChangeKind.REMOVED, f"{label}: no longer notifies {channel}")
    yield from _schedule_changes(f"{path}.schedule", f"{label}: schedule", old.schedule, new.schedule)
    yield from _duration(
        f"{path}.retire_writers_after", f"{label}: retire_writers_after", old.retire_writers_after,
        new.retire_writers_after, shorter_is_tighter=None,
    )  # fmt: skip
    if old.runbook != new.runbook:
        yield Change(f"{path}.runbook", ChangeKind.CHANGED, f"{label}: runbook {old.runbook or '(none)'} → "
                     f"{new.runbook or '(none)'}")  # fmt: skip


def _schedule_terms(schedule: ScheduleSpec | None) -> dict[str, str | None]:
    """What a schedule means: no schedule is the default one (UTC, always active, no deadlines)."""
    spec = schedule if schedule is not None else ScheduleSpec()
    return {
        "timezone": spec.timezone,
        "active": _cron_text(spec.active),
        "expected_by": _cron_text(spec.expected_by),
        "warn_before": None if spec.warn_before is None else format_duration(spec.warn_before),
    }


def _cron_text(cron: str | None) -> str | None:
    return None if cron is None else " ".join(cron.split())


def _schedule_changes(path: str, label: str, old: ScheduleSpec | None, new: ScheduleSpec | None) -> Iterator[Change]:
    before, after = _schedule_terms(old), _schedule_terms(new)
    if before["timezone"] != after["timezone"]:
        yield Change(
            f"{path}.timezone",
            ChangeKind.CHANGED,
            f"{label} timezone now {after['timezone']} (was {before['timezone']})",
        )
    was, now = before["active"], after["active"]
    if was != now:
        if was is None:
            kind, tail = ChangeKind.LOOSENED, ": outside them the lag is not judged"
        elif now is None:
            kind, tail = ChangeKind.TIGHTENED, ": the lag is now judged at every hour"
        else:
            kind, tail = ChangeKind.CHANGED, ""
        yield Change(
            f"{path}.active",
            kind,
            f"{label} active hours now {_cron_words(now, 'always')} (was {_cron_words(was, 'always')}){tail}",
        )
    was, now = before["expected_by"], after["expected_by"]
    if was != now:
        if was is None:
            tail = ": a sync is due by each deadline, and max_lag is not applied"
        elif now is None:
            tail = ": no deadlines, max_lag applies again"
        else:
            tail = ""
        yield Change(
            f"{path}.expected_by",
            ChangeKind.CHANGED,
            f"{label} expected_by now {_cron_words(now, 'none')} (was {_cron_words(was, 'none')}){tail}",
        )
    yield from _warning_changes(path, label, old, new)


def _warning_changes(path: str, label: str, old: ScheduleSpec | None, new: ScheduleSpec | None) -> Iterator[Change]:
    """A longer warn_before warns earlier (tighter); none warns only when the deadline is missed."""
    was = None if old is None else old.warn_before
    now = None if new is None else new.warn_before
    yield from _duration(f"{path}.warn_before", f"{label} warn_before", was, now, shorter_is_tighter=False)


def _cron_words(cron: str | None, absent: str) -> str:
    return absent if cron is None else repr(cron)


def _rate(path: str, label: str, old: float | None, new: float | None) -> Change:
    if old is None:
        return Change(path, ChangeKind.TIGHTENED, f"{label} {_percent(new)} added")
    if new is None:
        return Change(path, ChangeKind.LOOSENED, f"{label} {_percent(old)} removed")
    kind = ChangeKind.TIGHTENED if new < old else ChangeKind.LOOSENED
    return Change(path, kind, f"{label} {kind} from {_percent(old)} to {_percent(new)}")


def _notify_added(path: str, name: str, spec: NotifySpec) -> Change:
    return Change(path, ChangeKind.ADDED, f"notify channel {name} added ({_channel_terms(spec)})")


def _notify_removed(path: str, name: str, spec: NotifySpec) -> Change:
    return Change(path, ChangeKind.REMOVED, f"notify channel {name} removed (was {_channel_terms(spec)})")


_KIND_WORDS = {"webhook": "webhook", "slack": "Slack", "pagerduty": "PagerDuty"}


def _channel_terms(spec: NotifySpec) -> str:
    """`webhook, URL in $OPS_URL`; `PagerDuty, routing key in $PD_KEY, PagerDuty's own Events API URL`."""
    terms = [_KIND_WORDS[spec.kind], _url_words(spec)]
    if spec.routing_key_env is not None:
        terms.insert(1, f"routing key in ${spec.routing_key_env}")
    return ", ".join(terms)


def _url_words(spec: NotifySpec) -> str:
    if spec.webhook_env is not None:
        return f"URL in ${spec.webhook_env}"
    return "PagerDuty's own Events API URL"  # the model lets only a pagerduty channel leave webhook_env out


def _notify_changes(path: str, name: str, old: NotifySpec, new: NotifySpec) -> Iterator[Change]:
    label = f"notify channel {name}"
    if old.kind != new.kind:
        yield Change(
            f"{path}.kind",
            ChangeKind.CHANGED,
            f"{label}: now sends {_KIND_WORDS[new.kind]} alerts (was {_KIND_WORDS[old.kind]})",
        )
    if old.webhook_env != new.webhook_env:
        prefix = "webhook " if old.kind == new.kind == "webhook" else ""
        now = f"read from ${new.webhook_env}" if new.webhook_env is not None else "PagerDuty's own Events API URL"
        was = f"${old.webhook_env}" if old.webhook_env is not None else "PagerDuty's own Events API URL"
        yield Change(f"{path}.webhook_env", ChangeKind.CHANGED, f"{label}: {prefix}URL now {now} (was {was})")
    if old.routing_key_env != new.routing_key_env:
        now = f"read from ${new.routing_key_env}" if new.routing_key_env is not None else "not read"
        was = f"${old.routing_key_env}" if old.routing_key_env is not None else "none"
        yield Change(f"{path}.routing_key_env", ChangeKind.CHANGED, f"{label}: routing key now {now} (was {was})")


# --- values -------------------------------------------------------------------------------------


def _duration(
    path: str, label: str, old: timedelta | None, new: timedelta | None, *, shorter_is_tighter: bool | None
) -> Iterator[Change]:
    if old == new:
        return
    if old is None and new is not None:
        yield Change(path, ChangeKind.ADDED, f"{label} {format_duration(new)} added")
        return
    if old is not None and new is None:
        yield Change(path, ChangeKind.REMOVED, f"{label} {format_duration(old)} removed")
        return
    if old is None or new is None:
        return
    if shorter_is_tighter is None:
        kind = ChangeKind.CHANGED
    else:
        kind = ChangeKind.TIGHTENED if (new < old) == shorter_is_tighter else ChangeKind.LOOSENED
    yield Change(path, kind, f"{label} {kind} from {format_duration(old)} to {format_duration(new)}")


def _bound(path: str, label: str, old: float | None, new: float | None, *, higher_is_tighter: bool) -> Iterator[Change]:
    if old == new and type(old) is type(new):
        return
    if old is None or new is None:
        present = new if old is None else old
        kind = ChangeKind.TIGHTENED if old is None else ChangeKind.LOOSENED
        yield Change(path, kind, f"{label} {_number(present)} {'added' if old is None else 'removed'}")
        return
    if old == new:  # 1 and 1.0: the same bound, written another way
        yield Change(path, ChangeKind.CHANGED, f"{label} written as {_number(new)} (was {_number(old)})")
        return
    kind = ChangeKind.TIGHTENED if (new > old) == higher_is_tighter else ChangeKind.LOOSENED
    yield Change(path, kind, f"{label} {kind} from {_number(old)} to {_number(new)}")


def _from_to(old: str | None, new: str | None) -> str:
    if old is None:
        return f"set to {new}"
    if new is None:
        return f"{old} removed"
    return f"changed from {old} to {new}"


def _number(value: float | None) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _percent(rate: float | None) -> str:
    return "none" if rate is None else f"{rate * 100:g}%"


def _values(values: Sequence[Scalar]) -> str:
    return ", ".join(str(value) if isinstance(value, str) else repr(value) for value in values)
