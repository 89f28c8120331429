"""`freshguard policy ...`: is a policy file sound, what does it say, what does a new version change?

`validate` and `show` read one file, `diff` compares two versions, `schema` prints the JSON Schema
editors validate against, `import` turns an Open Data Contract Standard contract into policy objects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table
from rich.text import Text

from guard import InputError, Policy, PolicyError, PolicyProblem, load_policy, parse_duration
from guard.cli.output import EXIT_BLOCKED, EXIT_OK, bad_input_exits, error_console, fail, results_console
from guard.cli.render_policy import render_policy
from guard.policy import policy_from_document
from guard.policy.diff import ChangeKind, diff_policies
from guard.policy.odcs import ContractTranslation, merge_into, translate_contract
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


@app.command("import")
def import_command(
    contract: Annotated[
        Path, typer.Argument(metavar="CONTRACT", help="An ODCS v3 data contract (YAML).", show_default=False)
    ],
    source: Annotated[
        str | None,
        typer.Option("--source", help="The source system the contract's data comes from (default: its first server)."),
    ] = None,
    max_age: Annotated[
        str | None,
        typer.Option(
            "--max-age",
            help="max_age for objects the contract gives no latency SLA (e.g. 1h); objects already in the "
            "--merge policy keep their own.",
        ),
    ] = None,
    merge: Annotated[
        Path | None,
        typer.Option("--merge", metavar="POLICY", help="Print POLICY with the contract merged in, validated."),
    ] = None,
) -> None:
    """Turn an Open Data Contract Standard (v3) contract into policy objects, printed as YAML.

    Schema properties become `fields` checks (types, required, enums, patterns, ranges), the
    contract's team the source's team, and its latency SLA `max_age`. Everything the contract
    checks or agrees that Freshguard cannot translate is listed on standard error, never dropped
    silently. With `--merge POLICY` the whole policy is printed, the contract's objects merged in
    (replicas, warn_age and conflict rules of objects already there are kept, and so are their
    fields and max_age when the contract says nothing about them; a new owner leaves the replicas);
    every merge step is said on standard error. Redirect it to a file and review it with
    `freshguard policy diff`. Exits 0, or 2 when the contract cannot be read
    or the merged policy does not load.
    """
    with bad_input_exits():
        default_age = _duration_option(max_age)
        document = _read_contract(contract)
        translation = translate_contract(document, origin=str(contract), source=source, default_max_age=default_age)
        if merge is not None:
            merged, said = merge_into(_read_policy_document(merge), translation)
            policy_from_document(merged, origin=f"{merge} merged with {contract}")
            output = merged
        else:
            said, output = [], translation.document()
            if all("max_age" in spec for spec in translation.objects.values()):
                policy_from_document({"policy": "import", "version": 0, **output}, origin=f"{contract} translated")
    typer.echo(_header(contract, document, translation) + policy_yaml(output), nl=False)
    errors = error_console()
    for line in said:
        errors.print(Text(f"merged: {line}"), soft_wrap=True)
    if translation.untranslated:
        errors.print(
            Text(f"{contract}: {_plural(len(translation.untranslated), 'item')} not translated:", style="yellow"),
            soft_wrap=True,
        )
        for note in translation.untranslated:
            errors.print(Text(f"  - {note}"), soft_wrap=True)


def _duration_option(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"--max-age {text!r}: {exc}") from None


def _read_contract(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"contract {path}: cannot read the file: {exc.strerror}") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"contract {path}: not a YAML document ({exc})") from exc


def _read_policy_document(path: Path) -> dict[str, Any]:
    load_policy(path)  # refused with every problem, file and line, before anything is merged
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):  # pragma: no cover - load_policy refuses it first
        fail(f"policy {path} is not a mapping")
    return document


def _header(contract: Path, document: object, translation: ContractTranslation) -> str:
    meta = document if isinstance(document, dict) else {}
    described = ", ".join(f"{key} {meta[key]}" for key in ("apiVersion", "id", "version") if meta.get(key) is not None)
    notes = len(translation.untranslated)
    lines = [
        f"# From {contract} ({described}) by freshguard policy import.",
        f"# {_plural(notes, 'item')} of the contract not translated: listed on standard error." if notes else "",
    ]
    return "".join(f"{line}\n" for line in lines if line)


class _Flow(dict[str, Any]):
    """A mapping written on one line (`{type: str, required: true}`), as policy files write field checks."""


class _PolicyDumper(yaml.SafeDumper):
    pass


_PolicyDumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)
)


def policy_yaml(document: Mapping[str, Any]) -> str:
    """A policy document as YAML in the layout policy files use (field checks on one line each)."""
    shaped = dict(document)
    objects = shaped.get("objects")
    if isinstance(objects, dict):
        shaped["objects"] = {
            name: {**spec, "fields": {f: _Flow(c) for f, c in (spec.get("fields") or {}).items()}}
            if isinstance(spec, dict) and isinstance(spec.get("fields"), dict)
            else spec
            for name, spec in objects.items()
        }
    sources = shaped.get("sources")
    if isinstance(sources, dict):
        shaped["sources"] = {name: _Flow(spec) if isinstance(spec, dict) else spec for name, spec in sources.items()}
    text: str = yaml.dump(shaped, Dumper=_PolicyDumper, sort_keys=False, allow_unicode=True, width=120)
    return text


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
