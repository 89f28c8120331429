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
import json
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
        return _jcs(signed).encode("utf-8")
    except (rfc8785.CanonicalizationError, OverflowError, UnicodeEncodeError, TypeError) as exc:
        raise InputError(
            f"record {envelope.get('id', '(no id)')!r:.80} has no canonical form, so it cannot be signed: {exc}; "
            "numbers must be finite, text valid Unicode, and object keys text"
        ) from exc


def _jcs(value: Any) -> str:
    """RFC 8785 text of a JSON value: `rfc8785.dumps`, with the C string encoder on the common path.

    Equal to `rfc8785.dumps` for every JSON value (a property test holds them equal), except that an
    integer beyond ±(2**53 - 1) is written as the nearest double, as JavaScript reads it, where the
    package refuses it: a source in JavaScript that sends 10000000000000000 signs that double.
    """
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, int):
        return str(int(value)) if abs(value) <= _SAFE_INTEGER else _number(float(value))
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        items = value.items()
        if any(not isinstance(name, str) or not name.isascii() for name in value):
            items = sorted(items, key=_utf16)  # type: ignore[assignment]  # a list of the same pairs
        else:
            items = sorted(items)  # type: ignore[assignment]  # ASCII: code points sort as UTF-16 does
        return "{" + ",".join(f"{_string(name)}:{_jcs(member)}" for name, member in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_jcs(item) for item in value) + "]"
    raise rfc8785.CanonicalizationError(f"unsupported type: {type(value).__name__}")


#: JSON text of a string, escaped as RFC 8785 escapes it (quote, backslash, control characters; \u00xx lowercase).
_string = json.encoder.encode_basestring  # the C encoder (ensure_ascii=False)


def _number(value: float) -> str:
    """A double as ECMAScript writes it; Python's shortest repr agrees where the two notations coincide."""
    magnitude = abs(value)
    if value.is_integer():
        if magnitude <= _SAFE_INTEGER:
            return str(int(value))  # 5000.0 -> 5000, -0.0 -> 0
    elif 1e-4 <= magnitude < 1e16:
        return repr(value)  # a fraction in plain decimal in both languages, the same shortest digits
    return rfc8785.dumps(value).decode("ascii")  # exponents, NaN and infinity refused


def _utf16(item: tuple[Any, Any]) -> bytes:
    name = item[0]
    if not isinstance(name, str):
        raise rfc8785.CanonicalizationError("object keys must be strings")
    return name.encode("utf-16-be", "surrogatepass")


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
