"""The canonical form a signature covers (`guard.signing.canonical_bytes`), for many rows of a frame at once.

Vectorised only where its text is certain: text needing no escapes, whole numbers a double holds
exactly, fractions between 1e-4 and 1e16 (where RFC 8785 and the shortest round-trip digits agree),
booleans, and structs of those, with ASCII member names. Any other row gets null and is signed over
in Python by `canonical_bytes` itself; a property test holds both to the same bytes.
"""

from __future__ import annotations

import polars as pl
from polars._typing import PolarsDataType

from guard.signing import UNSIGNED_MEMBERS

_SAFE_INTEGER = 2**53 - 1
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def canonical_texts(frame: pl.DataFrame) -> pl.Series:
    """Each row's canonical JSON text (as `canonical_bytes` of the row read as a record), or null where unsure."""
    names = sorted(name for name in frame.columns if name not in UNSIGNED_MEMBERS)
    if not all(_plain_name(name) for name in names):
        return pl.Series("canonical", [None] * frame.height, dtype=pl.String)
    text, sure = _object([(name, pl.col(name), frame.schema[name]) for name in names])
    return frame.select(pl.when(sure).then(text).alias("canonical")).to_series()


def _plain_name(name: str) -> bool:
    return name.isascii() and all(ch >= " " and ch not in '"\\' for ch in name)


def _object(members: list[tuple[str, pl.Expr, PolarsDataType]]) -> tuple[pl.Expr, pl.Expr]:
    """`{"a":...,"b":...}` of the members present (null members are absent), and whether it is certain."""
    pieces, sure = [], pl.lit(True)
    for name, expr, dtype in members:
        text, certain = _value(expr, dtype)
        pieces.append(pl.when(expr.is_not_null()).then(pl.concat_str(pl.lit(f'"{name}":'), text)))
        sure = sure & (expr.is_null() | certain)
    body = pl.concat_str(pieces, separator=",", ignore_nulls=True) if pieces else pl.lit("")
    return pl.concat_str(pl.lit("{"), body, pl.lit("}")), sure.fill_null(False)


def _value(expr: pl.Expr, dtype: PolarsDataType) -> tuple[pl.Expr, pl.Expr]:
    if dtype == pl.String:
        return pl.concat_str(pl.lit('"'), expr, pl.lit('"')), ~expr.str.contains(_NEEDS_ESCAPE)
    if dtype == pl.Boolean:
        return pl.when(expr).then(pl.lit("true")).otherwise(pl.lit("false")), pl.lit(True)
    if dtype.is_integer():
        wide = expr.cast(pl.Int64, strict=False)
        return wide.cast(pl.String), wide.is_between(-_SAFE_INTEGER, _SAFE_INTEGER)  # not abs(): -2**63 wraps
    if dtype.is_float():
        number = expr.cast(pl.Float64)
        whole = number.is_finite() & (number.floor() == number) & (number.abs() <= _SAFE_INTEGER)
        fraction = number.is_finite() & (number.floor() != number) & (number.abs() >= 1e-4) & (number.abs() < 1e16)
        text = (
            pl.when(whole).then(number.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(number.cast(pl.String))
        )
        return text, whole | fraction
    if isinstance(dtype, pl.Struct):
        fields = sorted(dtype.fields, key=lambda f: f.name)
        if not all(_plain_name(f.name) for f in fields):
            return pl.lit(""), pl.lit(False)
        return _object([(f.name, expr.struct.field(f.name), f.dtype) for f in fields])
    return pl.lit(""), pl.lit(False)
