"""GET /metrics and GET /v1/health: what operators and Prometheus read about checks and integration points."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import MAX_PIPELINES, add_to_histogram
from guard.tallies import AGE_BOUNDS_S
from tests.api.conftest import auth_as
from tests.conftest import ts
from tests.serving import AppClient

Fresh = Callable[..., dict[str, Any]]


def samples(client: AppClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_checks_records_and_reasons_are_counted_by_policy_names(client: AppClient, fresh: Fresh) -> None:
    records = [
        fresh(id="ok", key="C-1"),
        fresh(id="old", key="C-2", source="sap", observed_at="2020-01-01T00:00:00Z"),
        fresh(id="odd", key="C-SECRET-77", source="hubspot"),
        fresh(id="lead", object="lead", key="L-1"),
    ]
    assert client.post("/v1/check", json={"pipeline": "support-bot", "records": records}).status_code == 200

    found = samples(client)

    assert value(found, "freshguard_checks_total", pipeline="support-bot", verdict="partial") == 1
    assert value(found, "freshguard_records_total", object="customer", source="salesforce", action="allow") == 1
    assert value(found, "freshguard_records_total", object="customer", source="sap", action="block") == 1
    assert value(found, "freshguard_records_total", object="customer", source="other", action="block") == 1
    assert value(found, "freshguard_records_total", object="other", source="salesforce", action="block") == 1
    assert value(found, "freshguard_record_reasons_total", object="customer", source="sap", code="STALE") == 1
    assert value(found, "freshguard_check_duration_seconds_count") == 1
    assert value(found, "freshguard_check_records_sum") == 4
    assert value(found, "freshguard_record_age_seconds_count", object="customer", source="salesforce") == 1
    assert value(found, "freshguard_policy_version", policy="support-assistant") == 1
    text = client.get("/metrics").text
    for secret in ("C-SECRET-77", "hubspot", "lead", '"ok"'):
        assert secret not in text


def test_pipelines_beyond_the_limit_are_counted_as_other(client: AppClient, fresh: Fresh) -> None:
    metrics = client.app.state.metrics  # type: ignore[attr-defined]
    for n in range(MAX_PIPELINES + 5):
        metrics._pipeline(f"pipeline-{n}")

    assert metrics._pipeline("pipeline-3") == "pipeline-3"
    assert metrics._pipeline("yet-another") == "other"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=10**6, allow_nan=False), max_size=50))
def test_adding_many_ages_at_once_exposes_what_observing_each_would(ages: list[float]) -> None:
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    observed = Histogram("age_seconds", "ages", ["object"], buckets=AGE_BOUNDS_S, registry=one_by_one)
    added = Histogram("age_seconds", "ages", ["object"], buckets=AGE_BOUNDS_S, registry=at_once)
    buckets = [0] * (len(AGE_BOUNDS_S) + 1)
    child = observed.labels("customer")
    for age in ages:
        child.observe(age)
        buckets[next((i for i, b in enumerate(AGE_BOUNDS_S) if age <= b), len(AGE_BOUNDS_S))] += 1

    add_to_histogram(added.labels("customer"), buckets, sum(ages))

    def without_created(text: bytes) -> list[str]:
        return [line for line in text.decode().splitlines() if "_created" not in line]

    assert without_created(generate_latest(at_once)) == without_created(generate_latest(one_by_one))


def test_sla_gauges_come_from_the_store(client: AppClient, fresh: Fresh) -> None:
    synced = datetime.now(UTC) - timedelta(minutes=20)
    assert (
        client.post("/v1/sources/sap/heartbeats", json={"object": "customer", "synced_at": ts(synced)}).status_code
        == 200
    )
    client.post("/v1/check", json={"pipeline": "p", "records": [fresh(source="sap")]})

    found = samples(client)

    lag = value(found, "freshguard_integration_lag_seconds", source="sap", object="customer")
    assert 20 * 60 <= lag < 25 * 60
    assert value(found, "freshguard_integration_state", source="sap", object="customer", state="breached") == 1
    assert value(found, "freshguard_integration_state", source="sap", object="customer", state="healthy") == 0
    assert value(found, "freshguard_integration_block_rate", source="sap", object="customer") == 0
    assert value(found, "freshguard_heartbeats_total", source="sap", object="customer") == 1


def test_health_reports_every_declared_sla_with_its_state(client: AppClient, fresh: Fresh) -> None:
    synced = datetime.now(UTC) - timedelta(minutes=47)
    client.post("/v1/sources/sap/heartbeats", json={"object": "customer", "synced_at": ts(synced)})
    client.post(
        "/v1/check",
        json={"pipeline": "p", "records": [fresh(source="sap", key="C-1"),
                                           fresh(source="sap", key="C-2", observed_at="2020-01-01T00:00:00Z")]},
    )  # fmt: skip

    report = client.get("/v1/health").json()

    points = {(p["source"], p["object"]): p for p in report["points"]}
    sap = points[("sap", "customer")]
    assert sap["state"] == "breached"
    # Against the real clock: a second may pass between the heartbeat and the report.
    assert re.fullmatch(r"sap → customer: behind by 47m( [0-9]+s)?; agreed 15m", sap["findings"][0])
    assert (sap["records"], sap["blocked"], sap["block_rate"]) == (2, 1, 0.5)
    assert sap["reasons"] == [{"code": "STALE", "records": 1}]
    assert points[("stripe", "invoice")]["state"] == "no_data"
    assert points[("warehouse", "product")]["has_sla"] is True
    assert points[("salesforce", "customer")] | {"state": None, "has_sla": False} == points[("salesforce", "customer")]
    assert report["policy"] == {"name": "support-assistant", "version": 1}
    assert "breached" in report["definition"]


@pytest.mark.parametrize(("name", "status"), [(None, 401), ("erp-sync", 403), ("dashboard", 200), ("ops-admin", 200)])
def test_metrics_and_health_need_a_reading_key_when_keys_are_configured(
    keyed: AppClient, name: str | None, status: int
) -> None:
    headers = auth_as(name) if name is not None else {}
    assert keyed.get("/metrics", headers=headers).status_code == status
    assert keyed.get("/v1/health", headers=headers).status_code == status


def test_metrics_answer_openmetrics_when_asked(client: AppClient) -> None:
    response = client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
