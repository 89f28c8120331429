"""Signatures: the canonical form of DESIGN.md, the helper sources use, and tamper detection."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from guard import Guard, ReasonCode, Record, canonical_bytes, parse_policy, sign_record, with_signature
from tests.conftest import MINIMAL_POLICY, NOW, RecordFactory

SIGNED_POLICY = MINIMAL_POLICY.replace(
    "sap: {team: finance-systems}", "sap: {team: finance-systems, signing_key_env: SAP_KEY}"
)


def test_canonical_form_is_design_md_exactly() -> None:
    record = {
        "id": "doc-17", "signature": "ff", "lineage": [{"system": "a", "at": "x"}],
        "source": "sap", "object": "customer", "key": "C-1042", "observed_at": "2026-11-22T10:00:00Z",
        "fields": {"name": "Zoë", "b": 1, "a": 2.5}, "content": "Grüße",
    }  # fmt: skip
    expected = (
        '{"content":"Grüße","fields":{"a":2.5,"b":1,"name":"Zoë"},"key":"C-1042",'
        '"object":"customer","observed_at":"2026-11-22T10:00:00Z","source":"sap"}'
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
