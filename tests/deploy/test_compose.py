"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

`docker-compose config` validates the file and interpolates it the way `docker-compose up` would; the
structure is then read from its output. The service's start command is taken from there (and the
Dockerfile's CMD from the Dockerfile), pointed at a fresh PostgreSQL database, a free port and the
repository's policy, and run for real: migrations from zero, /readyz, an authenticated check, the run in
the database, the health checks' own commands, and a clean stop on SIGTERM (what `docker stop` sends).

docker-compose is Debian's `docker-compose` package (.ci/run installs it). Without it, or without the
PostgreSQL of FRESHGUARD_TEST_POSTGRES_URL, these tests skip, and fail when FRESHGUARD_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import yaml

from tests.deploy.dockerfile import DOCKERIGNORE, ROOT, dockerfile_instructions
from tests.serving import free_port, serving

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

COMPOSE_FILE = ROOT / "docker-compose.yml"
REPO_POLICY = ROOT / "policies" / "support-assistant.yaml"
DEFAULT_TEST_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REQUIRED = os.environ.get("FRESHGUARD_REQUIRE_POSTGRES") == "1"

#: The secrets docker-compose.yml requires (`${VAR:?message}`); nothing else is required.
SECRETS = ("POSTGRES_PASSWORD", "FRESHGUARD_API_KEYS", "STRIPE_SIGNING_KEY")
API_KEY = secrets.token_urlsafe(32)
SECRET_VALUES = {
    "POSTGRES_PASSWORD": f"pw-{secrets.token_hex(8)}",
    "FRESHGUARD_API_KEYS": f"compose-test:pipeline:{hashlib.sha256(API_KEY.encode()).hexdigest()}",
    "STRIPE_SIGNING_KEY": f"stripe-{secrets.token_hex(8)}",
}


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"FRESHGUARD_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


# --- docker-compose config ------------------------------------------------------------------------


def _compose_variables() -> set[str]:
    """Every variable docker-compose.yml interpolates."""
    return set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))


@pytest.fixture(scope="module")
def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        _unavailable("docker-compose is not installed (apt-get install docker-compose)")
    assert found is not None
    return found


def compose_config(
    docker_compose: str, tmp_path: Path, overrides: Mapping[str, str | None]
) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f docker-compose.yml config` with the secrets set, then `overrides` (None unsets).

    Variables the file reads are taken from nothing but this: not the caller's environment, not a .env file.
    """
    env = {name: value for name, value in os.environ.items() if name not in _compose_variables()}
    env.update(SECRET_VALUES)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return subprocess.run(
        [docker_compose, "--env-file", str(empty), "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config(docker_compose: str, tmp_path: Path) -> dict[str, Any]:
    """The compose file as `docker-compose config` resolves it, with the secrets set."""
    done = compose_config(docker_compose, tmp_path, {})
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


def service(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = config["services"][name]
    return found


def option(argv: list[str], flag: str) -> str:
    """The value after `flag` in a command line, which must carry it exactly once."""
    assert argv.count(flag) == 1, f"{flag} appears {argv.count(flag)} times in {argv}"
    return argv[argv.index(flag) + 1]


def test_config_passes_with_the_required_secrets_set(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"db", "freshguard"}


def test_the_compose_file_requires_exactly_the_secrets() -> None:
    assert set(re.findall(r"\$\{(\w+):\?", COMPOSE_FILE.read_text())) == set(SECRETS)


@pytest.mark.parametrize("how", ["unset", "empty"])
@pytest.mark.parametrize("secret", SECRETS)
def test_config_fails_naming_a_missing_secret(docker_compose: str, tmp_path: Path, secret: str, how: str) -> None:
    done = compose_config(docker_compose, tmp_path, {secret: None if how == "unset" else ""})

    assert done.returncode != 0
    assert f"set {secret}" in done.stderr  # the file's own message, which names the variable
    for other, value in SECRET_VALUES.items():
        assert value not in done.stdout + done.stderr, f"the error shows {other}'s value"


def test_both_services_have_health_checks(config: dict[str, Any]) -> None:
    db, app = service(config, "db"), service(config, "freshguard")

    assert db["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "pg_isready" in db["healthcheck"]["test"][1]
    assert app["healthcheck"]["test"][0] == "CMD"
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    for checked in (db, app):
        assert {"interval", "timeout", "retries", "start_period"} <= set(checked["healthcheck"])


def test_the_service_waits_for_a_healthy_database(config: dict[str, Any]) -> None:
    assert service(config, "freshguard")["depends_on"] == {"db": {"condition": "service_healthy"}}


def test_the_database_lives_in_a_named_volume_and_is_not_published(config: dict[str, Any]) -> None:
    db = service(config, "db")

    assert "pgdata" in config["volumes"]
    assert "pgdata:/var/lib/postgresql/data:rw" in db["volumes"]
    assert "ports" not in db


def test_the_policy_is_mounted_read_only_where_the_command_reads_it(config: dict[str, Any]) -> None:
    app = service(config, "freshguard")
    (mount,) = app["volumes"]
    source, target, mode = mount.rsplit(":", 2)

    assert Path(source) == REPO_POLICY
    assert mode == "ro"
    assert option(app["command"], "--policy") == target


def test_the_policy_file_can_be_overridden(docker_compose: str, tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    done = compose_config(docker_compose, tmp_path, {"FRESHGUARD_POLICY_FILE": str(mine)})

    assert done.returncode == 0, done.stderr
    (mount,) = service(yaml.safe_load(done.stdout), "freshguard")["volumes"]
    assert mount == f"{mine}:/etc/freshguard/policy.yaml:ro"


def test_the_port_is_published_on_loopback_by_default(config: dict[str, Any]) -> None:
    app = service(config, "freshguard")

    assert app["ports"] == ["127.0.0.1:8000:8000/tcp"]
    assert option(app["command"], "--port") == "8000"
    assert option(app["command"], "--host") == "0.0.0.0"  # noqa: S104 - in the container, behind the published port
    assert "8000" in dockerfile_instructions("EXPOSE")[0].split()


def test_the_database_password_stays_out_of_the_url_and_the_command_line(config: dict[str, Any]) -> None:
    from sqlalchemy.engine import make_url

    app = service(config, "freshguard")
    url = make_url(option(app["command"], "--database"))

    assert (url.drivername, url.host, url.port, url.password) == ("postgresql+psycopg", "db", 5432, None)
    assert (url.username, url.database) == ("freshguard", "freshguard")
    assert app["environment"]["PGPASSWORD"] == SECRET_VALUES["POSTGRES_PASSWORD"]
    assert service(config, "db")["environment"]["POSTGRES_PASSWORD"] == SECRET_VALUES["POSTGRES_PASSWORD"]
    assert SECRET_VALUES["POSTGRES_PASSWORD"] not in json.dumps(app["command"])


def test_the_service_gets_its_api_keys(config: dict[str, Any]) -> None:
    environment = service(config, "freshguard")["environment"]

    assert environment["FRESHGUARD_API_KEYS"] == SECRET_VALUES["FRESHGUARD_API_KEYS"]
    assert environment["STRIPE_SIGNING_KEY"] == SECRET_VALUES["STRIPE_SIGNING_KEY"]


# --- the Dockerfile -------------------------------------------------------------------------------


def final_stage() -> list[str]:
    instructions = dockerfile_instructions()
    starts = [i for i, item in enumerate(instructions) if item.upper().startswith("FROM ")]
    return instructions[starts[-1] :]


def dockerfile_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage (NAME=value forms, values unquoted)."""
    env: dict[str, str] = {}
    for item in final_stage():
        keyword, _, rest = item.partition(" ")
        if keyword.upper() == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def dockerfile_cmd() -> list[str]:
    (cmd,) = dockerfile_instructions("CMD")
    argv = json.loads(cmd)  # the exec form: a JSON array
    assert isinstance(argv, list)
    assert all(isinstance(part, str) for part in argv)
    return argv


def serve_help_flags() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", "from guard.cli.main import main; main()", "serve", "--help"],
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(re.findall(r"--[a-z][a-z-]*", done.stdout))


def test_the_image_is_python_3_11_slim_and_runs_as_a_user() -> None:
    bases = dockerfile_instructions("FROM")
    users = [item.split(" ", 1)[1] for item in final_stage() if item.upper().startswith("USER ")]

    assert all(base.split()[0] == "python:3.11-slim" for base in bases)
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_installs_the_project_without_dev_dependencies() -> None:
    installs = [run for run in dockerfile_instructions("RUN") if "pip install" in run]

    assert installs
    assert any(re.search(r"pip install (--\S+ )*\.(\s|$)", run) for run in installs)
    assert not any("[dev]" in run or "-e " in run for run in installs)


def test_the_image_health_check_asks_readyz() -> None:
    (check,) = dockerfile_instructions("HEALTHCHECK")

    assert "CMD" in check
    assert "/readyz" in check
    assert "8000" in check


def test_the_image_cmd_is_freshguard_serve_with_flags_it_has() -> None:
    argv = dockerfile_cmd()
    assert argv[:2] == ["/bin/sh", "-c"]
    words = shlex.split(argv[2])

    assert words[:3] == ["exec", "freshguard", "serve"]
    assert {word for word in words if word.startswith("--")} <= serve_help_flags()
    assert option(words, "--policy") == "$FRESHGUARD_POLICY"  # honoured: the variable, expanded by sh
    assert option(words, "--database") == "$FRESHGUARD_DATABASE_URL"
    assert (option(words, "--host"), option(words, "--port")) == ("0.0.0.0", "8000")  # noqa: S104


def test_the_compose_command_uses_flags_serve_has(config: dict[str, Any]) -> None:
    argv = service(config, "freshguard")["command"]

    assert argv[:2] == ["freshguard", "serve"]
    assert {word for word in argv if word.startswith("--")} <= serve_help_flags()


def test_the_image_defaults_name_its_policy_and_a_writable_store() -> None:
    env = dockerfile_env()
    copies = [item.split()[1:] for item in final_stage() if item.upper().startswith("COPY ") and "--from" not in item]

    assert ["policies/support-assistant.yaml", env["FRESHGUARD_POLICY"]] in copies
    assert env["FRESHGUARD_DATABASE_URL"].startswith("sqlite:////var/lib/freshguard/")
    assert any("/var/lib/freshguard" in run and "-o freshguard" in run for run in dockerfile_instructions("RUN"))


def test_the_freshguard_command_is_the_one_the_project_installs() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert scripts == {"freshguard": "guard.cli.main:main"}


def test_the_build_context_keeps_what_the_dockerfile_copies() -> None:
    kept = {line[1:].strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    sources = [
        part for item in dockerfile_instructions("COPY") if not item.startswith("--from") for part in item.split()[:-1]
    ]

    assert sources
    for source in sources:
        assert source.split("/")[0] in kept, f"{source} is copied but .dockerignore leaves it out"


# --- the start command, run for real ---------------------------------------------------------------


@pytest.fixture
def fresh_database() -> Iterator[URL]:
    """A new, empty PostgreSQL database on the test server (its SQLAlchemy URL), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(os.environ.get("FRESHGUARD_TEST_POSTGRES_URL") or DEFAULT_TEST_POSTGRES)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"fg_compose_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL at {server.host}:{server.port} is unreachable: {exc}")
    try:
        yield server.set(database=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _serving_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without any FRESHGUARD_* or PG* setting of its own, the venv first on PATH, then `extra`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("FRESHGUARD_", "PG"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


Started = tuple[str, "subprocess.Popen[bytes]", Path]
Serve = Callable[[list[str], Mapping[str, str], int], Started]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start a command, wait for its /readyz to answer 200, give (base URL, process, log); stop it after."""
    numbers = itertools.count()
    with ExitStack() as stack:

        def start(argv: list[str], env: Mapping[str, str], port: int) -> Started:
            log = tmp_path / f"serve-{next(numbers)}.log"
            served = stack.enter_context(serving(argv, port=port, env=env, log=log, cwd=tmp_path, ready_within_s=60))
            return served.base, served.process, served.log

        yield start


def _fresh_customer() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": "compose-1",
        "object": "customer",
        "key": "C-1042",
        "source": "salesforce",
        "observed_at": (now - timedelta(minutes=5)).isoformat(),
        "updated_at": (now - timedelta(minutes=7)).isoformat(),
        "fields": {"email": "ana@example.com", "name": "Ana Silva", "credit_limit": 5000, "tier": "gold"},
    }


def _check(base: str) -> dict[str, Any]:
    with httpx2.Client(base_url=base, timeout=30) as http:
        anonymous = http.get("/v1/runs")
        checked = http.post(
            "/v1/check",
            json={"pipeline": "compose-test", "records": [_fresh_customer()]},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
    assert anonymous.status_code == 401  # beyond loopback, keys are required
    assert checked.status_code == 200, checked.text
    body: dict[str, Any] = checked.json()
    assert (body["verdict"], body["allowed"]) == ("pass", ["compose-1"])
    return body


def _stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM, as `docker stop` sends it: the service shuts down gracefully. Its log, which holds no secret."""
    process.send_signal(signal.SIGTERM)
    # granian stops its workers (each closes its store), then exits 0; 143 (-15 here) is a clean stop too.
    assert process.wait(timeout=30) in {0, -signal.SIGTERM}, log.read_text()
    text = log.read_text()
    assert "Granian shutdown completed" in text
    for value in (API_KEY, *SECRET_VALUES.values()):
        assert value not in text
    return text


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import guard.lineage.store

    config = Config()
    config.set_main_option("script_location", str(Path(guard.lineage.store.__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@pytest.mark.postgres
def test_the_compose_start_command_migrates_a_new_database_and_serves_checks(
    docker_compose: str, tmp_path: Path, fresh_database: URL, serve: Serve
) -> None:
    import psycopg

    # The password reaches libpq as PGPASSWORD, as in the compose file: the test server's own, if it has one.
    password = fresh_database.password or os.environ.get("PGPASSWORD") or SECRET_VALUES["POSTGRES_PASSWORD"]
    done = compose_config(docker_compose, tmp_path, {"POSTGRES_PASSWORD": str(password)})
    assert done.returncode == 0, done.stderr
    app = service(yaml.safe_load(done.stdout), "freshguard")
    argv = list(app["command"])
    port = free_port()
    argv[0] = str(Path(sys.executable).parent / argv[0])
    argv[argv.index("--database") + 1] = fresh_database.set(password=None).render_as_string()
    argv[argv.index("--policy") + 1] = str(REPO_POLICY)
    argv[argv.index("--port") + 1] = str(port)
    with psycopg.connect(fresh_database.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)

    base, process, log = serve(argv, _serving_env(app["environment"]), port)
    run_id = _check(base)["run_id"]
    # The image's health check, as the compose file states it, passes against the running service.
    probe = [sys.executable, *app["healthcheck"]["test"][2:]]
    probe[-1] = probe[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert subprocess.run(probe, timeout=30, check=False).returncode == 0
    _stop(process, log)

    with psycopg.connect(fresh_database.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        run = conn.execute("SELECT pipeline, verdict, records, allowed FROM runs WHERE run_id = %s", (run_id,))
        decisions = conn.execute("SELECT count(*) FROM run_records WHERE run_id = %s", (run_id,)).fetchone()
        assert version == [(_head_revision(),)]
        assert run.fetchall() == [("compose-test", "pass", 1, 1)]
        assert decisions == (1,)


@pytest.mark.postgres
def test_the_database_health_check_command_answers(config: dict[str, Any], fresh_database: URL) -> None:
    if shutil.which("pg_isready") is None:
        _unavailable("pg_isready is not installed")
    test = service(config, "db")["healthcheck"]["test"][1].replace("$$", "$")  # compose's escape for a literal $
    assert "-h 127.0.0.1" in test
    test = test.replace("-h 127.0.0.1", f"-h {shlex.quote(fresh_database.host or '127.0.0.1')}")

    def probe(port: int) -> int:
        env = {
            **os.environ,
            "POSTGRES_USER": fresh_database.username or "postgres",
            "POSTGRES_DB": fresh_database.database or "postgres",
            "PGPORT": str(port),
        }
        return subprocess.run(["/bin/sh", "-c", test], env=env, timeout=30, check=False).returncode

    assert probe(fresh_database.port or 5432) == 0
    assert probe(free_port()) != 0  # nothing listens there: unhealthy


def test_the_image_cmd_honours_the_policy_and_database_variables(tmp_path: Path, serve: Serve) -> None:
    argv = dockerfile_cmd()
    assert argv[2].count("--port 8000") == 1
    port = free_port()
    argv[2] = argv[2].replace("--port 8000", f"--port {port}")
    database = tmp_path / "image-default.db"
    env = _serving_env(
        {
            **{name: value for name, value in dockerfile_env().items() if name.startswith("FRESHGUARD_")},
            "FRESHGUARD_POLICY": str(REPO_POLICY),
            "FRESHGUARD_DATABASE_URL": f"sqlite:///{database}",
            "FRESHGUARD_API_KEYS": SECRET_VALUES["FRESHGUARD_API_KEYS"],
            "STRIPE_SIGNING_KEY": SECRET_VALUES["STRIPE_SIGNING_KEY"],
        }
    )

    base, process, log = serve(argv, env, port)
    ready = httpx2.get(f"{base}/readyz", timeout=10).json()
    _check(base)
    (check,) = dockerfile_instructions("HEALTHCHECK")
    probe = json.loads(check.split(" CMD ", 1)[1])
    assert probe[0] == "python"
    probe[0] = sys.executable
    probe[-1] = probe[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert subprocess.run(probe, timeout=30, check=False).returncode == 0
    _stop(process, log)

    assert ready["policy"]["name"] == "support-assistant"
    assert database.exists()
