"""Schemathesis against `freshguard serve`, on SQLite and PostgreSQL: every phase, every check, links followed.

The run is `st run` as a user would type it, with tests/api/schemathesis.toml (a fixed seed, a bounded
number of examples): examples, coverage, fuzzing, then the stateful phase, which follows the document's
links from the operations that make ids (a check, an incident, a policy version) to those that use them.
A keyed service (an admin key; schemathesis also sends none and wrong ones) over a store seeded with
four hours of history (incidents included), its gateway forwarding to a stand-in for the OpenAI API.
Any finding fails the test, with schemathesis' report of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.keys import hash_key
from tests.api.conftest import SAMPLE_KEY, seed_store
from tests.conftest import EXAMPLE_POLICY, ROOT
from tests.integrations.conftest import serve
from tests.integrations.upstream import make_upstream
from tests.serving import free_port, freshguard_serve, serving

ADMIN_KEY = "adm-fuzz-3e9d1c7b5a2f4e8d6c0b"
CONFIG = ROOT / "tests" / "api" / "schemathesis.toml"
BIN = Path(sys.executable).parent


@pytest.fixture
def upstream_url() -> Iterator[str]:
    """The stand-in for the OpenAI API, on loopback."""
    for base_url in serve(make_upstream().app):
        yield f"{base_url}/v1"


@pytest.fixture
def served(store_url: str, upstream_url: str, tmp_path: Path) -> Iterator[str]:
    """`freshguard serve` with an admin key over a seeded store, on a free loopback port; its base URL."""
    seed_store(store_url, hours=4)
    port = free_port()
    env = {
        **os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_API_KEYS": f"fuzz:admin:{hash_key(ADMIN_KEY)}",
        "FRESHGUARD_OPENAI_UPSTREAM_URL": upstream_url, "FRESHGUARD_OPENAI_TIMEOUT_S": "10",
    }  # fmt: skip
    command = freshguard_serve("--policy", str(EXAMPLE_POLICY), "--database", store_url, port=port)
    with serving(command, port=port, env=env, log=tmp_path / "serve.log", ready_within_s=120) as service:
        yield service.base
    assert "Traceback" not in service.log_text(), service.log_text()


def test_schemathesis_finds_nothing_and_its_stateful_phase_reaches_every_operation(served: str) -> None:
    """No 5xx, every answer documented (status, media type, schema, headers), auth enforced; links lead everywhere."""
    command = [
        str(BIN / "st"), "--no-color", "--config-file", str(CONFIG), "run", f"{served}/openapi.json",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "-H", f"Authorization: Bearer {ADMIN_KEY}",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)

    report = run.stdout + run.stderr
    assert run.returncode == 0, report[report.find("FAILURES") :] or report
