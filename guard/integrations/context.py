"""Records in model context, in words: finding records in text, telling the model what was withheld.

Pure functions shared by the OpenAI wrapper, the service's OpenAI-compatible gateway and its LiteLLM
guardrail endpoint, so the three read records and word notices the same way.

Reading is fail-closed: anything that looks like a record goes to the check, where a malformed one is
decided INVALID_RECORD and withheld, and text the readers cannot take apart but that seems to hold
records is withheld whole rather than forwarded.

- A JSON object is *record-like* when it carries at least two of the envelope's required members
  `id`, `object`, `key` and `source` (an envelope missing one of them is still a record, and is
  decided INVALID_RECORD).
- A text that is JSON is read as: one record (a record-like object); a list with at least one
  record-like item (every item is checked, so a stray item is decided too); or a wrapping object, read
  one level deep: each record-like member, and every item of each list member holding a record-like
  item (`{"results": [...]}`, `{"data": [...]}`, any name).
- A text is *unreadable* (withheld whole, with a notice) when its JSON holds record-like objects
  anywhere the rules above do not reach, or when it is not JSON alone (JSON followed by prose, prose
  around JSON, JSON nested too deep to parse) but names at least two required members as JSON members
  (`"key":`, `"source":`).
- A blocked record is replaced by a notice built from its entity and reason codes, never from its
  values: `record withheld: customer C-2001 from sap (STALE: 3h 5m old, the limit is 1h)`. Operators
  get the full messages (lineage, refusals) through `summary`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from guard import Action, CheckResult, Decision, Reason, ReasonCode
from guard._durations import humanize_seconds

#: The envelope's required members; two of them make a JSON object record-like.
REQUIRED_MEMBERS = ("id", "object", "key", "source")
NOTICE_PREFIX = "record withheld: "
UNREADABLE_PREFIX = "tool result withheld: "

#: Where a record sits inside a text's JSON: () the whole text, (3,) item 3, ("results", 3), ("customer",).
JsonPath: TypeAlias = tuple[str | int, ...]

_MEMBER_IN_TEXT = re.compile(r'"(id|object|key|source)"\s*:')


def is_record_like(value: object) -> bool:
    """True for a mapping with at least two of the members `id`, `object`, `key` and `source`."""
    if not isinstance(value, Mapping):
        return False
    return sum(1 for member in REQUIRED_MEMBERS if member in value) >= 2


@dataclass(frozen=True, slots=True)
class TextRecords:
    """The records a text carries: the text's JSON value, and each record with its path in it, in order."""

    document: Any
    records: list[tuple[JsonPath, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A text that seems to hold records the readers cannot take apart one by one; `why` says how, in words."""

    why: str

    def notice(self) -> str:
        return (
            f"{UNREADABLE_PREFIX}it seems to hold records Freshguard cannot check one by one ({self.why}); "
            "a tool must return records as JSON alone: a record, a list of records, or an object whose "
            "members are records or lists of records"
        )


def read_text(text: object) -> TextRecords | Unreadable | None:
    """What a tool's text carries: records (`TextRecords`), something to withhold (`Unreadable`), or None."""
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):
            pass
        else:
            return read_value(value)
    return _prose(stripped)


def _prose(text: str) -> Unreadable | None:
    named = {match.group(1) for match in _MEMBER_IN_TEXT.finditer(text)}
    if len(named) >= 2:
        return Unreadable("record-like JSON mixed with other text, or too deeply nested to read")
    return None


def read_value(value: Any) -> TextRecords | Unreadable | None:
    """`read_text` for a JSON value already parsed."""
    if is_record_like(value):
        return TextRecords(value, [((), value)])
    found: list[tuple[JsonPath, Any]] = []
    if isinstance(value, list):
        if any(is_record_like(item) for item in value):
            found = [((i,), item) for i, item in enumerate(value)]
    elif isinstance(value, Mapping):
        for name, member in value.items():
            if is_record_like(member):
                found.append(((name,), member))
            elif isinstance(member, list) and any(is_record_like(item) for item in member):
                found += [((name, i), item) for i, item in enumerate(member)]
    if _records_elsewhere(value, {path for path, _ in found}):
        return Unreadable("records nested deeper than the reading rules go")
    return TextRecords(value, found) if found else None


def _records_elsewhere(value: Any, taken: set[JsonPath]) -> bool:
    """True when a record-like object sits in `value` outside the subtrees at `taken` (iterative: any depth)."""
    stack: list[tuple[JsonPath, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if path in taken:
            continue
        if path and is_record_like(node):
            return True
        if isinstance(node, Mapping):
            stack.extend(((*path, name), member) for name, member in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), item) for i, item in enumerate(node))
    return False


def path_text(path: JsonPath) -> str:
    """A path as a suffix of a location: `.results[3]`, `[0]`, `["odd name"]`."""
    out = []
    for step in path:
        if isinstance(step, int):
            out.append(f"[{step}]")
        elif step.isidentifier():
            out.append(f".{step}")
        else:
            out.append(f"[{json.dumps(step, ensure_ascii=False)}]")
    return "".join(out)


def replaced(document: Any, replacements: Sequence[tuple[JsonPath, Any]]) -> Any:
    """A deep copy of a JSON `document` with the value at each path replaced (() replaces it whole)."""
    copy: Any = json.loads(json.dumps(document))
    for path, value in replacements:
        if not path:
            copy = value
            continue
        parent = copy
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    return copy


# -- notices: what the model reads in place of a blocked record ------------------------------------------

_LABEL_LIMIT = 64


def _part(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _LABEL_LIMIT else text[: _LABEL_LIMIT - 3] + "..."


def entity_label(decision: Decision) -> str:
    """How a notice names a record: `customer C-1042 from sap`, or `record doc-7` when the envelope is malformed."""
    if decision.object and decision.key and decision.source:
        return f"{_part(decision.object)} {_part(decision.key)} from {_part(decision.source)}"
    return f"record {_part(decision.id)}"


_FIXED = {
    ReasonCode.UNKNOWN_OBJECT: "the policy does not cover this object",
    ReasonCode.UNKNOWN_SOURCE: "the policy does not know this source",
    ReasonCode.MISSING_TIMESTAMP: "neither observed_at nor updated_at, so its age is unknown",
    ReasonCode.MISSING_PROVENANCE: "no lineage chain, which the policy requires",
    ReasonCode.UNSIGNED: "not signed, and its source must sign",
    ReasonCode.BAD_SIGNATURE: "its signature does not verify",
}
_MEMBER_NAMED = re.compile(r"^`([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?)")


def _seconds(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return humanize_seconds(float(value))
    return None


def _listed(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(_part(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def reason_phrase(reason: Reason) -> str:
    """A reason in a few words that carry no value of the record (ages and limits only)."""
    code, detail = reason.code, reason.detail
    if code in _FIXED:
        return _FIXED[code]
    if code is ReasonCode.STALE:
        age, limit = _seconds(detail.get("age_s")), _seconds(detail.get("max_age_s"))
        return f"{age} old, the limit is {limit}" if age and limit else "older than its limit"
    if code is ReasonCode.AGING:
        age = _seconds(detail.get("age_s"))
        return f"{age} old, past its warning mark" if age else "past its warning mark"
    if code is ReasonCode.FUTURE_TIMESTAMP:
        ahead, member = _seconds(detail.get("ahead_s")), detail.get("member")
        if ahead and member in ("observed_at", "updated_at"):
            return f"{member} is {ahead} in the future"
        return "a timestamp in the future"
    if code is ReasonCode.INVALID_RECORD:
        problems = detail.get("problems")
        members: list[str] = []
        for problem in problems if isinstance(problems, list) else []:
            if isinstance(problem, str):
                if problem.startswith("duplicate id"):
                    return "its id is used twice in this check"
                named = _MEMBER_NAMED.match(problem)
                if named and named.group(1) not in members:
                    members.append(named.group(1))
        return f"malformed envelope ({_listed(members)})" if members else "not a valid record envelope"
    if code is ReasonCode.UNAUTHORIZED_SOURCE:
        owner = detail.get("owner")
        return (
            f"this source may not serve it; the system of record is {_part(owner)}"
            if owner
            else ("this source may not serve it")
        )
    if code is ReasonCode.SCHEMA_VIOLATION:
        violations = detail.get("violations")
        failed = []
        for v in violations if isinstance(violations, list) else []:
            if isinstance(v, Mapping) and isinstance(v.get("field"), str):
                failed.append(f"{v['field']} ({v.get('check')})")
        return f"breaks its contract on {_listed(failed)}" if failed else "breaks its contract"
    if code is ReasonCode.PROVENANCE_BROKEN:
        if detail.get("problem") == "order":
            return "its lineage goes back in time"
        owner = detail.get("owner")
        return (
            f"its lineage does not start at {_part(owner)}, the system of record"
            if owner
            else ("its lineage does not start at the system of record")
        )
    if code is ReasonCode.SUPERSEDED:
        owner = detail.get("owner")
        return f"{_part(owner)}, the system of record, has a newer version" if owner else "a newer version is known"
    if code is ReasonCode.CONFLICT:
        kept = detail.get("kept")
        return "another copy is used" if kept else "copies of it disagree, so none is used"
    return "blocked"


def notice(decision: Decision) -> str:
    """What the model reads in place of a blocked record: `record withheld: customer C-2001 from sap (STALE: ...)`.

    Built from the entity and the reason codes only, so a blocked record's values (a rejected credit
    limit, an invalid email) never reach the model through its notice.
    """
    blocking = [reason for reason in decision.reasons if reason.code.action is Action.BLOCK]
    said = "; ".join(f"{reason.code.value}: {reason_phrase(reason)}" for reason in blocking) or "blocked"
    return f"{NOTICE_PREFIX}{entity_label(decision)} ({said})"


def operator_reasons(decision: Decision) -> str:
    """A blocked record's blocking reasons in full words, for operators (they may quote the record's values)."""
    blocking = [reason.message for reason in decision.reasons if reason.code.action is Action.BLOCK]
    return "; ".join(blocking) if blocking else f"record {decision.id} was blocked"


def describe(record: Mapping[str, Any]) -> str:
    """A record as the model reads it: a header naming the entity and source, then its content (or fields)."""
    header = f"[{record.get('object')} {record.get('key')} from {record.get('source')}"
    when = record.get("observed_at") or record.get("updated_at")
    header += f", as of {when}]" if when else "]"
    content = record.get("content")
    if isinstance(content, str) and content:
        return f"{header} {content}"
    fields = record.get("fields")
    if isinstance(fields, Mapping) and fields:
        return f"{header} " + json.dumps(dict(fields), ensure_ascii=False, sort_keys=True, default=str)
    return header


def context_text(records: Sequence[Any], result: CheckResult, *, include_notices: bool = False) -> str:
    """The context message for `records` decided in `result`: the allowed ones, and notices when asked for.

    `records` are envelopes in the order they were checked.
    """
    return context_text_for(list(zip(records, result.decisions, strict=True)), result, include_notices=include_notices)


def context_text_for(
    pairs: Sequence[tuple[Any, Decision]], result: CheckResult, *, include_notices: bool = False
) -> str:
    """`context_text` for some of a check's records: (envelope, its decision) pairs (only mappings are allowed)."""
    lines = [f"Context records (checked by Freshguard, run {result.run_id}, policy {result.policy.name} "
             f"v{result.policy.version}):"]  # fmt: skip
    for record, decision in pairs:
        if decision.action is not Action.BLOCK:
            if isinstance(record, Mapping):  # always: a record that is not an object is never allowed
                lines.append(f"- {describe(record)}")
        elif include_notices:
            lines.append(f"- {notice(decision)}")
    if len(lines) == 1:
        lines.append("- (none may be shown)")
    return "\n".join(lines)


def summary(result: CheckResult, *, limit: int = 5) -> str:
    """The blocked records of a check in full words, for operators: `doc-3: customer C-2001 from sap is 3h 5m old; ...`.

    Not for the model: the messages may quote a blocked record's values (`notice` is the model's form).
    """
    blocked = result.blocked
    parts = [f"{d.id}: {operator_reasons(d)}" for d in blocked[:limit]]
    more = f" (and {len(blocked) - limit} more)" if len(blocked) > limit else ""
    return " | ".join(parts) + more
