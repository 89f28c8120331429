"""A day of realistic operations history, seeded into a lineage store: for `freshguard demo` and the dashboard's tests.

Checks every 10 minutes from four systems, heartbeats from their sync jobs, and the watcher's
evaluations as they would have run. SAP's customer sync stalls three hours before the end
(open incidents for SAP's customers and orders); eight hours before, a burst of contract
violations in SAP's customer copies went past the block-rate budget for an hour (an incident
that recovered, past its objective); a model call is linked to every support-bot check.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guard import Guard, load_policy, with_signature
from guard.errors import ConfigurationError
from guard.watch import Watcher

#: The example policy: packaged beside this module in a wheel, at the repository's root in a checkout.
_PACKAGED = Path(__file__).resolve().parent / "support-assistant.yaml"
_CHECKOUT = Path(__file__).resolve().parents[2] / "policies" / "support-assistant.yaml"
#: The example key the seeded invoices are signed with (never use it for real data).
EXAMPLE_SIGNING_KEY = "example-stripe-key"
TIERS = ("gold", "silver", "bronze")


def example_policy() -> Path:
    """The example policy file the demo runs under."""
    for candidate in (_PACKAGED, _CHECKOUT):
        if candidate.is_file():
            return candidate
    raise ConfigurationError(f"the example policy is missing (looked for {_PACKAGED} and {_CHECKOUT}); reinstall")


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the seeding left behind."""

    start: datetime
    end: datetime
    open_incidents: tuple[tuple[int, str, str], ...]  # (id, source, object)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _customers(
    rng: random.Random, now: datetime, source: str, count: int, *, broken: float, keys: range = range(1, 400)
) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        n = rng.choice(keys)
        fields: dict[str, Any] = {"email": f"c{n}@example.com", "name": f"Customer {n}", "tier": TIERS[n % 3],
                                  "credit_limit": float(1000 * (n % 9))}  # fmt: skip
        if rng.random() < broken:
            fields["email"] = "not-an-email"
        age = timedelta(minutes=rng.randrange(1, 25))
        updated = now - age - timedelta(minutes=3)
        out.append({"id": f"{source}-c{n}-{rng.randrange(10**6)}", "object": "customer", "key": f"C-{n}",
                    "source": source, "observed_at": _ts(now - age), "updated_at": _ts(updated),
                    "fields": fields, "content": f"Customer C-{n}, {fields['tier']} tier."})  # fmt: skip
    return out


def seed(database: str, *, hours: int = 24, end: datetime | None = None, policy: Path | None = None) -> Seeded:
    """Seed `hours` of history ending at `end` (now, to the minute) into the store at `database`."""
    signing_key = os.environ.setdefault("STRIPE_SIGNING_KEY", EXAMPLE_SIGNING_KEY)
    last = end or datetime.now(UTC).replace(second=0, microsecond=0)
    start = last - timedelta(hours=hours)
    rng = random.Random(42)  # noqa: S311 - a repeatable demo, not a secret
    with Guard(load_policy(policy or example_policy()), store=database) as guard:
        store = guard.store
        if store is None:
            raise ConfigurationError(f"the guard has no lineage store at {database}")
        watcher = Watcher(guard, environ={})
        moment, step = start, 0
        while moment <= last:
            stalled_sap = moment >= last - timedelta(hours=3)
            warehouse_down = last - timedelta(hours=14) <= moment < last - timedelta(hours=11)
            burst = last - timedelta(hours=8) <= moment < last - timedelta(hours=7)
            if not stalled_sap:
                store.record_heartbeat("sap", "customer", moment - timedelta(minutes=2), moment,
                                       writer="sap-customer-delta")  # fmt: skip
                store.record_heartbeat("sap", "order", moment - timedelta(minutes=4), moment)
            if step % 6 == 0 and not warehouse_down:  # the warehouse loads products hourly
                store.record_heartbeat("warehouse", "product", moment - timedelta(minutes=20), moment)
            store.record_heartbeat("stripe", "invoice", moment - timedelta(minutes=1), moment)
            records = _customers(rng, moment, "salesforce", 20, broken=0.0)
            sap_read = last - timedelta(hours=3) if stalled_sap else moment  # a stalled sync serves its last copies
            records += _customers(rng, sap_read, "sap", 15, broken=0.3 if burst else 0.0, keys=range(1000, 1400))
            records += _customers(rng, moment, "warehouse", 10, broken=0.01)
            records += [with_signature({"id": f"inv-{moment:%H%M}-{i}", "object": "invoice", "key": f"I-{i}",
                                        "source": "stripe", "observed_at": _ts(moment - timedelta(minutes=3)),
                                        "fields": {"amount_due": 120.0, "paid": i % 2 == 0}}, signing_key)
                        for i in range(5)]  # fmt: skip
            guard.check(records, pipeline="support-bot", now=moment,
                        consumer={"model": "gpt-4o-2024-08-06", "call_id": f"chatcmpl-{moment:%d%H%M}"})  # fmt: skip
            if moment.minute % 30 == 0:
                guard.check(_customers(rng, moment, "warehouse", 30, broken=0.02), pipeline="churn-report", now=moment)
            watcher.evaluate(moment)
            moment += timedelta(minutes=10)
            step += 1
        found = tuple((row["id"], row["source"], row["object"]) for row in store.incidents(open_only=True))
    return Seeded(start, last, found)
