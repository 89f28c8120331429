"""Tables of records for `freshguard audit`: Parquet or JSON Lines in, read in chunks; decisions out."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl

from guard.errors import InputError

#: Rows read at a time: the progress bar moves per chunk, and a JSON Lines chunk is parsed at once.
CHUNK_ROWS = 200_000
_JSON_LINES = (".jsonl", ".ndjson", ".json")


def input_rows(path: Path) -> int | None:
    """How many rows a file holds, when that is known without reading it (Parquet); else None."""
    if path.suffix.lower() == ".parquet":
        try:
            return int(pl.scan_parquet(path).select(pl.len()).collect().item())
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputError(f"{path}: not a Parquet file that can be read ({exc})") from exc
    return None


def read_chunks(path: Path) -> Iterator[pl.DataFrame]:
    """The records of one Parquet or JSON Lines file, `CHUNK_ROWS` at a time."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_chunks(path)
    elif suffix in _JSON_LINES:
        yield from _json_lines_chunks(path)
    else:
        raise InputError(
            f"{path}: read Parquet (.parquet) or JSON Lines (.jsonl, .ndjson), not {suffix or 'no suffix'}"
        )


def _parquet_chunks(path: Path) -> Iterator[pl.DataFrame]:
    total = input_rows(path) or 0
    scan = pl.scan_parquet(path)
    try:
        for offset in range(0, max(total, 1), CHUNK_ROWS):
            yield scan.slice(offset, CHUNK_ROWS).collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: cannot read rows from {offset + 1} on ({exc})") from exc


def _json_lines_chunks(path: Path) -> Iterator[pl.DataFrame]:
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    with stream:
        first_line = 1
        while True:
            lines = stream.readlines(CHUNK_ROWS * 200)  # about CHUNK_ROWS lines of a few hundred bytes
            if not lines:
                return
            yield _parse_lines(path, lines, first_line)
            first_line += len(lines)


def _parse_lines(path: Path, lines: list[bytes], first_line: int) -> pl.DataFrame:
    body = b"".join(line for line in lines if line.strip())
    if not body:
        return pl.DataFrame()
    try:
        return pl.read_ndjson(io.BytesIO(body), infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        for number, line in enumerate(lines, start=first_line):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise InputError(f"{path}:{number}: not JSON ({error}); each line must be one JSON object") from None
            if not isinstance(value, dict):
                raise InputError(
                    f"{path}:{number}: a record must be a JSON object, got {type(value).__name__}"
                ) from exc
        raise InputError(
            f"{path}: lines {first_line}-{first_line + len(lines) - 1} cannot be read as one table ({exc}); "
            "a member must have one type in every record (a table column has one type)"
        ) from exc


def write_decisions(decisions: pl.DataFrame, path: Path) -> None:
    """The decisions as Parquet (.parquet) or JSON Lines (any other suffix)."""
    try:
        if path.suffix.lower() == ".parquet":
            decisions.write_parquet(path)
        else:
            decisions.write_ndjson(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"{path}: cannot write the decisions file ({exc})") from exc
