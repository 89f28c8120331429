"""Mixed batches of records a table can hold (one type per member and field), with every reason code in reach."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from guard import with_signature
from tests.conftest import NOW, STRIPE_KEY, ts

SOURCES = ("salesforce", "sap", "warehouse", "stripe", "hubspot")
OBJECTS = ("customer", "customer", "order", "invoice", "support_case", "lead")
_FIELDS: dict[str, tuple[Any, ...]] = {
    "email": ("ana@example.com", "bo@example.com", "not-an-email"),
    "name": ("Ana", "Bo", ""),
    "credit_limit": (5000.0, 250.5, -5.0),
    "tier": ("gold", "silver", "tin"),
    "status": ("shipped", "open", "lost"),
    "total": (120.5, -1.0),
    "currency": ("EUR", "eur"),
    "amount_due": (99.0, 0.0),
    "paid": (True, False),
    "priority": (1, 3, 9),
    "opened_at": ("2026-11-22T10:00:00Z", "soon"),
}


def _stamp(rng: random.Random) -> str | None:
    minutes = rng.choice((1, 5, 20, 45, 90, 200, 2000, -10))
    moment = NOW - timedelta(minutes=minutes, seconds=rng.randrange(60))
    style = rng.random()
    if style < 0.6:
        return ts(moment)
    if style < 0.75:
        from datetime import timezone

        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    if style < 0.85:
        return moment.replace(tzinfo=None).isoformat()
    if style < 0.92:
        return "yesterday"
    return None


def mixed_batch(rng: random.Random, size: int | None = None, *, prefix: str = "") -> list[dict[str, Any]]:
    """A batch of records about a few entities, mostly in order, with every kind of problem mixed in.

    `prefix` starts every id and key: batches with different prefixes are about different entities.
    """
    out: list[dict[str, Any]] = []
    for n in range(size if size is not None else rng.randrange(1, 40)):
        record: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.9:
            record["id"] = f"{prefix}r{n}"
        elif roll < 0.95 and out:
            record["id"] = out[0].get("id", f"{prefix}r0")  # a duplicate id
        obj = rng.choice(OBJECTS)
        record["object"] = obj
        if rng.random() < 0.97:
            record["key"] = f"{prefix}K-{rng.randrange(4)}"
        record["source"] = rng.choice(SOURCES)
        for member in ("observed_at", "updated_at"):
            if (value := _stamp(rng)) is not None:
                record[member] = value
        fields = {name: _value(rng, values) for name, values in _FIELDS.items() if rng.random() < 0.5}
        record["fields"] = fields or {"name": "Ana"}
        if rng.random() < 0.5:
            record["content"] = rng.choice(("Customer K-1.", "Order shipped.", "Other words."))
        if (obj == "order" and rng.random() < 0.85) or rng.random() < 0.1:
            roll = rng.random()
            owner = {"order": "sap", "invoice": "stripe"}.get(obj, "salesforce")
            at = NOW - timedelta(minutes=30)
            if roll < 0.7:
                record["lineage"] = [
                    {"system": owner, "at": ts(at)},
                    {"system": "warehouse", "at": ts(at + timedelta(minutes=5))},
                ]
            elif roll < 0.85:
                record["lineage"] = [{"system": "warehouse", "at": ts(at)}]
            else:
                record["lineage"] = [
                    {"system": owner, "at": ts(at)},
                    {"system": "sap", "at": ts(at - timedelta(hours=1))},
                ]
        if record["source"] == "stripe":
            roll = rng.random()
            if roll < 0.7:
                record = with_signature(record, STRIPE_KEY)
            elif roll < 0.85:
                record = with_signature(record, STRIPE_KEY)
                record["fields"] = {**record["fields"], "name": "Changed"}
        out.append(record)
    for n in range(len(out), len(out) + len(out) // 4):  # records of an earlier one's shape: alike but id and key
        out.append({**rng.choice(out), "id": f"r{n}", "key": f"K-{rng.randrange(4)}"})
    return out


def _value(rng: random.Random, values: tuple[Any, ...]) -> Any:
    """Mostly the first (a valid value, two for some fields), else any."""
    return (
        values[rng.randrange(2) if isinstance(values[0], str) and "@" in values[0] else 0]
        if rng.random() < 0.7
        else rng.choice(values)
    )


def watermarks_for(records: list[dict[str, Any]], rng: random.Random) -> list[tuple[str, str, Any]]:
    """Owner change notifications for some entities of a batch, between the versions its copies carry."""
    from datetime import datetime

    known = {"customer", "order", "invoice", "support_case"}
    changes = []
    for record in records:
        obj, key, updated = record.get("object"), record.get("key"), record.get("updated_at")
        if obj in known and key and isinstance(updated, str) and rng.random() < 0.3:
            try:
                moment = datetime.fromisoformat(updated)
            except ValueError:
                continue
            if moment.tzinfo is not None:
                changes.append((obj, key, moment + timedelta(seconds=rng.choice((-30, 30)))))
    return changes


Changes = list[tuple[str, str, Any]]


def mixed_corpus(rng: random.Random, size: int, batch: int = 40) -> tuple[list[dict[str, Any]], Changes]:
    """`size` records made of mixed batches about entities of their own (a corpus), and owner changes for them."""
    records: list[dict[str, Any]] = []
    changes: Changes = []
    for number in range(0, size, batch):
        found = mixed_batch(rng, min(batch, size - number), prefix=f"b{number // batch}-")
        records.extend(found)
        changes.extend(watermarks_for(found, rng))
    return records, changes


def customer_copies(count: int) -> list[dict[str, Any]]:
    """`count` well-formed customer records, two copies per customer (owner and replica) that agree: the bulk
    of a corpus, fresh, aging or stale by their place."""
    out = []
    for n in range(count):
        number = n // 2
        out.append(
            {
                "id": f"copy-{n}",
                "object": "customer",
                "key": f"C-{number}",
                "source": ("salesforce", "sap", "warehouse")[n % 2 + (number % 7 == 0)],
                "observed_at": ts(NOW - timedelta(seconds=(number * 37) % 5400)),
                "updated_at": ts(NOW - timedelta(seconds=(number * 37) % 5400 + 60)),
                "fields": {"email": f"user{number}@example.com", "name": f"Customer {number}", "tier": "gold"},
                "content": f"Customer C-{number}.",
            }
        )
    return out
