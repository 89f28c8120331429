"""Prometheus metrics of the service (prometheus-client), in Prometheus' naming conventions.

Counters and histograms are kept per process, or in PROMETHEUS_MULTIPROC_DIR when the
service runs several workers (prometheus-client's multiprocess mode); SLA gauges are read
from the lineage store at scrape time, so every worker reports the same figures.

Labels never carry a record id or an entity key, and an object or source the policy does not
name is counted as `other`, so that what clients send cannot multiply the series.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from guard import CheckResult, Guard, Policy, Tally
from guard.health import HealthState
from guard.tallies import AGE_BOUNDS_S

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: More distinct pipeline names than this are counted as `other`.
MAX_PIPELINES = 100
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SIZE_BUCKETS = (1, 5, 10, 20, 50, 100, 500, 1000, 5000, 10_000, 50_000, 100_000)


class ServiceMetrics:
    """The service's metrics; `render()` is the body of `GET /metrics`."""

    def __init__(self, guard_of: Callable[[], Guard | None]) -> None:
        self._multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        # In multiprocess mode values live in files; the registry only gathers them when scraped.
        registry = None if self._multiprocess else CollectorRegistry()
        self._registry = registry
        self._store_collector = StoreCollector(guard_of)
        if registry is not None:
            registry.register(self._store_collector)
        self._pipelines: set[str] = set()
        self.checks = Counter(
            "freshguard_checks", "Checks run, by pipeline and verdict.", ["pipeline", "verdict"], registry=registry
        )
        self.records = Counter(
            "freshguard_records", "Records decided, by object, source and action.", ["object", "source", "action"],
            registry=registry,
        )  # fmt: skip
        self.reasons = Counter(
            "freshguard_record_reasons", "Records that carried a reason, by object, source and reason code.",
            ["object", "source", "code"], registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "freshguard_check_duration_seconds", "Time one check took in the guard, store write included.",
            buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.batch = Histogram(
            "freshguard_check_records", "Records per check.", buckets=_SIZE_BUCKETS, registry=registry
        )
        self.ages = Histogram(
            "freshguard_record_age_seconds", "Age of the records checked (now minus observed_at or updated_at).",
            ["object", "source"], buckets=AGE_BOUNDS_S, registry=registry,
        )  # fmt: skip
        self.changes = Counter(
            "freshguard_changes", "Change notifications accepted from owners, by object.", ["object"],
            registry=registry,
        )  # fmt: skip
        self.heartbeats = Counter(
            "freshguard_heartbeats", "Sync heartbeats accepted, by source and object.", ["source", "object"],
            registry=registry,
        )  # fmt: skip

    def observe_check(self, result: CheckResult, tallies: Sequence[Tally], policy: Policy) -> None:
        """Count one check: its verdict, its records by action and reason, their ages, its duration."""
        self.checks.labels(self._pipeline(result.pipeline), result.verdict.value).inc()
        self.duration.observe(result.duration_s)
        self.batch.observe(len(result.decisions))
        for tally in tallies:
            obj, source = object_label(policy, tally.object), source_label(policy, tally.source)
            for action, count in (("allow", tally.allowed), ("warn", tally.warned), ("block", tally.blocked)):
                if count:
                    self.records.labels(obj, source, action).inc(count)
            for code, count in tally.reasons.items():
                self.reasons.labels(obj, source, code).inc(count)
            if any(tally.age_buckets):
                add_to_histogram(self.ages.labels(obj, source), tally.age_buckets, tally.age_sum_s)

    def observe_changes(self, objects: Iterable[str], policy: Policy) -> None:
        """Count accepted change notifications."""
        for obj in objects:
            self.changes.labels(object_label(policy, obj)).inc()

    def observe_heartbeat(self, source: str, obj: str, policy: Policy) -> None:
        """Count an accepted heartbeat."""
        self.heartbeats.labels(source_label(policy, source), object_label(policy, obj)).inc()

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Every metric (and the store's SLA gauges) in the format `accept` asks for, with its media type."""
        encoder, media_type = choose_encoder(accept or "")
        if self._registry is not None:
            return encoder(self._registry), media_type
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(self._store_collector)
        return encoder(registry), media_type

    def _pipeline(self, name: str) -> str:
        if name in self._pipelines:
            return name
        if len(self._pipelines) >= MAX_PIPELINES:
            return "other"
        self._pipelines.add(name)
        return name


def object_label(policy: Policy, name: str | None) -> str:
    """An object as a label value: its name when the policy has it, else `other` (`none` when absent)."""
    if name is None:
        return "none"
    return name if name in policy.objects else "other"


def source_label(policy: Policy, name: str | None) -> str:
    """A source as a label value: its name when the policy has it, else `other` (`none` when absent)."""
    if name is None:
        return "none"
    return name if name in policy.sources else "other"


def add_to_histogram(child: Any, buckets: Sequence[int], total: float) -> None:
    """Add many observations at once: `buckets[i]` values in bucket i (not cumulative), summing to `total`.

    prometheus-client observes one value at a time (a lock and a loop each); a check of
    100,000 records would pay that 100,000 times. This adds to the same counters `observe`
    does; tests/api/test_api_metrics.py holds it to `observe`'s exposition.
    """
    child._sum.inc(total)
    for counter, count in zip(child._buckets, buckets, strict=True):
        if count:
            counter.inc(count)


class StoreCollector(Collector):
    """SLA gauges per integration point, computed from the lineage store when Prometheus scrapes."""

    def __init__(self, guard_of: Callable[[], Guard | None]) -> None:
        self._guard_of = guard_of

    def collect(self) -> Iterator[Metric]:
        guard = self._guard_of()
        if guard is None or guard.store is None:
            return
        policy = guard.policy
        version = GaugeMetricFamily("freshguard_policy_version", "Version of the policy in force.", labels=["policy"])
        version.add_metric([policy.name], policy.version)
        yield version
        points = guard.health(coverage=False)
        lag = GaugeMetricFamily(
            "freshguard_integration_lag_seconds",
            "Seconds since the newest sync heartbeat.",
            labels=["source", "object"],
        )
        rate = GaugeMetricFamily(
            "freshguard_integration_block_rate", "Share of records blocked over the SLA window.",
            labels=["source", "object"],
        )  # fmt: skip
        state = GaugeMetricFamily(
            "freshguard_integration_state", "1 for the state each SLA is in, 0 for the others.",
            labels=["source", "object", "state"],
        )  # fmt: skip
        for point in points:
            labels = [point.source, point.object]
            if point.lag_s is not None:
                lag.add_metric(labels, point.lag_s)
            if point.block_rate is not None:
                rate.add_metric(labels, point.block_rate)
            if point.state is not None:
                for candidate in HealthState:
                    state.add_metric([*labels, candidate.value], 1.0 if candidate is point.state else 0.0)
        yield from (lag, rate, state)
        store = guard.store
        open_incidents = GaugeMetricFamily("freshguard_incidents_open", "Incidents not yet recovered.")
        open_incidents.add_metric([], len(store.incidents(open_only=True, limit=10_000)))
        yield open_incidents
        alerts = GaugeMetricFamily(
            "freshguard_alerts", "Alerts in the outbox, by status (delivered, pending, failed).", labels=["status"]
        )
        for status, count in store.alert_counts().items():
            alerts.add_metric([status], count)
        yield alerts
