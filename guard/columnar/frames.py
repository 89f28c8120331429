"""A table of records as one polars DataFrame, and rows of it as the JSON records they stand for."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from guard.checks.contract import plain_value
from guard.errors import InputError

#: The envelope's members the engine reads; a frame may lack any of them (read as absent).
MEMBERS = ("id", "object", "key", "source", "observed_at", "updated_at", "fields", "content", "signature", "lineage")


def as_frame(data: Any) -> pl.DataFrame:
    """The records of `data` (a polars DataFrame or LazyFrame, a pyarrow Table, a pandas DataFrame) as a DataFrame."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__.split(".")[0]
    try:
        if module == "pyarrow":
            converted = pl.from_arrow(data)
            if isinstance(converted, pl.DataFrame):
                return converted
        elif module == "pandas" and hasattr(data, "columns"):
            return pl.from_pandas(data)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InputError(f"the {type(data).__name__} cannot be read as a table of records: {exc}") from exc
    raise InputError(
        "check_frame takes a polars DataFrame or LazyFrame, a pyarrow Table or a pandas DataFrame whose columns "
        f"are the envelope's members (id, object, key, source, ...), got {type(data).__name__}"
    )


class Rows(Sequence[Any]):
    """The rows of a frame as JSON records (null members absent, timestamps as ISO 8601 text), read on demand.

    `prefetch` reads many rows in one go; a row asked for otherwise is read alone.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame
        self._read: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return self._frame.height

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int):
            raise TypeError("rows are read one at a time")
        found = self._read.get(index)
        if found is None:
            self.prefetch([index])
            found = self._read[index]
        return found

    def prefetch(self, indexes: Iterable[int]) -> None:
        """Read these rows (those not read yet) at once."""
        wanted = [i for i in indexes if i not in self._read]
        if wanted:
            for index, row in zip(wanted, self._frame[wanted].to_dicts(), strict=True):
                self._read[index] = plain_value(row)
