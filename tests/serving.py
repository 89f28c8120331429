"""The one way tests start the service as a user does: a command (`freshguard serve ...`) in a subprocess.

`serving(...)` starts it with its output in a log file, waits until `GET /readyz` answers 200 on the
given loopback port, and stops it afterwards (SIGTERM, as `docker stop` and process managers send it,
then SIGKILL if it does not stop in time). A command that exits early or never gets ready fails the
test with its log.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp

#: The `freshguard` command of the environment running the tests.
FRESHGUARD = str(Path(sys.executable).parent / "freshguard")


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def freshguard_serve(*args: str, port: int) -> list[str]:
    """The command line `freshguard serve ARGS --port PORT`."""
    return [FRESHGUARD, "serve", *args, "--port", str(port)]


@dataclass(frozen=True)
class Served:
    """A service started by `serving`: where it answers, its process and its log file."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        """Everything the service wrote so far."""
        return self.log.read_text()


@contextmanager
def serving(
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    log: Path,
    cwd: Path | None = None,
    ready_within_s: float = 60,
) -> Iterator[Served]:
    """Run `command` (which listens on `port`) until the block ends; it is ready once /readyz answers 200."""
    with log.open("w") as out:
        process = subprocess.Popen(list(command), env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_ready(served, command, ready_within_s)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_ready(served: Served, command: Sequence[str], within_s: float) -> None:
    what = " ".join(Path(part).name if index == 0 else part for index, part in enumerate(command[:2]))
    deadline = time.monotonic() + within_s
    while True:
        if served.process.poll() is not None:
            pytest.fail(f"{what} exited {served.process.returncode}:\n{served.log_text()}")
        try:
            if httpx2.get(f"{served.base}/readyz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not become ready within {within_s:g} s:\n{served.log_text()}")
        time.sleep(0.1)


class AppClient(TestClient):
    """Starlette's TestClient, addressed as a user on this machine addresses the service: http://127.0.0.1.

    (Its default, `testserver`, is not a loopback name: a service without keys refuses it.)
    """

    def __init__(self, app: ASGIApp, base_url: str = "http://127.0.0.1", **options: Any) -> None:
        super().__init__(app, base_url=base_url, **options)
