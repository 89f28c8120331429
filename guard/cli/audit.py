"""`freshguard audit`: decide every record of Parquet or JSON Lines files as one check, with the columnar engine
(polars, on this machine) or on Apache Spark (`--engine spark`, `guard.cli.audit_spark`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from guard import Action, Guard, Policy, ReasonCode, load_policy
from guard.cli.check import parse_now
from guard.cli.output import EXIT_BLOCKED, EXIT_OK, bad_input_exits, error_console, results_console, working
from guard.cli.render_check import NO_SOURCE, headline, reasons_table, sources_table, verdict_line
from guard.cli.tables import input_rows, read_chunks, write_decisions
from guard.columnar.check import FrameResult

if TYPE_CHECKING:
    from guard.spark import SparkRun


class Engine(StrEnum):
    """Where an audit runs."""

    POLARS = "polars"
    SPARK = "spark"


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """What an audit prints beside its counts: records per reason code, one message of each, actions per source."""

    records: dict[ReasonCode, int]
    examples: dict[ReasonCode, str]
    by_source: dict[str, Counter[Action]]


def audit_command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT...",
            help="Parquet (.parquet) or JSON Lines (.jsonl, .ndjson) files of records, one column per envelope member "
            "(with --engine spark: also directories and URLs Spark reads, such as s3a://...).",
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
            help="Lineage store to record this check in (sqlite:///... or postgresql+psycopg://...); "
            "its watermarks decide supersession. Without it the check is not recorded.",
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            metavar="FILE.parquet|FILE.jsonl",
            help="Write every decision here: id, object, key, source, action, codes, messages, age_s "
            "(with --engine spark: a directory of part files, or a URL).",
        ),
    ] = None,
    pipeline: Annotated[
        str, typer.Option(metavar="NAME", help="The pipeline name this check is recorded under.")
    ] = "audit",
    now: Annotated[
        datetime | None,
        typer.Option(
            metavar="ISO-TIMESTAMP",
            parser=parse_now,
            help="Check as if it were this moment (e.g. 2026-11-22T12:00:00Z). Default: the current time.",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="polars decides on this machine; spark on a Spark cluster (pip install 'freshguard[spark]', Java 17), "
            "writing --out as a directory of part files.",
        ),
    ] = Engine.POLARS,
    spark_master: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The Spark master with --engine spark (local[*], spark://host:7077, yarn, k8s://...). "
            "Default: what spark-submit set, else local[*].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Audit a table of records (a CRM export, a corpus before it is embedded) against a policy, as one check.

    Every file is read in chunks with a progress bar (on a terminal); all records are decided together, so
    copies in different files can conflict. The summary and exit status are those of `freshguard check`:

    * 0: nothing was blocked;
    * 1: some record was blocked;
    * 2: nothing was checked: a file that cannot be read (named with its line), a policy that does not load,
      a signing key that is not set, or a lineage store that cannot be reached.
    """
    progress = error_console()
    result: FrameResult | SparkRun
    with bad_input_exits():
        guard = Guard(load_policy(policy), store=database)
        with guard:
            if engine is Engine.SPARK:
                from guard.cli.audit_spark import audit_on_spark

                result, summary = audit_on_spark(
                    guard, inputs, pipeline=pipeline, now=now, out=out, master=spark_master, console=progress
                )
            else:
                frame = _read_all([Path(name) for name in inputs], progress)
                with working(progress, f"Deciding {frame.height:,} records…"):
                    result = guard.check_frame(frame, pipeline=pipeline, now=now)
                if out is not None:
                    write_decisions(result.decisions, Path(out))
                summary = summarize(result.decisions)
    wrote = None if out is None else Path(out)
    render_audit(result, summary, guard.policy, results_console(), recorded=database is not None, wrote=wrote)
    raise typer.Exit(EXIT_BLOCKED if result.counts[Action.BLOCK] else EXIT_OK)


def _read_all(inputs: list[Path], console: Console) -> pl.DataFrame:
    totals = [input_rows(path) for path in inputs]
    known = None if any(total is None for total in totals) else sum(t or 0 for t in totals)
    chunks: list[pl.DataFrame] = []
    with Progress(
        TextColumn("Reading {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("records", total=known)
        for path in inputs:
            bar.update(task, description=str(path))
            for chunk in read_chunks(path):
                chunks.append(chunk)
                bar.advance(task, chunk.height)
    chunks = [chunk for chunk in chunks if chunk.width]
    return pl.concat(chunks, how="diagonal_relaxed") if chunks else pl.DataFrame()


def render_audit(
    result: FrameResult | SparkRun,
    summary: AuditSummary,
    policy: Policy,
    console: Console,
    *,
    recorded: bool,
    wrote: Path | None = None,
) -> None:
    """What `freshguard check` prints, from an audit's summary: the verdict first and last, the tables between."""
    console.print(headline(result, recorded=recorded))
    total = sum(result.counts.values())
    if total > 0:
        if summary.records:
            console.print()
            console.print(reasons_table(summary.records, summary.examples))
        console.print()
        console.print(sources_table(summary.by_source, policy))
    if wrote is not None:
        console.print(Text(f"wrote {total:,} decisions to {wrote}"), soft_wrap=True)
    console.print(verdict_line(result), soft_wrap=True)


def summarize(decisions: pl.DataFrame) -> AuditSummary:
    """The summary of a decisions frame: records per code, the first message of each code, actions per source."""
    found = (
        decisions.select("codes", "messages")
        .explode("codes", "messages")
        .drop_nulls()
        .group_by("codes")
        .agg(pl.len(), pl.col("messages").first())
    )
    records = (
        decisions.select(pl.col("codes").list.unique()).explode("codes").drop_nulls().get_column("codes").value_counts()
    )
    counted = {ReasonCode(code): int(n) for code, n in records.iter_rows()}
    examples = {ReasonCode(code): message for code, _, message in found.iter_rows()}
    tally: dict[str, Counter[Action]] = {}
    for source, action, n in decisions.group_by("source", "action").len().iter_rows():
        tally.setdefault(source if source is not None else NO_SOURCE, Counter())[Action(action)] += n
    return AuditSummary(counted, examples, tally)
