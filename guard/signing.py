"""Record signatures: HMAC-SHA256 over the canonical form of DESIGN.md. Sources sign, the guard verifies."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from guard.records import Record, as_envelope

UNSIGNED_MEMBERS = frozenset({"id", "signature", "lineage"})
# What json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# builds on every call; made once (encoding keeps no state, so threads can share it).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(record: Mapping[str, Any] | Record) -> bytes:
    """The bytes a signature covers: every member but id, signature and lineage, as sorted compact JSON."""
    envelope = record if type(record) is dict else as_envelope(record)
    if not isinstance(envelope, Mapping):
        raise TypeError(f"a record must be a mapping, got {type(envelope).__name__}")
    signed = {name: value for name, value in envelope.items() if name not in UNSIGNED_MEMBERS}
    return _CANONICAL_JSON.encode(signed).encode("utf-8")


def sign_record(record: Mapping[str, Any] | Record, key: bytes | str) -> str:
    """The hex signature a source attaches to a record as its `signature` member."""
    return hmac.new(_key_bytes(key), canonical_bytes(record), hashlib.sha256).hexdigest()


def with_signature(record: Mapping[str, Any] | Record, key: bytes | str) -> dict[str, Any]:
    """A copy of the record's envelope carrying its signature: what a source sends."""
    envelope = as_envelope(record)
    if not isinstance(envelope, Mapping):
        raise TypeError(f"a record must be a mapping, got {type(envelope).__name__}")
    signed: dict[str, Any] = {**envelope}
    signed["signature"] = sign_record(signed, key)
    return signed


def signature_matches(record: Mapping[str, Any], signature: str, key: bytes) -> bool:
    """Whether `signature` is the record's signature under `key`, compared in constant time."""
    try:
        expected = hmac.digest(key, canonical_bytes(record), "sha256").hex()
    except (TypeError, ValueError, RecursionError):
        return False
    return hmac.compare_digest(expected.encode(), signature.lower().encode())


def _key_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key
