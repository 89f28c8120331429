"""Signatures: the canonical form (RFC 8785), the helper sources use, tamper detection, and sources in other
languages: records signed by Node.js (docs/examples/sign.mjs) and by docs/examples/sign.py verify."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from guard import Guard, InputError, ReasonCode, Record, canonical_bytes, parse_policy, sign_record, with_signature
from tests.conftest import MINIMAL_POLICY, NOW, ROOT, RecordFactory

SIGNED_POLICY = MINIMAL_POLICY.replace(
    "sap: {team: finance-systems}", "sap: {team: finance-systems, signing_key_env: SAP_KEY}"
)


def test_canonical_form_is_rfc_8785() -> None:
    record = {
        "id": "doc-17", "signature": "ff", "lineage": [{"system": "a", "at": "x"}],
        "source": "sap", "object": "customer", "key": "C-1042", "observed_at": "2026-11-22T10:00:00Z",
        "fields": {"name": "Zoë\n", "b": 1, "a": 2.5, "limit": 5000.0, "big": 1e16, "tiny": 1e-7, "huge": 1e21},
        "content": "Grüße", "\ue000": 1, "\U0001f600": 2,
    }  # fmt: skip
    expected = (
        '{"content":"Grüße","fields":{"a":2.5,"b":1,"big":10000000000000000,"huge":1e+21,"limit":5000,'
        '"name":"Zoë\\n","tiny":1e-7},"key":"C-1042","object":"customer","observed_at":"2026-11-22T10:00:00Z",'
        '"source":"sap","\U0001f600":2,"\ue000":1}'  # keys in UTF-16 order: U+1F600 is D83D DE00, before E000
    ).encode()
    assert canonical_bytes(record) == expected
    assert sign_record(record, "k") == hmac.new(b"k", expected, hashlib.sha256).hexdigest()


def test_record_model_signs_its_json_form() -> None:
    model = Record(id="d", object="customer", key="C-1", source="sap", observed_at=NOW, fields={"a": 1})
    envelope = model.to_envelope()
    assert envelope["observed_at"] == "2026-11-22T12:00:00Z"
    assert sign_record(model, "k") == sign_record(envelope, "k")


def _guard() -> Guard:
    return Guard(parse_policy(SIGNED_POLICY), environ={"SAP_KEY": "secret"})


def test_signed_record_passes_and_id_lineage_are_not_signed(record: RecordFactory) -> None:
    signed = with_signature(record(source="sap"), "secret")
    signed["id"] = "renamed"
    signed["lineage"] = [{"system": "salesforce", "at": "2026-11-22T11:50:00Z"}]
    result = _guard().check([signed], pipeline="t", now=NOW)
    assert result.decisions[0].codes == ()


def test_unsigned_and_wrong_key_are_told_apart(record: RecordFactory) -> None:
    unsigned = record(source="sap")
    wrong_key = with_signature(record(source="sap"), "other")
    not_hex = record(source="sap", signature="zz-not-hex-Ω")
    result = _guard().check([unsigned, wrong_key, not_hex], pipeline="t", now=NOW)
    assert [d.codes for d in result.decisions] == [
        (ReasonCode.UNSIGNED,),
        (ReasonCode.BAD_SIGNATURE,),
        (ReasonCode.BAD_SIGNATURE,),
    ]
    assert "changed after it was signed" in result.decisions[1].reasons[0].message


def test_uppercase_hex_is_accepted(record: RecordFactory) -> None:
    signed = with_signature(record(source="sap"), "secret")
    signed["signature"] = signed["signature"].upper()
    assert _guard().check([signed], pipeline="t", now=NOW).decisions[0].codes == ()


def test_sources_without_a_key_need_no_signature(record: RecordFactory) -> None:
    assert _guard().check([record(source="salesforce")], pipeline="t", now=NOW).decisions[0].codes == ()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(
    member=st.sampled_from(["key", "observed_at", "updated_at", "fields", "content", "extra"]),
    value=json_values,
)
def test_any_tampering_breaks_the_signature(member: str, value: Any) -> None:
    base = {
        "id": "d", "object": "customer", "key": "C-1", "source": "sap",
        "observed_at": "2026-11-22T11:55:00Z", "updated_at": "2026-11-22T11:50:00Z",
        "fields": {"email": "a@b.c"}, "content": "text",
    }  # fmt: skip
    signature = sign_record(base, "secret")
    tampered = json.loads(json.dumps(base))
    tampered[member] = value
    if tampered.get(member) == base.get(member) and (member in base) == (member in tampered):
        return
    assert sign_record(tampered, "secret") != signature


# -- sources in other languages ----------------------------------------------------------------------

EXAMPLES = ROOT / "docs" / "examples"

#: Members whose canonical form differs between a naive JSON writer and RFC 8785, each in one record.
HARD_VALUES: list[tuple[str, Any]] = [
    ("non-ascii", {"content": "Grüße, Zoë — 東京 ☃ 😀", "fields": {"note": 'tab\t, quote ", nul \u0000'}}),
    ("floats", {"fields": {"credit_limit": 5000.0, "ratio": 0.1, "big": 1e16, "huge": 1e21, "tiny": 1e-7}}),
    ("big-integers", {"fields": {"max": 2**53 - 1, "min": -(2**53 - 1), "past": 2**53 + 2, "count": 10**16}}),
    ("nested", {"fields": {"email": "a@b.c", "address": {"lines": ["1 Rua", {"floor": 2.50}], "geo": [1.0, -0.0]}}}),
    ("keys-outside-the-bmp", {"fields": {"😀": 1, "\ue000": 2, "z": 3, "É": 4, "ø": [{"𝄞": True, "a": None}]}}),
]


def _hard_records(record: RecordFactory) -> list[dict[str, Any]]:
    built = []
    for n, (name, members) in enumerate(HARD_VALUES):
        one = record(id=name, key=f"C-{n}", source="sap", **members)
        one["fields"] = {"email": "ana@example.com", **one["fields"]}  # the contract needs an email
        built.append(one)
    return built


def _signed_by(command: list[str], records: list[dict[str, Any]], cwd: Path) -> list[dict[str, Any]]:
    """Records signed by a program in another process: JSON lines in, JSON lines out, the key in SIGNING_KEY."""
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    done = subprocess.run(
        command, input=lines.encode(), capture_output=True, cwd=cwd, check=False, timeout=60,
        env={**os.environ, "SIGNING_KEY": "secret"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def _node() -> str:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the signing interop test: scripts/system-packages installs it"
    assert (EXAMPLES / "node_modules" / "canonicalize").is_dir(), "run `npm ci` in docs/examples (scripts/setup --dev)"
    return node


def test_records_signed_by_nodejs_verify(record: RecordFactory) -> None:
    records = _hard_records(record)
    signed = _signed_by([_node(), "sign.mjs"], records, EXAMPLES)
    result = _guard().check(signed, pipeline="t", now=NOW)
    assert [(d.id, d.codes) for d in result.decisions] == [(r["id"], ()) for r in records]
    # the same bytes in both languages: Python's helper gives the JavaScript signature for the values it sent
    assert [sign_record(r, "secret") for r in records] == [s["signature"] for s in signed]


def test_a_nodejs_signature_breaks_when_a_signed_value_changes(record: RecordFactory) -> None:
    [signed] = _signed_by([_node(), "sign.mjs"], _hard_records(record)[1:2], EXAMPLES)
    signed["fields"]["huge"] = 1e22
    [decision] = _guard().check([signed], pipeline="t", now=NOW).decisions
    assert decision.codes == (ReasonCode.BAD_SIGNATURE,)


def test_the_python_example_signs_as_the_library_does(record: RecordFactory) -> None:
    records = _hard_records(record)
    signed = _signed_by([sys.executable, "sign.py"], records, EXAMPLES)
    assert [s["signature"] for s in signed] == [sign_record(r, "secret") for r in records]
    assert [d.codes for d in _guard().check(signed, pipeline="t", now=NOW).decisions] == [()] * len(records)


def test_a_record_without_a_canonical_form_cannot_be_signed_and_never_verifies(record: RecordFactory) -> None:
    broken = record(source="sap", content="lone \ud800 surrogate")
    with pytest.raises(InputError, match=r"has no canonical form, so it cannot be signed"):
        sign_record(broken, "secret")
    broken["signature"] = "00" * 32
    [decision] = _guard().check([broken], pipeline="t", now=NOW).decisions
    assert ReasonCode.BAD_SIGNATURE in decision.codes


json_documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53 - 1), 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(members=st.dictionaries(st.text(max_size=6), json_documents, max_size=5))
def test_the_canonical_form_is_the_rfc8785_packages(members: dict[str, Any]) -> None:
    """The signing path writes exactly what `rfc8785.dumps` writes, for any JSON value it takes."""
    record = {k: v for k, v in members.items() if k not in ("id", "signature", "lineage")}
    try:
        expected = rfc8785.dumps(record)
    except rfc8785.CanonicalizationError:  # text that is not valid Unicode: no canonical form either way
        with pytest.raises(InputError):
            canonical_bytes(record)
        return
    assert canonical_bytes(record) == expected


@given(st.integers(2**53, 2**1000 - 1) | st.integers(-(2**1000) + 1, -(2**53)))  # drawn, not filtered
def test_integers_beyond_a_doubles_precision_are_signed_as_javascript_reads_them(n: int) -> None:
    assert canonical_bytes({"n": n}) == rfc8785.dumps({"n": float(n)})
