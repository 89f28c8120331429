"""`freshguard store ...`: look after a lineage store (prune history past its retention)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from guard import parse_duration
from guard._durations import format_duration
from guard._timestamps import utc_now
from guard.cli.output import bad_input_exits, error_console, fail, results_console, working
from guard.lineage._retention import TABLES_OF
from guard.lineage.store import LineageStore, Retention

app = typer.Typer(
    name="store", help="Look after a lineage store: prune history past its retention.", no_args_is_help=True
)


@app.command("prune")
def prune_command(
    database: Annotated[str, typer.Option("--database", help="The lineage store's URL.", show_default=False)],
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Remove record rows, runs and heartbeats older than this (e.g. 10d); default: the retention "
            "defaults (30 days of records, runs and heartbeats, 400 days of rollups).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be removed; remove nothing.")] = False,
) -> None:
    """Remove history older than its retention, in small batches that never hold a lock for long.

    Incidents, state changes and the newest sync of each writer are kept. Prints what was removed
    (or, with --dry-run, would be), table by table.
    """
    retention = Retention()
    if older_than is not None:
        try:
            kept = parse_duration(older_than)
        except ValueError as exc:
            fail(f"--older-than: {exc}")
        if kept <= parse_duration("0s"):
            fail(f"--older-than must be a positive duration such as 10d, got {older_than}")
        rollups = retention.rollups if retention.rollups is not None and retention.rollups > kept else kept
        retention = replace(retention, records=kept, runs=kept, heartbeats=kept, rollups=rollups)
    console = results_console()
    with bad_input_exits():
        store = LineageStore(database)
        try:
            with working(error_console(), "pruning"):
                report = store.prune(retention, utc_now(), dry_run=dry_run)
        finally:
            store.close()
    table = Table("table", "rows " + ("to remove" if dry_run else "removed"), "older than")
    for name, count in report.removed.items():
        kind = next(kind for kind, tables in TABLES_OF.items() if name in tables)
        horizon = report.horizons.get(kind)
        table.add_row(name, f"{count:,}", "" if horizon is None else horizon.isoformat(timespec="seconds"))
    console.print(table)
    kept_for = {kind: format_duration(getattr(retention, kind)) for kind in report.horizons}
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{database}: {verb} {sum(report.removed.values()):,} rows"
        + ("" if dry_run else f" in {report.batches} batches, {report.seconds:.1f} s")
        + "; kept: "
        + ", ".join(f"{kind} {span}" for kind, span in kept_for.items()),
        soft_wrap=True,
    )
