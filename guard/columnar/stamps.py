"""Envelope timestamps of a column, parsed as the first pass of `guard.engine` parses them."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

_UTC = pl.Datetime("us", "UTC")
#: Text both polars and `datetime.fromisoformat` read alike, in UTC: parsed in one vectorised pass.
_PLAIN_UTC = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|\+00:00)$"


def parse_stamps(column: pl.Series) -> pl.Series:
    """Each value as an aware UTC datetime, or null where the check modules must judge it.

    Null for what the first pass leaves to the modules: not text, not ISO 8601, no UTC offset, or
    outside years 1-9999 once in UTC. Text in the common UTC forms is parsed by polars; any other
    text once per distinct value by `datetime.fromisoformat`, as the first pass of `guard.engine` does.
    """
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:  # naive: the modules decide (the policy may read it as UTC)
            return pl.Series(column.name, [None] * len(column), dtype=_UTC)
        return column.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype != pl.String:
        return pl.Series(column.name, [None] * len(column), dtype=_UTC)
    distinct = column.unique()
    if len(distinct) * 2 <= len(column):  # a batch's timestamps repeat: parse each text once, look the rest up
        table = pl.DataFrame({"text": distinct, "at": _parse_texts(distinct)})
        looked_up = column.to_frame("text").join(table, on="text", how="left", maintain_order="left")
        return looked_up.get_column("at").alias(column.name)
    return _parse_texts(column)


def _parse_texts(column: pl.Series) -> pl.Series:
    plain = column.str.contains(_PLAIN_UTC) & ~column.str.starts_with("0001-") & ~column.str.starts_with("9999-")
    text = column.to_frame("text").with_columns(plain=plain)
    parsed = text.select(
        pl.when(pl.col("plain"))
        .then(
            pl.col("text")
            .str.replace("Z$", "+00:00")
            .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False)
        )
        .otherwise(None)
        .dt.cast_time_unit("us")
        .alias(column.name)
    ).to_series()
    others = text.filter(~pl.col("plain").fill_null(True) & pl.col("text").is_not_null())
    if others.height:
        distinct = others.get_column("text").unique().to_list()
        table = pl.DataFrame(
            {"text": distinct, "at": [_one(value) for value in distinct]},
            schema={"text": pl.String, "at": _UTC},
        )
        looked_up = column.to_frame("text").join(table, on="text", how="left", maintain_order="left")
        parsed = parsed.fill_null(looked_up.get_column("at"))
    return parsed


def _one(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None or moment.utcoffset() is None:
            return None
        return moment.astimezone(UTC)  # OverflowError outside years 1-9999, as the envelope check refuses
    except (ValueError, OverflowError):
        return None


def datetimes(column: pl.Series) -> list[datetime | None]:
    """The values of a UTC datetime column as Python datetimes, each distinct moment converted once.

    A batch's timestamps repeat (many records observed in the same second): converting each distinct
    value and looking the rest up is an order of magnitude faster than `to_list` on a large column.
    """
    micros = column.dt.epoch("us")
    distinct = micros.unique().drop_nulls()
    moments = pl.from_epoch(distinct, "us").dt.replace_time_zone("UTC")
    known: dict[int | None, datetime | None] = dict(zip(distinct.to_list(), moments.to_list(), strict=True))
    known[None] = None
    return list(map(known.__getitem__, micros.to_list()))
