"""The record envelope: required members, member types and timestamps (INVALID_RECORD)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from guard._timestamps import TimestampError, parse_timestamp
from guard.limits import MAX_ID_LENGTH, MAX_NAME_LENGTH, text_problem

_REQUIRED = ("id", "object", "key", "source")
#: The longest text each identifying member may hold: what the lineage store indexes.
_LIMITS = {"id": MAX_ID_LENGTH, "object": MAX_NAME_LENGTH, "key": MAX_ID_LENGTH, "source": MAX_NAME_LENGTH}


class Envelope:
    """A record's envelope, read once; `problems` lists what is malformed about it."""

    __slots__ = (
        "content",
        "fatal",
        "fields",
        "id",
        "index",
        "key",
        "lineage",
        "object",
        "observed_at",
        "problems",
        "raw",
        "signature",
        "source",
        "unnamed",
        "updated_at",
    )

    def __init__(self, index: int, raw: Any) -> None:
        self.index = index
        self.raw = raw
        self.id = f"#{index}"
        self.unnamed = True
        self.object: str | None = None
        self.key: str | None = None
        self.source: str | None = None
        self.observed_at: datetime | None = None
        self.updated_at: datetime | None = None
        self.fields: Mapping[str, Any] | None = None
        self.content: str | None = None
        self.lineage: list[tuple[str, datetime]] | None = None
        self.signature: str | None = None
        self.problems: list[str] = []
        self.fatal = False

    def label(self) -> str:
        """How messages name the record: `customer C-1042 from sap`."""
        if self.fatal:
            return f"record {self.id}"
        return f"{self.object} {self.key} from {self.source}"


def read_envelope(index: int, raw: Any, naive_is_utc: bool) -> Envelope:
    """Read one record's envelope; never raises, records what is wrong in `problems`."""
    env = Envelope(index, raw)
    if not isinstance(raw, Mapping):
        env.problems.append(f"a record must be a JSON object, got {_kind(raw)}")
        env.fatal = True
        return env
    record_id = raw.get("id")
    if isinstance(record_id, str) and record_id:
        if (problem := text_problem(record_id, MAX_ID_LENGTH)) is None:
            env.id = record_id
            env.unnamed = False
        else:
            env.problems.append(f"`id` {problem}")
            env.fatal = True
    for name in _REQUIRED:
        value = raw.get(name)
        if name == "key" and isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
            value = str(value)
        if not isinstance(value, str) or not value:
            missing = name not in raw or value is None
            env.problems.append(
                f"`{name}` is required" if missing else f"`{name}` must be a non-empty string, got {_kind(value)}"
            )
            env.fatal = True
        elif (problem := text_problem(value, _LIMITS[name])) is not None:
            env.problems.append(f"`{name}` {problem}")
            env.fatal = True
        else:
            setattr(env, name, value)
    if env.fatal:
        return env
    get = raw.get
    value = get("observed_at")
    if value is not None:
        env.observed_at = _timestamp(env, "observed_at", value, naive_is_utc)
    value = get("updated_at")
    if value is not None:
        env.updated_at = _timestamp(env, "updated_at", value, naive_is_utc)
    value = get("fields")
    if value is not None:
        if isinstance(value, Mapping):
            env.fields = value
        else:
            env.problems.append(f"`fields` must be an object, got {_kind(value)}")
    value = get("content")
    if value is not None:
        if isinstance(value, str):
            env.content = value
        else:
            env.problems.append(f"`content` must be a string, got {_kind(value)}")
    value = get("signature")
    if value is not None:
        if isinstance(value, str):
            env.signature = value
        else:
            env.problems.append(f"`signature` must be a hex string, got {_kind(value)}")
    value = get("lineage")
    if value is not None:
        env.lineage = _lineage(env, value, naive_is_utc)
    return env


def _timestamp(env: Envelope, name: str, value: object, naive_is_utc: bool) -> datetime | None:
    try:
        return parse_timestamp(value, naive_is_utc=naive_is_utc)
    except TimestampError as exc:
        env.problems.append(f"`{name}`: {exc}")
        return None


def _lineage(env: Envelope, value: object, naive_is_utc: bool) -> list[tuple[str, datetime]] | None:
    if not isinstance(value, list):
        env.problems.append(f"`lineage` must be a list of hops, got {_kind(value)}")
        return None
    hops: list[tuple[str, datetime]] = []
    for position, hop in enumerate(value):
        where = f"`lineage[{position}]`"
        if not isinstance(hop, Mapping):
            env.problems.append(f"{where} must be an object with `system` and `at`, got {_kind(hop)}")
            return None
        system = hop.get("system")
        if not isinstance(system, str) or not system:
            env.problems.append(f"{where}.system must be a non-empty string")
            return None
        try:
            at = parse_timestamp(hop.get("at"), naive_is_utc=naive_is_utc)
        except TimestampError as exc:
            env.problems.append(f"{where}.at: {exc}")
            return None
        hops.append((system, at))
    return hops


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
