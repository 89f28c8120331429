"""Reading a records file: one JSON value per line, with a progress bar for big files."""

from __future__ import annotations

import codecs
import os
import stat
import sys
from typing import Any, BinaryIO

import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from guard.errors import InputError

STDIN = "-"
PROGRESS_FROM_BYTES = 1_000_000
_PROGRESS_STEP = 256 * 1024


def read_records(path: str, console: Console) -> list[Any]:
    """Every JSON value of a JSONL file (`-` is standard input), in order; blank lines are skipped.

    A line that is not JSON raises InputError naming the file and line. A line that is
    JSON but not an object is kept: the guard decides it INVALID_RECORD.
    """
    name = "<stdin>" if path == STDIN else path
    try:
        if path == STDIN:
            return _parse(sys.stdin.buffer, name, None, console)
        with open(path, "rb") as stream:
            return _parse(stream, name, _size(stream), console)
    except OSError as exc:
        raise InputError(f"{name}: cannot read the records file ({exc.strerror or exc})") from exc


def _size(stream: BinaryIO) -> int | None:
    info = os.fstat(stream.fileno())
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _parse(stream: BinaryIO, name: str, size: int | None, console: Console) -> list[Any]:
    records: list[Any] = []
    append, loads = records.append, orjson.loads
    shown = size is not None and size > PROGRESS_FROM_BYTES and console.is_terminal
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not shown,
    )
    with progress:
        task = progress.add_task(f"Reading {name}", total=size)
        unreported = 0
        for number, line in enumerate(stream, start=1):
            unreported += len(line)
            if unreported >= _PROGRESS_STEP:
                progress.advance(task, unreported)
                unreported = 0
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)  # noqa: PLW2901 - editors on Windows write one
            if not line.strip():
                continue
            try:
                append(loads(line))
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{name} line {number}: not valid JSON ({exc.msg} at column {exc.pos + 1})") from exc
    return records
