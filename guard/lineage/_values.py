"""How a check's Python values become column values: storable text, JSON and content hashes.

A check decides whatever it is given, so its lineage must store whatever it was given:
text with a NUL (PostgreSQL refuses it) or a lone surrogate (no UTF-8 database takes it),
consumer metadata that is not JSON, fields whose keys are not strings. None of these may
cost a check its lineage, and both dialects store them alike, so that looking up the same
key finds the same rows.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import orjson

from guard.decisions import Reason

#: What a NUL or a lone surrogate becomes in the store (U+FFFD REPLACEMENT CHARACTER).
REPLACEMENT = "\ufffd"

_T = TypeVar("_T", str, str | None)


def storable(text: str) -> str:
    """`text` as every supported database can store it: NULs and lone surrogates replaced."""
    if "\x00" not in text and (text.isascii() or _encodes(text)):
        return text
    return "".join(REPLACEMENT if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def storable_column(values: Sequence[_T]) -> Sequence[_T]:
    """`storable` over a column; the column itself when (as nearly always) all of it is storable."""
    if all_storable(values):
        return values
    return [value if value is None else storable(value) for value in values]


def all_storable(values: Sequence[str | None]) -> bool:
    """Whether no text of the column holds what a database cannot store (a NUL, a lone surrogate)."""
    joined = "".join([value for value in values if value])
    return "\x00" not in joined and (joined.isascii() or _encodes(joined))


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_value(value: Mapping[str, Any]) -> Any:
    """`value` as plain JSON data: what JSON cannot say (datetimes, sets, ...) becomes its text."""
    try:
        return orjson.loads(orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, RecursionError):  # lone surrogates, integers beyond 64 bits, cycles, depth
        return _plain(value)


def json_text(value: Any) -> str:
    """`value` as JSON text, as a JSON column keeps it on SQLite (orjson; the standard library for what it refuses)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, keys that are not text
        return json.dumps(value)


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-ready data by hand, for what orjson refuses; text stands in for anything else."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 64:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value]
    return repr(value)


def content_hash(record: Any) -> str | None:
    """A short hash of what the model would see: the record's content, else its fields."""
    if type(record) is not dict and not isinstance(record, Mapping):
        return None
    content = record.get("content")
    if type(content) is str:
        data = content.encode("utf-8", "surrogatepass")
    else:
        fields = record.get("fields")
        if not fields:
            return None
        data = _fields_bytes(fields)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _fields_bytes(fields: Any) -> bytes:
    """A canonical serialisation of `fields`; never raises, whatever the fields hold."""
    try:
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        pass
    try:
        return json.dumps(fields, sort_keys=True, default=repr).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError):  # keys of mixed types cannot be sorted; a cycle; too deep
        return json.dumps(_plain(fields), sort_keys=True).encode("utf-8")


def explain(reasons: Sequence[Reason]) -> str:
    """The reasons of one decision as JSON text: what the store keeps so that "why" can be asked later."""
    if type(reasons) is tuple and all(type(reason.detail) is dict for reason in reasons):
        try:  # orjson writes a Reason (a dataclass) as its to_dict(): code (by value), message, detail
            return orjson.dumps(reasons).decode()
        except TypeError:
            pass
    listed = [reason.to_dict() for reason in reasons]
    try:
        return orjson.dumps(listed).decode()
    except TypeError:  # text no database can hold, or values JSON cannot say
        try:
            return storable(json.dumps(listed, ensure_ascii=False, default=repr))
        except (TypeError, ValueError, RecursionError):
            return json.dumps(_plain(listed))
