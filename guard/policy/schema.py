"""The JSON Schema of a policy file, generated from the pydantic models (never written by hand).

Editors use it for completion and validation as you type. It describes the file as written:
durations are text (`15m`, `1h30m`, `PT15M`) or a number of seconds, field checks are named as
in the file (`in`, not `in_`). What a schema cannot say (an owner must be a declared source, a
source cannot be both owner and replica) is checked when the policy loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from guard._durations import DURATION_FORMS, format_duration, parse_duration
from guard.policy.model import Policy

#: Where the schema says it lives; editors only need the text, so this names it, it is not fetched.
SCHEMA_ID = "https://freshguard.dev/schemas/policy.json"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Loose on purpose: every form the loader reads starts with a digit, `+` or `P` (`15m`, `1:30:00`, `PT15M`);
# the loader has the last word, the editor only catches words like `soon`.
_DURATION_TEXT = r"^\s*[+]?[0-9.Pp]"


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) a policy file (YAML or JSON) must satisfy."""
    schema = Policy.model_json_schema(by_alias=True, mode="validation")
    for node in _nodes(schema):
        if node.get("format") == "duration":
            _as_written_duration(node)
    return {
        "$schema": _DRAFT,
        "$id": SCHEMA_ID,
        **schema,
        "title": "Freshguard policy",
        "description": (
            "A Freshguard policy file: the sources data is copied out of, the objects they hold (one owner "
            "each, the replicas allowed to serve copies, the freshness SLA, the contract), and the operational "
            "SLAs per integration point. `freshguard policy validate FILE` checks what this schema cannot "
            "(cross-references, patterns the contract engine can run)."
        ),
    }


def _nodes(node: object) -> Iterator[dict[str, Any]]:
    """Every mapping inside a schema, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item)


def _as_written_duration(node: dict[str, Any]) -> None:
    """A duration as the file writes it: text in one of the accepted forms, or seconds (pydantic says ISO text)."""
    examples = node.pop("examples", None)
    node.pop("format", None)
    node.pop("type", None)
    node["anyOf"] = [
        {"type": "string", "pattern": _DURATION_TEXT, "description": f"a duration: {DURATION_FORMS}"},
        {"type": "number", "minimum": 0, "description": "a number of seconds"},
    ]
    if examples is not None:
        node["examples"] = [*examples, 3600]
    if isinstance(node.get("default"), str):
        node["default"] = format_duration(parse_duration(node["default"]))
