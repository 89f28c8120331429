"""The watcher: evaluates SLA health on a schedule, keeps incidents, and delivers alerts from the outbox.

    watcher = Watcher(guard)
    watcher.evaluate()   # health -> state changes, incidents, alerts queued (exactly once across workers)
    watcher.deliver()    # queued alerts -> webhooks, Slack, PagerDuty, with retries and backoff
    watcher.start(15)    # both every 15 s on a thread of its own; watcher.stop()

Nothing here runs on the path of a check: a receiver that is down costs a retry later, never a check.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from guard import impact as impacts
from guard._timestamps import utc_now
from guard.alerts import DeliveryError, send, unconfigured, wire
from guard.errors import ConfigurationError, GuardError
from guard.guard import Guard
from guard.health import PointHealth
from guard.incidents import Plan, plan
from guard.lineage.store import Retention

_log = logging.getLogger("freshguard.watch")
#: Delivery attempts before an alert is given up (then kept as failed, with its last error).
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(minutes=10)
#: How long one delivery attempt holds an alert before another worker may try it.
LEASE = timedelta(seconds=60)


@dataclass(slots=True)
class Delivery:
    """What one round of delivery did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


#: Prune batches per round of the watch (each a few hundred rows in a transaction of its own).
PRUNE_BATCHES = 200


class Watcher:
    """Evaluates health and delivers alerts for one guard (which must have a lineage store)."""

    def __init__(
        self, guard: Guard, *, environ: Mapping[str, str] | None = None, retention: Retention | None = None
    ) -> None:
        """`retention`: history older than it is pruned a few batches a round (None: never pruned here)."""
        if guard.store is None:
            raise ConfigurationError("the watcher keeps incidents and alerts in the lineage store; give the guard one")
        self.guard = guard
        self.store = guard.store
        self._environ = os.environ if environ is None else environ
        self.retention = retention
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def evaluate(self, now: datetime | None = None) -> Plan:
        """Judge every SLA now; record state changes, open and close incidents, queue alerts. What changed."""
        moment = utc_now() if now is None else now
        healths = self.guard.health(moment, coverage=False)
        policy = self.guard.policy
        by_point = {(sla.source, sla.object): sla for sla in policy.slas}
        with self.store.operations() as ops:
            states = ops.states()
            opened = ops.open_incidents()
            changes = plan(healths, {point: row["state"] for point, row in states.items()}, set(opened), moment)
            for point in changes.closings:
                ops.close_incident(opened[point]["id"], moment)
            for opening in changes.openings:
                incident_id = ops.open_incident({
                    "source": opening.point[0], "object": opening.point[1], "breaches": list(opening.breaches),
                    "findings": list(opening.findings), "figures": opening.figures,
                    "started_at": opening.started_at, "detected_at": moment,
                    "recovery_objective_s": opening.recovery_s,
                })  # fmt: skip
                opened[opening.point] = {"id": incident_id, "started_at": opening.started_at}
            for transition in changes.transitions:
                incident = opened.get(transition.point)
                if incident is not None:
                    start, end = impacts.window(incident["started_at"], None, moment)
                    incident = {**incident, "impact": impacts.from_rows(ops.impact(*transition.point, start, end))}
                ops.set_state(transition.point, transition.state, at=moment, known=transition.previous is not None)
                change_id = ops.change(
                    transition.point,
                    transition.previous,
                    transition.state,
                    at=moment,
                    findings=list(transition.findings),
                )
                document = _document(
                    transition.health,
                    transition.previous,
                    at=moment,
                    policy=(policy.name, policy.version),
                    incident=incident,
                    runbook=None if (sla := by_point.get(transition.point)) is None else sla.runbook,
                )
                for channel in sla.notify if sla is not None else ():
                    spec = policy.notify.get(channel)
                    if spec is not None:
                        ops.enqueue(change_id, channel, kind=spec.kind, payload=document, at=moment)
            ops.touch(changes.unchanged, moment)
        for transition in changes.transitions:
            _log.info("%s → %s: %s -> %s", *transition.point, transition.previous, transition.state)
        return changes

    def deliver(self, now: datetime | None = None, limit: int = 100) -> Delivery:
        """Send the alerts that are due; a failed attempt is retried with backoff, then given up."""
        moment = utc_now() if now is None else now
        report = Delivery()
        while report.sent + report.skipped + report.retried + report.failed < limit:
            before = report.sent + report.skipped
            for alert in self.store.due_alerts(moment, limit):
                self._deliver_one(alert, moment, report, fixed_clock=now is not None)
            if report.sent + report.skipped == before:
                break  # nothing more went out: what is left waits for a retry, or for an earlier alert
        return report

    def _deliver_one(self, alert: Mapping[str, Any], moment: datetime, report: Delivery, *, fixed_clock: bool) -> None:
        policy = self.guard.policy
        if not self.store.lease_alert(alert["id"], alert["attempts"], moment + LEASE):
            return  # another worker is sending it
        spec = policy.notify.get(alert["channel"])
        try:
            if spec is None:
                raise DeliveryError(f"the policy no longer has a notify channel {alert['channel']!r}", retry=False)
            outgoing = wire(spec, alert["payload"], self._environ)
            if outgoing is None:
                report.skipped += 1
            else:
                send(outgoing)
                report.sent += 1
            self.store.alert_delivered(alert["id"], moment if fixed_clock else utc_now())
        except (DeliveryError, GuardError) as exc:
            attempts = alert["attempts"] + 1
            retry = isinstance(exc, DeliveryError) and exc.retry and attempts < MAX_ATTEMPTS
            retry_at = moment + min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY) if retry else None
            self.store.alert_failed(alert["id"], str(exc), retry_at, moment)
            report.errors.append(f"{alert['channel']}: {exc}")
            if retry:
                report.retried += 1
            elif isinstance(exc, ConfigurationError):
                report.failed += 1  # said once when the watch started (`start`); the dashboard flags the channel
                _log.debug("alert %s to %s not sent: %s", alert["id"], alert["channel"], exc)
            else:
                report.failed += 1
                _log.error("alert %s to %s given up after %d attempts: %s", alert["id"], alert["channel"],
                           attempts, exc)  # fmt: skip

    def start(self, every_s: float = 15.0) -> None:
        """Evaluate and deliver every `every_s` seconds on a daemon thread, until `stop()`."""
        if self._thread is not None:
            return
        for unset in unconfigured(self.guard.policy.notify, self._environ).values():
            _log.warning("configuration: %s; its alerts are not delivered until then (the dashboard flags it)", unset)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(every_s,), name="freshguard-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread `start` began (the round in progress finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self, every_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.evaluate()
                self.deliver()
                self.store.prune_receipts(utc_now())  # idempotency answers past their 24 h
                if self.retention is not None:  # a bounded slice a round: a backlog drains over a few rounds
                    self.store.prune(self.retention, utc_now(), max_batches=PRUNE_BATCHES, stop=self._stop.is_set)
            except GuardError as exc:  # the store may be down for a while: try again next round
                _log.warning("health evaluation failed, retrying in %.0f s: %s", every_s, exc)
            except Exception:  # a bug must not end the watch for good
                _log.exception("health evaluation failed unexpectedly, retrying in %.0f s", every_s)
            self._stop.wait(every_s)


def _document(
    health: PointHealth,
    previous: str | None,
    *,
    at: datetime,
    policy: tuple[str, int],
    incident: Mapping[str, Any] | None,
    runbook: str | None,
) -> dict[str, Any]:
    """The neutral alert document the outbox keeps for a state change."""
    return {
        "policy": {"name": policy[0], "version": policy[1]},
        "source": health.source,
        "object": health.object,
        "team": health.team,
        "previous": previous,
        "state": None if health.state is None else health.state.value,
        "breaches": list(health.breaches),
        "at": at.isoformat(),
        "findings": list(health.findings),
        "figures": health.to_dict(),
        "runbook": runbook,
        "incident": None if incident is None else {
            "id": incident["id"], "started_at": incident["started_at"].isoformat(),
            **({"impact": {**incident["impact"].totals(), "summary": incident["impact"].sentence()}}
               if "impact" in incident else {}),
        },
    }  # fmt: skip
