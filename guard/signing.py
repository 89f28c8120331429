"""Record signatures: HMAC-SHA256 over the record's canonical form (RFC 8785). Sources sign, the guard verifies.

The canonical form is the JSON object of every envelope member but `id`, `signature` and `lineage`,
serialised by RFC 8785, the JSON Canonicalization Scheme (the `rfc8785` package), as UTF-8: keys sorted
by their UTF-16 code units, numbers written as ECMAScript writes them (`5000.0` as `5000`, `1e16` as
`10000000000000000`), no insignificant whitespace. Any language with a JCS library signs the same
bytes; docs/signing.md shows JavaScript and Python.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import rfc8785

from guard.errors import InputError
from guard.records import Record, as_envelope

UNSIGNED_MEMBERS = frozenset({"id", "signature", "lineage"})
_SAFE_INTEGER = 2**53 - 1  # the largest integer a double holds exactly


def canonical_bytes(record: Mapping[str, Any] | Record) -> bytes:
    """The bytes a signature covers: every member but id, signature and lineage, canonicalised by RFC 8785.

    Integers beyond ±(2**53 - 1) are signed as the nearest double, as JavaScript reads them. Raises
    `InputError` for a record with no canonical form (NaN or infinity, text that is not valid Unicode).
    """
    envelope = record if type(record) is dict else as_envelope(record)
    if not isinstance(envelope, Mapping):
        raise TypeError(f"a record must be a mapping, got {type(envelope).__name__}")
    signed = {name: value for name, value in envelope.items() if name not in UNSIGNED_MEMBERS}
    try:
        try:
            return rfc8785.dumps(signed)
        except rfc8785.IntegerDomainError:
            return rfc8785.dumps(_as_doubles(signed))
    except (rfc8785.CanonicalizationError, OverflowError) as exc:
        raise InputError(
            f"record {envelope.get('id', '(no id)')!r:.80} has no canonical form, so it cannot be signed: {exc}; "
            "numbers must be finite, text valid Unicode, and object keys text"
        ) from exc


def _as_doubles(value: Any) -> Any:
    """`value` with every integer beyond ±(2**53 - 1) as the nearest double, as JSON parsers in JavaScript read it.

    JSON numbers are doubles in most languages: a source in JavaScript that sends 10000000000000000 signs
    that double, so the guard must read the integer Python parsed the same way.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) > _SAFE_INTEGER else value
    if isinstance(value, dict):
        return {name: _as_doubles(member) for name, member in value.items()}
    if isinstance(value, list | tuple):
        return [_as_doubles(item) for item in value]
    return value


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
    """Whether `signature` is the record's signature under `key`, compared in constant time.

    A record without a canonical form (see `canonical_bytes`) matches no signature.
    """
    try:
        expected = hmac.digest(key, canonical_bytes(record), "sha256").hex()
    except (TypeError, ValueError, RecursionError, InputError):
        return False
    return hmac.compare_digest(expected.encode(), signature.lower().encode())


def _key_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key
