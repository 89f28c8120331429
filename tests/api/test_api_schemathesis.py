"""Schemathesis against the running service's own OpenAPI document: no 500, no answer off its schema."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from api import Settings, create_app
from api.keys import hash_key
from tests.api.conftest import SAMPLE_KEY
from tests.conftest import EXAMPLE_POLICY
from tests.serving import free_port, freshguard_serve, serving

ADMIN_KEY = "adm-fuzz-3e9d1c7b5a2f4e8d6c0b"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`freshguard serve` with an admin API key, on a free loopback port with a fresh SQLite store; its base URL."""
    folder = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    env = {**os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_API_KEYS": f"fuzz:admin:{hash_key(ADMIN_KEY)}"}
    database = f"sqlite:///{folder / 'lineage.db'}"
    command = freshguard_serve("--policy", str(EXAMPLE_POLICY), "--database", database, port=port)
    with serving(command, port=port, env=env, log=folder / "serve.log") as service:
        yield service.base
    assert "Traceback" not in service.log_text(), service.log_text()


def _operations() -> list[tuple[str, str]]:
    """Every (method, path) of the service's OpenAPI document, read from an app that is not started."""
    app = create_app(Settings(policy=EXAMPLE_POLICY, database_url="sqlite://"))
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item]


@pytest.fixture(scope="module")
def api_schema(served: str) -> schemathesis.BaseSchema:
    """The service's OpenAPI document, as it serves it."""
    return schemathesis.openapi.from_url(f"{served}/openapi.json")


@pytest.mark.parametrize(("method", "path"), _operations())
def test_no_request_gets_a_500_or_an_answer_off_the_schema(
    api_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    """Valid and invalid requests alike: every answer is below 500 and keeps the documented schema."""
    operation = api_schema[path][method]
    excluded = [checks.positive_data_acceptance]
    if path.startswith("/v1/openai/"):
        # This service has no upstream model: a request the gateway takes is answered 503 freshguard_no_upstream,
        # its documented answer (the gateway's own tests run it against a real upstream stand-in).
        excluded.append(checks.not_a_server_error)

    @given(case=operation.as_strategy())
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def call(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            # A request the schema allows may still be refused for what it means (an object the policy does
            # not have, a policy that does not load): a 4xx problem is the right answer, not a failure.
            excluded_checks=excluded,
            timeout=30,
        )

    call()
