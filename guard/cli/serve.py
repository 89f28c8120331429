"""`freshguard serve`: run the HTTP service (api/) with uvicorn, on loopback until it has API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from guard.cli.output import bad_input_exits, error_console, fail


def serve_command(
    *,
    policy: Annotated[
        Path,
        typer.Option(
            "--policy",
            "-p",
            metavar="FILE",
            envvar="FRESHGUARD_POLICY",
            help="The policy file (YAML) checks run under.",
            show_default=False,
        ),
    ],
    database: Annotated[
        str,
        typer.Option(
            metavar="URL",
            envvar="FRESHGUARD_DATABASE_URL",
            help="The lineage store: sqlite:///freshguard.db (the embedded default) or postgresql+psycopg://...",
        ),
    ] = "sqlite:///freshguard.db",
    host: Annotated[
        str,
        typer.Option(
            help="Where to listen: loopback only (127.0.0.1, ::1, localhost), as there is no authentication.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The TCP port to listen on.")] = 8000,
) -> None:
    """Run the guard service: POST /v1/check before inference, run history and lineage; /docs lists it all."""
    from api.settings import is_loopback

    if not is_loopback(host):
        fail(
            f"freshguard serve refuses to listen on {host}: the service has no authentication yet, so anyone "
            "who reaches it could read every run. Listen on 127.0.0.1 (or ::1, localhost) and put an "
            "authenticating proxy in front of it."
        )
    import uvicorn

    from api import Settings, create_app
    from api.app import build_guard

    settings = Settings(policy=policy, database_url=database, host=host, port=port)
    with bad_input_exits():
        # Fail here, with the policy's or the store's own message, rather than in uvicorn's start-up traceback.
        build_guard(settings).close()
    error_console().print(
        Text(
            f"WARNING: Freshguard is serving on http://{_url_host(host)}:{port} WITHOUT AUTHENTICATION: "
            "any local process can check records and read every run and lineage. Do not expose this port.",
            style="bold yellow",
        ),
        soft_wrap=True,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
