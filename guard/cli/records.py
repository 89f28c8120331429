"""Reading a records file: one JSON object per line, with a progress bar for big files.

A line that cannot be read (not JSON, or JSON that is not an object) does not stop the file: it is
kept aside with its line number, and every other line is still checked.
"""

from __future__ import annotations

import codecs
import os
import stat
import sys
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from guard.errors import InputError

STDIN = "-"
PROGRESS_FROM_BYTES = 1_000_000
_PROGRESS_STEP = 256 * 1024
#: Unreadable lines listed one by one; past these, a count.
SHOWN_UNREADABLE = 20
_KINDS = {
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A line of the file that holds no record: its number (from 1) and why."""

    line: int
    why: str


@dataclass(slots=True)
class RecordsFile:
    """What a records file held: its records in order, and the lines that could not be read."""

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No line held anything (blank lines aside)."""
        return not self.records and not self.unreadable

    def report(self) -> list[str]:
        """The unreadable lines for people: the first ones by file and line, then how many more."""
        lines = [f"{self.name} line {bad.line}: {bad.why}" for bad in self.unreadable[:SHOWN_UNREADABLE]]
        more = len(self.unreadable) - SHOWN_UNREADABLE
        if more > 0:
            lines.append(f"… and {more:,} more unreadable line{'s' if more > 1 else ''}")
        return lines


def read_records(path: str, console: Console) -> RecordsFile:
    """Every record (JSON object) of a JSONL file (`-` is standard input), in order; blank lines are skipped.

    A line that is not JSON, or is JSON but not an object, is kept aside as unreadable with its
    line number; the rest is still read. A file that cannot be opened raises InputError.
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


def _parse(stream: BinaryIO, name: str, size: int | None, console: Console) -> RecordsFile:
    read = RecordsFile(name)
    append, loads = read.records.append, orjson.loads
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
                value = loads(line)
            except orjson.JSONDecodeError as exc:
                read.unreadable.append(Unreadable(number, f"not valid JSON ({exc.msg} at column {exc.pos + 1})"))
                continue
            if isinstance(value, dict):
                append(value)
            else:
                kind = _KINDS.get(type(value), type(value).__name__)
                read.unreadable.append(Unreadable(number, f"{kind}, not a JSON object: a record is one object a line"))
    return read
