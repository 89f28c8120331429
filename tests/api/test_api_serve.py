"""`freshguard serve`: a real uvicorn server over HTTP, and the refusals that keep an open service local."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from guard.cli.main import app
from tests.api.conftest import SAMPLE_KEY
from tests.conftest import EXAMPLE_POLICY

Fresh = Callable[..., dict[str, Any]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`freshguard serve` in a subprocess on a free loopback port: its base URL once /readyz answers, its log."""
    port = _free_port()
    env = {**os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_POLICY": str(EXAMPLE_POLICY)}
    command = [str(Path(sys.executable).parent / "freshguard"), "serve", "--database", f"sqlite:///{tmp_path / 'l.db'}"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"freshguard serve exited {process.returncode}: {log.read_text()}")
            try:
                if httpx2.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("freshguard serve did not become ready within 30 s")
            time.sleep(0.1)
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_served_api_checks_records_over_real_http(server: tuple[str, Path], fresh: Fresh) -> None:
    base, _ = server
    with httpx2.Client(base_url=base, timeout=10) as http:
        checked = http.post("/v1/check", json={"pipeline": "support-bot", "records": [fresh(id="d1"), "junk"]})
        not_json = http.post("/v1/check", content=b"{oops", headers={"content-type": "application/json"})
        run = http.get(f"/v1/runs/{checked.json()['run_id']}")

    assert checked.status_code == 200
    assert (checked.json()["verdict"], checked.json()["allowed"]) == ("partial", ["d1"])
    assert (not_json.status_code, not_json.headers["content-type"]) == (400, "application/problem+json")
    assert [d["record_id"] for d in run.json()["decisions"]] == ["d1", "#1"]


def test_serve_warns_loudly_that_it_runs_without_authentication(server: tuple[str, Path]) -> None:
    _, log = server

    assert "WITHOUT AUTHENTICATION" in log.read_text()


runner = CliRunner()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])  # noqa: S104 - refused hosts
def test_serve_refuses_to_listen_beyond_loopback(host: str) -> None:
    result = runner.invoke(app, ["serve", "--policy", str(EXAMPLE_POLICY), "--host", host])

    assert result.exit_code == 2
    assert "no authentication" in result.output
    assert f"listen on {host}" in result.output


def test_serve_exits_2_with_the_policy_message_when_the_policy_does_not_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: x\nversion: nope\n")

    result = runner.invoke(app, ["serve", "--policy", str(bad), "--database", f"sqlite:///{tmp_path / 'l.db'}"])

    assert result.exit_code == 2
    assert f"policy {bad} is refused" in result.output
    assert "Traceback" not in result.output
