"""`freshguard serve`: a real uvicorn server over HTTP, and the refusals that keep an open service local."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from typer.testing import CliRunner

from guard.cli.main import app
from tests.conftest import EXAMPLE_POLICY
from tests.serving import FRESHGUARD, free_port, serving

Fresh = Callable[..., dict[str, Any]]


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


def test_freshguard_demo_serves_a_seeded_day_with_an_incident_on_loopback_and_says_where(tmp_path: Path) -> None:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.endswith("_WEBHOOK_URL")}
    command = [FRESHGUARD, "demo", "--port", str(port), "--hours", "6"]
    with serving(command, port=port, env=env, log=tmp_path / "demo.log") as served:
        assert f"The dashboard: http://127.0.0.1:{port}/" in served.log_text()
        incidents = httpx2.get(f"{served.base}/v1/incidents?state=open").json()["incidents"]
        touched = [i for i in incidents if i["model_calls_affected"] > 0]
        assert touched != []  # an open incident, and what it touched
        page = httpx2.get(f"{served.base}/", headers={"accept": "text/html"}).text
        assert f'data-incident="{touched[0]["id"]}"' in page
        assert "OPS_WEBHOOK_URL" in page  # the channel that cannot deliver, flagged
        log = served.log_text()
    assert log.count("configuration: alert channel ops") == 1  # said once, at start
    assert "given up" not in log
