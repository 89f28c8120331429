"""An object's field contract, declared as a pandera schema and checked two ways.

The pandera schema (polars backend) is the contract's single definition and checks
large batches. Small batches take `FieldRule.violations`, plain Python that a
differential Hypothesis test (tests/checks/test_contract_differential.py) holds to
deciding exactly as the pandera schema does, check by check: pandera costs about
10 ms per call whatever the batch size, more than the whole budget of a 20-record check.

Turning JSON values into typed columns is where `required` and `type` are decided
(pandera's `required` is about columns, not rows); every other check is pandera's.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from guard._timestamps import TimestampError, parse_timestamp
from guard.errors import PolicyError, PolicyProblem
from guard.policy.model import FieldSpec, value_has_type

if TYPE_CHECKING:
    import pandera.polars as pa
    import polars as pl

_MISSING = object()
_INT64 = (-(2**63), 2**63 - 1)
CHECK_NAMES = ("required", "type", "nullable", "min", "max", "in", "pattern", "min_length", "max_length")


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed check of one field: `credit_limit` failed `min` (0) with value -5."""

    field: str
    check: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the value is shown as text when JSON cannot carry it)."""
        value = self.value
        if not isinstance(value, str | int | float | bool | type(None)) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            value = repr(value)
        return {"field": self.field, "check": self.check, "value": value}


class FieldRule:
    """One field's contract, compiled for the per-record path."""

    __slots__ = ("in_", "max", "max_length", "min", "min_length", "name", "naive_is_utc", "nullable", "pattern", "required", "spec", "type")

    def __init__(self, name: str, spec: FieldSpec, naive_is_utc: bool) -> None:
        self.name = name
        self.spec = spec
        self.type = spec.type
        self.required = spec.required
        self.nullable = spec.nullable
        self.min = spec.min
        self.max = spec.max
        self.in_ = frozenset(spec.in_) if spec.in_ is not None else None
        self.pattern = re.compile(python_pattern(spec.pattern)) if spec.pattern is not None else None
        self.min_length = spec.min_length
        self.max_length = spec.max_length
        self.naive_is_utc = naive_is_utc

    def typed(self, value: Any) -> Any:
        """The column value for a JSON value, or `_MISSING` when the value is not of the field's type."""
        if not value_has_type(value, self.type):
            return _MISSING
        if self.type == "float":
            value = float(value)
            return _MISSING if math.isnan(value) else value
        if self.type == "int":
            return value if _INT64[0] <= value <= _INT64[1] else _MISSING
        if self.type == "datetime":
            try:
                return parse_timestamp(value, naive_is_utc=self.naive_is_utc).astimezone(UTC)
            except TimestampError:
                return _MISSING
        return value

    def violations(self, fields: Mapping[str, Any], out: list[Violation]) -> None:
        """Append this field's failed checks for one record."""
        raw = fields.get(self.name, _MISSING)
        if raw is _MISSING:
            if self.required:
                out.append(Violation(self.name, "required"))
            return
        if raw is None:
            if not self.nullable:
                out.append(Violation(self.name, "nullable"))
            return
        value = self.typed(raw)
        if value is _MISSING:
            out.append(Violation(self.name, "type", raw))
            return
        if self.min is not None and value < self.min:
            out.append(Violation(self.name, "min", raw))
        if self.max is not None and value > self.max:
            out.append(Violation(self.name, "max", raw))
        if self.in_ is not None and value not in self.in_:
            out.append(Violation(self.name, "in", raw))
        if self.pattern is not None and self.pattern.match(value) is None:
            out.append(Violation(self.name, "pattern", raw))
        if self.min_length is not None and len(value) < self.min_length:
            out.append(Violation(self.name, "min_length", raw))
        if self.max_length is not None and len(value) > self.max_length:
            out.append(Violation(self.name, "max_length", raw))


class Contract:
    """The contract of one object: per-record checks and the pandera schema they answer to."""

    def __init__(self, object_name: str, fields: Mapping[str, FieldSpec], *, naive_is_utc: bool) -> None:
        self.object = object_name
        self.rules = tuple(FieldRule(name, spec, naive_is_utc) for name, spec in fields.items())
        self._schema: pa.DataFrameSchema | None = None
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def check_one(self, fields: Mapping[str, Any] | None) -> list[Violation]:
        """Every failed check of one record's fields, in plain Python."""
        out: list[Violation] = []
        if self.rules:
            present = fields if fields is not None else {}
            for rule in self.rules:
                rule.violations(present, out)
        return out

    def check_many(self, rows: Sequence[Mapping[str, Any] | None]) -> list[list[Violation]]:
        """Every failed check of many records' fields, with the pandera schema."""
        import pandera.errors as pa_errors
        import polars as pl

        outcome: list[list[Violation]] = [[] for _ in rows]
        if not self.rules or not rows:
            return outcome
        columns: dict[str, list[Any]] = {}
        exempt: dict[str, set[int]] = {}
        raw_values: dict[str, list[Any]] = {}
        for rule in self.rules:
            values, skip, originals = _column(rule, rows, outcome)
            columns[rule.name] = values
            exempt[rule.name] = skip
            raw_values[rule.name] = originals
        frame = pl.DataFrame(columns, schema=self.polars_schema(), orient="col")
        try:
            self.schema.validate(frame, lazy=True)
        except pa_errors.SchemaErrors as exc:
            failures = exc.failure_cases.select("column", "check", "index").iter_rows()
            for column, check, index in failures:
                if index is None or column is None:
                    raise
                if check == "not_nullable":
                    if index in exempt[column]:
                        continue
                    check = "nullable"
                outcome[index].append(Violation(column, check, raw_values[column][index]))
        order = {rule.name: position for position, rule in enumerate(self.rules)}
        for found in outcome:
            if len(found) > 1:
                found.sort(key=lambda v: (order[v.field], CHECK_NAMES.index(v.check)))
        return outcome

    @property
    def schema(self) -> pa.DataFrameSchema:
        """The pandera schema of this contract, built once on first use."""
        if self._schema is None:
            with self._lock:
                if self._schema is None:
                    self._schema = build_schema(self.object, self.rules)
        return self._schema

    def polars_schema(self) -> dict[str, pl.DataType]:
        """The polars column types the contract's fields are checked as."""
        return {rule.name: _polars_type(rule.type) for rule in self.rules}


_EXACT_TYPE: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


def _column(
    rule: FieldRule, rows: Sequence[Mapping[str, Any] | None], outcome: list[list[Violation]]
) -> tuple[list[Any], set[int], list[Any]]:
    """A typed column for one field; `required` and `type` failures are recorded on the way."""
    name = rule.name
    originals = [row.get(name, _MISSING) if row is not None else _MISSING for row in rows]
    present = [v for v in originals if v is not _MISSING and v is not None]
    if _all_of_type(present, rule.type):
        if len(present) == len(originals):
            return originals, set(), originals
        exempt = {index for index, v in enumerate(originals) if v is _MISSING}
        if rule.required:
            for index in exempt:
                outcome[index].append(Violation(name, "required"))
        values = [None if v is _MISSING else v for v in originals]
        return values, exempt, values
    values: list[Any] = []
    append = values.append
    exempt = set()
    typed = rule.typed
    for index, raw in enumerate(originals):
        if raw is None:
            append(None)
        elif raw is _MISSING:
            if rule.required:
                outcome[index].append(Violation(name, "required"))
            exempt.add(index)
            append(None)
            originals[index] = None
        else:
            value = typed(raw)
            if value is _MISSING:
                outcome[index].append(Violation(name, "type", raw))
                exempt.add(index)
                append(None)
            else:
                append(value)
    return values, exempt, originals


def _all_of_type(values: list[Any], field_type: str) -> bool:
    """Whether every value is already a valid column value (the common case: skip the slow loop)."""
    exact = _EXACT_TYPE.get(field_type)
    if exact is None or not all(type(v) is exact for v in values):
        return False
    if exact is float:
        return all(v == v for v in values)  # NaN is no number to the contract
    if exact is int:
        return _INT64[0] <= min(values, default=0) and max(values, default=0) <= _INT64[1]
    return True


def build_schema(object_name: str, rules: Iterable[FieldRule]) -> pa.DataFrameSchema:
    """The pandera (polars) schema of a contract; refuses patterns polars cannot run."""
    import pandera.polars as pa
    import polars as pl

    columns: dict[str, pa.Column] = {}
    for rule in rules:
        spec = rule.spec
        checks: list[pa.Check] = []
        if spec.min is not None:
            checks.append(pa.Check.ge(spec.min, error="min"))
        if spec.max is not None:
            checks.append(pa.Check.le(spec.max, error="max"))
        if spec.in_ is not None:
            checks.append(pa.Check.isin(list(spec.in_), error="in"))
        if spec.pattern is not None:
            try:
                pl.Series([""], dtype=pl.Utf8).str.contains(spec.pattern)
            except pl.exceptions.ComputeError as exc:
                raise PolicyError(
                    f"objects.{object_name}",
                    [PolicyProblem(f"objects.{object_name}.fields.{rule.name}.pattern", f"the contract engine cannot run this pattern: {exc}")],
                ) from None
            checks.append(pa.Check.str_matches(spec.pattern, error="pattern"))
        if spec.min_length is not None:
            checks.append(pa.Check.str_length(min_value=spec.min_length, error="min_length"))
        if spec.max_length is not None:
            checks.append(pa.Check.str_length(max_value=spec.max_length, error="max_length"))
        columns[rule.name] = pa.Column(_polars_type(spec.type), checks=checks, nullable=spec.nullable, required=True)
    return pa.DataFrameSchema(columns, name=object_name, strict=True)


def _polars_type(field_type: str) -> pl.DataType:
    import polars as pl

    types: dict[str, pl.DataType] = {
        "str": pl.Utf8(),
        "int": pl.Int64(),
        "float": pl.Float64(),
        "bool": pl.Boolean(),
        "datetime": pl.Datetime("us", "UTC"),
    }
    return types[field_type]


def python_pattern(pattern: str) -> str:
    """The pattern as Python's `re` must see it to match as polars does: `$` means end of text.

    Python's `$` also matches before a final newline; polars' (Rust) regex does not.
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)




def describe(violation: Violation, spec: FieldSpec) -> str:
    """A failed check in words: `credit_limit is -5, below the minimum of 0`."""
    name, value, check = violation.field, violation.value, violation.check
    shown = _shown(value)
    words = {
        "required": f"{name} is missing",
        "type": f"{name} should be {_TYPE_WORDS[spec.type]}, got {shown}",
        "nullable": f"{name} is empty (null)",
        "min": f"{name} is {shown}, below the minimum of {spec.min}",
        "max": f"{name} is {shown}, above the maximum of {spec.max}",
        "in": f"{name} is {shown}, not one of {', '.join(map(str, spec.in_ or ()))}",
        "pattern": f"{name} {shown} does not have the expected form",
        "min_length": f"{name} is shorter than {spec.min_length} characters",
        "max_length": f"{name} is longer than {spec.max_length} characters",
    }
    return words[check]


_TYPE_WORDS = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false", "datetime": "a timestamp with a UTC offset"}


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
