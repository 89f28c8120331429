"""A realistic mixed workload for the support-assistant policy: mostly fresh, some stale, some broken."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from guard import with_signature

SIGNING_KEY = "bench-stripe-key"
_TIERS = ("gold", "silver", "bronze")


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_clean_records(count: int, now: datetime) -> list[dict[str, Any]]:
    """`count` fresh, valid customer records from the system of record, one per entity: the best case."""
    return [
        {
            "id": f"c{n}",
            "object": "customer",
            "key": f"C-{n}",
            "source": "salesforce",
            "observed_at": _ts(now - timedelta(seconds=n % 600)),
            "updated_at": _ts(now - timedelta(seconds=n % 600 + 60)),
            "fields": {"email": f"user{n}@example.com", "name": f"Customer {n}", "tier": _TIERS[n % 3]},
            "content": f"Customer C-{n}.",
        }
        for n in range(count)
    ]


def make_records(count: int, now: datetime, *, seed: int = 7, entities: int | None = None) -> list[dict[str, Any]]:
    """`count` records about customers, orders, invoices and cases, with every kind of problem mixed in."""
    rng = random.Random(seed)
    entities = entities or max(count // 2, 1)
    out: list[dict[str, Any]] = []
    for n in range(count):
        roll = rng.random()
        key = f"C-{rng.randrange(entities)}"
        age = timedelta(seconds=rng.randrange(0, 1500))
        record: dict[str, Any]
        if roll < 0.55:
            source = rng.choice(("salesforce", "sap", "warehouse"))
            number = int(key[2:])
            drifted = source != "salesforce" and rng.random() < 0.03
            record = {
                "object": "customer",
                "key": key,
                "source": source,
                "observed_at": _ts(now - age),
                "updated_at": _ts(now - age - timedelta(minutes=5)),
                "fields": {
                    "email": f"user{number}@example.com",
                    "name": f"Customer {key}",
                    "credit_limit": float(number % 20000 + (500 if drifted else 0)),
                    "tier": _TIERS[number % 3],
                },
                "content": f"Customer {key} has tier and credit limit on file.",
            }
        elif roll < 0.75:
            record = {
                "object": "order",
                "key": f"O-{n}",
                "source": "sap",
                "observed_at": _ts(now - age),
                "updated_at": _ts(now - age),
                "lineage": [{"system": "sap", "at": _ts(now - age)}],
                "fields": {"status": "shipped", "total": 120.5, "currency": "EUR"},
            }
        elif roll < 0.85:
            record = with_signature(
                {
                    "id": f"r{n}",
                    "object": "invoice",
                    "key": f"I-{n}",
                    "source": "stripe",
                    "observed_at": _ts(now - age),
                    "fields": {"amount_due": 99.0, "paid": rng.random() < 0.5},
                },
                SIGNING_KEY,
            )
        elif roll < 0.92:
            record = {
                "object": "customer",
                "key": key,
                "source": "sap",
                "observed_at": _ts(now - timedelta(hours=rng.randrange(2, 30))),
                "fields": {"email": "stale@example.com", "name": "Old copy", "tier": "silver"},
            }
        elif roll < 0.96:
            record = {
                "object": "customer",
                "key": key,
                "source": "warehouse",
                "observed_at": _ts(now - age),
                "fields": {"email": "not-an-email", "name": "Broken", "credit_limit": -5.0, "tier": "tin"},
            }
        elif roll < 0.98:
            record = {"object": "lead", "key": f"L-{n}", "source": "hubspot", "observed_at": _ts(now - age)}
        else:
            record = {"object": "customer", "key": key, "source": "sap", "observed_at": "yesterday"}
        record["id"] = f"r{n}"
        out.append(record)
    return out
