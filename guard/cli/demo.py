"""`freshguard demo`: a realistic day (an incident and its impact included) in a temporary store, on the dashboard."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from guard.cli.output import bad_input_exits, error_console


def demo_command(
    *,
    port: Annotated[int, typer.Option(min=0, max=65535, help="The loopback port to serve on; 0 picks a free one.")] = 0,
    hours: Annotated[int, typer.Option(min=1, max=24 * 7, help="How many hours of history to seed.")] = 24,
) -> None:
    """Seed a day of operations (checks, syncs, an open incident and its impact) into a temporary SQLite store
    and serve the dashboard on 127.0.0.1; prints its URL. Ctrl-C stops it and deletes the store.

    For the check on the command line, see `freshguard check` (README: the check demo).
    """
    import uvicorn

    from api import Settings, create_app
    from api.app import build_keyring
    from guard.cli.demo_day import example_policy, seed

    with tempfile.TemporaryDirectory(prefix="freshguard-demo-") as folder:
        database = f"sqlite:///{Path(folder) / 'demo.db'}"
        console = error_console()
        console.print(Text(f"Seeding {hours} h of operations into a temporary store ({database}) ..."), soft_wrap=True)
        with bad_input_exits():
            seeded = seed(database, hours=hours)
        chosen = port or _free_port()
        url = f"http://127.0.0.1:{chosen}/"
        for number, source, obj in seeded.open_incidents:
            console.print(Text(f"open incident #{number}: {source} → {obj}  ({url}incidents/{number})"), soft_wrap=True)
        settings = Settings(policy=example_policy(), database_url=database, host="127.0.0.1", port=chosen)
        app = create_app(settings, build_keyring(settings))
        typer.echo(f"The dashboard: {url}  (open mode, this machine only; Ctrl-C stops it and deletes the store)")
        uvicorn.run(app, host="127.0.0.1", port=chosen, log_level="warning")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
