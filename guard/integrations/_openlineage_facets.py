"""One check as one OpenLineage RunEvent (spec 2-0-2): the job, its inputs, and their facets.

- the job is the pipeline (`jobType`: a SERVICE, integration FRESHGUARD);
- the run is the check (`runId` is the check's run id), with the `freshguard_check` facet (policy
  name, version and hash, verdict, counts, and the model call it fed when one is known) and
  `processing_engine`;
- each input is a dataset the records came from: namespace the source system, name the object.
  It carries `ownership` (the object's owner and the owner's team), `dataQualityAssertions` (one
  assertion per check, and per field of the contract, with its outcome) and `freshguard_records`
  (the record keys used, with each one's action). Every record is an input, blocked or not:
  a blocked record is never hidden from lineage.

Nothing here touches the network; the emitter sends what `run_event` builds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    InputDatasetFacet,
    RunFacet,
    data_quality_assertions_dataset,
    job_type_job,
    ownership_dataset,
    processing_engine_run,
)

from guard import Action, CheckResult, Policy, ReasonCode, __version__, format_duration
from guard.policy.model import ObjectSpec, SourceSpec

if TYPE_CHECKING:
    from guard.spark import SparkRun

PRODUCER = f"https://github.com/freshguard/freshguard/tree/v{__version__}"
#: Where Freshguard's own facet schemas are published; the same files ship in guard/integrations/schemas/.
SCHEMA_BASE = "https://freshguard.dev/spec/facets/1-0-0"
CHECK_FACET = "freshguard_check"
RECORDS_FACET = "freshguard_records"
UNKNOWN = "unknown"

#: Each check of a record and the reason codes it raises, in the order a decision lists them.
CHECKS: tuple[tuple[str, frozenset[ReasonCode]], ...] = (
    (
        "envelope",
        frozenset({
            ReasonCode.INVALID_RECORD, ReasonCode.UNKNOWN_OBJECT, ReasonCode.UNKNOWN_SOURCE,
            ReasonCode.MISSING_TIMESTAMP, ReasonCode.FUTURE_TIMESTAMP,
        }),
    ),
    ("ownership", frozenset({ReasonCode.UNAUTHORIZED_SOURCE})),
    ("freshness", frozenset({ReasonCode.STALE})),
    ("freshness_warning", frozenset({ReasonCode.AGING})),
    ("provenance", frozenset({ReasonCode.MISSING_PROVENANCE, ReasonCode.PROVENANCE_BROKEN})),
    ("signature", frozenset({ReasonCode.UNSIGNED, ReasonCode.BAD_SIGNATURE})),
    ("supersession", frozenset({ReasonCode.SUPERSEDED})),
    ("contract", frozenset({ReasonCode.SCHEMA_VIOLATION})),
    ("conflicts", frozenset({ReasonCode.CONFLICT})),
)  # fmt: skip
_CHECK_OF = {code: check for check, codes in CHECKS for code in codes}
_ORDER = {Action.BLOCK: 0, Action.WARN: 1, Action.ALLOW: 2}


@attr.define
class FreshguardCheckRunFacet(RunFacet):
    """The check a run is: the policy it ran under, its verdict and counts, the model call it fed."""

    policy: dict[str, Any]
    verdict: str
    counts: dict[str, int]
    recordCount: int  # noqa: N815 - OpenLineage facets name their members in camelCase
    checkedAt: str  # noqa: N815
    durationSeconds: float  # noqa: N815
    consumer: dict[str, Any] | None = attr.field(default=None)

    _additional_skip_redact: ClassVar[list[str]] = ["policy", "verdict", "counts"]

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/FreshguardCheckRunFacet.json#/$defs/FreshguardCheckRunFacet"


@attr.define
class FreshguardRecordsInputDatasetFacet(InputDatasetFacet):
    """The records of one check that came from this dataset: their keys and what was decided."""

    counts: dict[str, int]
    records: list[dict[str, Any]]
    omitted: int = 0

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/FreshguardRecordsInputDatasetFacet.json#/$defs/FreshguardRecordsInputDatasetFacet"


@dataclass
class _Input:
    """What one check decided about the records of one dataset (source, object)."""

    source: str
    object: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)  # records that failed each check
    fields_failed: Counter[str] = field(default_factory=Counter)
    actions: Counter[Action] = field(default_factory=Counter)


def run_event(
    result: CheckResult,
    policy: Policy,
    *,
    namespace: str,
    max_records_per_input: int,
    emitted_at: str | None = None,
) -> RunEvent:
    """The COMPLETE RunEvent of one check: a check is decided before anyone hears of it, so one event says it all."""
    inputs = _inputs(result)
    return _completed(
        result,
        emitted_at,
        _job(namespace, result.pipeline, "SERVICE", "FRESHGUARD", "CHECK"),
        inputs=[_dataset(found, policy, max_records_per_input) for found in inputs],
        outputs=[],
    )


def audit_event(
    run: SparkRun, *, namespace: str, inputs: Sequence[str], output: str | None, emitted_at: str | None = None
) -> RunEvent:
    """The COMPLETE RunEvent of an audit on Spark: the job is the pipeline, its datasets the data it read and
    the decisions it wrote (the per-record decisions are in that output, not in the event)."""
    return _completed(
        run,
        emitted_at,
        _job(namespace, run.pipeline, "BATCH", "SPARK", "AUDIT"),
        inputs=[InputDataset(*_located(name)) for name in inputs],
        outputs=[OutputDataset(*_located(output))] if output is not None else [],
    )


def _completed(
    result: CheckResult | SparkRun,
    emitted_at: str | None,
    job: Job,
    *,
    inputs: list[InputDataset],
    outputs: list[OutputDataset],
) -> RunEvent:
    """The COMPLETE event of a check's run: its facets, its job and datasets."""
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=emitted_at or _iso(result.checked_at),
        producer=PRODUCER,
        run=Run(runId=result.run_id, facets=_run_facets(result)),
        job=job,
        inputs=inputs,
        outputs=outputs,
    )


def _job(namespace: str, name: str, processing: str, integration: str, kind: str) -> Job:
    facet = job_type_job.JobTypeJobFacet(
        processingType=processing, integration=integration, jobType=kind, producer=PRODUCER
    )
    return Job(namespace=namespace, name=name, facets={"jobType": facet})


def _located(name: str) -> tuple[str, str]:
    """A dataset's OpenLineage namespace and name: `s3a://bucket` and `/path` for a URL, `file` and the path else."""
    scheme, found, rest = name.partition("://")
    if found:
        authority, _, path = rest.partition("/")
        return f"{scheme}://{authority}", f"/{path}"
    return "file", str(Path(name).resolve())


def _run_facets(result: CheckResult | SparkRun) -> dict[str, RunFacet]:
    counts = result.counts
    consumer = _consumer(result.consumer)
    return {
        CHECK_FACET: FreshguardCheckRunFacet(
            policy={"name": result.policy.name, "version": result.policy.version, "hash": result.policy.hash},
            verdict=result.verdict.value,
            counts={action.value: counts[action] for action in Action},
            recordCount=sum(counts.values()),
            checkedAt=_iso(result.checked_at),
            durationSeconds=round(result.duration_s, 6),
            consumer=consumer,
            producer=PRODUCER,
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=__version__, name="freshguard", openlineageAdapterVersion=__version__, producer=PRODUCER
        ),
    }


def _consumer(consumer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not consumer:
        return None
    known = {"model": consumer.get("model"), "callId": consumer.get("call_id")}
    extra = {str(key): value for key, value in consumer.items() if key not in ("model", "call_id")}
    return {**{k: v for k, v in known.items() if v is not None}, **({"extra": extra} if extra else {})}


def _inputs(result: CheckResult) -> list[_Input]:
    table = result.decisions
    found: dict[tuple[str, str], _Input] = {}
    for index in range(len(table)):
        source = _name(table.sources[index])
        obj = _name(table.objects[index])
        entry = found.get((source, obj))
        if entry is None:
            entry = found[(source, obj)] = _Input(source, obj)
        action = table.actions[index]
        reasons = table.reasons[index]
        entry.actions[action] += 1
        codes = [reason.code for reason in reasons]
        entry.failed.update({_CHECK_OF[code] for code in codes})
        for reason in reasons:
            if reason.code is ReasonCode.SCHEMA_VIOLATION:
                entry.fields_failed.update({str(v.get("field")) for v in reason.detail.get("violations", [])})
        entry.rows.append({
            "id": table.ids[index],
            "key": table.keys[index],
            "action": action.value,
            **({"codes": [code.value for code in codes]} if codes else {}),
        })  # fmt: skip
    return sorted(found.values(), key=lambda entry: (entry.source, entry.object))


def _name(value: object) -> str:
    return value if isinstance(value, str) and value else UNKNOWN


def _dataset(found: _Input, policy: Policy, limit: int) -> InputDataset:
    spec = policy.objects.get(found.object)
    facets: dict[str, Any] = {}
    if spec is not None:
        owners = [ownership_dataset.Owner(name=f"application:{spec.owner}", type="SYSTEM_OF_RECORD")]
        team = policy.team_of(spec.owner)
        if team:
            owners.append(ownership_dataset.Owner(name=f"team:{team}", type="OWNING_TEAM"))
        facets["ownership"] = ownership_dataset.OwnershipDatasetFacet(owners=owners, producer=PRODUCER)
    rows = sorted(found.rows, key=lambda row: _ORDER[Action(row["action"])])
    kept = rows[:limit]
    return InputDataset(
        namespace=found.source,
        name=found.object,
        facets=facets,
        inputFacets={
            "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=list(_assertions(found, policy)), producer=PRODUCER
            ),
            RECORDS_FACET: FreshguardRecordsInputDatasetFacet(
                counts={action.value: found.actions.get(action, 0) for action in Action},
                records=kept,
                omitted=len(rows) - len(kept),
                producer=PRODUCER,
            ),
        },
    )


def _assertions(found: _Input, policy: Policy) -> Iterable[data_quality_assertions_dataset.Assertion]:
    spec = policy.objects.get(found.object)
    checked = sum(found.actions.values())
    for check in _applicable(found, policy):
        if check == "contract" and spec is not None and spec.fields:
            for name in spec.fields:
                yield _assertion(
                    check, found.fields_failed[name], checked, column=name, expected="the field's contract"
                )
        else:
            yield _assertion(check, found.failed[check], checked, expected=_expected(check, found, policy))


def _applicable(found: _Input, policy: Policy) -> Iterable[str]:
    """The checks that ran on this dataset's records: all of them for a known source and object, else the envelope."""
    spec = policy.objects.get(found.object)
    source = policy.sources.get(found.source)
    for check, _ in CHECKS:
        if (
            check == "envelope"
            or found.failed[check]
            or (spec is not None and source is not None and not _skipped(check, spec, source))
        ):
            yield check


def _skipped(check: str, spec: ObjectSpec, source: SourceSpec) -> bool:
    """Checks a policy turns off for an object: no warn_age, no signing key, no contract."""
    return (
        (check == "freshness_warning" and spec.warn_age is None)
        or (check == "signature" and source.signing_key_env is None)
        or (check == "contract" and not spec.fields)
    )


def _expected(check: str, found: _Input, policy: Policy) -> str | None:
    spec = policy.objects.get(found.object)
    if spec is None:
        return None
    if check == "freshness":
        return f"age <= max_age {format_duration(spec.max_age)}"
    if check == "freshness_warning" and spec.warn_age is not None:
        return f"age <= warn_age {format_duration(spec.warn_age)}"
    if check == "ownership":
        return f"source is {spec.owner} or one of {', '.join(spec.replicas) or 'no replicas'}"
    return None


def _assertion(
    check: str, failed: int, checked: int, *, expected: str | None, column: str | None = None
) -> data_quality_assertions_dataset.Assertion:
    return data_quality_assertions_dataset.Assertion(
        assertion=check,
        success=failed == 0,
        column=column,
        severity="warn" if check == "freshness_warning" else "error",
        name=f"freshguard.{check}" + (f".{column}" if column else ""),
        expected=expected,
        actual=f"{failed} of {checked} records failed",
        params={"checked": checked, "failed": failed},
    )


def _iso(moment: Any) -> str:
    text: str = moment.isoformat()
    return text.replace("+00:00", "Z")
