"""The summary of one check, as rich text and tables a non-engineer can read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from guard import Action, CheckResult, Policy, ReasonCode, Verdict

if TYPE_CHECKING:
    from guard.columnar.check import FrameResult
    from guard.spark import SparkRun

    Checked = CheckResult | FrameResult | SparkRun

_VERDICT_STYLE = {Verdict.PASS: "bold green", Verdict.PARTIAL: "bold yellow", Verdict.BLOCKED: "bold red"}
_ACTION_STYLE = {Action.ALLOW: "green", Action.WARN: "yellow", Action.BLOCK: "red"}
_MEANING = {
    ReasonCode.INVALID_RECORD: "the record is malformed",
    ReasonCode.UNKNOWN_OBJECT: "data the policy does not cover",
    ReasonCode.UNKNOWN_SOURCE: "a system the policy does not know",
    ReasonCode.UNAUTHORIZED_SOURCE: "this system may not serve it",
    ReasonCode.MISSING_TIMESTAMP: "no time says how old it is",
    ReasonCode.FUTURE_TIMESTAMP: "dated in the future",
    ReasonCode.STALE: "older than its freshness limit",
    ReasonCode.AGING: "getting old, still allowed",
    ReasonCode.SCHEMA_VIOLATION: "fields break the contract",
    ReasonCode.MISSING_PROVENANCE: "no trail of where it came from",
    ReasonCode.PROVENANCE_BROKEN: "its trail skips the owner",
    ReasonCode.UNSIGNED: "the signature is missing",
    ReasonCode.BAD_SIGNATURE: "the signature does not match",
    ReasonCode.SUPERSEDED: "the owner has a newer version",
    ReasonCode.CONFLICT: "disagrees with another copy",
}
NO_SOURCE = "(no source)"


def render_check(
    result: CheckResult,
    policy: Policy,
    console: Console,
    *,
    recorded: bool,
    unreadable: int = 0,
    wrote: Path | None = None,
) -> None:
    """Print the verdict, what was blocked or warned and why, the tally by source, and the verdict again in one line.

    The verdict comes first (for whoever reads from the top) and last (for whoever reads the end of
    the screen, as pytest and dbt end).
    """
    console.print(headline(result, recorded=recorded, unreadable=unreadable))
    if len(result.decisions) > 0:
        reasons = reason_table(result)
        if reasons.row_count:
            console.print()
            console.print(reasons)
        console.print()
        console.print(source_table(result, policy))
    console.print()
    if wrote is not None:
        console.print(Text(f"wrote {len(result.decisions):,} decisions to {wrote}"), soft_wrap=True)
    console.print(verdict_line(result, unreadable=unreadable), soft_wrap=True)


def verdict_line(result: Checked, *, unreadable: int = 0) -> Text:
    """`Verdict: PARTIAL — 13 of 22 records withheld from the model` (and the lines that could not be read)."""
    counts = result.counts
    total = sum(counts.values())
    blocked = counts[Action.BLOCK]
    if result.verdict is Verdict.PASS:
        outcome = f"all {total:,} records may reach the model" if total else "there were no records to check"
    elif result.verdict is Verdict.BLOCKED:
        outcome = f"all {total:,} records withheld from the model"
    else:
        outcome = f"{blocked:,} of {total:,} records withheld from the model"
    if unreadable:
        outcome += f"; {unreadable:,} unreadable line{'s' if unreadable > 1 else ''} not checked"
    return Text.assemble((f"Verdict: {result.verdict.value.upper()}", _VERDICT_STYLE[result.verdict]), f" — {outcome}")


def headline(result: Checked, *, recorded: bool, unreadable: int = 0) -> Group:
    """Verdict, counts, duration, policy and run id."""
    counts = result.counts
    verdict = verdict_line(result, unreadable=unreadable)
    tally = Text.assemble(
        *_joined([(f"{counts[action]:,} {_past(action)}", _ACTION_STYLE[action]) for action in Action]),
        f" · checked in {_seconds(result.duration_s)}",
    )
    where = "recorded in the lineage store" if recorded else "not recorded: no --database"
    context = Text(
        f"Policy {result.policy.name} v{result.policy.version} · pipeline {result.pipeline}\n"
        f"Run {result.run_id} ({where})",
        style="dim",
    )
    return Group(verdict, tally, context)


def reason_table(result: CheckResult) -> Table:
    """One row per reason code: how many records it applies to and one example message."""
    records: Counter[ReasonCode] = Counter()
    examples: dict[ReasonCode, str] = {}
    for reasons in result.decisions.reasons:
        for reason in reasons:
            examples.setdefault(reason.code, reason.message)
        records.update({reason.code for reason in reasons})
    return reasons_table(records, examples)


def reasons_table(records: Mapping[ReasonCode, int], examples: Mapping[ReasonCode, str]) -> Table:
    """`reason_table` from the number of records per code and one message of each code."""
    order = list(ReasonCode)
    table = Table(title="Blocked and warned by reason", title_justify="left", expand=True)
    codes = sorted(records, key=lambda code: (-records[code], order.index(code)))
    table.add_column("Reason", no_wrap=True, min_width=max([len(code.value) for code in codes] or [6]))
    table.add_column("Effect", no_wrap=True, min_width=6)
    table.add_column("Records", justify="right", no_wrap=True, min_width=7)
    # One line a reason: the example is cut to the terminal's width (the decisions file has every message).
    table.add_column("What it means: an example", no_wrap=True, overflow="ellipsis", ratio=1)
    for code in codes:
        count, action = records[code], code.action
        table.add_row(
            Text(code.value, style="bold"),
            Text("blocks" if action is Action.BLOCK else "warns", style=_ACTION_STYLE[action]),
            f"{count:,}",
            Text.assemble((f"{_MEANING.get(code, '')}: ", "dim"), examples[code]),
        )
    return table


def source_table(result: CheckResult, policy: Policy) -> Table:
    """Allowed, warned and blocked records per source, with the team behind each source."""
    tally: dict[str, Counter[Action]] = {}
    table = result.decisions
    for source, action in zip(table.sources, table.actions, strict=True):
        tally.setdefault(source if source is not None else NO_SOURCE, Counter())[action] += 1
    return sources_table(tally, policy)


def sources_table(tally: Mapping[str, Counter[Action]], policy: Policy) -> Table:
    """`source_table` from the actions counted per source (`NO_SOURCE` for records without one)."""
    totals: Counter[Action] = sum(tally.values(), Counter())
    out = Table(title="By source", title_justify="left", show_footer=True)
    out.add_column("Source", footer="Total")
    out.add_column("Team")
    for action in Action:
        out.add_column(_past(action).capitalize(), justify="right", footer=_count(totals[action], action))
    for source in sorted(tally):
        if source in policy.sources:
            team = Text(policy.team_of(source) or "—")
        else:
            team = Text("not in the policy" if source != NO_SOURCE else "—", style="dim")
        counts = tally[source]
        out.add_row(Text(source), team, *(_count(counts[action], action) for action in Action))
    return out


def _count(count: int, action: Action) -> Text:
    return Text(f"{count:,}", style=_ACTION_STYLE[action] if count else "dim")


def _past(action: Action) -> str:
    return {Action.ALLOW: "allowed", Action.WARN: "warned", Action.BLOCK: "blocked"}[action]


def _seconds(duration: float) -> str:
    return f"{duration * 1000:.0f} ms" if duration < 1 else f"{duration:.2f} s"


def _joined(parts: list[tuple[str, str]]) -> list[str | tuple[str, str]]:
    out: list[str | tuple[str, str]] = []
    for part in parts:
        if out:
            out.append(", ")
        out.append(part)
    return out
