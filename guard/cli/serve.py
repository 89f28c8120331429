"""`freshguard serve`: run the HTTP service (api/) with granian; open on loopback only unless it has API keys.

granian (a Rust HTTP server) closes a connection whose request head has not arrived within
`--head-timeout` seconds, which uvicorn cannot do; the app itself drops bodies that stall.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from guard.cli.output import bad_input_exits, error_console, fail

if TYPE_CHECKING:
    from api.settings import Settings


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
            help="Where to listen: any address with API keys; loopback only (127.0.0.1, ::1, localhost) without.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The TCP port to listen on.")] = 8000,
    keys_file: Annotated[
        Path | None,
        typer.Option(
            "--keys-file",
            metavar="FILE",
            envvar="FRESHGUARD_KEYS_FILE",
            help="The API keys (YAML or JSON: name, role, source?, key_sha256); also FRESHGUARD_API_KEYS. "
            "Without keys the service runs open, on loopback only.",
            show_default=False,
        ),
    ] = None,
    head_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            max=300,
            envvar="FRESHGUARD_HEAD_TIMEOUT_S",
            help="Seconds a client has to send its whole request head; a slower connection is closed.",
        ),
    ] = 10.0,
    access_log: Annotated[bool, typer.Option(help="Log every request (method, path, status, time).")] = True,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            envvar="FRESHGUARD_WORKERS",
            help="Worker processes. With more than one, use PostgreSQL: every worker writes the same store.",
        ),
    ] = 1,
) -> None:
    """Run the guard service: POST /v1/check before inference, history, health and incidents; the dashboard at /."""
    import os

    from api.settings import is_loopback

    api_keys = (os.environ.get("FRESHGUARD_API_KEYS") or "").strip() or None
    if keys_file is None and api_keys is None and not is_loopback(host):
        fail(
            f"freshguard serve refuses to listen on {host}: the service has no authentication (no API keys "
            "configured), so anyone who reaches it could read every run. Listen on 127.0.0.1 (or ::1, localhost), "
            "or configure API keys with --keys-file / FRESHGUARD_KEYS_FILE or FRESHGUARD_API_KEYS (see README)."
        )
    from api import Settings
    from api.app import build_guard, build_keyring, close_guard

    settings = Settings(
        policy=policy, database_url=database, host=host, port=port, keys_file=keys_file, api_keys=api_keys,
        head_timeout_s=head_timeout,
    )  # fmt: skip
    with bad_input_exits():
        # Fail here, with the keys', policy's or store's own message, rather than in uvicorn's start-up traceback.
        keyring = build_keyring(settings)
        close_guard(build_guard(settings.model_copy(update={"writer_process": False})))  # no writer to start
    if settings.keys_configured:
        loaded = ", ".join(
            f"{len(names)} {role.value} ({', '.join(names)})" for role, names in sorted(keyring.names_by_role().items())
        )
        error_console().print(
            Text(f"Freshguard requires API keys on http://{_url_host(host)}:{port}: {loaded}."), soft_wrap=True
        )
    else:
        error_console().print(
            Text(
                f"WARNING: Freshguard is serving on http://{_url_host(host)}:{port} WITHOUT AUTHENTICATION: "
                "any local process can check records and read every run and lineage. Do not expose this port. "
                "Configure API keys (FRESHGUARD_KEYS_FILE or FRESHGUARD_API_KEYS) to require them.",
                style="bold yellow",
            ),
            soft_wrap=True,
        )
    if workers > 1 and settings.database_url.startswith("sqlite"):
        error_console().print(
            Text(f"Note: {workers} workers share one SQLite file; they take turns writing. Use PostgreSQL for a team."),
            soft_wrap=True,
        )
    _export(settings)
    _granian(settings, workers=workers, access_log=access_log).serve()


def _granian(settings: Settings, *, workers: int, access_log: bool) -> Any:
    """granian serving the app factory: each worker process builds the app from the exported settings."""
    import multiprocessing

    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    # Workers start as fresh interpreters: this process checked the store (its threads hold locks
    # that a forked child would inherit held forever).
    multiprocessing.set_start_method("spawn", force=True)
    return Granian(
        "api.main:app_from_environment",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        http1_settings=HTTP1Settings(header_read_timeout=round(settings.head_timeout_s * 1000)),
        log_access=access_log,
        log_access_format='%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms',
        respawn_failed_workers=True,
        workers_kill_timeout=30,
    )


def _export(settings: Settings) -> None:
    """Hand the settings to the worker processes (they read FRESHGUARD_*), and a metrics folder they share."""
    import os
    import tempfile

    os.environ["FRESHGUARD_POLICY"] = str(settings.policy)
    os.environ["FRESHGUARD_DATABASE_URL"] = settings.database_url
    os.environ["FRESHGUARD_HOST"] = settings.host
    os.environ["FRESHGUARD_PORT"] = str(settings.port)
    os.environ["FRESHGUARD_HEAD_TIMEOUT_S"] = str(settings.head_timeout_s)
    if settings.keys_file is not None:
        os.environ["FRESHGUARD_KEYS_FILE"] = str(settings.keys_file)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus-client's multiprocess mode: each worker writes its counters there; /metrics adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="freshguard-metrics-")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
