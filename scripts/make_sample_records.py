"""Writes policies/support-assistant.records.jsonl: one record for every outcome of the example policy.

The records are dated around 2026-11-22T10:30:00Z; check them with `--now 2026-11-22T10:30:00Z`.
Invoices are signed with the example key `example-stripe-key`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from guard import with_signature

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
KEY = "example-stripe-key"
OUT = Path(__file__).resolve().parent.parent / "policies" / "support-assistant.records.jsonl"


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def customer(rid: str, key: str, source: str, observed: float, updated: float, **fields: Any) -> dict[str, Any]:
    values = {"email": "ana.silva@example.com", "name": "Ana Silva", "credit_limit": 5000.0, "tier": "gold"} | fields
    return {
        "id": rid, "object": "customer", "key": key, "source": source,
        "observed_at": at(observed), "updated_at": at(updated), "fields": values,
        "content": f"Customer {key}: {values['name']}, {values['tier']} tier, "
                   f"credit limit {values['credit_limit']:.0f} EUR.",
    }  # fmt: skip


def order(rid: str, key: str, source: str, observed: float, lineage: list[tuple[str, float]] | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": rid, "object": "order", "key": key, "source": source,
        "observed_at": at(observed), "updated_at": at(observed + 10),
        "fields": {"status": "shipped", "total": 249.9, "currency": "EUR"},
        "content": f"Order {key} shipped; total 249.90 EUR.",
    }  # fmt: skip
    if lineage is not None:
        record["lineage"] = [{"system": system, "at": at(minutes)} for system, minutes in lineage]
    return record


def invoice(rid: str, key: str, amount: float, paid: bool) -> dict[str, Any]:
    return {
        "id": rid, "object": "invoice", "key": key, "source": "stripe",
        "observed_at": at(20), "updated_at": at(25),
        "fields": {"amount_due": amount, "paid": paid, "due_date": "2026-12-01T00:00:00Z"},
        "content": f"Invoice {key}: {amount:.2f} EUR due 2026-12-01, {'paid' if paid else 'unpaid'}.",
    }  # fmt: skip


def case(rid: str, key: str, source: str, observed: float | None, status: str = "open") -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": rid, "object": "support_case", "key": key, "source": source,
        "fields": {"status": status, "priority": 2, "opened_at": at(300)},
        "content": f"Support case {key} is {status}.",
    }  # fmt: skip
    if observed is not None:
        record["observed_at"] = at(observed)
    return record


def records() -> list[Any]:
    tampered = with_signature(invoice("inv-3", "INV-3003", 310.0, False), KEY)
    tampered["fields"]["amount_due"] = 31.0
    return [
        customer("cust-1", "C-1042", "salesforce", 5, 10),
        customer("cust-2", "C-1042", "sap", 8, 20),
        customer("cust-3", "C-2001", "sap", 185, 200, name="Bruno Costa", email="bruno@example.com"),
        customer(
            "cust-4", "C-2002", "warehouse", 40, 60, name="Chloé Martin", email="chloe@example.com", tier="silver"
        ),
        customer("cust-5", "C-3003", "salesforce", 3, 12, name="Dev Patel", email="dev@example.com"),
        customer(
            "cust-6", "C-3003", "warehouse", 9, 90, name="Dev Patel", email="dev@example.com", credit_limit=7500.0
        ),
        customer("cust-7", "C-4004", "hubspot", 5, 10, name="Eva Novak", email="eva@example.com"),
        customer("cust-8", "C-5005", "sap", 5, 10, name="Farid Haddad", email="farid(at)example.com", tier="platinum"),
        order("ord-1", "O-9001", "sap", 15, [("sap", 15)]),
        order("ord-2", "O-9002", "warehouse", 30, [("sap", 45), ("warehouse", 30)]),
        order("ord-3", "O-9003", "warehouse", 30, None),
        order("ord-4", "O-9004", "warehouse", 30, [("warehouse", 40), ("sap", 30)]),
        with_signature(invoice("inv-1", "INV-3001", 120.0, False), KEY),
        invoice("inv-2", "INV-3002", 89.5, True),
        tampered,
        case("case-1", "SC-77", "salesforce", 2),
        case("case-2", "SC-78", "salesforce", -60),
        case("case-3", "SC-79", "warehouse", None),
        case("case-4", "SC-80", "sap", 2),
        {
            "id": "lead-1",
            "object": "lead",
            "key": "L-5",
            "source": "salesforce",
            "observed_at": at(1),
            "content": "A new lead.",
        },
        {"id": "bad-1", "object": "customer", "source": "sap", "observed_at": at(1)},
        {
            "id": "prod-1",
            "object": "product",
            "key": "SKU-0042",
            "source": "warehouse",
            "observed_at": at(600),
            "fields": {"sku": "SKU-0042", "stock": 17},
            "content": "Product SKU-0042: 17 in stock.",
        },
    ]


def main() -> None:
    lines = [json.dumps(record, ensure_ascii=False) for record in records()]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} records to {OUT}")


if __name__ == "__main__":
    main()
