"""A policy as rich tables: its header, sources, objects with their contracts, and SLAs."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from rich.table import Table
from rich.text import Text

from guard import Policy, format_duration
from guard.policy import FieldSpec

NONE = "—"


def render_policy(policy: Policy, console: Console) -> None:
    """Print every table of a policy."""
    tables = [header_table(policy), sources_table(policy), objects_table(policy), contracts_table(policy)]
    if policy.slas:
        tables.append(slas_table(policy))
    for number, table in enumerate(tables):
        if number:
            console.print()
        console.print(table)


def header_table(policy: Policy) -> Table:
    """Name, version, clock skew, the rule for naive timestamps and the content hash."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    naive = "rejected" if policy.naive_timestamps == "reject" else "read as UTC"
    for label, value in (
        ("Policy", f"{policy.name} v{policy.version}"),
        ("Clock skew", f"{format_duration(policy.clock_skew)} (later timestamps are refused)"),
        ("Timestamps without offset", f"{naive} (naive_timestamps: {policy.naive_timestamps})"),
        ("Content hash", policy.content_hash()[:12]),
    ):
        table.add_row(label, Text(value))
    return table


def sources_table(policy: Policy) -> Table:
    """Every source with its team and whether its records must be signed."""
    table = Table(title="Sources", title_justify="left")
    table.add_column("Source")
    table.add_column("Team")
    table.add_column("Signed records")
    for name, source in policy.sources.items():
        signed = f"required (key in ${source.signing_key_env})" if source.signing_key_env else "no"
        table.add_row(Text(name), Text(source.team or NONE), Text(signed))
    return table


def objects_table(policy: Policy) -> Table:
    """Every object: owner, replicas, freshness limits, conflict rule and whether lineage is required."""
    table = Table(title="Objects", title_justify="left")
    # Short two-line headers and unwrapped cells keep the table whole on an 80-column terminal.
    table.add_column("Object", style="bold", no_wrap=True)
    table.add_column("Owner", no_wrap=True)
    table.add_column("Replicas", no_wrap=True)
    table.add_column("Max\nage", justify="right", no_wrap=True)
    table.add_column("Warn\nage", justify="right", no_wrap=True)
    table.add_column("On\nconflict", no_wrap=True)
    table.add_column("Lineage", no_wrap=True)
    for name, spec in policy.objects.items():
        table.add_row(
            Text(name),
            Text(spec.owner),
            Text("\n".join(spec.replicas) or NONE),
            _duration(spec.max_age),
            _duration(spec.warn_age),
            spec.on_conflict,
            "required" if spec.require_lineage else NONE,
        )
    return table


def slas_table(policy: Policy) -> Table:
    """Every integration point's SLA: lag, block rate, window, recovery and who is notified."""
    table = Table(title="SLAs", title_justify="left")
    table.add_column("Integration point")
    table.add_column("Max lag", justify="right")
    table.add_column("Max block rate", justify="right")
    table.add_column("Window", justify="right")
    table.add_column("Recovery", justify="right")
    table.add_column("Notify")
    for sla in policy.slas:
        rate = NONE if sla.max_block_rate is None else f"{sla.max_block_rate * 100:g}%"
        table.add_row(
            Text(f"{sla.source} → {sla.object}"),
            _duration(sla.max_lag),
            rate,
            _duration(sla.window),
            _duration(sla.recovery),
            Text(", ".join(sla.notify) or NONE),
        )
    return table


def contracts_table(policy: Policy) -> Table:
    """Every field of every contract with the rules its values must keep."""
    table = Table(title="Contracts", title_justify="left")
    table.add_column("Object", style="bold")
    table.add_column("Field")
    table.add_column("Type")
    table.add_column("Required")
    table.add_column("Rules")
    for name, spec in policy.objects.items():
        for number, (field, fs) in enumerate(spec.fields.items()):
            table.add_row(
                Text(name if number == 0 else ""),
                Text(field),
                fs.type,
                "yes" if fs.required else "no",
                Text("; ".join(field_rules(fs)) or NONE),
                end_section=number == len(spec.fields) - 1,
            )
    return table


def field_rules(spec: FieldSpec) -> list[str]:
    """The rules of one field in words: `at least 0`, `one of gold, silver, bronze`."""
    rules: list[str] = []
    if spec.nullable:
        rules.append("may be null")
    if spec.min is not None:
        rules.append(f"at least {spec.min}")
    if spec.max is not None:
        rules.append(f"at most {spec.max}")
    if spec.in_ is not None:
        rules.append("one of " + ", ".join(str(value) for value in spec.in_))
    if spec.pattern is not None:
        rules.append(f"matches {spec.pattern}")
    if spec.min_length is not None:
        rules.append(f"at least {_characters(spec.min_length)}")
    if spec.max_length is not None:
        rules.append(f"at most {_characters(spec.max_length)}")
    return rules


def _characters(count: int) -> str:
    return "1 character" if count == 1 else f"{count} characters"


def _duration(value: timedelta | None) -> str:
    return NONE if value is None else format_duration(value)
