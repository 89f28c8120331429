"""The `freshguard` command: the typer app, assembled from one module per command."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from guard import __version__
from guard.cli import policy, store
from guard.cli.audit import audit_command
from guard.cli.check import check_command
from guard.cli.demo import demo_command
from guard.cli.serve import serve_command

app = typer.Typer(
    name="freshguard",
    help="Freshguard decides, before a model sees it, whether each record may be used: where it came from, "
    "whether that source owns it, how fresh it is, whether it keeps its contract and whether copies agree.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # joins the lines of a docstring paragraph
    pretty_exceptions_show_locals=False,  # locals may hold signing keys
    pretty_exceptions_enable=False,
)
app.command("check", no_args_is_help=True)(check_command)
app.command("serve", no_args_is_help=False)(serve_command)
app.command("audit", no_args_is_help=True)(audit_command)
app.command("demo", no_args_is_help=False)(demo_command)
app.add_typer(policy.app)
app.add_typer(store.app)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"freshguard {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Freshguard decides, before a model sees it, whether each record may be used."""


def main() -> None:
    """Run the `freshguard` command; an error nobody foresaw exits 3 with one line, not 1 ("blocked")."""
    try:
        app()
    except Exception as exc:  # the last line of defence of a command line
        if os.environ.get("FRESHGUARD_DEBUG"):
            raise
        typer.echo(
            f"freshguard: unexpected {type(exc).__name__}: {exc}. This is a bug in Freshguard; "
            "run again with FRESHGUARD_DEBUG=1 for the traceback and report it.",
            err=True,
        )
        raise SystemExit(3) from None
