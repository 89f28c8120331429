"""Receipts: the answer to a request a caller may repeat, kept so that the repeat gets the same answer.

A caller names its request with a key of its own (HTTP's Idempotency-Key). The first request with a
key claims it; once answered, its answer is kept against the key for `RECEIPT_TTL`. A repeat with the
same key and the same request gets that answer; with another request, a refusal; while the first is
still being answered, word that it is. A claim never completed (its process died) is taken over
after `ABANDONED_AFTER`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from guard.lineage._base import StoreBase
from guard.lineage.tables import receipts, store_probes

#: How long an answer is kept against its key.
RECEIPT_TTL = timedelta(hours=24)
#: A claim not completed within this long is taken to be abandoned (its process died mid-request).
ABANDONED_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a key holds: the request it was claimed for and, once answered, the answer."""

    request_hash: str
    claimed_at: datetime
    completed_at: datetime | None
    status: int | None
    media_type: str | None
    body: bytes | None
    run_id: str | None

    @property
    def answered(self) -> bool:
        """True once the request that claimed the key was answered."""
        return self.completed_at is not None


class ReceiptStore(StoreBase):
    """Claiming keys, keeping answers, letting go of them."""

    def claim_receipt(self, scope: str, key: str, request_hash: str, *, now: datetime) -> Receipt | None:
        """Claim `key` (of `scope`) for a request: None when it is now this request's, else the receipt it holds.

        An expired receipt, or a claim abandoned mid-request, is claimed afresh.
        """
        with self._connect("claim an idempotency key") as conn:
            claimed = conn.execute(
                _CLAIM, {"scope": scope, "key": key, "request_hash": request_hash, "claimed_at": now}
            ).first()
            if claimed is not None:
                return None
            query = sa.select(receipts).where(receipts.c.scope == scope, receipts.c.key == key)
            if self.dialect == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).mappings().first()
            if row is None:  # pruned between the two statements: claim it after all
                conn.execute(receipts.insert(), {"scope": scope, "key": key, "request_hash": request_hash,
                                                 "claimed_at": now})  # fmt: skip
                return None
            held = Receipt(**{name: row[name] for name in Receipt.__slots__})
            expired = held.claimed_at < now - RECEIPT_TTL
            abandoned = not held.answered and held.claimed_at < now - ABANDONED_AFTER
            if not (expired or abandoned):
                return held
            conn.execute(
                receipts.update().where(receipts.c.scope == scope, receipts.c.key == key),
                {"request_hash": request_hash, "claimed_at": now, "completed_at": None, "status": None,
                 "media_type": None, "body": None, "run_id": None},
            )  # fmt: skip
            return None

    def complete_receipt(
        self, scope: str, key: str, *, status: int, media_type: str, body: bytes, run_id: str | None, at: datetime
    ) -> None:
        """Keep the answer to the request that claimed `key`."""
        with self._connect("keep an idempotent answer") as conn:
            conn.execute(
                receipts.update().where(receipts.c.scope == scope, receipts.c.key == key),
                {"completed_at": at, "status": status, "media_type": media_type, "body": body, "run_id": run_id},
            )

    def release_receipt(self, scope: str, key: str) -> None:
        """Let go of a claim whose request was not answered (a repeat may then try again)."""
        with self._connect("release an idempotency key") as conn:
            conn.execute(
                receipts.delete().where(
                    receipts.c.scope == scope, receipts.c.key == key, receipts.c.completed_at.is_(None)
                )
            )

    def probe_write(self, prober: str, at: datetime) -> None:
        """Write one small row and commit it: proof that the store takes writes now (readiness)."""
        with self._connect("take a write") as conn:
            updated = conn.execute(store_probes.update().where(store_probes.c.prober == prober), {"probed_at": at})
            if updated.rowcount == 0:
                conn.execute(store_probes.insert(), {"prober": prober, "probed_at": at})

    def prune_receipts(self, now: datetime) -> int:
        """Forget receipts older than `RECEIPT_TTL`; how many were forgotten."""
        with self._connect("prune idempotency keys") as conn:
            return conn.execute(receipts.delete().where(receipts.c.claimed_at < now - RECEIPT_TTL)).rowcount


#: Claim a key that nothing holds; a row comes back only when this statement inserted it.
_CLAIM = sa.text(
    'INSERT INTO receipts (scope, "key", request_hash, claimed_at) '
    "VALUES (:scope, :key, :request_hash, :claimed_at) "
    'ON CONFLICT (scope, "key") DO NOTHING RETURNING scope'
).bindparams(sa.bindparam("claimed_at", type_=receipts.c.claimed_at.type))
