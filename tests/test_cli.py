"""The `freshguard` command line: exit codes, the summary, decision files, lineage, and the policy commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from guard import LineageStore, __version__
from guard.cli.main import app
from guard.cli.records import PROGRESS_FROM_BYTES
from tests.conftest import EXAMPLE_POLICY, NOW, STRIPE_KEY, RecordFactory, ts

# Wide, colourless output whatever the terminal or CI running the tests says.
QUIET_ENV: dict[str, str | None] = {"COLUMNS": "200", "FORCE_COLOR": None, "TTY_COMPATIBLE": None, "NO_COLOR": "1"}
ENV: dict[str, str | None] = {**QUIET_ENV, "STRIPE_SIGNING_KEY": STRIPE_KEY}
NOW_ARG = ["--now", ts(NOW)]

BROKEN_POLICY = """
policy: broken
version: 1
sources:
  crm: {team: sales}
objects:
  customer:
    owner: crm
    max_age: soon
"""

LOOKAROUND_POLICY = """
policy: lookaround
version: 1
sources:
  crm: {team: sales}
objects:
  customer:
    owner: crm
    max_age: 1h
    fields:
      code: {type: str, pattern: '^(?=A)'}
"""


def run(args: Sequence[str], env: Mapping[str, str | None] = ENV, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def write_jsonl(path: Path, records: Sequence[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def customer(record: RecordFactory) -> RecordFactory:
    """A customer record that keeps the example policy's contract (which requires `name`); override any member."""

    def build(**overrides: Any) -> dict[str, Any]:
        fields = {"email": "ana@example.com", "name": "Ana", "credit_limit": 5000, "tier": "gold"}
        return record(**{"fields": fields, **overrides})

    return build


def aged(minutes: int) -> dict[str, str]:
    """Envelope timestamps of a copy read `minutes` before NOW."""
    return {"observed_at": ts(NOW - timedelta(minutes=minutes)), "updated_at": ts(NOW - timedelta(minutes=minutes + 2))}


# --- check: exit codes -------------------------------------------------------------------------


def test_all_allowed_exits_0(tmp_path: Path, customer: RecordFactory) -> None:
    records = write_jsonl(tmp_path / "in.jsonl", [customer(key="C-1"), customer(key="C-2")])

    result = run(["check", str(records), "--policy", str(EXAMPLE_POLICY), *NOW_ARG])

    assert (result.exit_code, result.stderr) == (0, "")
    assert "Verdict: PASS" in result.stdout
    assert "2 allowed, 0 warned, 0 blocked" in result.stdout


def test_something_blocked_exits_1(tmp_path: Path, customer: RecordFactory) -> None:
    records = write_jsonl(tmp_path / "in.jsonl", [customer(key="C-1"), customer(key="C-2", **aged(180))])

    result = run(["check", str(records), "--policy", str(EXAMPLE_POLICY), *NOW_ARG])

    assert result.exit_code == 1
    assert "Verdict: PARTIAL — 1 of 2 records withheld from the model" in result.stdout
    # The screen ends on the verdict in one line, as pytest and dbt end.
    assert result.stdout.rstrip().splitlines()[-1] == "Verdict: PARTIAL — 1 of 2 records withheld from the model"


@pytest.mark.parametrize(
    ("lines", "policy_text", "env", "expected_message"),
    [
        pytest.param(["", '{"id": "b",', "[1]"], None, ENV, "in.jsonl line 2: not valid JSON (", id="no readable line"),
        pytest.param(None, None, ENV, "missing.jsonl: cannot read the records file", id="missing records file"),
        pytest.param(
            ['{"id": "a"}'], BROKEN_POLICY, ENV, "objects.customer.max_age (line 9): 'soon'", id="broken policy"
        ),
        pytest.param(
            ['{"id": "a"}'],
            None,
            {**QUIET_ENV, "STRIPE_SIGNING_KEY": None},
            "these environment variables are not set: STRIPE_SIGNING_KEY (for stripe)",
            id="missing signing key",
        ),
    ],
)
def test_input_that_cannot_be_checked_exits_2_with_a_message(
    tmp_path: Path,
    lines: list[str] | None,
    policy_text: str | None,
    env: dict[str, str | None],
    expected_message: str,
) -> None:
    """Nothing is checked: the message on stderr names the file, line or setting to fix, and no traceback shows."""
    records = tmp_path / ("in.jsonl" if lines is not None else "missing.jsonl")
    if lines is not None:
        records.write_text("\n".join(lines) + "\n", encoding="utf-8")
    policy = EXAMPLE_POLICY
    if policy_text is not None:
        policy = tmp_path / "policy.yaml"
        policy.write_text(policy_text, encoding="utf-8")

    result = run(["check", str(records), "--policy", str(policy), *NOW_ARG], env=env)

    assert result.exit_code == 2
    assert expected_message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("now", "expected"),
    [("2026-11-22T12:00:00", "has no UTC offset"), ("yesterday", "is not an ISO 8601 timestamp")],
)
def test_now_without_offset_or_not_a_timestamp_exits_2(
    tmp_path: Path, customer: RecordFactory, now: str, expected: str
) -> None:
    records = write_jsonl(tmp_path / "in.jsonl", [customer()])

    result = run(["check", str(records), "--policy", str(EXAMPLE_POLICY), "--now", now])

    assert result.exit_code == 2
    assert expected in result.stderr


def test_unwritable_out_file_exits_2_before_anything_is_checked(tmp_path: Path, customer: RecordFactory) -> None:
    records = write_jsonl(tmp_path / "in.jsonl", [customer()])

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), "--out", str(tmp_path / "no" / "out.jsonl")])

    assert result.exit_code == 2
    assert "cannot write the decisions file" in result.stderr


def test_unreachable_store_exits_2_without_leaking_the_password(tmp_path: Path, customer: RecordFactory) -> None:
    records = write_jsonl(tmp_path / "in.jsonl", [customer()])
    url = "postgresql+psycopg://user:hunter2@127.0.0.1:1/nowhere"

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), "--database", url])

    assert result.exit_code == 2
    assert "lineage store" in result.stderr
    assert "hunter2" not in result.output


# --- check: what is read ------------------------------------------------------------------------


def test_unreadable_lines_are_reported_by_file_line_and_the_rest_is_still_checked(
    tmp_path: Path, customer: RecordFactory
) -> None:
    good = [json.dumps(customer(key=f"C-{n}")) for n in range(3)]
    lines = [good[0], "[1, 2]", "", '"text"', good[1], *["{not json"] * 25, good[2]]
    records = tmp_path / "in.jsonl"
    records.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), "--out", str(out), *NOW_ARG])

    assert result.exit_code == 1  # nothing blocked, but 27 lines never reached the check
    reported = result.stderr.splitlines()
    assert reported[:3] == [
        f"{records} line 2: a list, not a JSON object: a record is one object a line",
        f"{records} line 4: a string, not a JSON object: a record is one object a line",
        f"{records} line 6: not valid JSON (unexpected character, expected a string key at column 2)",
    ]
    assert len([line for line in reported if " line " in line]) == 20  # the first 20 by line number ...
    assert reported[20] == "… and 7 more unreadable lines"  # ... then how many more
    assert [d["key"] for d in read_jsonl(out)] == ["C-0", "C-1", "C-2"]  # every readable line was checked
    assert f"wrote 3 decisions to {out}" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == (
        "Verdict: PASS — all 3 records may reach the model; 27 unreadable lines not checked"
    )


def test_an_empty_file_is_said_to_be_empty(tmp_path: Path) -> None:
    records = tmp_path / "in.jsonl"
    records.write_text("\n\n", encoding="utf-8")

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), *NOW_ARG])

    assert (result.exit_code, result.stdout.strip()) == (0, f"{records} is empty: there is no record to check.")


def test_help_lists_every_exit_code() -> None:
    result = run(["check", "--help"])

    assert result.exit_code == 0
    for code in ("0:", "1:", "2:", "3:"):
        assert code in result.stdout


def test_records_from_stdin(customer: RecordFactory) -> None:
    lines = "".join(json.dumps(customer(key=f"C-{n}")) + "\n" for n in range(3))

    result = run(["check", "-", "-p", str(EXAMPLE_POLICY), *NOW_ARG], stdin=lines)

    assert result.exit_code == 0
    assert "3 allowed" in result.stdout


def test_conflicts_are_found_across_the_whole_file(tmp_path: Path, customer: RecordFactory) -> None:
    """Two replica copies that disagree are both blocked, however far apart they sit in a big file."""
    filler = [customer(key=f"C-{n}", source="warehouse") for n in range(3000)]
    first = customer(id="sap-copy", key="C-X", source="sap")
    last = customer(id="warehouse-copy", key="C-X", source="warehouse")
    last["fields"] = {**last["fields"], "credit_limit": 1}
    records = write_jsonl(tmp_path / "in.jsonl", [first, *filler, last])
    out = tmp_path / "out.jsonl"

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), "--out", str(out), *NOW_ARG])

    assert result.exit_code == 1
    by_id = {d["id"]: d for d in read_jsonl(out)}
    assert [r["code"] for r in by_id["sap-copy"]["reasons"]] == ["CONFLICT"]
    assert [r["code"] for r in by_id["warehouse-copy"]["reasons"]] == ["CONFLICT"]
    assert "2 blocked" in result.stdout


def test_a_big_file_is_read_without_progress_output_off_a_terminal(tmp_path: Path, customer: RecordFactory) -> None:
    padding = "x" * 400
    count = PROGRESS_FROM_BYTES // 400 + 100
    records = write_jsonl(tmp_path / "big.jsonl", [customer(key=f"C-{n}", content=padding) for n in range(count)])
    assert records.stat().st_size > PROGRESS_FROM_BYTES

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), *NOW_ARG])

    assert (result.exit_code, result.stderr) == (0, "")
    assert f"{count:,} allowed" in result.stdout


# --- check: what is written ---------------------------------------------------------------------


def test_out_file_holds_one_decision_per_record_in_order(tmp_path: Path, customer: RecordFactory) -> None:
    records = write_jsonl(
        tmp_path / "in.jsonl",
        [
            customer(id="fresh", key="C-1"),
            customer(id="aging", key="C-2", **aged(40)),
            customer(id="stale", key="C-3", **aged(180)),
        ],
    )
    out = tmp_path / "decisions.jsonl"

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), "--out", str(out), *NOW_ARG])

    assert result.exit_code == 1
    decided = read_jsonl(out)
    assert [(d["id"], d["action"]) for d in decided] == [("fresh", "allow"), ("aging", "warn"), ("stale", "block")]
    assert [[r["code"] for r in d["reasons"]] for d in decided] == [[], ["AGING"], ["STALE"]]
    assert decided[2]["age_s"] == 180 * 60
    assert set(decided[0]) == {"id", "object", "key", "source", "action", "age_s", "reasons"}


def test_summary_explains_reasons_and_sources(tmp_path: Path, customer: RecordFactory) -> None:
    records = write_jsonl(
        tmp_path / "in.jsonl",
        [customer(key="C-1"), customer(key="C-2", source="sap", **aged(180)), customer(key="C-3", source="hubspot")],
    )

    result = run(["check", str(records), "-p", str(EXAMPLE_POLICY), "--pipeline", "support-bot", *NOW_ARG])

    out = result.stdout
    assert "Policy support-assistant v1 · pipeline support-bot" in out
    assert "Blocked and warned by reason" in out
    assert "STALE" in out
    assert "customer C-2 from sap is 3h old" in out
    assert "UNKNOWN_SOURCE" in out
    assert "By source" in out
    assert "finance-systems" in out
    assert "not in the policy" in out


def test_database_records_the_run(tmp_path: Path, customer: RecordFactory) -> None:
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    records = write_jsonl(tmp_path / "in.jsonl", [customer(key="C-1"), customer(key="C-2", **aged(180))])

    result = run(
        ["check", str(records), "-p", str(EXAMPLE_POLICY), "--database", url, "--pipeline", "nightly", *NOW_ARG]
    )

    assert result.exit_code == 1
    store = LineageStore(url)
    try:
        runs = store.list_runs()
    finally:
        store.close()
    assert len(runs) == 1
    assert (runs[0]["pipeline"], runs[0]["records"], runs[0]["blocked"]) == ("nightly", 2, 1)
    assert runs[0]["checked_at"] == NOW
    assert f"Run {runs[0]['run_id']} (recorded in the lineage store)" in result.stdout


def test_now_makes_a_check_reproducible(tmp_path: Path, customer: RecordFactory) -> None:
    records = write_jsonl(tmp_path / "in.jsonl", [customer(key="C-1", **aged(20)), customer(key="C-2", **aged(50))])
    outs = [tmp_path / f"out{n}.jsonl" for n in range(3)]
    moments = [ts(NOW), ts(NOW), ts(NOW + timedelta(hours=1))]

    codes = [
        run(["check", str(records), "-p", str(EXAMPLE_POLICY), "--out", str(out), "--now", moment]).exit_code
        for out, moment in zip(outs, moments, strict=True)
    ]

    assert codes == [0, 0, 1]
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert [d["action"] for d in read_jsonl(outs[0])] == ["allow", "warn"]
    assert [d["action"] for d in read_jsonl(outs[2])] == ["block", "block"]


def test_installed_script_runs_end_to_end(tmp_path: Path, customer: RecordFactory) -> None:
    script = Path(sys.executable).parent / "freshguard"
    records = write_jsonl(tmp_path / "in.jsonl", [customer(key="C-1"), customer(key="C-2", **aged(180))])
    env = {**os.environ, "STRIPE_SIGNING_KEY": STRIPE_KEY, "COLUMNS": "200", "NO_COLOR": "1"}

    done = subprocess.run(
        [str(script), "check", str(records), "--policy", str(EXAMPLE_POLICY), *NOW_ARG],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    assert "Verdict: PARTIAL" in done.stdout
    assert done.stderr == ""


def test_version() -> None:
    result = run(["--version"])

    assert (result.exit_code, result.stdout.strip()) == (0, f"freshguard {__version__}")


# --- policy -------------------------------------------------------------------------------------


def test_policy_validate_ok_without_signing_keys_set() -> None:
    result = run(["policy", "validate", str(EXAMPLE_POLICY)], env={**QUIET_ENV, "STRIPE_SIGNING_KEY": None})

    assert result.exit_code == 0
    assert f"{EXAMPLE_POLICY}: OK — policy support-assistant v1, 4 sources, 5 objects, 4 SLAs" in result.stdout
    assert "STRIPE_SIGNING_KEY" in result.stdout
    assert "not set" in result.stdout


@pytest.mark.parametrize(
    ("policy_text", "expected_path"),
    [
        (BROKEN_POLICY, "objects.customer.max_age"),
        (LOOKAROUND_POLICY, "not supported by the contract engine"),
    ],
    ids=["does not load", "pattern polars cannot run"],
)
def test_policy_validate_refuses_with_every_problem(tmp_path: Path, policy_text: str, expected_path: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text, encoding="utf-8")

    result = run(["policy", "validate", str(policy)])

    assert result.exit_code == 2
    assert f"policy {policy} is refused" in result.stderr
    assert expected_path in result.stderr
    assert result.stdout == ""


def test_policy_show_lists_objects_owners_and_slas() -> None:
    result = run(["policy", "show", str(EXAMPLE_POLICY)])

    assert result.exit_code == 0
    out = result.stdout
    for expected in ("support-assistant v1", "customer", "support_case", "salesforce", "billing-platform"):
        assert expected in out
    assert "required (key in $STRIPE_SIGNING_KEY)" in out
    assert "one of gold, silver, bronze" in out
    assert "sap → customer" in out
    assert "2%" in out


def test_policy_show_refuses_a_broken_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(BROKEN_POLICY, encoding="utf-8")

    result = run(["policy", "show", str(policy)])

    assert result.exit_code == 2
    assert "objects.customer.max_age" in result.stderr


def test_policy_schema_prints_a_json_schema_the_example_keeps() -> None:
    import jsonschema
    import yaml

    result = run(["policy", "schema"])

    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    example = yaml.safe_load(EXAMPLE_POLICY.read_text(encoding="utf-8"))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(example)) == []


def test_policy_diff_says_what_changes_and_exits_1(tmp_path: Path) -> None:
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    new = tmp_path / "new.yaml"
    new.write_text(text.replace("version: 1\n", "version: 2\n").replace("    max_age: 1h\n", "    max_age: 45m\n"))

    result = run(["policy", "diff", str(EXAMPLE_POLICY), str(new)])

    assert (result.exit_code, result.stderr) == (1, "")
    assert result.stdout.splitlines() == [
        "support-assistant v1 → v2: 2 changes",
        "  version raised from 1 to 2",
        "  customer: max_age tightened from 1h to 45m",
    ]


def test_policy_diff_of_the_same_meaning_exits_0(tmp_path: Path) -> None:
    same = tmp_path / "same.yaml"
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    same.write_text("# reformatted\n" + text.replace("max_age: 1h", "max_age: 60m"), encoding="utf-8")

    result = run(["policy", "diff", str(EXAMPLE_POLICY), str(same)])

    assert result.exit_code == 0
    assert "mean the same: no change" in result.stdout


SCHEDULED_POLICY = """
policy: p
version: 1
sources: {s: {}}
objects:
  o: {owner: s, max_age: 1h}
slas:
  - {source: s, object: o, max_lag: 15m, schedule: {active: '* 6-21 * * 1-5'}}
notify:
  ops: {kind: webhook, webhook_env: OPS_URL}
  pd: {kind: pagerduty, routing_key_env: PD_KEY}
"""


def test_policy_diff_sees_a_schedule_and_a_channel_kind(tmp_path: Path) -> None:
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(SCHEDULED_POLICY, encoding="utf-8")
    new.write_text(
        SCHEDULED_POLICY.replace("'* 6-21 * * 1-5'", "'* 0-1 * * 0'").replace("kind: webhook", "kind: slack"),
        encoding="utf-8",
    )

    result = run(["policy", "diff", str(old), str(new)])

    assert result.exit_code == 1
    assert result.stdout.splitlines()[1:] == [
        "  version stays at 1: a published policy needs a higher version; raise it to 2",
        "  slas s→o: schedule active hours now '* 0-1 * * 0' (was '* 6-21 * * 1-5')",
        "  notify channel ops: now sends Slack alerts (was webhook)",
    ]


def test_policy_diff_flags_a_version_that_does_not_go_up(tmp_path: Path) -> None:
    new = tmp_path / "new.yaml"
    new.write_text(EXAMPLE_POLICY.read_text(encoding="utf-8").replace("    max_age: 2d\n", "    max_age: 3d\n"))

    result = run(["policy", "diff", str(EXAMPLE_POLICY), str(new)])

    assert result.exit_code == 1
    assert "version stays at 1: a published policy needs a higher version; raise it to 2" in result.stdout
    assert "product: max_age loosened from 2d to 3d" in result.stdout


def test_policy_diff_refuses_a_policy_that_does_not_load(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_POLICY, encoding="utf-8")

    result = run(["policy", "diff", str(EXAMPLE_POLICY), str(broken)])

    assert result.exit_code == 2
    assert f"policy {broken} is refused" in result.stderr
    assert result.stdout == ""


ODCS = Path(__file__).parent / "fixtures" / "odcs"


def test_policy_import_prints_policy_yaml_and_what_it_could_not_translate() -> None:
    import yaml

    result = run(["policy", "import", str(ODCS / "orders-enum.odcs.yaml")])

    assert result.exit_code == 0
    document = yaml.safe_load(result.stdout)
    assert document["sources"] == {"sap": {"team": "finance-systems"}}
    assert document["objects"]["order"]["max_age"] == "2h"
    assert "      status: {type: str, required: true, in: [pending, processing, shipped, cancelled]}" in result.stdout
    assert "3 items not translated:" in result.stderr
    assert "slaProperties[1] (availability 99.9 percent): not a check Freshguard makes" in result.stderr


def test_policy_import_merges_into_a_policy_that_then_diffs(tmp_path: Path) -> None:
    result = run(["policy", "import", str(ODCS / "orders-enum.odcs.yaml"), "--merge", str(EXAMPLE_POLICY)])
    merged = tmp_path / "merged.yaml"
    merged.write_text(result.stdout, encoding="utf-8")

    diffed = run(["policy", "diff", str(EXAMPLE_POLICY), str(merged)])

    assert result.exit_code == 0
    assert "merged: objects.order: owner, fields and max_age from the contract" in result.stderr
    assert diffed.exit_code == 1
    assert "  order: field total removed: it is no longer checked" in diffed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["air-quality.odcs.yaml", "--merge", str(EXAMPLE_POLICY)], "objects.Air_Quality.max_age: is required"),
        (["air-quality.odcs.yaml", "--max-age", "soon"], "--max-age 'soon': 'soon' is not a duration"),
        (["missing.odcs.yaml"], "cannot read the file"),
        ([str(EXAMPLE_POLICY)], "kind is None, not 'DataContract'"),
    ],
)
def test_policy_import_refuses_with_a_message(args: list[str], message: str) -> None:
    result = run(["policy", "import", str(ODCS / args[0]), *args[1:]])

    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_policy_import_merge_keeps_what_the_contract_does_not_say(tmp_path: Path) -> None:
    contract = tmp_path / "customer.odcs.yaml"
    contract.write_text(
        "apiVersion: v3.0.2\nkind: DataContract\nservers: [{server: sap}]\nschema: [{name: customer}]\n",
        encoding="utf-8",
    )
    merged = tmp_path / "merged.yaml"

    result = run(["policy", "import", str(contract), "--merge", str(EXAMPLE_POLICY)])
    merged.write_text(result.stdout, encoding="utf-8")
    diffed = run(["policy", "diff", str(EXAMPLE_POLICY), str(merged)])

    assert result.exit_code == 0, result.stderr
    assert "merged: objects.customer: fields kept from the policy: the contract lists no properties" in result.stderr
    assert "merged: objects.customer: max_age 1h kept from the policy: the contract states no latency" in result.stderr
    assert "merged: objects.customer: replica sap dropped: it is the owner now" in result.stderr
    assert diffed.stdout.splitlines()[2:] == [
        "  customer: owner changed from salesforce to sap",
        "  customer: replica sap removed: it is the owner now",
    ]


def test_policy_import_notes_a_latency_too_long_for_any_duration(tmp_path: Path) -> None:
    contract = tmp_path / "huge.odcs.yaml"
    contract.write_text(
        "apiVersion: v3.0.2\nkind: DataContract\nservers: [{server: crm}]\nschema: [{name: customer}]\n"
        "slaProperties: [{property: latency, value: 1.0e+9, unit: d}]\n",
        encoding="utf-8",
    )

    result = run(["policy", "import", str(contract)])

    assert result.exit_code == 0  # not 3, "a bug in Freshguard"
    assert "slaProperties[0] (latency): the value 1000000000.0 d is longer than any duration can be" in result.stderr


def test_policy_import_with_a_default_max_age_loads(tmp_path: Path) -> None:
    result = run(["policy", "import", str(ODCS / "air-quality.odcs.yaml"), "--max-age", "1h", "--source", "city"])
    policy = tmp_path / "policy.yaml"
    policy.write_text("policy: air\nversion: 1\n" + result.stdout, encoding="utf-8")

    assert result.exit_code == 0
    assert run(["policy", "validate", str(policy)]).exit_code == 0
