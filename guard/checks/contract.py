"""An object's field contract, declared as a pandera schema and checked two ways.

The pandera schema (polars backend) is the contract's single definition and checks
large batches. Small batches take `FieldRule.violations`, plain Python that a
differential Hypothesis test (tests/checks/test_contract_differential.py) holds to
deciding exactly as the pandera schema does, check by check: pandera costs about
10 ms per call whatever the batch size, more than the whole budget of a 20-record check.

Turning JSON values into typed columns is where `required` and `type` are decided
(pandera's `required` is about columns, not rows); every other check is pandera's.
What a value must be to have a field's type:

- `int`: a whole number (not a bool) that fits in 64 bits;
- `float`: a finite number (an int is a float; NaN and infinities are not numbers);
  the value, `min`, `max` and `in` are compared as 64-bit floats, as polars stores them;
- `str`: valid Unicode text (no lone surrogates, which polars cannot hold);
- `bool`: true or false;
- `datetime`: ISO 8601 text with a UTC offset (or without, under `naive_timestamps: utc`)
  that lies within years 1-9999 once in UTC.

Patterns are polars' (Rust regex) and must match at the start of the value; the whole
pattern is anchored there, alternatives included. `PatternForms` says how Python's `re`
decides them the same way.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

from guard._timestamps import TimestampError, parse_timestamp
from guard.checks._regex import (
    anchored_pattern,
    compiled,
    pattern_forms,
    polars_matches,
    polars_refusal,
    quietly_compiled,
    rust_classes,
    scan,
)
from guard.errors import PolicyError, PolicyProblem
from guard.policy.model import FieldSpec

if TYPE_CHECKING:
    import pandera.polars as pa
    import polars as pl

_MISSING: Any = object()
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
CHECK_NAMES = ("required", "type", "nullable", "min", "max", "in", "pattern", "min_length", "max_length")
_CHECK_RANK = {name: rank for rank, name in enumerate(CHECK_NAMES)}


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed check of one field: `credit_limit` failed `min` (0) with value -5."""

    field: str
    check: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the value is shown as text when JSON cannot carry it)."""
        return {"field": self.field, "check": self.check, "value": _json_value(self.value)}


class FieldRule:
    """One field's contract, compiled for the per-record path."""

    __slots__ = (
        "_text_re",
        "ascii_re",
        "in_",
        "max",
        "max_length",
        "min",
        "min_length",
        "naive_is_utc",
        "name",
        "nullable",
        "pattern",
        "required",
        "spec",
        "type",
        "typed",
    )

    def __init__(self, name: str, spec: FieldSpec, naive_is_utc: bool) -> None:
        self.name = name
        self.spec = spec
        self.type = spec.type
        self.required = spec.required
        self.nullable = spec.nullable
        self.naive_is_utc = naive_is_utc
        bounds_as = _as_float64 if spec.type == "float" else _same
        self.min = bounds_as(spec.min) if spec.min is not None else None
        self.max = bounds_as(spec.max) if spec.max is not None else None
        self.in_ = frozenset(bounds_as(v) for v in spec.in_) if spec.in_ is not None else None
        self.min_length = spec.min_length
        self.max_length = spec.max_length
        self.pattern = pattern_forms(spec.pattern) if spec.pattern is not None else None
        self.ascii_re = compiled(self.pattern.ascii) if self.pattern is not None else None
        self._text_re: re.Pattern[str] | None = None
        if self.pattern is not None and self.pattern.text and not self.pattern.tables:
            self._text_re = self.ascii_re
        self.typed = (
            functools.partial(_TYPED[spec.type], naive_is_utc) if spec.type == "datetime" else _TYPED[spec.type]
        )

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
        if self.pattern is not None:
            ascii_re = self.ascii_re
            if ascii_re is not None and value.isascii():  # the hot path: one `re` match
                matched = ascii_re.match(value) is not None
            else:
                matched = self.matches(value)
            if not matched:
                out.append(Violation(self.name, "pattern", raw))
        if self.min_length is not None and len(value) < self.min_length:
            out.append(Violation(self.name, "min_length", raw))
        if self.max_length is not None and len(value) > self.max_length:
            out.append(Violation(self.name, "max_length", raw))

    def matches(self, text: str) -> bool:
        """Whether the field's pattern matches at the start of `text`, as polars decides."""
        forms = self.pattern
        if forms is None:
            return True
        if text.isascii() and self.ascii_re is not None:
            return self.ascii_re.match(text) is not None
        if not text.isascii() and forms.text:
            regex = self._text_re
            if regex is None:
                scanned = scan(forms.source, rust_classes())
                regex = self._text_re = compiled(scanned[0] if scanned is not None else None)
            if regex is not None:
                return regex.match(text) is not None
        return polars_matches(forms.anchored, text)


class Contract:
    """The contract of one object: per-record checks and the pandera schema they answer to."""

    def __init__(
        self, object_name: str, fields: Mapping[str, FieldSpec], *, naive_is_utc: bool, origin: str | None = None
    ) -> None:
        self.object = object_name
        self.naive_is_utc = naive_is_utc
        problems = [p for name, spec in fields.items() for p in spec_problems(object_name, name, spec)]
        if problems:
            raise PolicyError(origin or f"objects.{object_name}", problems)
        self.rules = tuple(FieldRule(name, spec, naive_is_utc) for name, spec in fields.items())
        self._schema: pa.DataFrameSchema | None = None
        self._relaxed: dict[frozenset[str], pa.DataFrameSchema] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __repr__(self) -> str:
        fields = ", ".join(f"{rule.name}={rule.spec!r}" for rule in self.rules)
        return f"Contract({self.object!r}, {fields}, naive_is_utc={self.naive_is_utc})"

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
        failed = self.failures(rows)
        return [failed.get(position, []) for position in range(len(rows))]

    def failures(self, rows: Sequence[Mapping[str, Any] | None]) -> dict[int, list[Violation]]:
        """The failed checks of many records' fields, with the pandera schema, by position of the rows that fail."""
        if not self.rules or not rows:
            return {}
        outcome: dict[int, list[Violation]] = {}
        raw_values = dict(zip((rule.name for rule in self.rules), _field_values(self.rules, rows), strict=True))
        typed = [_column(rule, raw_values[rule.name], rows, outcome) for rule in self.rules]
        return self._validate(typed, raw_values.__getitem__, outcome)

    def failures_of_columns(self, columns: Mapping[str, pl.Series], height: int) -> dict[int, list[Violation]]:
        """`failures` for fields held as columns (a frame's `fields` struct), where a null means absent.

        A column of the field's own type goes to pandera as it is; any other is read value by value, as
        `failures` reads JSON values (`plain_values` turns each into what a JSON record would carry).
        """
        if not self.rules or not height:
            return {}

        outcome: dict[int, list[Violation]] = {}
        absent: Sequence[None] = _Absent(height)
        typed: list[tuple[pl.Series, set[int], bool]] = []
        raw: dict[str, Any] = {}
        for rule in self.rules:
            series = columns.get(rule.name)
            column = _native_column(rule, series, height) if series is not None else None
            if column is not None:
                raw[rule.name] = column
                typed.append(_column_as_sent(rule, column, outcome))
                continue
            values = plain_values(series) if series is not None else [None] * height
            raw[rule.name] = values
            typed.append(_column(rule, values, absent, outcome))
        return self._validate(typed, raw.__getitem__, outcome)

    def _validate(
        self,
        typed: Sequence[tuple[pl.Series, set[int], bool]],
        raw_of: Callable[[str], Sequence[Any]],
        outcome: dict[int, list[Violation]],
    ) -> dict[int, list[Violation]]:
        """Run the pandera schema over typed columns and add its failures to `outcome` (found so far)."""
        import pandera.errors as pa_errors  # heavy: only big batches need it
        import polars as pl

        exempt = {rule.name: found[1] for rule, found in zip(self.rules, typed, strict=True)}
        relax = [rule.name for rule, (_, free, own) in zip(self.rules, typed, strict=True) if free and not own]
        relax = [name for name in relax if not self._rule(name).nullable]
        try:
            self._schema_relaxing(relax).validate(pl.DataFrame([column for column, _, _ in typed]), lazy=True)
        except pa_errors.SchemaErrors as exc:
            failures = exc.failure_cases
            for column_name, check, index in zip(
                failures.get_column("column").to_list(),
                failures.get_column("check").to_list(),
                failures.get_column("index").to_list(),
                strict=True,
            ):
                if index is None or column_name is None:
                    raise
                if check == "not_nullable":
                    if index in exempt[column_name]:
                        continue
                    violation = Violation(column_name, "nullable", None)
                else:
                    violation = Violation(column_name, check, raw_of(column_name)[index])
                _add(outcome, index, violation)
        order = {rule.name: position for position, rule in enumerate(self.rules)}
        for found in outcome.values():
            if len(found) > 1:
                found.sort(key=lambda v: (order[v.field], _CHECK_RANK[v.check]))
        return outcome

    def _rule(self, name: str) -> FieldRule:
        return next(rule for rule in self.rules if rule.name == name)

    def _schema_relaxing(self, names: Sequence[str]) -> pa.DataFrameSchema:
        """The schema, with `nullable` lifted from columns whose every null is a missing or mistyped value.

        Those nulls are not the field's own: `required` and `type` already decided them, and their
        `not_nullable` failure cases would only be thrown away. A column holding a null that was
        sent as such keeps `nullable: false`, so pandera decides every value sent, null included.
        """
        if not names:
            return self.schema
        wanted = frozenset(names)
        relaxed = self._relaxed.get(wanted)
        if relaxed is None:
            schema = self.schema  # outside the lock, which building the schema takes
            with self._lock:
                relaxed = self._relaxed.get(wanted)
                if relaxed is None:
                    relaxed = self._relaxed[wanted] = schema.update_columns({n: {"nullable": True} for n in names})
        return relaxed

    @property
    def schema(self) -> pa.DataFrameSchema:
        """The pandera schema of this contract, built once on first use."""
        if self._schema is None:
            with self._lock:
                if self._schema is None:
                    self._schema = build_schema(self.object, self.rules)
        return self._schema


# --- values to column values -------------------------------------------------------------


def _typed_str(value: Any) -> Any:
    if type(value) is str and value.isascii():
        return value
    if not isinstance(value, str):
        return _MISSING
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: not text polars (or JSON) can carry
        return _MISSING
    return value


def _typed_int(value: Any) -> Any:
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        return value if _INT64_MIN <= value <= _INT64_MAX else _MISSING
    return _MISSING


def _typed_float(value: Any) -> Any:
    if type(value) is float:
        return value if math.isfinite(value) else _MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _MISSING
    try:
        value = float(value)
    except OverflowError:
        return _MISSING
    return value if math.isfinite(value) else _MISSING


def _typed_bool(value: Any) -> Any:
    return value if isinstance(value, bool) else _MISSING


def _typed_datetime(naive_is_utc: bool, value: Any) -> Any:
    try:
        return parse_timestamp(value, naive_is_utc=naive_is_utc).astimezone(UTC)
    except (TimestampError, OverflowError):  # OverflowError: before year 1 or after 9999 in UTC
        return _MISSING


_TYPED: dict[str, Any] = {
    "str": _typed_str,
    "int": _typed_int,
    "float": _typed_float,
    "bool": _typed_bool,
    "datetime": _typed_datetime,
}


def _same(value: Any) -> Any:
    return value


def _as_float64(number: Any) -> Any:
    """A policy number as a float64 column holds it (nearest; beyond the range, an infinity)."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


# --- many records: columns for polars ------------------------------------------------------

#: The Python types a column takes as they are (besides None); any other value goes one by one.
_PLAIN_TYPES: dict[str, frozenset[type]] = {
    "str": frozenset({str, type(None)}),  # not looked at: see `_column`
    "int": frozenset({int, type(None)}),
    "float": frozenset({float, int, type(None)}),
    "bool": frozenset({bool, type(None)}),
    "datetime": frozenset({type(None)}),  # timestamps are parsed one by one
}


def _field_values(rules: Sequence[FieldRule], rows: Sequence[Mapping[str, Any] | None]) -> list[list[Any]]:
    """Each field's values as sent (None when missing)."""
    # One comprehension per field beats one pass building a tuple per record (measured).
    return [[row.get(rule.name) if row is not None else None for row in rows] for rule in rules]


def _column(
    rule: FieldRule,
    values: Sequence[Any],
    rows: Sequence[Mapping[str, Any] | None],
    outcome: dict[int, list[Violation]],
) -> tuple[pl.Series, set[int], bool]:
    """A typed column of one field's values; `required` and `type` failures are recorded on the way.

    Returns the column, the rows whose null is not the field's own (missing, or not of its
    type), and whether any null is the field's own (sent as null).
    """
    import polars as pl

    name, dtype = rule.name, _polars_type(rule.type)
    column = None
    # polars builds a text column strictly from str values only (subclasses included, as
    # `_typed_str` takes them), so text needs no look at the types first; numbers and bools do.
    if rule.type == "str" or set(map(type, values)) <= _PLAIN_TYPES[rule.type]:
        try:
            column = pl.Series(name, values, dtype=dtype, strict=True)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            column = None  # out of range, or not valid text: sort it out one by one
    exempt: set[int] = set()
    if column is not None:
        if rule.type == "float":
            wrong = (~column.is_finite()).arg_true().to_list()
            for index in wrong:
                _add(outcome, index, Violation(name, "type", values[index]))
            if wrong:
                exempt.update(wrong)
                column = column.scatter(wrong, None)
        nulls = column.is_null().arg_true().to_list() if column.null_count() else []
    else:
        typed = rule.typed
        column_values: list[Any] = []
        append = column_values.append
        nulls = []
        for index, raw in enumerate(values):
            if raw is None:
                nulls.append(index)
                append(None)
                continue
            value = typed(raw)
            if value is _MISSING:
                _add(outcome, index, Violation(name, "type", raw))
                exempt.add(index)
                value = None
            append(value)
        column = pl.Series(name, column_values, dtype=dtype, strict=True)
    own_nulls = False
    for index in nulls:
        if index in exempt:
            continue
        row = rows[index]
        if row is None or name not in row:
            exempt.add(index)
            if rule.required:
                _add(outcome, index, Violation(name, "required"))
        else:
            own_nulls = True
    return column, exempt, own_nulls


def _add(outcome: dict[int, list[Violation]], index: int, violation: Violation) -> None:
    found = outcome.get(index)
    if found is None:
        outcome[index] = [violation]
    else:
        found.append(violation)


class _Absent(Sequence[None]):
    """`height` rows that carry no field at all: how `_column` is told that every null is an absent value."""

    def __init__(self, height: int) -> None:
        self._height = height

    def __len__(self) -> int:
        return self._height

    def __getitem__(self, index: Any) -> Any:
        return None


def _native_column(rule: FieldRule, series: pl.Series, height: int) -> pl.Series | None:
    """The column as the field's polars type when its own type holds the field's values exactly; else None."""
    import polars as pl

    dtype = series.dtype
    if len(series) != height:
        raise ValueError(f"the column of {rule.name} has {len(series)} values for {height} rows")
    if rule.type == "str" and dtype == pl.String:
        return series.rename(rule.name)
    if rule.type == "int" and dtype.is_integer() and dtype != pl.UInt64:
        return series.cast(pl.Int64).rename(rule.name)
    if rule.type == "float" and (dtype.is_float() or (dtype.is_integer() and dtype != pl.UInt64)):
        return series.cast(pl.Float64).rename(rule.name)
    if rule.type == "bool" and dtype == pl.Boolean:
        return series.rename(rule.name)
    return None


def _column_as_sent(
    rule: FieldRule, column: pl.Series, outcome: dict[int, list[Violation]]
) -> tuple[pl.Series, set[int], bool]:
    """`_column` for a column already of the field's polars type, whose nulls are absent values."""
    nulls = column.is_null().arg_true().to_list() if column.null_count() else []
    exempt = set(nulls)
    if rule.type == "float":
        wrong = (~column.is_finite()).arg_true().to_list()  # null stays null: not among them
        for index in wrong:
            _add(outcome, index, Violation(rule.name, "type", column[index]))
        if wrong:
            exempt.update(wrong)
            column = column.scatter(wrong, None)
    if rule.required:
        for index in nulls:
            _add(outcome, index, Violation(rule.name, "required"))
    return column, exempt, False


def plain_values(series: pl.Series) -> list[Any]:
    """A column's values as a JSON record carries them: timestamps as ISO 8601 text, null members left out."""
    return [plain_value(value) for value in series.to_list()]


def plain_value(value: Any) -> Any:
    """One value read from a frame as JSON would carry it: datetimes as ISO 8601 text, a null member absent."""
    if isinstance(value, dict):
        return {name: plain_value(member) for name, member in value.items() if member is not None}
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


# --- the pandera schema ------------------------------------------------------------------


def spec_problems(object_name: str, name: str, spec: FieldSpec) -> list[PolicyProblem]:
    """What makes a field's contract impossible to check, beyond what the policy model refuses."""
    where = f"objects.{object_name}.fields.{name}"
    problems = [
        PolicyProblem(f"{where}.{check}", "must be a number, not NaN")
        for check, bound in (("min", spec.min), ("max", spec.max))
        if isinstance(bound, float) and math.isnan(bound)
    ]
    if spec.pattern is not None:
        refusal = polars_refusal(anchored_pattern(spec.pattern))
        if refusal is not None:
            hint = " (write $ for the end of the value)" if "\\Z" in spec.pattern else ""
            problems.append(
                PolicyProblem(f"{where}.pattern", f"the contract engine cannot run this pattern: {refusal}{hint}")
            )
    return problems


def build_schema(object_name: str, rules: Iterable[FieldRule]) -> pa.DataFrameSchema:
    """The pandera (polars) schema of a contract; refuses patterns polars cannot run."""
    import pandera.polars as pa  # heavy: only big batches need it

    columns: dict[str, pa.Column] = {}
    problems: list[PolicyProblem] = []
    for rule in rules:
        spec = rule.spec
        problems.extend(spec_problems(object_name, rule.name, spec))
        checks: list[pa.Check] = []
        if spec.min is not None:
            checks.append(_min_check(spec.type, spec.min))
        if spec.max is not None:
            checks.append(_max_check(spec.type, spec.max))
        if spec.in_ is not None:
            checks.append(pa.Check.isin(_in_values(spec.type, spec.in_), error="in"))
        if spec.pattern is not None:
            # Compiled here, so that pandera (which compiles it with `re` to check it) warns no second time.
            checks.append(pa.Check.str_matches(quietly_compiled(anchored_pattern(spec.pattern)), error="pattern"))
        if spec.min_length is not None:
            checks.append(pa.Check.str_length(min_value=spec.min_length, error="min_length"))
        if spec.max_length is not None:
            checks.append(pa.Check.str_length(max_value=spec.max_length, error="max_length"))
        columns[rule.name] = pa.Column(_polars_type(spec.type), checks=checks, nullable=spec.nullable, required=True)
    if problems:
        raise PolicyError(f"objects.{object_name}", problems)
    return pa.DataFrameSchema(columns, name=object_name, strict=True)


def _min_check(field_type: str, bound: float) -> pa.Check:
    """`min` for pandera; on int columns, an integer bound that decides as Python's exact comparison."""
    import pandera.polars as pa

    if field_type == "float":
        return pa.Check.ge(_as_float64(bound), error="min")
    if isinstance(bound, float):
        if math.isinf(bound):
            return pa.Check.ge(_INT64_MIN, error="min") if bound < 0 else pa.Check.gt(_INT64_MAX, error="min")
        bound = math.ceil(bound)
    if bound > _INT64_MAX:
        return pa.Check.gt(_INT64_MAX, error="min")  # no 64-bit whole number is that large
    return pa.Check.ge(max(bound, _INT64_MIN), error="min")


def _max_check(field_type: str, bound: float) -> pa.Check:
    """`max` for pandera; on int columns, an integer bound that decides as Python's exact comparison."""
    import pandera.polars as pa

    if field_type == "float":
        return pa.Check.le(_as_float64(bound), error="max")
    if isinstance(bound, float):
        if math.isinf(bound):
            return pa.Check.le(_INT64_MAX, error="max") if bound > 0 else pa.Check.lt(_INT64_MIN, error="max")
        bound = math.floor(bound)
    if bound < _INT64_MIN:
        return pa.Check.lt(_INT64_MIN, error="max")  # no 64-bit whole number is that small
    return pa.Check.le(min(bound, _INT64_MAX), error="max")


def _in_values(field_type: str, allowed: Iterable[Any]) -> list[Any]:
    """`in` as polars can hold it: members no column value can equal are left out."""
    if field_type == "float":
        return sorted({f for f in map(_as_float64, allowed) if math.isfinite(f)})
    if field_type == "int":
        return [v for v in allowed if _INT64_MIN <= v <= _INT64_MAX]
    if field_type == "str":
        return [v for v in allowed if _typed_str(v) is not _MISSING]
    return list(allowed)


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


# --- patterns: polars' regex, decided in Python --------------------------------------------


def describe(violation: Violation, spec: FieldSpec) -> str:
    """A failed check in words: `credit_limit is -5, below the minimum of 0`."""
    name, value, check = violation.field, violation.value, violation.check
    # Only the words of the failed check are made: a big check describes thousands of violations.
    if check == "required":
        return f"{name} is missing"
    if check == "nullable":
        return f"{name} is empty (null)"
    if check == "min_length":
        return f"{name} is shorter than {spec.min_length} characters"
    if check == "max_length":
        return f"{name} is longer than {spec.max_length} characters"
    shown = _shown(value)
    if check == "type":
        return _type_words(name, value, spec.type, shown)
    if check == "min":
        return f"{name} is {shown}, below the minimum of {_plain(spec.min)}"
    if check == "max":
        return f"{name} is {shown}, above the maximum of {_plain(spec.max)}"
    if check == "in":
        return f"{name} is {shown}, not one of {', '.join(map(_plain, spec.in_ or ()))}"
    if check == "pattern":
        return f"{name} {shown} does not have the expected form"
    raise KeyError(check)


_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "datetime": "a timestamp with a UTC offset",
}


def _type_words(name: str, value: Any, field_type: str, shown: str) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if field_type == "int" and isinstance(value, int) and number:
        return f"{name} is {shown}, outside the range of a 64-bit whole number"
    if field_type == "float" and number:
        return f"{name} is {shown}, not a finite number"
    if field_type == "str" and isinstance(value, str):
        return f"{name} is not valid Unicode text (it holds a lone surrogate)"
    return f"{name} should be {_TYPE_WORDS[field_type]}, got {shown}"


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _plain(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> str:
    """A value as text; a huge integer by its size (Python refuses to print past 4,300 digits)."""
    if isinstance(value, int) and value.bit_length() > 200:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}a number of about {digits} digits"
    return str(value)


def _json_value(value: Any) -> Any:
    """A violation's value as JSON can carry it: as is when it can, else as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else _shown(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return value if _typed_str(value) is not _MISSING else value.encode("utf-8", "backslashreplace").decode()
    return repr(value)
