"""`freshguard check`: decide every record of a JSONL file, as a pipeline would before inference."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Annotated, BinaryIO

import orjson
import typer
from rich.text import Text

from guard import Action, CheckResult, Guard, load_policy
from guard.cli.output import (
    EXIT_BLOCKED,
    EXIT_OK,
    bad_input_exits,
    error_console,
    fail,
    results_console,
    working,
)
from guard.cli.records import read_records
from guard.cli.render_check import render_check


def parse_now(text: str) -> datetime:
    """An ISO 8601 timestamp with a UTC offset, for `--now`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 timestamp; write it like 2026-11-22T12:00:00Z") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise typer.BadParameter(f"{text!r} has no UTC offset; add one, like {text}Z or {text}+01:00")
    return moment


def check_command(
    records: Annotated[
        str,
        typer.Argument(
            metavar="RECORDS.jsonl",
            help="The records to check, one JSON object per line. Use - to read standard input.",
            show_default=False,
        ),
    ],
    *,
    policy: Annotated[
        Path,
        typer.Option(
            "--policy", "-p", metavar="FILE", help="The policy file (YAML) to check against.", show_default=False
        ),
    ],
    database: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Lineage store to record this check in: sqlite:///freshguard.db or postgresql+psycopg://... "
            "Without it the check is not recorded.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="DECISIONS.jsonl", help="Also write every decision to this file, one JSON object per line."
        ),
    ] = None,
    pipeline: Annotated[
        str, typer.Option(metavar="NAME", help="The pipeline name this check is recorded under.")
    ] = "cli",
    now: Annotated[
        datetime | None,
        typer.Option(
            metavar="ISO-TIMESTAMP",
            parser=parse_now,
            help="Check as if it were this moment (e.g. 2026-11-22T12:00:00Z), so that a file with fixed "
            "timestamps gets the same decisions every time. Default: the current time.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check a file of records against a policy: may the model see each one?

    Prints what was allowed, warned and blocked, and why, and ends on a one-line verdict. A line that
    cannot be read is reported by its line number (the first 20, then a count) and the rest is still
    checked. The exit status tells a script what happened:

    * 0: nothing was withheld from the model (an empty file says so and exits 0);
    * 1: some record was blocked, or some line could not be read;
    * 2: nothing was checked: a file that cannot be opened or with no readable line, a policy that does
      not load, a signing key that is not set, or a lineage store that cannot be reached;
    * 3: a bug in Freshguard (the message says how to report it).
    """
    progress = error_console()
    with bad_input_exits(), ExitStack() as stack:
        guard = stack.enter_context(Guard(load_policy(policy), store=database))
        read = read_records(records, progress)
        for line in read.report():
            progress.print(Text(line, style="yellow"), soft_wrap=True)
        if read.empty:
            results_console().print(f"{read.name} is empty: there is no record to check.")
            raise typer.Exit(EXIT_OK)
        if not read.records:
            fail(f"{read.name}: no line holds a record (one JSON object a line); nothing was checked")
        sink = stack.enter_context(_open_out(out)) if out is not None else None
        with working(progress, f"Checking {len(read.records):,} records…"):
            result = guard.check(read.records, pipeline=pipeline, now=now)
        if sink is not None:
            write_decisions(result, sink)
    render_check(result, guard.policy, results_console(), recorded=database is not None,
                 unreadable=len(read.unreadable), wrote=out)  # fmt: skip
    raise typer.Exit(EXIT_BLOCKED if result.counts[Action.BLOCK] or read.unreadable else EXIT_OK)


def write_decisions(result: CheckResult, sink: BinaryIO) -> None:
    """Write one JSON line per decision (`Decision.to_dict()`), in the order of the records, and close `sink`."""
    try:
        with sink:
            for decision in result.decisions:
                sink.write(orjson.dumps(decision.to_dict()))
                sink.write(b"\n")
    except OSError as exc:
        fail(f"{sink.name}: cannot write the decisions file ({exc.strerror or exc})")


def _open_out(path: Path) -> BinaryIO:
    # Opened before the check runs, so an unwritable path is refused before anything is recorded.
    try:
        return path.open("wb")
    except OSError as exc:
        fail(f"{path}: cannot write the decisions file ({exc.strerror or exc})")
