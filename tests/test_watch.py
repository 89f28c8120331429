"""The watcher: state changes and incidents kept once, alerts delivered to real local HTTP receivers."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from guard import Guard, Policy, parse_policy
from guard.incidents import durations
from guard.watch import MAX_ATTEMPTS, Watcher
from tests.conftest import NOW, RecordFactory, ts

POLICY = """
policy: ops
version: 1
sources:
  salesforce: {team: sales-ops}
  sap: {team: finance-systems}
objects:
  customer: {owner: salesforce, replicas: [sap], max_age: 1h}
slas:
  - {source: sap, object: customer, max_lag: 15m, max_block_rate: 0.5, window: 1h, recovery: 30m,
     notify: [ops, chat, pager], runbook: "https://wiki.example.com/runbooks/sap-customer"}
notify:
  ops: {kind: webhook, webhook_env: OPS_URL}
  chat: {kind: slack, webhook_env: SLACK_URL}
  pager: {kind: pagerduty, webhook_env: PD_URL, routing_key_env: PD_KEY}
"""


@dataclass
class Receiver:
    """A local HTTP server that keeps every POST and answers the statuses it is told to, then 200."""

    url: str
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for where, body in self.received if where == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.received.append((self.path, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY, origin="test")


@pytest.fixture
def guard(policy: Policy, store_url: str) -> Iterator[Guard]:
    with Guard(policy, store=store_url) as opened:
        yield opened


@pytest.fixture
def watcher(guard: Guard, receiver: Receiver) -> Watcher:
    environ = {"OPS_URL": f"{receiver.url}/ops", "SLACK_URL": f"{receiver.url}/slack/T0/B0/secret",
               "PD_URL": f"{receiver.url}/pd", "PD_KEY": "R0UT1NGKEY"}  # fmt: skip
    return Watcher(guard, environ=environ)


def sync(guard: Guard, minutes_before: float, now: datetime = NOW) -> None:
    assert guard.store is not None
    synced = now - timedelta(minutes=minutes_before)
    guard.store.record_heartbeat("sap", "customer", synced, now)


def test_a_breach_opens_one_incident_and_sends_one_alert_per_channel(
    guard: Guard, watcher: Watcher, receiver: Receiver
) -> None:
    sync(guard, 47)

    first = watcher.evaluate(NOW)
    again = watcher.evaluate(NOW + timedelta(seconds=15))  # still breached: no new transition, no new alert
    report = watcher.deliver(NOW + timedelta(seconds=15))

    assert [(t.previous, t.state) for t in first.transitions] == [(None, "breached")]
    assert again.transitions == []
    assert report.sent == 3
    [webhook] = receiver.bodies("/ops")
    assert (webhook["event"], webhook["state"], webhook["previous"]) == ("freshguard.state_change", "breached", None)
    assert webhook["findings"] == ["sap → customer: behind by 47m; agreed 15m"]
    assert webhook["incident"]["id"] >= 1
    [slack] = receiver.bodies("/slack/T0/B0/secret")
    assert slack["text"] == ":red_circle: sap → customer is breached: behind by 47m; agreed 15m (finance-systems)"
    assert [block["type"] for block in slack["blocks"]] == ["section", "section", "section", "context"]
    assert "<https://wiki.example.com/runbooks/sap-customer|Runbook>" in slack["blocks"][2]["text"]["text"]
    assert webhook["runbook"] == "https://wiki.example.com/runbooks/sap-customer"
    assert webhook["incident"]["impact"]["model_calls"] == 0  # nothing checked yet: guard.impact's figures
    [page] = receiver.bodies("/pd")
    assert (page["routing_key"], page["event_action"], page["dedup_key"]) == (
        "R0UT1NGKEY", "trigger", "freshguard/ops/sap/customer",
    )  # fmt: skip
    assert page["payload"]["severity"] == "critical"
    assert page["payload"]["component"] == "sap"
    assert page["links"] == [{"href": "https://wiki.example.com/runbooks/sap-customer", "text": "Runbook"}]
    assert guard.store is not None
    [incident] = guard.store.incidents()
    assert (incident["source"], incident["object"], incident["breaches"]) == ("sap", "customer", ["lag"])
    assert incident["started_at"] == NOW - timedelta(minutes=32)  # when the lag crossed 15 minutes
    assert incident["recovered_at"] is None


def test_recovery_closes_the_incident_resolves_the_page_and_measures_time_to_recover(
    guard: Guard, watcher: Watcher, receiver: Receiver
) -> None:
    sync(guard, 47)
    watcher.evaluate(NOW)
    assert guard.store is not None
    [incident] = guard.store.incidents()
    guard.store.acknowledge_incident(incident["id"], "ana", NOW + timedelta(minutes=3))
    later = NOW + timedelta(minutes=40)
    sync(guard, 1, now=later)

    recovered = watcher.evaluate(later)
    watcher.deliver(later)

    assert [(t.previous, t.state) for t in recovered.transitions] == [("breached", "healthy")]
    [closed] = guard.store.incidents()
    assert closed["recovered_at"] == later
    figures = durations(closed, later)
    assert figures["time_to_detect_s"] == 32 * 60
    assert figures["time_to_acknowledge_s"] == 3 * 60
    assert figures["time_to_recover_s"] == 72 * 60
    assert figures["past_objective"] is True  # 72 minutes against 30
    pages = receiver.bodies("/pd")
    assert [p["event_action"] for p in pages] == ["trigger", "resolve"]
    assert pages[1] == {
        "routing_key": "R0UT1NGKEY",
        "event_action": "resolve",
        "dedup_key": "freshguard/ops/sap/customer",
    }
    assert [b["state"] for b in receiver.bodies("/ops")] == ["breached", "healthy"]
    assert guard.store.incidents(open_only=True) == []


def test_a_first_healthy_evaluation_sends_nothing(guard: Guard, watcher: Watcher, receiver: Receiver) -> None:
    sync(guard, 1)

    changes = watcher.evaluate(NOW)
    watcher.deliver(NOW)

    assert changes.transitions == []
    assert receiver.received == []


def test_a_receiver_that_fails_is_retried_with_backoff_then_given_up(
    guard: Guard, watcher: Watcher, receiver: Receiver
) -> None:
    sync(guard, 47)
    watcher.evaluate(NOW)
    receiver.statuses = [503, 503, 503]  # the first three POSTs fail (one per channel), then all succeed

    first = watcher.deliver(NOW)
    too_soon = watcher.deliver(NOW + timedelta(seconds=2))
    retried = watcher.deliver(NOW + timedelta(seconds=6))

    assert (first.sent, first.retried) == (0, 3)
    assert "answered 503" in first.errors[0]
    assert "secret" not in " ".join(first.errors)  # a webhook URL's path is its secret: never in a message
    assert (too_soon.sent, too_soon.retried) == (0, 0)
    assert retried.sent == 3
    assert guard.store is not None
    assert guard.store.alert_counts() == {"delivered": 3, "failed": 0, "pending": 0}


def test_an_unreachable_receiver_is_given_up_after_the_last_attempt(guard: Guard, policy: Policy) -> None:
    sync(guard, 47)
    watcher = Watcher(guard, environ={"OPS_URL": "http://127.0.0.1:9/ops", "SLACK_URL": "http://127.0.0.1:9/s",
                                      "PD_URL": "http://127.0.0.1:9/pd", "PD_KEY": "k"})  # fmt: skip
    watcher.evaluate(NOW)

    moment = NOW
    for _ in range(MAX_ATTEMPTS):
        moment += timedelta(hours=1)
        watcher.deliver(moment)

    assert guard.store is not None
    assert guard.store.alert_counts() == {"delivered": 0, "failed": 3, "pending": 0}


def test_a_channel_whose_url_is_not_set_fails_with_the_variable_named(guard: Guard, receiver: Receiver) -> None:
    sync(guard, 47)
    watcher = Watcher(guard, environ={"SLACK_URL": f"{receiver.url}/s", "PD_URL": f"{receiver.url}/pd",
                                      "PD_KEY": "k"})  # fmt: skip
    watcher.evaluate(NOW)

    report = watcher.deliver(NOW)

    assert report.sent == 2
    assert report.failed == 1
    assert "set the environment variable OPS_URL" in report.errors[0]


def test_two_workers_evaluating_at_once_record_each_change_once(
    policy: Policy, store_url: str, receiver: Receiver
) -> None:
    environ = {"OPS_URL": f"{receiver.url}/ops", "SLACK_URL": f"{receiver.url}/s", "PD_URL": f"{receiver.url}/pd",
               "PD_KEY": "k"}  # fmt: skip
    with Guard(policy, store=store_url) as one, Guard(policy, store=store_url) as other:
        sync(one, 47)
        watchers = [Watcher(one, environ=environ), Watcher(other, environ=environ)]
        barrier = threading.Barrier(2)

        def evaluate(watcher: Watcher) -> int:
            barrier.wait()
            return len(watcher.evaluate(NOW).transitions)

        threads_out: list[int] = []
        threads = [threading.Thread(target=lambda w=w: threads_out.append(evaluate(w))) for w in watchers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for watcher in watchers:
            watcher.deliver(NOW)

        assert sorted(threads_out) == [0, 1]
        assert one.store is not None
        assert len(one.store.incidents()) == 1
        assert len(receiver.bodies("/ops")) == 1


def test_an_incident_lists_the_runs_and_model_calls_that_used_the_point_meanwhile(
    guard: Guard, watcher: Watcher, record: RecordFactory
) -> None:
    sync(guard, 47)
    watcher.evaluate(NOW)
    during = guard.check(
        [record(id="a", source="sap", key="C-1", observed_at=ts(NOW + timedelta(minutes=4)))],
        pipeline="support-bot", now=NOW + timedelta(minutes=5), consumer={"model": "gpt-4o", "call_id": "c-1"},
    )  # fmt: skip
    guard.check([record(id="b", source="salesforce", key="C-2")], pipeline="other", now=NOW + timedelta(minutes=6))
    assert guard.store is not None
    [incident] = guard.store.incidents()

    impact = guard.store.incident_impact("sap", "customer", incident["started_at"], NOW + timedelta(minutes=10))

    assert [(run["run_id"], run["allowed"]) for run in impact] == [(during.run_id, 1)]
    assert impact[0]["model_calls"] == [{"model": "gpt-4o", "call_id": "c-1", "extra": {}}]


def test_a_missing_channel_variable_is_one_warning_at_start_not_a_give_up_per_alert(
    guard: Guard, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {"OPS_URL": f"{receiver.url}/ops", "PD_URL": f"{receiver.url}/pd", "PD_KEY": "K"}  # no SLACK_URL
    watcher = Watcher(guard, environ=environ)
    sync(guard, 47)
    with caplog.at_level(logging.DEBUG, logger="freshguard.watch"):
        watcher.start(3600)  # one round at once, then it waits
        watcher.stop()
        watcher.evaluate(NOW + timedelta(hours=2))  # more changes, more alerts the chat channel cannot take
        watcher.deliver(NOW + timedelta(hours=2))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "configuration: alert channel chat: the slack URL is not set: set the environment variable SLACK_URL "
        "(named in the policy); its alerts are not delivered until then (the dashboard flags it)"
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert guard.store is not None
    assert guard.store.alert_counts()["failed"] >= 1  # kept, undelivered, for the dashboard's red flag
    assert receiver.bodies("/ops") != []  # the channels that are set still deliver
