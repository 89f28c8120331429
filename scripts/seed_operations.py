"""Fill a lineage store with a day of realistic history, for the dashboard demo and its tests.

    python scripts/seed_operations.py sqlite:///freshguard.db [--hours 24]

Checks every 10 minutes from four systems, heartbeats from their sync jobs, and the watcher's
evaluations as they would have run. SAP's customer sync stalls three hours before the end
(open incidents for SAP's customers and orders); eight hours before, a burst of contract
violations in SAP's customer copies went past the block-rate budget for an hour (an incident
that recovered, past its objective); a model call is linked to every support-bot check.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guard import Guard, load_policy, with_signature
from guard.watch import Watcher

POLICY = Path(__file__).resolve().parent.parent / "policies" / "support-assistant.yaml"
SIGNING_KEY = os.environ.setdefault("STRIPE_SIGNING_KEY", "example-stripe-key")
TIERS = ("gold", "silver", "bronze")


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def customers(
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
        out.append({"id": f"{source}-c{n}-{rng.randrange(10**6)}", "object": "customer", "key": f"C-{n}",
                    "source": source, "observed_at": ts(now - age), "updated_at": ts(now - age - timedelta(minutes=3)),
                    "fields": fields, "content": f"Customer C-{n}, {fields['tier']} tier."})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database")
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(hours=args.hours)
    rng = random.Random(42)
    with Guard(load_policy(POLICY), store=args.database) as guard:
        store = guard.store
        if store is None:
            raise SystemExit("the guard has no store")
        watcher = Watcher(guard, environ={})
        moment, step = start, 0
        while moment <= end:
            stalled_sap = moment >= end - timedelta(hours=3)
            warehouse_down = end - timedelta(hours=14) <= moment < end - timedelta(hours=11)
            burst = end - timedelta(hours=8) <= moment < end - timedelta(hours=7)
            if not stalled_sap:
                store.record_heartbeat("sap", "customer", moment - timedelta(minutes=2), moment,
                                             writer="sap-customer-delta")  # fmt: skip
                store.record_heartbeat("sap", "order", moment - timedelta(minutes=4), moment)
            if step % 6 == 0 and not warehouse_down:  # the warehouse loads products hourly
                store.record_heartbeat("warehouse", "product", moment - timedelta(minutes=20), moment)
            store.record_heartbeat("stripe", "invoice", moment - timedelta(minutes=1), moment)
            records = customers(rng, moment, "salesforce", 20, broken=0.0)
            sap_read = end - timedelta(hours=3) if stalled_sap else moment  # a stalled sync serves its last copies
            records += customers(rng, sap_read, "sap", 15, broken=0.3 if burst else 0.0, keys=range(1000, 1400))
            records += customers(rng, moment, "warehouse", 10, broken=0.01)
            records += [with_signature({"id": f"inv-{moment:%H%M}-{i}", "object": "invoice", "key": f"I-{i}",
                                        "source": "stripe", "observed_at": ts(moment - timedelta(minutes=3)),
                                        "fields": {"amount_due": 120.0, "paid": i % 2 == 0}}, SIGNING_KEY)
                        for i in range(5)]  # fmt: skip
            guard.check(records, pipeline="support-bot", now=moment,
                        consumer={"model": "gpt-4o-2024-08-06", "call_id": f"chatcmpl-{moment:%d%H%M}"})  # fmt: skip
            if moment.minute % 30 == 0:
                guard.check(customers(rng, moment, "warehouse", 30, broken=0.02), pipeline="churn-report", now=moment)
            watcher.evaluate(moment)
            moment += timedelta(minutes=10)
            step += 1
        [open_incident, *_] = store.incidents(open_only=True) or [None]
        print(f"seeded {args.hours} h of history into {args.database}", file=sys.stderr)
        if open_incident is not None:
            print(f"open incident #{open_incident['id']}: {open_incident['source']} → {open_incident['object']}",
                  file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
