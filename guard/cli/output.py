"""Where the command line writes: consoles for results and errors, and exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from guard.errors import GuardError

EXIT_OK = 0
EXIT_BLOCKED = 1
EXIT_BAD_INPUT = 2


def results_console() -> Console:
    """The console for results (standard output)."""
    return Console(highlight=False)


def error_console() -> Console:
    """The console for errors and progress (standard error)."""
    return Console(stderr=True, highlight=False)


def fail(message: str) -> NoReturn:
    """Print `message` on standard error and exit with the bad-input code (2)."""
    # soft_wrap keeps each line of the message whole, so it can be grepped and copied.
    error_console().print(Text(message, style="red"), soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def bad_input_exits() -> Iterator[None]:
    """Turn Freshguard's own errors into a message on standard error and exit code 2, not a traceback."""
    try:
        yield
    except GuardError as exc:
        fail(str(exc))


def working(console: Console, message: str) -> AbstractContextManager[object]:
    """A spinner on a terminal while something slow runs; nothing elsewhere."""
    if console.is_terminal:
        return console.status(message)
    return nullcontext()
