"""Reading a policy from YAML or JSON text, with every problem located by path and line."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from guard.errors import PolicyError, PolicyProblem
from guard.policy.model import FieldSpec, NotifySpec, ObjectSpec, Policy, SLASpec, SourceSpec
from guard.policy.references import reference_problems

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_policy(path: str | Path) -> Policy:
    """Load and validate a policy file; raise PolicyError naming the file, path and problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(file), [PolicyProblem("", f"cannot read the file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(str(file), [PolicyProblem("", f"the file is not UTF-8 text ({exc.reason})")]) from exc
    return parse_policy(text, origin=str(file))


def parse_policy(text: str, *, origin: str = "<policy>") -> Policy:
    """Validate a policy given as YAML (or JSON) text; `origin` names it in errors."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(origin, [PolicyProblem("", f"not valid YAML: {problem}", line)]) from exc
    except RecursionError:
        raise PolicyError(origin, [PolicyProblem("", "the document is nested too deeply to be a policy")]) from None
    if node is None:
        return policy_from_document(document, origin=origin)
    twice = [
        PolicyProblem(path, "this key appears twice in the same mapping; keep one", line)
        for path, line in _repeated_keys(node)
    ]
    if twice:
        raise PolicyError(origin, twice)
    return policy_from_document(document, origin=origin, lines=dict(_node_lines(node)))


#: The media types a policy may be written in; YAML is the default.
JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"})


def parse_policy_text(text: str, media_type: str = "application/yaml", *, origin: str = "<policy>") -> Policy:
    """Validate a policy written as JSON (`application/json`) or YAML (any of YAML_TYPES)."""
    if media_type not in JSON_TYPES:
        return parse_policy(text, origin=origin)
    try:
        document = json.loads(text, object_pairs_hook=_refuse_repeated_keys)
    except _RepeatedKeyError as exc:
        problem = PolicyProblem(exc.key, "this key appears twice in the same object; keep one")
        raise PolicyError(origin, [problem]) from None
    except json.JSONDecodeError as exc:
        raise PolicyError(origin, [PolicyProblem("", f"not valid JSON: {exc.msg}", exc.lineno)]) from None
    except RecursionError:
        raise PolicyError(origin, [PolicyProblem("", "the document is nested too deeply to be a policy")]) from None
    return policy_from_document(document, origin=origin)


class _RepeatedKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys silently: a pasted block could override a limit unseen.
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _RepeatedKeyError(key)
        document[key] = value
    return document


def policy_from_document(
    document: object, *, origin: str = "<policy>", lines: Mapping[str, int] | None = None
) -> Policy:
    """Validate an already parsed policy document (a mapping)."""
    lines = lines or {}
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise PolicyError(origin, [PolicyProblem("", f"a policy must be a mapping of keys, the file is {kind}")])
    try:
        policy = Policy.model_validate(document)
    except ValidationError as exc:
        # A union (`min: int | float`) reports once per member: keep one problem per path, the last.
        by_path = {(found := _problem(error, lines)).path: found for error in exc.errors()}
        raise PolicyError(origin, list(by_path.values())) from None
    problems = [PolicyProblem(path, message, _line_of(path, lines)) for path, message in reference_problems(policy)]
    if problems:
        raise PolicyError(origin, problems)
    policy._origin = origin
    return policy


def _problem(error: ErrorDetails, lines: Mapping[str, int]) -> PolicyProblem:
    raw = [str(part) for part in error["loc"]]
    kind = error["type"]
    if kind == "extra_forbidden" and raw:
        # The unknown key is the file's own, whatever it is called (even `int` or `a[0]`).
        parent, unknown = _document_path(raw[:-1], lines), raw[-1]
        loc = [*parent, unknown]
        path = ".".join(parent)
        return PolicyProblem(
            path + ("." if path else "") + unknown, _unknown_key(parent, unknown), _line_of(".".join(loc), lines)
        )
    loc = _document_path(raw, lines)
    path = ".".join(loc)
    if kind == "missing":
        message = "is required but missing"
    elif kind in ("int_type", "int_parsing", "int_from_float") and loc[-1:] == ["version"]:
        message = (
            f"must be a whole number (got {error['input']!r}); a published policy needs a higher version than the last"
        )
    elif kind == "string_pattern_mismatch":
        message = f"{error['input']!r} is not a usable name; use letters, digits and _ . : - only"
    elif kind == "literal_error":
        message = f"{error['input']!r} is not allowed; {error['msg'].lower()}"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and not isinstance(error["input"], dict | list) and repr(error["input"]) not in message:
            message = f"{message} (got {error['input']!r})"
    return PolicyProblem(path, message, _line_of(path, lines))


_TYPE_TAGS = frozenset({"int", "float", "str", "bool", "constrained-int", "constrained-str", "constrained-float"})


def _document_path(loc: list[str], lines: Mapping[str, int]) -> list[str]:
    """`loc` without the tags pydantic adds for union members (`min.int`), which are no keys of the file."""
    kept: list[str] = []
    for part in loc:
        candidate = ".".join([*kept, part])
        if (part in _TYPE_TAGS or "[" in part) and candidate not in lines:
            continue
        kept.append(part)
    return kept


def _repeated_keys(node: yaml.Node, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Keys given twice in one mapping (YAML parsers keep the last silently)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            if key_node.value in seen:
                yield path, key_node.start_mark.line + 1
            seen.add(key_node.value)
            yield from _repeated_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _repeated_keys(item, f"{prefix}.{index}" if prefix else str(index))


def _unknown_key(parent: list[str], unknown: str) -> str:
    allowed = _allowed_keys(parent)
    hint = ""
    close = difflib.get_close_matches(unknown, allowed, n=1)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    where = "a field" if parent[-3:-1] == ["fields"] or (len(parent) >= 2 and parent[-2] == "fields") else "here"
    kind = "check" if where == "a field" else "key"
    return f"unknown {kind} {unknown!r}{hint} (allowed: {', '.join(allowed)})"


def _allowed_keys(parent: list[str]) -> list[str]:
    model: type[Any] = Policy
    if parent[:1] == ["objects"] and len(parent) == 2:
        model = ObjectSpec
    elif parent[:1] == ["objects"] and len(parent) == 4 and parent[2] == "fields":
        model = FieldSpec
    elif parent[:1] == ["slas"] and len(parent) == 2:
        model = SLASpec
    elif parent[:1] in (["sources"], ["notify"]) and len(parent) == 2:
        model = SourceSpec if parent[0] == "sources" else NotifySpec
    return [field.alias or name for name, field in model.model_fields.items()]


def _line_of(path: str, lines: Mapping[str, int]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path.rpartition(".")[0]
    return None


def _node_lines(node: yaml.Node, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Map every dotted path of a YAML document to the (1-based) line it starts on."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            yield path, key_node.start_mark.line + 1
            yield from _node_lines(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = f"{prefix}.{index}" if prefix else str(index)
            yield path, item.start_mark.line + 1
            yield from _node_lines(item, path)
