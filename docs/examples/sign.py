"""Sign Freshguard records in Python without Freshguard: HMAC-SHA256 over the record's RFC 8785 canonical form.

    pip install rfc8785
    SIGNING_KEY=... python sign.py < records.jsonl > signed.jsonl

Each input line is a record envelope; each output line is the same record with its `signature`.
(With Freshguard installed, `guard.with_signature(record, key)` does the same.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
from typing import Any

import rfc8785

UNSIGNED = {"id", "signature", "lineage"}  # every member but these is signed


def number(text: str) -> int | float:
    """A JSON integer as every language reads it: beyond ±(2**53 - 1), the nearest double (rfc8785 takes no more)."""
    value = int(text)
    return value if abs(value) <= 2**53 - 1 else float(value)


def sign_record(record: dict[str, Any], key: str) -> str:
    """The hex signature of `record` under `key`."""
    signed = {name: value for name, value in record.items() if name not in UNSIGNED}
    return hmac.new(key.encode(), rfc8785.dumps(signed), hashlib.sha256).hexdigest()


def main() -> None:
    key = os.environ.get("SIGNING_KEY")
    if not key:
        sys.exit("set SIGNING_KEY to the source's signing key")
    for line in sys.stdin:
        if line.strip():
            record = json.loads(line, parse_int=number)
            print(json.dumps({**record, "signature": sign_record(record, key)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
