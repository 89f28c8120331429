"""`freshguard policy ...`: is a policy file sound, what does it say, what does a new version change?

`validate` and `show` read one file, `diff` compares two versions, `schema` prints the JSON Schema
editors validate against, `import` turns an Open Data Contract Standard contract into policy objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from guard import Policy, PolicyError, PolicyProblem, load_policy
from guard.cli.output import EXIT_BLOCKED, EXIT_OK, bad_input_exits, results_console
from guard.cli.render_policy import render_policy
from guard.policy.diff import ChangeKind, diff_policies
from guard.policy.schema import policy_json_schema

app = typer.Typer(
    name="policy",
    help="Validate a policy file, show what it says, compare two versions, print its JSON Schema, import a contract.",
    no_args_is_help=True,
)

PolicyFile = Annotated[
    Path,
    typer.Argument(metavar="FILE", help="The policy file (YAML).", show_default=False),
]


@app.command("validate")
def validate_command(file: PolicyFile) -> None:
    """Check that a policy file loads and that every object's contract can run.

    Prints what the policy holds and which environment variables it reads (signing
    keys, webhook URLs), and whether each is set now; they are not required here.
    Exits 0 when the policy is sound, 2 with every problem listed when it is not.
    """
    with bad_input_exits():
        policy = load_policy(file)
        prove_contracts(policy, origin=str(file))
    console = results_console()
    console.print(
        Text(
            f"{file}: OK — policy {policy.name} v{policy.version}, {_plural(len(policy.sources), 'source')}, "
            f"{_plural(len(policy.objects), 'object')}, {_plural(len(policy.slas), 'SLA')}"
        ),
        soft_wrap=True,
    )
    expected = list(environment_variables(policy))
    if expected:
        console.print(env_table(expected, os.environ))


@app.command("show")
def show_command(file: PolicyFile) -> None:
    """Show a policy as tables: sources, objects with their contracts, and SLAs."""
    with bad_input_exits():
        policy = load_policy(file)
    render_policy(policy, results_console())


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the policy file, for editors (completion, validation as you type).

    Save it (`freshguard policy schema > freshguard-policy.schema.json`) and point your editor at it;
    `freshguard policy validate` still checks what a schema cannot (owners are declared sources, ...).
    """
    typer.echo(json.dumps(policy_json_schema(), indent=2, ensure_ascii=False))


_STYLES = {
    ChangeKind.ADDED: "green",
    ChangeKind.REMOVED: "red",
    ChangeKind.TIGHTENED: "yellow",
    ChangeKind.LOOSENED: "cyan",
    ChangeKind.CHANGED: "",
    ChangeKind.VERSION: "",
}


@app.command("diff")
def diff_command(
    old: Annotated[Path, typer.Argument(metavar="OLD", help="The policy in force (YAML).", show_default=False)],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="The version to review (YAML).", show_default=False)],
) -> None:
    """Say in words what NEW changes from OLD: the review step before publishing.

    One line per change ("customer: max_age tightened from 1h to 30m"); *tightened* means more
    records will be warned or blocked. A version that does not go up is flagged. Exits 0 when the
    two mean the same, 1 when NEW changes something (like `diff`), 2 when either does not load.
    """
    with bad_input_exits():
        before, after = load_policy(old), load_policy(new)
    changes = diff_policies(before, after)
    console = results_console()
    if not changes:
        console.print(Text(f"{old} and {new} mean the same: no change"), soft_wrap=True)
        raise typer.Exit(EXIT_OK)
    target = f"v{after.version}" if after.name == before.name else f"{after.name} v{after.version}"
    head = f"{before.name} v{before.version} → {target}: {_plural(len(changes), 'change')}"
    console.print(Text(head, style="bold"), soft_wrap=True)
    for change in changes:
        style = _STYLES[change.kind]
        if change.kind is ChangeKind.VERSION and after.version <= before.version:
            style = "bold red"
        console.print(Text(f"  {change.message}", style=style), soft_wrap=True)
    raise typer.Exit(EXIT_BLOCKED)


def prove_contracts(policy: Policy, *, origin: str) -> None:
    """Build the pandera schema of every object's contract; raise PolicyError listing every one that cannot run."""
    from guard.checks.contract import Contract  # pandera and polars: only this command needs them

    problems: list[PolicyProblem] = []
    for name, spec in policy.objects.items():
        try:
            _ = Contract(name, spec.fields, naive_is_utc=policy.naive_timestamps == "utc").schema
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(origin, problems)


def environment_variables(policy: Policy) -> Iterator[tuple[str, str]]:
    """Each environment variable the policy names, with what it is for."""
    for name, source in policy.sources.items():
        if source.signing_key_env is not None:
            yield source.signing_key_env, f"signing key of source {name} (freshguard check needs it)"
    for name, channel in policy.notify.items():
        if channel.webhook_env is not None:
            yield channel.webhook_env, f"{channel.kind} URL of notify channel {name}"
        if channel.routing_key_env is not None:
            yield channel.routing_key_env, f"PagerDuty routing key of notify channel {name}"


def env_table(expected: list[tuple[str, str]], environ: Mapping[str, str]) -> Table:
    """The environment variables a policy reads and whether each is set (values are never shown)."""
    table = Table(title="Environment variables this policy reads", title_justify="left")
    table.add_column("Variable")
    table.add_column("For")
    table.add_column("Now")
    for variable, purpose in expected:
        is_set = bool(environ.get(variable))
        table.add_row(variable, purpose, Text("set" if is_set else "not set", style="green" if is_set else "yellow"))
    return table


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
