"""`diff_policies`: what a new version changes, once each, in words; nothing when nothing changes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from guard import Policy
from guard.policy import policy_from_document
from guard.policy.diff import Change, ChangeKind, diff_policies
from tests.conftest import EXAMPLE_POLICY
from tests.policy_strategies import channels_of, normalised, policies, policy_documents, schedules

Edit = Callable[[dict[str, Any]], None]
EXAMPLE: dict[str, Any] = yaml.safe_load(EXAMPLE_POLICY.read_text(encoding="utf-8"))


def edited(edit: Edit, *, bump: bool = True) -> Policy:
    document = copy.deepcopy(EXAMPLE)
    edit(document)
    if bump:
        document["version"] = EXAMPLE["version"] + 1
    return policy_from_document(document, origin="new.yaml")


def setter(path: str, value: Any) -> Edit:
    """An edit that sets `objects.customer.max_age` (dots; list items by index) to `value`, or deletes it for ...."""

    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is ...:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value

    return edit


@pytest.fixture(scope="module")
def example() -> Policy:
    return policy_from_document(copy.deepcopy(EXAMPLE), origin="old.yaml")


@pytest.mark.parametrize(
    ("edit", "path", "kind", "message"),
    [
        (setter("objects.customer.max_age", "45m"), "objects.customer.max_age", ChangeKind.TIGHTENED,
         "customer: max_age tightened from 1h to 45m"),
        (setter("objects.customer.max_age", "2h"), "objects.customer.max_age", ChangeKind.LOOSENED,
         "customer: max_age loosened from 1h to 2h"),
        (setter("objects.customer.warn_age", ...), "objects.customer.warn_age", ChangeKind.REMOVED,
         "customer: warn_age 30m removed"),
        (setter("objects.product.replicas", ["sap"]), "objects.product.replicas.sap", ChangeKind.ADDED,
         "product: replica sap added"),
        (setter("objects.order.replicas", []), "objects.order.replicas.warehouse", ChangeKind.REMOVED,
         "order: replica warehouse removed: its copies will be blocked UNAUTHORIZED_SOURCE"),
        (setter("objects.invoice.on_conflict", "newest"), "objects.invoice.on_conflict", ChangeKind.CHANGED,
         "invoice: on_conflict changed from block_all to newest"),
        (setter("objects.customer.require_lineage", True), "objects.customer.require_lineage", ChangeKind.TIGHTENED,
         "customer: records must now carry a lineage chain"),
        (setter("slas.0.max_lag", "30m"), "slas.sap→customer.max_lag", ChangeKind.LOOSENED,
         "slas sap→customer: max_lag loosened from 15m to 30m"),
        (setter("slas.0.max_block_rate", 0.01), "slas.sap→customer.max_block_rate", ChangeKind.TIGHTENED,
         "slas sap→customer: max_block_rate tightened from 2% to 1%"),
        (setter("slas.0.notify", []), "slas.sap→customer.notify.ops", ChangeKind.REMOVED,
         "slas sap→customer: no longer notifies ops"),
        (setter("slas.3.window", "2d"), "slas.warehouse→product.window", ChangeKind.CHANGED,
         "slas warehouse→product: window changed from 1d to 2d"),
        (setter("sources.sap.team", "erp-ops"), "sources.sap.team", ChangeKind.CHANGED,
         "source sap: team changed from finance-systems to erp-ops"),
        (setter("sources.sap.signing_key_env", "SAP_KEY"), "sources.sap.signing_key_env", ChangeKind.TIGHTENED,
         "source sap: records must now be signed (key in $SAP_KEY)"),
        (setter("sources.stripe.signing_key_env", ...), "sources.stripe.signing_key_env", ChangeKind.LOOSENED,
         "source stripe: records no longer need a signature (the key was in $STRIPE_SIGNING_KEY)"),
        (setter("sources.hubspot", {"team": "marketing"}), "sources.hubspot", ChangeKind.ADDED,
         "source hubspot added (team marketing)"),
        (setter("notify.ops.webhook_env", "OPS_URL"), "notify.ops.webhook_env", ChangeKind.CHANGED,
         "notify channel ops: webhook URL now read from $OPS_URL (was $OPS_WEBHOOK_URL)"),
        (setter("notify.ops.kind", "slack"), "notify.ops.kind", ChangeKind.CHANGED,
         "notify channel ops: now sends Slack alerts (was webhook)"),
        (setter("notify.pd", {"kind": "pagerduty", "routing_key_env": "PD_KEY"}), "notify.pd", ChangeKind.ADDED,
         "notify channel pd added (PagerDuty, routing key in $PD_KEY, PagerDuty's own Events API URL)"),
        (setter("notify.chat", {"kind": "slack", "webhook_env": "CHAT_URL"}), "notify.chat", ChangeKind.ADDED,
         "notify channel chat added (Slack, URL in $CHAT_URL)"),
        (setter("slas.0.schedule", {"active": "* 6-21 * * 1-5"}), "slas.sap→customer.schedule.active",
         ChangeKind.LOOSENED, "slas sap→customer: schedule active hours now '* 6-21 * * 1-5' (was always): "
         "outside them the lag is not judged"),
        (setter("slas.0.schedule", {"expected_by": "06:00"}), "slas.sap→customer.schedule.expected_by",
         ChangeKind.CHANGED, "slas sap→customer: schedule expected_by now '0 6 * * *' (was none): a sync is due by "
         "each deadline, and max_lag is not applied"),
        (setter("slas.0.schedule", {"timezone": "Europe/Berlin"}), "slas.sap→customer.schedule.timezone",
         ChangeKind.CHANGED, "slas sap→customer: schedule timezone now Europe/Berlin (was UTC)"),
        (setter("clock_skew", "5m"), "clock_skew", ChangeKind.LOOSENED, "clock_skew loosened from 2m to 5m"),
        (setter("naive_timestamps", "utc"), "naive_timestamps", ChangeKind.LOOSENED,
         "naive_timestamps loosened from reject to utc: timestamps without a UTC offset are now read as UTC"),
        (setter("objects.customer.fields.tier.in", ["gold", "silver"]), "objects.customer.fields.tier.in",
         ChangeKind.TIGHTENED, "customer.tier: allowed values tightened: bronze no longer"),
        (setter("objects.customer.fields.tier.in", ["gold", "silver", "bronze", "platinum"]),
         "objects.customer.fields.tier.in", ChangeKind.LOOSENED,
         "customer.tier: allowed values loosened: platinum now allowed"),
        (setter("objects.customer.fields.credit_limit.min", 100), "objects.customer.fields.credit_limit.min",
         ChangeKind.TIGHTENED, "customer.credit_limit: min tightened from 0 to 100"),
        (setter("objects.support_case.fields.priority.max", 5), "objects.support_case.fields.priority.max",
         ChangeKind.LOOSENED, "support_case.priority: max loosened from 4 to 5"),
        (setter("objects.customer.fields.name.required", False), "objects.customer.fields.name.required",
         ChangeKind.LOOSENED, "customer.name: no longer required"),
        (setter("objects.product.fields.stock.nullable", False), "objects.product.fields.stock.nullable",
         ChangeKind.TIGHTENED, "product.stock: null is no longer allowed"),
        (setter("objects.order.fields.currency.pattern", "^[A-Z]{3,4}$"), "objects.order.fields.currency.pattern",
         ChangeKind.CHANGED, "order.currency: pattern changed from '^[A-Z]{3}$' to '^[A-Z]{3,4}$'"),
        (setter("objects.customer.fields.phone", {"type": "str", "required": True}), "objects.customer.fields.phone",
         ChangeKind.ADDED, "customer: field phone added (str, required)"),
        (setter("objects.customer.fields.tier", ...), "objects.customer.fields.tier", ChangeKind.REMOVED,
         "customer: field tier removed: it is no longer checked"),
    ],
)  # fmt: skip
def test_each_change_is_said_in_words(example: Policy, edit: Edit, path: str, kind: ChangeKind, message: str) -> None:
    changes = diff_policies(example, edited(edit))

    assert changes == [
        Change("version", ChangeKind.VERSION, "version raised from 1 to 2"),
        Change(path, kind, message),
    ]


def test_an_owner_changed_and_its_old_replica_promoted(example: Policy) -> None:
    def promote_sap(document: dict[str, Any]) -> None:
        document["objects"]["customer"].update(owner="sap", replicas=["salesforce", "warehouse"])

    messages = [str(change) for change in diff_policies(example, edited(promote_sap))]

    assert messages == [
        "version raised from 1 to 2",
        "customer: owner changed from salesforce to sap",
        "customer: replica salesforce added",
        "customer: replica sap removed: it is the owner now",
    ]


def test_an_object_removed_says_what_happens_to_its_records(example: Policy) -> None:
    def drop_product(document: dict[str, Any]) -> None:
        del document["objects"]["product"]
        document["slas"] = [sla for sla in document["slas"] if sla["object"] != "product"]

    messages = [str(change) for change in diff_policies(example, edited(drop_product))]

    assert messages == [
        "version raised from 1 to 2",
        "product: removed: its records will be blocked UNKNOWN_OBJECT",
        "slas warehouse→product: removed (was max_lag 1d, window 1d)",
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (1, "version stays at 1: a published policy needs a higher version; raise it to 2"),
        (0, "version goes down from 1 to 0: publishing it will be refused; raise it to 2"),
    ],
)
def test_a_version_that_does_not_go_up_is_flagged(example: Policy, version: int, expected: str) -> None:
    def edit(document: dict[str, Any]) -> None:
        document["objects"]["customer"]["max_age"] = "45m"
        document["version"] = version

    changes = diff_policies(example, edited(edit, bump=False))

    assert changes[0] == Change("version", ChangeKind.VERSION, expected)
    assert [c.path for c in changes[1:]] == ["objects.customer.max_age"]


def scheduled(document: dict[str, Any]) -> None:
    """The example with a schedule on sap→customer and a PagerDuty channel."""
    document["slas"][0]["schedule"] = {"timezone": "Europe/Berlin", "active": "* 6-21 * * 1-5", "expected_by": "06:00"}
    document["notify"]["pd"] = {"kind": "pagerduty", "routing_key_env": "PD_KEY"}


def scheduled_and(edit: Edit) -> Edit:
    def both(document: dict[str, Any]) -> None:
        scheduled(document)
        edit(document)

    return both


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (setter("slas.0.schedule.active", "* 0-1 * * 0"),
         ["slas sap→customer: schedule active hours now '* 0-1 * * 0' (was '* 6-21 * * 1-5')"]),
        (setter("slas.0.schedule.active", ...),
         ["slas sap→customer: schedule active hours now always (was '* 6-21 * * 1-5'): the lag is now judged at "
          "every hour"]),
        (setter("slas.0.schedule", ...),
         ["slas sap→customer: schedule timezone now UTC (was Europe/Berlin)",
          "slas sap→customer: schedule active hours now always (was '* 6-21 * * 1-5'): the lag is now judged at "
          "every hour",
          "slas sap→customer: schedule expected_by now none (was '0 6 * * *'): no deadlines, max_lag applies again"]),
        (setter("notify.pd.routing_key_env", "PD_KEY2"),
         ["notify channel pd: routing key now read from $PD_KEY2 (was $PD_KEY)"]),
        (setter("notify.pd.webhook_env", "PD_EVENTS_URL"),
         ["notify channel pd: URL now read from $PD_EVENTS_URL (was PagerDuty's own Events API URL)"]),
        (setter("notify.pd", {"kind": "webhook", "webhook_env": "PD_HOOK"}),
         ["notify channel pd: now sends webhook alerts (was PagerDuty)",
          "notify channel pd: URL now read from $PD_HOOK (was PagerDuty's own Events API URL)",
          "notify channel pd: routing key now not read (was $PD_KEY)"]),
        (setter("notify.pd", ...),
         ["notify channel pd removed (was PagerDuty, routing key in $PD_KEY, PagerDuty's own Events API URL)"]),
    ],
)  # fmt: skip
def test_schedules_and_channel_kinds_are_said_in_words(edit: Edit, expected: list[str]) -> None:
    old = edited(scheduled, bump=False)

    messages = [str(change) for change in diff_policies(old, edited(scheduled_and(edit)))]

    assert messages == ["version raised from 1 to 2", *expected]


def test_a_schedule_written_another_way_is_no_change(example: Policy) -> None:
    def rewrite(document: dict[str, Any]) -> None:
        document["slas"][0]["schedule"] = {
            "timezone": "Europe/Berlin",
            "active": " *  6-21 * *  1-5 ",
            "expected_by": "0 6 * * *",
        }
        document["notify"]["pd"] = {"kind": "pagerduty", "routing_key_env": "PD_KEY"}
        document["slas"][1]["schedule"] = {}  # an empty schedule is no schedule: always active, no deadlines
        document["notify"]["ops"]["kind"] = "webhook"  # the default, said

    assert diff_policies(edited(scheduled, bump=False), edited(rewrite, bump=False)) == []


def test_a_difference_no_sentence_covers_is_still_a_change(example: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    # A member the diff has not learnt to word yet (here: every notify sentence gone) must not pass as no change.
    monkeypatch.setattr("guard.policy.diff._notify_changes", lambda *_: iter(()))

    changes = diff_policies(example, edited(setter("notify.ops.kind", "slack"), bump=False))

    assert changes == [
        Change(
            "version",
            ChangeKind.VERSION,
            "version stays at 1: a published policy needs a higher version; raise it to 2",
        ),
        Change("notify", ChangeKind.CHANGED, "notify changed (compare the two files: this diff cannot word it yet)"),
    ]


def test_a_version_bump_alone_says_nothing_else_changes(example: Policy) -> None:
    assert [str(c) for c in diff_policies(example, edited(lambda document: None))] == [
        "version raised from 1 to 2 (nothing else changes)"
    ]


def test_layout_comments_and_list_order_are_no_change(example: Policy) -> None:
    def reorder(document: dict[str, Any]) -> None:
        document["objects"]["customer"]["replicas"] = ["warehouse", "sap"]
        document["objects"]["customer"]["fields"]["tier"]["in"] = ["bronze", "gold", "silver"]
        document["objects"]["customer"]["max_age"] = "PT60M"
        document["slas"].reverse()

    assert diff_policies(example, edited(reorder, bump=False)) == []


@settings(max_examples=60, deadline=None)
@given(policies)
def test_a_policy_diffed_with_itself_is_empty(policy: Policy) -> None:
    assert diff_policies(policy, policy) == []


@settings(max_examples=120, deadline=None)
@given(policies, policies)
def test_every_difference_is_listed_once(old: Policy, new: Policy) -> None:
    changes = diff_policies(old, new)
    paths = [change.path for change in changes]

    assert len(paths) == len(set(paths))
    assert (changes == []) == (normalised(old) == normalised(new))
    assert all(change.message for change in changes)


@settings(max_examples=120, deadline=None)
@given(policy_documents(), st.data())
def test_a_policy_that_differs_only_in_schedules_or_channels_is_a_change(
    document: dict[str, Any], data: st.DataObject
) -> None:
    # Two random policies nearly always differ in ten places; here only the newer members move.
    changed = copy.deepcopy(document)
    for sla in changed["slas"]:
        sla["schedule"] = data.draw(schedules())
    changed["notify"] = {channel: data.draw(channels_of(channel)) for channel in changed["notify"]}
    old, new = policy_from_document(document), policy_from_document(changed)

    changes = diff_policies(old, new)

    assert (changes == []) == (normalised(old) == normalised(new))
    assert all(c.path.startswith(("version", "slas.", "notify.")) for c in changes), changes


@settings(max_examples=120, deadline=None)
@given(policies, policies)
def test_the_reverse_diff_mirrors_the_diff(old: Policy, new: Policy) -> None:
    mirror = {
        ChangeKind.ADDED: ChangeKind.REMOVED,
        ChangeKind.REMOVED: ChangeKind.ADDED,
        ChangeKind.TIGHTENED: ChangeKind.LOOSENED,
        ChangeKind.LOOSENED: ChangeKind.TIGHTENED,
    }
    forward = {c.path: c.kind for c in diff_policies(old, new) if c.kind is not ChangeKind.VERSION}
    backward = {c.path: c.kind for c in diff_policies(new, old) if c.kind is not ChangeKind.VERSION}

    assert backward == {path: mirror.get(kind, kind) for path, kind in forward.items()}


@settings(max_examples=40, deadline=None)
@given(policy_documents(), st.sampled_from(["30s", 45, "PT2H"]))
def test_tightening_every_max_age_is_reported_per_object(document: dict[str, Any], shorter: str | int) -> None:
    old = policy_from_document(document)
    changed = copy.deepcopy(document)
    for spec in changed["objects"].values():
        spec["max_age"] = shorter
        spec.pop("warn_age", None)
    new = policy_from_document(changed)

    max_ages = [c for c in diff_policies(old, new) if c.path.endswith(".max_age")]

    assert {c.path for c in max_ages} == {
        f"objects.{name}.max_age" for name, spec in old.objects.items() if spec.max_age != new.objects[name].max_age
    }
