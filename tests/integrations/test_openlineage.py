"""Checks as OpenLineage run events: valid against the spec, sent through the client's transports, never in the way.

Events are validated against OpenLineage's JSON Schema (2-0-2, and each facet against the schema its
`_schemaURL` names): the restatement in `openlineage_spec/`, or the official files in the folder
named by FRESHGUARD_OPENLINEAGE_SPEC. The HTTP tests run a real receiver (`http.server` in a thread).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde
from referencing import Registry, Resource

from guard import CheckResult, Guard, Policy, Record
from guard.integrations._openlineage_facets import run_event
from guard.integrations.openlineage import OpenLineageEmitter, emit_openlineage, emitter_from_environment
from tests.conftest import NOW, RecordFactory, ts
from tests.serving import AppClient

SPEC = Path(os.environ.get("FRESHGUARD_OPENLINEAGE_SPEC") or Path(__file__).parent / "openlineage_spec")
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _registry() -> Registry[Any]:
    shipped = files("guard.integrations").joinpath("schemas")
    documents = [json.loads(path.read_text(encoding="utf-8")) for path in SPEC.rglob("*.json")]
    documents += [
        json.loads(item.read_text(encoding="utf-8")) for item in shipped.iterdir() if item.name.endswith(".json")
    ]
    return Registry().with_resources((doc["$id"], Resource.from_contents(doc)) for doc in documents)


REGISTRY = _registry()


def validate(event: dict[str, Any]) -> None:
    """Validate a serialised event against RunEvent 2-0-2, and every facet against the schema it names."""
    _validator(RUN_EVENT).validate(event)
    facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for dataset in event.get("inputs", []):
        facets += [*dataset.get("facets", {}).values(), *dataset.get("inputFacets", {}).values()]
    for facet in facets:
        _validator(facet["_schemaURL"]).validate(facet)


def _validator(url: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": url}, registry=REGISTRY, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No OpenLineage setting leaks in or out (the client writes OPENLINEAGE__ variables of its own)."""
    before = dict(os.environ)
    for name in [name for name in os.environ if name.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no openlineage.yml from the working directory
    monkeypatch.setenv("HOME", str(tmp_path))  # nor from ~/.openlineage
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture
def mixed(record: RecordFactory) -> list[Any]:
    """Allowed, aging, stale, unauthorised, malformed and contract-breaking customers, and an unknown object."""
    return [
        record(id="ok", key="C-1"),
        record(id="aging", key="C-2", source="sap", observed_at=ts(NOW.replace(hour=11, minute=20))),
        record(id="stale", key="C-3", source="sap", observed_at=ts(NOW.replace(hour=9))),
        record(id="intruder", key="C-4", source="hubspot"),
        record(id="bad-email", key="C-5", fields={"email": "nope", "credit_limit": -1, "tier": "gold"}),
        record(id="no-key", key=...),
        Record(id="ticket", object="ticket", key="T-1", source="salesforce", observed_at=NOW),
    ]


def checked(policy: Policy, records: list[Any], **options: Any) -> tuple[Guard, CheckResult]:
    guard = Guard(policy)
    return guard, guard.check(records, pipeline="support-bot", now=NOW, **options)


def serialised(result: CheckResult, policy: Policy, **options: Any) -> dict[str, Any]:
    options = {"namespace": "freshguard", "max_records_per_input": 100, **options}
    event: dict[str, Any] = Serde.to_dict(run_event(result, policy, **options))
    return event


# --- the event ----------------------------------------------------------------------------------


def test_a_check_is_one_valid_complete_run_event(minimal_policy: Policy, mixed: list[Any]) -> None:
    _, result = checked(minimal_policy, mixed, consumer={"model": "gpt-4o", "call_id": "chatcmpl-1", "team": "cx"})

    event = serialised(result, minimal_policy)

    validate(event)
    assert (event["eventType"], event["run"]["runId"]) == ("COMPLETE", result.run_id)
    assert (event["job"]["namespace"], event["job"]["name"]) == ("freshguard", "support-bot")
    assert event["job"]["facets"]["jobType"]["processingType"] == "SERVICE"
    check = event["run"]["facets"]["freshguard_check"]
    assert check["policy"] == {"name": "support-bot", "version": 3, "hash": result.policy.hash}
    assert (check["verdict"], check["counts"], check["recordCount"]) == (
        "partial", {"allow": 1, "warn": 1, "block": 5}, 7
    )  # fmt: skip
    assert check["consumer"] == {"model": "gpt-4o", "callId": "chatcmpl-1", "extra": {"team": "cx"}}
    assert check["_schemaURL"].startswith("https://freshguard.dev/spec/facets/1-0-0/FreshguardCheckRunFacet.json")


def test_the_inputs_are_the_datasets_the_records_came_from(minimal_policy: Policy, mixed: list[Any]) -> None:
    _, result = checked(minimal_policy, mixed)

    inputs = serialised(result, minimal_policy)["inputs"]

    assert [(d["namespace"], d["name"]) for d in inputs] == [
        ("hubspot", "customer"),
        ("salesforce", "customer"),
        ("salesforce", "ticket"),
        ("sap", "customer"),
    ]
    owners = inputs[1]["facets"]["ownership"]["owners"]
    assert owners == [{"name": "application:salesforce", "type": "SYSTEM_OF_RECORD"},
                      {"name": "team:sales-ops", "type": "OWNING_TEAM"}]  # fmt: skip
    assert "ownership" not in inputs[2].get("facets", {})  # ticket: an object the policy does not know


def test_no_blocked_record_is_hidden(minimal_policy: Policy, mixed: list[Any]) -> None:
    _, result = checked(minimal_policy, mixed)
    event = serialised(result, minimal_policy)

    listed = {
        row["id"]: (row["action"], row.get("codes", []))
        for dataset in event["inputs"]
        for row in dataset["inputFacets"]["freshguard_records"]["records"]
    }

    assert listed == {d.id: (d.action.value, [c.value for c in d.codes]) for d in result.decisions}


def test_each_input_carries_one_assertion_per_check_with_its_outcome(minimal_policy: Policy, mixed: list[Any]) -> None:
    _, result = checked(minimal_policy, mixed)
    inputs = {(d["namespace"], d["name"]): d for d in serialised(result, minimal_policy)["inputs"]}

    def outcomes(source: str, obj: str) -> dict[str, bool]:
        assertions = inputs[(source, obj)]["inputFacets"]["dataQualityAssertions"]["assertions"]
        return {a["name"]: a["success"] for a in assertions}

    assert outcomes("salesforce", "customer") == {
        "freshguard.envelope": False,  # the record without a key
        "freshguard.ownership": True,
        "freshguard.freshness": True,
        "freshguard.freshness_warning": True,
        "freshguard.provenance": True,
        "freshguard.supersession": True,
        "freshguard.contract.email": False,
        "freshguard.contract.credit_limit": False,
        "freshguard.contract.tier": True,
        "freshguard.conflicts": True,
    }
    assert outcomes("sap", "customer")["freshguard.freshness"] is False
    assert outcomes("sap", "customer")["freshguard.freshness_warning"] is False
    assert outcomes("hubspot", "customer") == {"freshguard.envelope": False}
    assert outcomes("salesforce", "ticket") == {"freshguard.envelope": False}
    stale = next(
        a for a in inputs[("sap", "customer")]["inputFacets"]["dataQualityAssertions"]["assertions"]
        if a["assertion"] == "freshness"
    )  # fmt: skip
    assert (stale["expected"], stale["actual"], stale["severity"]) == (
        "age <= max_age 1h", "1 of 2 records failed", "error"
    )  # fmt: skip


def test_record_keys_are_bounded_per_input_blocked_first(minimal_policy: Policy, record: RecordFactory) -> None:
    records = [record(id=f"ok-{n}", key=f"C-{n}") for n in range(3)]
    records.append(record(id="stale", key="C-9", observed_at=ts(NOW.replace(hour=9))))
    _, result = checked(minimal_policy, records)

    facet = serialised(result, minimal_policy, max_records_per_input=2)["inputs"][0]["inputFacets"][
        "freshguard_records"
    ]

    assert [row["id"] for row in facet["records"]] == ["stale", "ok-0"]
    assert (facet["counts"], facet["omitted"]) == ({"allow": 3, "warn": 0, "block": 1}, 2)


# --- transports, configured the way the client always is ----------------------------------------


class Receiver:
    """A real HTTP lineage receiver on loopback: keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        received = threading.Event()
        self.received = received
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                outer.paths.append(self.path)
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(201)
                self.end_headers()
                received.set()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def test_http_transport_from_openlineage_url(
    minimal_policy: Policy, mixed: list[Any], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard)

    result = guard.check(mixed, pipeline="support-bot", now=NOW)
    assert emitter.flush(10)
    emitter.close()

    assert receiver.paths == ["/api/v1/lineage"]
    validate(receiver.bodies[0])
    assert receiver.bodies[0]["run"]["runId"] == result.run_id
    assert emitter.stats() == emitter.stats().__class__(sent=1, dropped=0, failed=0, pending=0)


def test_http_transport_from_openlineage_yml(
    minimal_policy: Policy, record: RecordFactory, receiver: Receiver, tmp_path: Path
) -> None:
    (tmp_path / "openlineage.yml").write_text(
        f"transport:\n  type: http\n  url: {receiver.url}\n  endpoint: lineage/events\n", encoding="utf-8"
    )
    guard = Guard(minimal_policy)

    with OpenLineageEmitter.attach(guard, namespace="prod") as emitter:
        guard.check([record()], pipeline="support-bot", now=NOW)
        assert emitter.flush(10)

    assert receiver.paths == ["/lineage/events"]
    assert receiver.bodies[0]["job"]["namespace"] == "prod"
    validate(receiver.bodies[0])


def test_file_transport_from_environment_variables(
    minimal_policy: Policy, mixed: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "lineage.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(log))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard)

    runs = [guard.check(mixed, pipeline="support-bot", now=NOW).run_id for _ in range(3)]
    emitter.close()

    events = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [event["run"]["runId"] for event in events] == runs
    for event in events:
        validate(event)


def test_console_transport(
    minimal_policy: Policy, record: RecordFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "openlineage.yml").write_text("transport:\n  type: console\n", encoding="utf-8")
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard)

    with caplog.at_level(logging.INFO, logger="openlineage.client.transport.console"):
        result = guard.check([record()], pipeline="support-bot", now=NOW)
        emitter.close()

    printed = [json.loads(r.getMessage()) for r in caplog.records if r.name == "openlineage.client.transport.console"]
    assert [event["run"]["runId"] for event in printed] == [result.run_id]
    validate(printed[0])


# --- never in the way ---------------------------------------------------------------------------


class StuckClient(OpenLineageClient):
    """A client whose sends hang until released, as on a receiver that accepts and never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.events: list[Any] = []

    def emit(self, event: Any) -> None:
        self.release.wait(10)
        self.events.append(event)

    def close(self, timeout: float = -1.0) -> bool:
        return True


def test_a_full_queue_drops_and_counts_and_the_check_does_not_wait(
    minimal_policy: Policy, record: RecordFactory
) -> None:
    client = StuckClient()
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard, client=client, max_queue=2)

    started = time.perf_counter()
    results = [guard.check([record()], pipeline="p", now=NOW) for _ in range(10)]
    elapsed = time.perf_counter() - started
    queued = emitter.stats()
    client.release.set()
    assert emitter.flush(10)

    assert elapsed < 5  # ten checks, none waiting on the stuck receiver
    assert all(result.verdict.value == "pass" for result in results)
    assert queued.dropped >= 7
    final = emitter.stats()
    assert (final.sent + final.dropped, final.failed, final.pending) == (10, 0, 0)
    emitter.close()


class HangingClient(OpenLineageClient):
    """A client on a receiver that hangs: each send waits until released; says whether close came mid-send."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sending = threading.Event()
        self.closed = threading.Event()
        self.closed_while_sending = False
        self.sends = 0

    def emit(self, event: Any) -> None:
        self.sends += 1
        self.sending.set()
        try:
            self.release.wait(30)
        finally:
            self.sending.clear()

    def close(self, timeout: float = -1.0) -> bool:
        self.closed_while_sending = self.sending.is_set()
        self.closed.set()
        return True


@pytest.mark.parametrize("waiting", [1, 2], ids=["room-in-the-queue", "queue-full"])
def test_close_keeps_one_deadline_and_never_closes_the_client_under_a_send(
    minimal_policy: Policy, record: RecordFactory, waiting: int
) -> None:
    client = HangingClient()
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard, client=client, max_queue=2)
    guard.check([record()], pipeline="p", now=NOW)
    assert client.sending.wait(10)  # the first event is on the wire, and the receiver hangs
    for _ in range(waiting):
        guard.check([record()], pipeline="p", now=NOW)

    started = time.perf_counter()
    closed = emitter.close(timeout=1.0)
    elapsed = time.perf_counter() - started

    assert closed is False
    assert 0.9 <= elapsed < 1.6  # one deadline, not the flush's and then the join's
    assert not client.closed.is_set()  # the send is still running: the client stays open under it
    client.release.set()
    assert client.closed.wait(10)  # closed by the sender thread, once its send returned
    assert client.closed_while_sending is False
    assert client.sends == 1  # past the deadline, no new send is started
    assert emitter.stats() == emitter.stats().__class__(sent=1, dropped=waiting, failed=0, pending=0)
    assert emitter.close(timeout=1.0) is True  # the thread has stopped now


def test_close_in_time_sends_everything_then_closes_the_client(minimal_policy: Policy, record: RecordFactory) -> None:
    client = HangingClient()
    client.release.set()
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard, client=client)
    for _ in range(3):
        guard.check([record()], pipeline="p", now=NOW)

    assert emitter.close(timeout=10) is True
    assert client.closed.is_set()
    assert client.closed_while_sending is False
    assert (emitter.stats().sent, client.sends) == (3, 3)


def test_a_receiver_that_is_down_counts_failures_and_checks_stand(
    minimal_policy: Policy, record: RecordFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = Receiver()
    closed.close()  # nothing listens on this port any more
    (tmp_path / "openlineage.yml").write_text(
        f"transport:\n  type: http\n  url: {closed.url}\n  timeout: 1\n  retry:\n    total: 0\n", encoding="utf-8"
    )
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard)

    with caplog.at_level(logging.WARNING, logger="freshguard.openlineage"):
        results = [guard.check([record()], pipeline="p", now=NOW) for _ in range(3)]
        assert emitter.flush(30)
    emitter.close()

    assert [result.verdict.value for result in results] == ["pass"] * 3
    assert (emitter.stats().sent, emitter.stats().failed) == (0, 3)
    assert caplog.text.count("could not be sent") == 1  # the first failure, not one line per event


def test_closing_stops_listening(minimal_policy: Policy, record: RecordFactory) -> None:
    client = StuckClient()
    client.release.set()
    guard = Guard(minimal_policy)
    emitter = emit_openlineage(guard, client=client)
    guard.check([record()], pipeline="p", now=NOW)

    assert emitter.close()
    guard.check([record()], pipeline="p", now=NOW)

    assert (len(client.events), emitter.stats().sent) == (1, 1)


def test_the_service_switch(minimal_policy: Policy, receiver: Receiver) -> None:
    guard = Guard(minimal_policy)

    assert emitter_from_environment(guard, {}) is None
    assert emitter_from_environment(guard, {"FRESHGUARD_OPENLINEAGE": "false"}) is None
    os.environ["OPENLINEAGE_URL"] = receiver.url
    emitter = emitter_from_environment(guard, {"FRESHGUARD_OPENLINEAGE": "true", "FRESHGUARD_OPENLINEAGE_QUEUE": "8"})
    assert emitter is not None
    emitter.close()


def test_a_bad_switch_value_is_refused(minimal_policy: Policy) -> None:
    from guard import ConfigurationError

    with pytest.raises(ConfigurationError, match="FRESHGUARD_OPENLINEAGE must be true or false"):
        emitter_from_environment(Guard(minimal_policy), {"FRESHGUARD_OPENLINEAGE": "maybe"})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("run", "runId"), "not-a-uuid"),
        (("eventType",), "DONE"),
        (("run", "facets", "freshguard_check", "verdict"), "maybe"),
        (("run", "facets", "freshguard_check", "_producer"), ...),
        (("inputs", 0, "inputFacets", "dataQualityAssertions", "assertions", 0, "success"), "yes"),
        (("inputs", 0, "facets", "ownership", "owners", 0, "name"), ...),
    ],
)
def test_the_validation_refuses_what_the_spec_refuses(
    minimal_policy: Policy, mixed: list[Any], path: tuple[Any, ...], value: Any
) -> None:
    _, result = checked(minimal_policy, mixed)
    event = serialised(result, minimal_policy)
    node: Any = event
    for part in path[:-1]:
        node = node[part]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value

    with pytest.raises(jsonschema.ValidationError):
        validate(event)


def test_the_service_emits_each_check_when_switched_on(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from api import Settings, create_app
    from tests.conftest import EXAMPLE_POLICY

    monkeypatch.setenv("FRESHGUARD_OPENLINEAGE", "true")
    monkeypatch.setenv("OPENLINEAGE_URL", receiver.url)
    monkeypatch.setenv("STRIPE_SIGNING_KEY", "example-stripe-key")
    settings = Settings(policy=EXAMPLE_POLICY, database_url=f"sqlite:///{tmp_path / 'lineage.db'}", watch_every_s=0)
    record = {"id": "a", "object": "customer", "key": "C-1", "source": "sap"}  # no timestamp: blocked

    with AppClient(create_app(settings)) as client:
        answer = client.post("/v1/check", json={"pipeline": "support-bot", "records": [record]}).json()
        emitter = client.app.state.lineage_emitter  # type: ignore[attr-defined]
        assert emitter.flush(10)

    (event,) = receiver.bodies
    validate(event)
    assert (event["run"]["runId"], event["job"]["name"]) == (answer["run_id"], "support-bot")
    assert event["run"]["facets"]["freshguard_check"]["verdict"] == "blocked"
    assert event["inputs"][0]["inputFacets"]["freshguard_records"]["records"] == [
        {"id": "a", "key": "C-1", "action": "block", "codes": ["MISSING_TIMESTAMP", "SCHEMA_VIOLATION"]}
    ]
