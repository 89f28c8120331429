"""ODCS schema properties as policy field checks; the part of `guard.policy.odcs` that reads one property."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from guard.policy.model import FieldSpec

NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "timestamp": "datetime"}
# Property members that describe a field but check nothing: left out without a note.
_DESCRIPTIVE = frozenset({
    "id", "name", "businessName", "description", "physicalName", "physicalType", "tags", "classification",
    "examples", "transformSourceObjects", "transformLogic", "transformDescription", "authoritativeDefinitions",
    "customProperties", "criticalDataElement", "partitioned", "partitionKeyPosition", "primaryKeyPosition",
    "encryptedName", "semanticType", "logicalType", "logicalTypeOptions", "required", "enum", "quality",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Untranslated:
    """A part of the contract that carries a check or agreement the policy does not take over, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def type_words(value: object) -> str:
    """What a YAML value is, in words: `a mapping`, `a list`, `text`, `a number`."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def listed(member: Mapping[str, Any], key: str, where: str, notes: list[Untranslated], *, of: str) -> list[Any]:
    """`member[key]` when it is a list (absent or null: empty); any other type is noted with its path and skipped."""
    value = member.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        path = f"{where}.{key}" if where else key
        notes.append(Untranslated(path, f"must be a list of {of}, got {type_words(value)}; not translated"))
        return []
    return value


def field_specs(element: Mapping[str, Any], base: str, notes: list[Untranslated]) -> dict[str, dict[str, Any]]:
    """The `fields` of one schema object; what a property says that cannot be translated goes to `notes`."""
    fields: dict[str, dict[str, Any]] = {}
    for index, prop in enumerate(listed(element, "properties", base, notes, of="properties")):
        path = f"{base}.properties[{index}]"
        if not isinstance(prop, dict) or not prop.get("name"):
            notes.append(Untranslated(path, "a property without a name; not translated"))
            continue
        name = str(prop["name"])
        where = f"{path} ({name})"
        if not NAME.match(name):
            notes.append(Untranslated(where, "not a usable field name (letters, digits, _ . : -); not translated"))
            continue
        spec = _field(prop, where, notes)
        if spec is not None:
            fields[name] = spec
    return fields


def _field(prop: Mapping[str, Any], where: str, notes: list[Untranslated]) -> dict[str, Any] | None:
    logical = prop.get("logicalType")
    options = prop.get("logicalTypeOptions")
    if options is None:
        options = {}
    elif not isinstance(options, dict):
        notes.append(
            Untranslated(
                f"{where}.logicalTypeOptions",
                f"must be a mapping (minimum, maximum, minLength, maxLength, pattern ...), got {type_words(options)}; "
                "no option translated",
            )
        )
        options = {}
    if logical is None:
        notes.append(Untranslated(where, "no logicalType, so no type to check; not translated"))
        return None
    if logical not in (*_TYPES, "date", "time"):
        notes.append(Untranslated(where, f"logicalType {logical} has no Freshguard field type (scalars only)"))
        return None
    spec: dict[str, Any] = {"type": _TYPES.get(str(logical), "str")}
    if prop.get("required") is True:
        spec["required"] = True
    elif not _no_nulls(prop):
        spec["nullable"] = True  # ODCS: `required: false` (the default) means the value may be null
    spec.update(_options(str(logical), options, where, notes))
    allowed = _allowed(prop, where, notes)
    if allowed is not None:
        spec["in"] = allowed
    for key in ("unique", "primaryKey"):
        if prop.get(key) is True:
            notes.append(Untranslated(f"{where}.{key}", _KEY_WORDS[key]))
    for position, rule in enumerate(listed(prop, "quality", where, notes, of="quality rules")):
        if not _translated_rule(rule):
            notes.append(Untranslated(f"{where}.quality[{position}]", f"{_rule_words(rule)}: not a record check"))
    if prop.get("relationships"):
        notes.append(Untranslated(f"{where}.relationships", "a relationship between datasets; not a record check"))
    unknown_members(prop, _DESCRIPTIVE | {"unique", "primaryKey", "relationships"}, where, notes)
    return _valid(spec, where, notes)


_KEY_WORDS = {
    "unique": "uniqueness across a dataset; Freshguard checks records one check at a time",
    "primaryKey": "the record envelope's `key` identifies the entity; not a field check",
}


def _options(logical: str, options: Mapping[str, Any], where: str, notes: list[Untranslated]) -> dict[str, Any]:
    taken: dict[str, Any] = {}
    rest = dict(options)
    if logical == "string":
        for ours, theirs in (("min_length", "minLength"), ("max_length", "maxLength")):
            if theirs in rest:
                taken[ours] = rest.pop(theirs)
        if isinstance(rest.get("pattern"), str):
            taken["pattern"] = anchored(rest.pop("pattern"))
        elif "pattern" in rest:
            pattern = rest.pop("pattern")
            notes.append(
                Untranslated(
                    f"{where}.logicalTypeOptions.pattern",
                    f"must be text (a regular expression), got {type_words(pattern)} {pattern!r}; not translated",
                )
            )
    elif logical in ("integer", "number"):
        for ours, theirs in (("min", "minimum"), ("max", "maximum")):
            if theirs in rest and _finite_number(rest[theirs]):
                taken[ours] = rest.pop(theirs)
            elif theirs in rest:
                bound = rest.pop(theirs)
                notes.append(
                    Untranslated(
                        f"{where}.logicalTypeOptions.{theirs}",
                        f"must be a finite number, got {type_words(bound)} {bound!r}; not translated",
                    )
                )
        for ours, theirs, step in (("min", "exclusiveMinimum", 1), ("max", "exclusiveMaximum", -1)):
            bound = rest.get(theirs)
            if logical == "integer" and isinstance(bound, int) and not isinstance(bound, bool) and ours not in taken:
                taken[ours] = bound + step
                rest.pop(theirs)
    elif logical == "date" and rest.get("format", "yyyy-MM-dd") == "yyyy-MM-dd":
        rest.pop("format", None)
        taken["pattern"] = _DATE_PATTERN
    elif logical == "date" and "format" not in rest:
        taken["pattern"] = _DATE_PATTERN
    for key, value in rest.items():
        notes.append(Untranslated(f"{where}.logicalTypeOptions.{key}", f"{key} {value!r} is not translated"))
    return taken


def _finite_number(value: object) -> bool:
    # YAML reads `1e400` (no dot) as text, which pydantic would take as an infinite float.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def anchored(pattern: str) -> str:
    """An ODCS pattern (ECMA-262, matches anywhere) as a policy pattern (matches at the start of the value)."""
    if pattern.startswith("^"):
        return pattern
    return f"(?s).*?(?:{pattern})"


def _allowed(prop: Mapping[str, Any], where: str, notes: list[Untranslated]) -> list[Any] | None:
    values: list[Any] | None = None
    if isinstance(prop.get("enum"), list):
        values = [item.get("value") if isinstance(item, dict) else item for item in prop["enum"]]
    elif prop.get("enum") is not None:
        notes.append(
            Untranslated(f"{where}.enum", f"must be a list of values, got {type_words(prop['enum'])}; not translated")
        )
    for rule in _rules(prop):
        if _is_valid_values(rule):
            listed = list(rule["arguments"]["validValues"])
            values = listed if values is None else [v for v in values if v in listed]
    if values is None:
        return None
    kept = [value for value in values if value is not None]
    if len(kept) < len(values):
        notes.append(Untranslated(f"{where}.enum", "null among the allowed values: written as nullable instead"))
    return kept or None


def _no_nulls(prop: Mapping[str, Any]) -> bool:
    return any(
        isinstance(rule, dict) and rule.get("metric") == "nullValues" and rule.get("mustBe") == 0
        for rule in _rules(prop)
    )


def _rules(prop: Mapping[str, Any]) -> list[Any]:
    """A property's quality rules; another type is noted once, by `_field`."""
    rules = prop.get("quality")
    return rules if isinstance(rules, list) else []


def _is_valid_values(rule: object) -> bool:
    if not isinstance(rule, dict) or rule.get("metric") != "invalidValues" or rule.get("mustBe") != 0:
        return False
    arguments = rule.get("arguments")
    return isinstance(arguments, dict) and isinstance(arguments.get("validValues"), list)


def _translated_rule(rule: object) -> bool:
    if _is_valid_values(rule):
        return True
    return isinstance(rule, dict) and rule.get("metric") == "nullValues" and rule.get("mustBe") == 0


def _rule_words(rule: object) -> str:
    if not isinstance(rule, dict):
        return "a quality rule"
    label = rule.get("metric") or rule.get("rule") or rule.get("type") or "a quality rule"
    bounds = [f"{key} {value}" for key, value in rule.items() if str(key).startswith("mustBe")]
    return " ".join([str(label), *bounds])


def unknown_members(member: Mapping[str, Any], known: frozenset[str], where: str, notes: list[Untranslated]) -> None:
    for key in member:
        if key not in known:
            notes.append(Untranslated(f"{where}.{key}", "not part of ODCS v3 as Freshguard reads it; not translated"))


def _valid(spec: dict[str, Any], where: str, notes: list[Untranslated]) -> dict[str, Any] | None:
    """The spec as the policy would accept it: each check the policy refuses is dropped with a note."""
    for _ in range(len(spec)):
        try:
            FieldSpec.model_validate(spec)
        except ValidationError as exc:
            error = exc.errors()[0]
            culprit = next((str(part) for part in error["loc"] if str(part) in spec and part != "type"), None)
            culprit = culprit or next((key for key in ("in", "pattern", "min", "max") if key in spec), None)
            message = error["msg"].removeprefix("Value error, ")
            if culprit is None:
                notes.append(Untranslated(where, f"{message}; not translated"))
                return None
            notes.append(Untranslated(f"{where} {culprit}", f"{message}; this check is not translated"))
            del spec[culprit]
        else:
            return spec
    return spec
