"""Records in model context, in words: finding envelopes in text, telling the model what was withheld.

Pure functions shared by the OpenAI wrapper, the service's OpenAI-compatible gateway and its LiteLLM
guardrail endpoint, so the three read records and word notices the same way.

- A JSON object with the members `object`, `key` and `source` is taken for a record envelope.
- A text "carries records" when it is JSON holding one envelope, or a non-empty list of envelopes.
- A blocked record is replaced by a notice: `record withheld: <the reason, in words>`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from guard import Action, CheckResult, Decision

#: The members that make a JSON object a record envelope (`id` may be missing: the check says so).
ENVELOPE_MEMBERS = ("object", "key", "source")
NOTICE_PREFIX = "record withheld: "


def is_envelope(value: object) -> bool:
    """True for a mapping with the members `object`, `key` and `source`."""
    return isinstance(value, Mapping) and all(member in value for member in ENVELOPE_MEMBERS)


def envelopes_in_text(text: object) -> list[dict[str, Any]] | None:
    """The envelopes a text carries (one, or a list of them, as JSON); None when it carries none."""
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    if is_envelope(value):
        return [dict(value)]
    if isinstance(value, list) and value and all(is_envelope(item) for item in value):
        return [dict(item) for item in value]
    return None


def notice(decision: Decision) -> str:
    """What the model reads in place of a blocked record: `record withheld: customer C-1042 from sap is 3h old; ...`."""
    blocking = [reason.message for reason in decision.reasons if reason.code.action is Action.BLOCK]
    said = "; ".join(blocking) if blocking else f"record {decision.id} was blocked"
    return NOTICE_PREFIX + said


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


def context_text(records: Sequence[Mapping[str, Any]], result: CheckResult, *, include_notices: bool = False) -> str:
    """The context message for `records` decided in `result`: the allowed ones, and notices when asked for.

    `records` are envelopes in the order they were checked.
    """
    return context_text_for(list(zip(records, result.decisions, strict=True)), result, include_notices=include_notices)


def context_text_for(
    pairs: Sequence[tuple[Mapping[str, Any], Decision]], result: CheckResult, *, include_notices: bool = False
) -> str:
    """`context_text` for some of a check's records: (envelope, its decision) pairs."""
    lines = [f"Context records (checked by Freshguard, run {result.run_id}, policy {result.policy.name} "
             f"v{result.policy.version}):"]  # fmt: skip
    for record, decision in pairs:
        if decision.action is not Action.BLOCK:
            lines.append(f"- {describe(record)}")
        elif include_notices:
            lines.append(f"- {notice(decision)}")
    if len(lines) == 1:
        lines.append("- (none may be shown)")
    return "\n".join(lines)


def summary(result: CheckResult, *, limit: int = 5) -> str:
    """The blocked records of a check, in words: `doc-3: customer C-2001 from sap is 3h 5m old; ...`."""
    blocked = result.blocked
    parts = [f"{d.id}: {notice(d).removeprefix(NOTICE_PREFIX)}" for d in blocked[:limit]]
    more = f" (and {len(blocked) - limit} more)" if len(blocked) > limit else ""
    return " | ".join(parts) + more
