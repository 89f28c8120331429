"""Retrieved documents as records: the envelope read from a document's metadata, shared by the LangChain and
LlamaIndex integrations.

A document's metadata members named like the envelope's (`id`, `object`, `key`, `source`,
`observed_at`, `updated_at`, `fields`, `lineage`, `signature`) become its envelope, `content` its
text, `id` the document's own id (else `doc-<position>`); a mapping adds to or overrides that, as
{envelope member: metadata key} or a function of the document. A document that carries none of
`object`, `key` and `source` has no envelope at all: the guard decides it INVALID_RECORD like any
malformed record, and the integrations say why in words (`no_envelope`) and log a warning once per
retriever, since it usually means the documents were loaded without Freshguard's metadata.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from guard import Action, CheckResult, Decision, Reason, ReasonCode

_log = logging.getLogger("freshguard.integrations")

#: Envelope members read from a document's metadata under the same name.
ENVELOPE_MEMBERS = ("id", "object", "key", "source", "observed_at", "updated_at", "fields", "lineage", "signature")
#: The members that say what a record is about and where it came from; a document with none has no envelope.
IDENTITY_MEMBERS = ("object", "key", "source")

#: {envelope member: metadata key}, or a function from a document to envelope members.
Mapping_ = Mapping[str, str] | Callable[[Any], Mapping[str, Any]]
_D = TypeVar("_D")


def envelope_of(
    document: Any,
    metadata: Mapping[str, Any],
    content: str,
    *,
    doc_id: str | None,
    position: int,
    mapping: Mapping_ | None = None,
) -> dict[str, Any]:
    """The record envelope of one document: the metadata members named like the envelope's, then `mapping`."""
    envelope: dict[str, Any] = {member: _json(metadata[member]) for member in ENVELOPE_MEMBERS if member in metadata}
    envelope.setdefault("id", doc_id or f"doc-{position}")
    envelope["content"] = content
    if callable(mapping):
        envelope.update({member: _json(value) for member, value in mapping(document).items()})
    elif mapping is not None:
        for member, key in mapping.items():
            if key in metadata:
                envelope[member] = _json(metadata[key])
    return envelope


def _json(value: Any) -> Any:
    # Timestamps in metadata are often datetimes; the envelope carries ISO 8601 text.
    return value.isoformat() if isinstance(value, datetime) else value


def validate_mapping(value: object) -> object:
    """`value` when it is a valid mapping (None, a function, or {envelope member: metadata key}); else ValueError."""
    if value is None or callable(value):
        return value
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError("mapping must be {envelope member: metadata key} or a function of the document -> members")
    unknown = sorted(set(value) - {*ENVELOPE_MEMBERS, "content"})
    if unknown:
        raise ValueError(
            f"mapping names {', '.join(unknown)}, which are not envelope members; "
            f"use: {', '.join([*ENVELOPE_MEMBERS, 'content'])}"
        )
    return value


def lacks_envelope(envelope: Mapping[str, Any]) -> bool:
    """True when a document's envelope has none of `object`, `key` and `source`: its metadata carried none."""
    return not any(member in envelope for member in IDENTITY_MEMBERS)


def no_envelope(decision: Decision, what: str = "document") -> Decision:
    """The decision about a document without an envelope, with a reason that says so and what to do."""
    reason = Reason(
        ReasonCode.INVALID_RECORD,
        f"{what} {decision.id} carries no record envelope in its metadata (no object, key or source), so Freshguard "
        "cannot tell what it is about, where it came from or how old it is; add those members to the metadata "
        "when the documents are loaded, or name the metadata keys that hold them with mapping=",
        {"problem": "no_envelope", "missing": list(IDENTITY_MEMBERS)},
    )
    return dataclasses.replace(decision, reasons=(reason,))


class OnceWarning:
    """Logs the warning about documents without an envelope once (per retriever or postprocessor)."""

    def __init__(self) -> None:
        self.warned = False

    def documents_without_envelope(self, ids: list[str], pipeline: str) -> None:
        if self.warned or not ids:
            return
        self.warned = True
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        _log.warning(
            "freshguard: %d retrieved documents for pipeline %s carry no record envelope in their metadata (%s); "
            "they are withheld as INVALID_RECORD. Add object, key, source and observed_at to the metadata when "
            "the documents are loaded, or pass mapping= (this warning is logged once per retriever)",
            len(ids), pipeline, shown,
        )  # fmt: skip


def verdict(decision: Decision, result: CheckResult) -> dict[str, Any]:
    """What a kept document's metadata says of its decision: action, reasons, run and policy."""
    return {
        "action": decision.action.value,
        "reasons": [{"code": r.code.value, "message": r.message} for r in decision.reasons],
        "run_id": result.run_id,
        "policy": {"name": result.policy.name, "version": result.policy.version},
    }


def split(
    documents: Sequence[_D],
    envelopes: Sequence[Mapping[str, Any]],
    result: CheckResult,
    *,
    warning: OnceWarning,
    pipeline: str,
) -> tuple[list[tuple[_D, Decision]], list[tuple[_D, Decision]]]:
    """Documents with their decisions: the kept ones and the blocked ones (those without an envelope said so)."""
    bare = {i for i, envelope in enumerate(envelopes) if lacks_envelope(envelope)}
    warning.documents_without_envelope([str(envelopes[i]["id"]) for i in sorted(bare)], pipeline)
    kept: list[tuple[_D, Decision]] = []
    blocked: list[tuple[_D, Decision]] = []
    for i, (document, decision) in enumerate(zip(documents, result.decisions, strict=True)):
        if decision.action is Action.BLOCK:
            blocked.append((document, no_envelope(decision) if i in bare else decision))
        else:
            kept.append((document, decision))
    return kept, blocked
