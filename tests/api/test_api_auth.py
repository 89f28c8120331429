"""API keys: 401 without a known key, 403 for a role that may not, keys files refused by name, keys never logged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import Depends, HTTPException
from pydantic import ValidationError
from typer.testing import CliRunner

from api import Settings, create_app
from api.auth import OPEN_CALLER, Caller, allow_source, require_source
from api.keys import KeyFileError, KeyRing, Role, hash_key, load_keyring
from guard.cli.main import app as cli
from tests.api.conftest import KEYS, SAMPLE_KEY, auth_as, key_entries, key_of
from tests.conftest import EXAMPLE_POLICY
from tests.serving import AppClient, free_port, freshguard_serve, serving

Fresh = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- over HTTP ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key-this-service-knows"},
        {"Authorization": f"Basic {key_of('ops-admin')}"},
        {"X-API-Key": "wrong"},
        {"Authorization": "Bearer "},
    ],
)
def test_a_request_without_a_known_key_is_a_401_problem_asking_for_a_bearer_key(
    keyed: AppClient, fresh: Fresh, headers: dict[str, str]
) -> None:
    check = keyed.post("/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers=headers)
    runs = keyed.get("/v1/runs", headers=headers)

    for response in (check, runs):
        body = _problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert body["type"] == "urn:freshguard:problem:unauthorized"
        assert "wrong" not in body["detail"]
        assert "not-a-key" not in body["detail"]


@pytest.mark.parametrize("name", ["dashboard", "erp-sync"])
def test_a_key_whose_role_may_not_check_is_a_403_problem_naming_the_role_needed(
    keyed: AppClient, fresh: Fresh, name: str
) -> None:
    response = keyed.post("/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers=auth_as(name))

    body = _problem(response, 403)
    assert body["type"] == "urn:freshguard:problem:forbidden"
    assert "pipeline or admin key" in body["detail"]
    assert key_of(name) not in response.text
    assert hash_key(key_of(name)) not in response.text


@pytest.mark.parametrize("name", ["support-bot", "ops-admin"])
def test_pipeline_and_admin_keys_may_check(keyed: AppClient, fresh: Fresh, name: str) -> None:
    response = keyed.post("/v1/check", json={"pipeline": "p", "records": [fresh(id="k")]}, headers=auth_as(name))

    assert response.status_code == 200
    assert response.json()["allowed"] == ["k"]


def test_the_key_is_also_accepted_as_x_api_key(keyed: AppClient, fresh: Fresh) -> None:
    response = keyed.post(
        "/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers={"X-API-Key": key_of("support-bot")}
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("name", "status"), [("dashboard", 200), ("support-bot", 200), ("ops-admin", 200), ("erp-sync", 403)]
)
def test_viewers_pipelines_and_admins_read_runs_and_lineage_but_source_keys_do_not(
    keyed: AppClient, fresh: Fresh, name: str, status: int
) -> None:
    run_id = keyed.post(
        "/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers=auth_as("support-bot")
    ).json()["run_id"]

    for path in ("/v1/runs", f"/v1/runs/{run_id}", "/v1/lineage/customer/C-1"):
        assert keyed.get(path, headers=auth_as(name)).status_code == status, path


def test_probes_and_the_openapi_document_stay_open(keyed: AppClient) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200
    assert keyed.get("/docs").status_code == 200
    assert keyed.get("/openapi.json").status_code == 200


def test_the_openapi_document_declares_the_key_schemes_and_the_401_and_403_problems(keyed: AppClient) -> None:
    schema = keyed.get("/openapi.json").json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    for path, method in [("/v1/check", "post"), ("/v1/runs", "get"), ("/v1/runs/{run_id}", "get")]:
        operation = schema["paths"][path][method]
        assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
        assert list(operation["responses"]["401"]["content"]) == [PROBLEM]
        assert list(operation["responses"]["403"]["content"]) == [PROBLEM]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def test_keys_from_the_environment_variable_are_accepted(
    settings: Settings, fresh: Fresh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "FRESHGUARD_API_KEYS",
        f"bot:pipeline:{hash_key('env-pipeline-key')}, erp:source:sap:{hash_key('env-source-key')}",
    )
    from_env = Settings(policy=settings.policy, database_url=settings.database_url)

    with AppClient(create_app(from_env)) as client:
        allowed = client.post(
            "/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers={"X-API-Key": "env-pipeline-key"}
        )
        refused = client.post(
            "/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers={"X-API-Key": "env-source-key"}
        )
        unknown = client.get("/v1/runs")

    assert (allowed.status_code, refused.status_code, unknown.status_code) == (200, 403, 401)


def test_without_keys_the_service_is_open(client: AppClient, fresh: Fresh) -> None:
    assert client.post("/v1/check", json={"pipeline": "p", "records": [fresh()]}).status_code == 200
    assert client.get("/v1/runs").status_code == 200


# --- require_source --------------------------------------------------------------------------------------

ERP = Caller(name="erp-sync", role=Role.SOURCE, source="sap")


def test_require_source_accepts_the_source_a_key_is_bound_to_and_admins() -> None:
    assert allow_source(ERP, "sap") == ERP
    assert allow_source(OPEN_CALLER, "salesforce") == OPEN_CALLER
    admin = Caller(name="ops", role=Role.ADMIN)
    assert allow_source(admin, "salesforce") == admin


def test_require_source_refuses_a_key_bound_to_another_source() -> None:
    with pytest.raises(HTTPException) as refused:
        allow_source(ERP, "salesforce")

    assert refused.value.status_code == 403
    assert "bound to 'salesforce'" in str(refused.value.detail)
    assert "bound to 'sap'" in str(refused.value.detail)


@pytest.mark.parametrize("role", [Role.PIPELINE, Role.VIEWER])
def test_require_source_refuses_keys_of_other_roles(role: Role) -> None:
    with pytest.raises(HTTPException) as refused:
        allow_source(Caller(name="x", role=role), "sap")

    assert refused.value.status_code == 403
    assert f"is a {role.value} key" in str(refused.value.detail)


def test_require_source_as_a_route_dependency(settings: Settings, keys_file: Path) -> None:
    """The dependency the changes and heartbeats routes will use: an ERP key cannot post CRM changes."""
    application = create_app(settings.model_copy(update={"keys_file": keys_file}))

    @application.post("/test-only/crm", dependencies=[Depends(require_source("salesforce"))])
    def crm() -> dict[str, str]:
        return {"ok": "crm"}

    @application.post("/test-only/erp", dependencies=[Depends(require_source("sap"))])
    def erp() -> dict[str, str]:
        return {"ok": "erp"}

    with AppClient(application) as client:
        assert client.post("/test-only/erp", headers=auth_as("erp-sync")).status_code == 200
        assert "bound to 'sap'" in _problem(client.post("/test-only/crm", headers=auth_as("erp-sync")), 403)["detail"]
        assert "pipeline key" in _problem(client.post("/test-only/erp", headers=auth_as("support-bot")), 403)["detail"]
        assert client.post("/test-only/crm", headers=auth_as("ops-admin")).status_code == 200
        _problem(client.post("/test-only/erp"), 401)


# --- loading keys ----------------------------------------------------------------------------------------


def test_a_json_keys_file_loads_and_looks_keys_up_by_their_digest(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(key_entries()))

    ring = load_keyring(path)

    assert len(ring) == 4
    found = ring.lookup(key_of("erp-sync"))
    assert found is not None
    assert (found.name, found.role, found.source) == ("erp-sync", Role.SOURCE, "sap")
    assert ring.lookup("nope") is None
    assert ring.lookup(hash_key(key_of("erp-sync"))) is None  # the digest is not a key
    assert ring.names_by_role()[Role.PIPELINE] == ["support-bot"]
    assert hash_key(key_of("erp-sync")) not in repr(found) + repr(ring)


DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([{"name": "a", "role": "root", "key_sha256": DIGEST}], "entry 1 ('a'): `role` is 'root'; use one of admin"),
        ([{"name": "a", "role": "source", "key_sha256": DIGEST}], "entry 1 ('a'): a source key must name its `source`"),
        (
            [{"name": "a", "role": "viewer", "source": "sap", "key_sha256": DIGEST}],
            "`source` is given for a viewer key",
        ),
        ([{"name": "a", "role": "viewer", "key_sha256": "tooshort"}], "64 hexadecimal characters (got 8 characters)"),
        ([{"name": "a", "role": "viewer", "key_sha256": "g" * 64}], "64 hexadecimal characters"),
        ([{"name": "a", "role": "viewer"}], "(got NoneType)"),
        (
            [
                {"name": "a", "role": "viewer", "key_sha256": DIGEST},
                {"name": "a", "role": "admin", "key_sha256": DIGEST},
            ],
            "the name 'a' is used by more than one entry",
        ),
        ([{"name": "a", "role": "viewer", "key": "raw-secret", "key_sha256": DIGEST}], "unknown member(s) key"),
        ([{"role": "viewer", "key_sha256": DIGEST}], "entry 1: `name` is missing or empty"),
        (["just text"], "entry 1: is not a mapping"),
        ([], "non-empty list of entries"),
        ({"keys": []}, "non-empty list of entries"),
    ],
)
def test_a_bad_keys_file_is_refused_naming_the_file_the_entry_and_what_to_do(
    tmp_path: Path, entries: Any, expected: str
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(entries))

    with pytest.raises(KeyFileError) as refused:
        load_keyring(path)

    message = str(refused.value)
    assert f"keys file {path}" in message
    assert expected in message
    assert "raw-secret" not in message


def test_every_problem_of_a_keys_file_is_listed_at_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("- {name: a, role: root, key_sha256: x}\n- {name: b, role: source, key_sha256: x}\n")

    with pytest.raises(KeyFileError) as refused:
        load_keyring(path)

    assert len(refused.value.problems) == 4


def test_a_keys_file_that_is_not_yaml_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("- name: a\n  key_sha256: [secret-material\n")

    with pytest.raises(KeyFileError, match="not YAML or JSON at line") as refused:
        load_keyring(path)

    assert "secret-material" not in str(refused.value)


def test_a_missing_keys_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot be read"):
        load_keyring(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a:viewer", "entry 1: has 2 parts"),
        (f"a:viewer:{DIGEST},b:source:{DIGEST}", "entry 2 ('b'): a source key must name its `source`"),
        (f"a:pipeline:sap:{DIGEST}", "`source` is given for a pipeline key"),
        ("a:viewer:the-raw-key", "64 hexadecimal characters"),
    ],
)
def test_bad_environment_keys_are_refused_naming_the_variable_and_entry(value: str, expected: str) -> None:
    with pytest.raises(KeyFileError) as refused:
        load_keyring(None, value)

    assert "FRESHGUARD_API_KEYS" in str(refused.value)
    assert expected in str(refused.value)
    assert "the-raw-key" not in str(refused.value)


def test_a_name_used_in_the_file_and_the_environment_is_refused(keys_file: Path) -> None:
    with pytest.raises(KeyFileError, match="'dashboard' is used by more than one key"):
        load_keyring(keys_file, f"dashboard:viewer:{DIGEST}")


def test_an_empty_keyring_finds_nothing() -> None:
    assert KeyRing().lookup("") is None


# --- settings and serve ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])  # noqa: S104 - hosts a keyed service may bind
def test_with_keys_the_settings_accept_any_host(keys_file: Path, host: str) -> None:
    assert Settings(policy=EXAMPLE_POLICY, host=host, keys_file=keys_file).host == host
    assert Settings(policy=EXAMPLE_POLICY, host=host, api_keys=f"a:viewer:{DIGEST}").host == host


@pytest.mark.parametrize("api_keys", [None, "", "  "])
def test_without_keys_the_settings_refuse_any_host_but_loopback(api_keys: str | None) -> None:
    with pytest.raises(ValidationError, match="no API keys configured"):
        Settings(policy=EXAMPLE_POLICY, host="0.0.0.0", api_keys=api_keys)  # noqa: S104


runner = CliRunner()
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - never bound: the keys file is refused first


def test_serve_exits_2_naming_the_keys_file_and_entry_when_it_is_bad(tmp_path: Path) -> None:
    bad = tmp_path / "keys.yaml"
    bad.write_text(f"- name: dash\n  role: viewer\n  source: sap\n  key_sha256: {DIGEST}\n")

    result = runner.invoke(
        cli, ["serve", "--policy", str(EXAMPLE_POLICY), "--keys-file", str(bad), "--host", ALL_INTERFACES]
    )

    assert result.exit_code == 2
    assert f"keys file {bad}" in result.output
    assert "entry 1 ('dash')" in result.output
    assert "Traceback" not in result.output


def test_the_key_hash_helper_prints_the_digest_and_an_entry() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "api",
            "hash",
            "--name",
            "erp-sync",
            "--role",
            "source",
            "--source",
            "sap",
        ],
        input="a-long-enough-random-key-0123456789\n",
        capture_output=True,
        text=True,
        check=True,
    )

    digest = hash_key("a-long-enough-random-key-0123456789")
    assert done.stdout.splitlines()[0] == digest
    entry = "\n".join(line for line in done.stdout.splitlines()[1:] if not line.startswith("#"))
    assert f"- name: erp-sync\n  role: source\n  source: sap\n  key_sha256: {digest}" == entry


@pytest.fixture
def keyed_server(tmp_path: Path, keys_file: Path) -> Iterator[tuple[str, Path]]:
    """`freshguard serve --keys-file` in a subprocess on a free loopback port: its base URL, its log."""
    port = free_port()
    env = {**os.environ, "STRIPE_SIGNING_KEY": SAMPLE_KEY, "FRESHGUARD_POLICY": str(EXAMPLE_POLICY)}
    env.pop("FRESHGUARD_API_KEYS", None)
    database = f"sqlite:///{tmp_path / 'l.db'}"
    command = freshguard_serve("--database", database, "--keys-file", str(keys_file), port=port)
    with serving(command, port=port, env=env, log=tmp_path / "serve.log") as served:
        yield served.base, served.log


def test_a_served_keyed_api_never_logs_a_key_or_a_digest(keyed_server: tuple[str, Path], fresh: Fresh) -> None:
    base, log = keyed_server
    wrong = "wrong-key-that-must-not-be-logged-7f3a"
    with httpx2.Client(base_url=base, timeout=10) as http:
        refused = http.post(
            "/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers={"Authorization": f"Bearer {wrong}"}
        )
        header = http.get("/v1/runs", headers={"X-API-Key": wrong})
        allowed = http.post("/v1/check", json={"pipeline": "p", "records": [fresh()]}, headers=auth_as("support-bot"))
        forbidden = http.get("/v1/runs", headers=auth_as("erp-sync"))
    time.sleep(0.2)  # let the access log lines reach the file

    assert (refused.status_code, header.status_code, allowed.status_code, forbidden.status_code) == (401, 401, 200, 403)
    text = log.read_text()
    assert "POST /v1/check" in text  # the log was captured
    assert "WITHOUT AUTHENTICATION" not in text
    assert "1 admin (ops-admin), 1 pipeline (support-bot), 1 source (erp-sync), 1 viewer (dashboard)" in text
    for secret in (
        [wrong, hash_key(wrong)] + [k for _, _, k in KEYS.values()] + [hash_key(k) for _, _, k in KEYS.values()]
    ):
        assert secret not in text
