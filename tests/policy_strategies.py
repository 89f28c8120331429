"""Hypothesis strategies for whole, valid policies (shared by the diff and schema properties)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from guard import Policy
from guard.policy import policy_from_document

SOURCES = ("crm", "erp", "billing", "warehouse")
FIELD_NAMES = ("email", "tier", "credit_limit", "opened_at", "paid")
seconds = st.integers(min_value=1, max_value=3 * 86400)
durations = st.one_of(seconds, seconds.map(lambda s: f"{s}s"), seconds.map(lambda s: f"PT{s}S"))
# Cron expressions, some written two ways that mean the same (`06:00` is `0 6 * * *`; spacing is layout).
ACTIVE = ("* 6-21 * * 1-5", "*  6-21 * * 1-5", "* 0-1 * * 0")
EXPECTED_BY = ("06:00", "0 6 * * *", "0 6 * * 1-5")


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    """An SLA schedule as a file writes it; `{}` means the same as no schedule."""
    schedule: dict[str, Any] = {}
    if draw(st.booleans()):
        schedule["timezone"] = draw(st.sampled_from(["UTC", "Europe/Berlin"]))
    if draw(st.booleans()):
        schedule["active"] = draw(st.sampled_from(ACTIVE))
    if draw(st.booleans()):
        schedule["expected_by"] = draw(st.sampled_from(EXPECTED_BY))
    return schedule


@st.composite
def channels_of(draw: st.DrawFn, channel: str) -> dict[str, Any]:
    """A notify channel of any kind, each with what its kind needs."""
    kind = draw(st.sampled_from(["webhook", "slack", "pagerduty", None]))
    spec: dict[str, Any] = {} if kind is None else {"kind": kind}
    url = draw(st.sampled_from([f"{channel.upper()}_WEBHOOK", f"{channel.upper()}_URL"]))
    if kind == "pagerduty":
        spec["routing_key_env"] = draw(st.sampled_from([f"{channel.upper()}_PD_KEY", "PD_KEY"]))
        if draw(st.booleans()):
            spec["webhook_env"] = url
    else:
        spec["webhook_env"] = url
    return spec


@st.composite
def field_specs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["str", "int", "float", "bool", "datetime"]))
    spec: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        spec["required"] = True
    if draw(st.booleans()):
        spec["nullable"] = True
    if kind in ("int", "float"):
        low = draw(st.none() | st.integers(-10, 10))
        high = draw(st.none() | st.integers(10, 100))
        if low is not None:
            spec["min"] = low
        if high is not None:
            spec["max"] = float(high) if kind == "float" and draw(st.booleans()) else high
        if kind == "int" and draw(st.booleans()):
            spec["in"] = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
    if kind == "str":
        if draw(st.booleans()):
            spec["in"] = draw(st.lists(st.sampled_from(["gold", "silver", "bronze"]), min_size=1, unique=True))
        if draw(st.booleans()):
            spec["pattern"] = draw(st.sampled_from(["^[A-Z]{3}$", "^[^@]+@[^@]+$", "^SKU-"]))
        if draw(st.booleans()):
            spec["max_length"] = draw(st.integers(1, 200))
    return spec


@st.composite
def policy_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A policy document (as a file holds it) that loads."""
    sources = draw(st.lists(st.sampled_from(SOURCES), min_size=1, unique=True))
    document: dict[str, Any] = {
        "policy": draw(st.sampled_from(["support-bot", "billing-bot"])),
        "version": draw(st.integers(0, 5)),
        "sources": {
            name: {
                **({"team": draw(st.sampled_from(["sales", "finance", "data"]))} if draw(st.booleans()) else {}),
                **({"signing_key_env": f"{name.upper()}_KEY"} if draw(st.booleans()) else {}),
            }
            for name in sources
        },
    }
    if draw(st.booleans()):
        document["clock_skew"] = draw(durations)
    if draw(st.booleans()):
        document["naive_timestamps"] = draw(st.sampled_from(["reject", "utc"]))
    objects: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(["customer", "order", "invoice"]), min_size=1, unique=True)):
        owner = draw(st.sampled_from(sources))
        max_age = draw(st.integers(60, 86400))
        spec: dict[str, Any] = {
            "owner": owner,
            "replicas": draw(st.lists(st.sampled_from([s for s in sources if s != owner] or [owner]), unique=True))
            if len(sources) > 1
            else [],
            "max_age": draw(st.sampled_from([max_age, f"{max_age}s"])),
        }
        if draw(st.booleans()):
            spec["warn_age"] = draw(st.integers(1, max_age - 1))
        if draw(st.booleans()):
            spec["on_conflict"] = draw(st.sampled_from(["prefer_owner", "newest", "block_all"]))
        if draw(st.booleans()):
            spec["require_lineage"] = True
        names = draw(st.lists(st.sampled_from(FIELD_NAMES), max_size=3, unique=True))
        spec["fields"] = {field: draw(field_specs()) for field in names}
        objects[name] = spec
    document["objects"] = objects
    channels = draw(st.lists(st.sampled_from(["ops", "billing"]), unique=True))
    document["notify"] = {channel: draw(channels_of(channel)) for channel in channels}
    slas: list[dict[str, Any]] = []
    for name, spec in objects.items():
        for source in [spec["owner"], *spec["replicas"]]:
            if draw(st.booleans()):
                sla: dict[str, Any] = {"source": source, "object": name, "max_lag": draw(durations)}
                if draw(st.booleans()):
                    sla["max_block_rate"] = draw(st.sampled_from([0.01, 0.02, 0.5]))
                if draw(st.booleans()):
                    sla["recovery"] = draw(durations)
                notifies: bool = draw(st.booleans())
                if channels and notifies:
                    sla["notify"] = draw(st.lists(st.sampled_from(channels), min_size=1, unique=True))
                if draw(st.booleans()):
                    sla["schedule"] = draw(schedules())
                slas.append(sla)
    document["slas"] = slas
    return document


policies = policy_documents().map(lambda document: policy_from_document(document, origin="generated.yaml"))


def normalised(policy: Policy) -> dict[str, Any]:
    """A policy's meaning as plain data: lists whose order means nothing are sorted, no schedule is the default one."""
    document = policy.model_dump(mode="json", by_alias=True)
    for spec in document["objects"].values():
        spec["replicas"] = sorted(spec["replicas"])
        for field in spec["fields"].values():
            if field["in"] is not None:
                field["in"] = sorted(field["in"], key=repr)
    for sla in document["slas"]:
        sla["notify"] = sorted(sla["notify"])
        schedule = sla["schedule"] or {"timezone": "UTC", "active": None, "expected_by": None, "warn_before": None}
        sla["schedule"] = {key: " ".join(value.split()) if value else value for key, value in schedule.items()}
    document["slas"] = sorted(document["slas"], key=lambda sla: (sla["source"], sla["object"]))
    return document
