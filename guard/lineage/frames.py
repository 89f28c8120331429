"""Lineage of a check of a frame: the content hash of each row from its columns, then the bulk write.

The rows go in as every check's do (`LineageStore.write_check`): in one transaction with the run,
SQLite by executemany, PostgreSQL by COPY through psycopg.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl

from guard.checks.contract import plain_value
from guard.decisions import CheckResult, Entity
from guard.lineage._values import content_hash
from guard.lineage.store import LineageStore


def frame_content_hashes(frame: pl.DataFrame) -> list[str | None]:
    """`content_hash` of each row as the JSON record it stands for (its content, else its fields)."""
    height = frame.height
    content = frame.get_column("content") if "content" in frame.columns else None
    texts: list[Any] = content.to_list() if content is not None and content.dtype == pl.String else [None] * height
    hashes = [None if text is None else content_hash({"content": text}) for text in texts]
    rest = [i for i, text in enumerate(texts) if text is None]
    if rest and "fields" in frame.columns:
        for i, fields in zip(rest, frame.get_column("fields")[rest].to_list(), strict=True):
            hashes[i] = content_hash({"fields": plain_value(fields)})
    return hashes


def record_frame_check(
    store: LineageStore, result: CheckResult, frame: pl.DataFrame, learned: Mapping[Entity, datetime]
) -> None:
    """Write a check of `frame`: its run, one row per record, and the owner versions it taught."""
    store.write_check(result, frame_content_hashes(frame), learned)
