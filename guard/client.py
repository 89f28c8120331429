"""`ServiceClient`: a running Freshguard service, behind the same `check` as an in-process `Guard`.

    client = ServiceClient("http://127.0.0.1:8000", api_key=os.environ["FRESHGUARD_KEY"])
    result = client.check(records, pipeline="support-bot")   # a guard.CheckResult, as Guard.check returns
    client.link_consumption(result.run_id, model="gpt-4o", call_id="chatcmpl-9x7")

The integrations take "a checker": a `Guard` or a `ServiceClient`, and behave the same with either.
Every failure is a `ServiceError` (a `GuardError`) that says what the service answered and what to do.

Records travel as JSON exactly as given, never converted: a record holding a value JSON cannot carry
as it is (a `datetime`, a `tuple`, a `Decimal`, a `set`, a mapping with keys that are not strings) is
refused before anything is sent, with an `InputError` naming the record and the member. Converting it
would decide a different record than an in-process `Guard` decides (which blocks a `datetime`
timestamp or a `tuple` lineage as INVALID_RECORD, a `Decimal` field as SCHEMA_VIOLATION), and could
let through what the guard blocks. `Record` models are sent as their JSON envelope, as `Guard` reads them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx2

from guard.decisions import Action, CheckResult, DecisionTable, PolicyRef, Reason, ReasonCode
from guard.errors import GuardError, InputError
from guard.records import Record

DEFAULT_TIMEOUT_S = 30.0


class ServiceError(GuardError):
    """The Freshguard service could not be reached, or refused a request.

    `status` is the HTTP status it answered (None when it could not be reached), `problem` its problem body.
    """

    def __init__(self, message: str, *, status: int | None = None, problem: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = dict(problem) if problem is not None else None


class ServiceClient:
    """A client of the Freshguard HTTP service (`freshguard serve`): checks and consumption links.

    `api_key` is a pipeline key (sent as `Authorization: Bearer`); None for a service running open.
    `transport` / `async_transport` are httpx2 transports, for tests or custom networking. The async
    methods keep their connections on the event loop that first used them: close them there with
    `aclose()` (or `async with`), and use one client per event loop.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx2.BaseTransport | None = None,
        async_transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._options: dict[str, Any] = {"base_url": self.base_url, "headers": headers, "timeout": timeout}
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx2.Client | None = None
        self._async_client: httpx2.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"ServiceClient({self.base_url!r})"  # never the key

    # -- checks -------------------------------------------------------------------------------------------

    def check(self, records: Iterable[Any], *, pipeline: str, consumer: Mapping[str, Any] | None = None) -> CheckResult:
        """Decide `records` on the service (POST /v1/check); the result is the one `Guard.check` would give."""
        batch = list(records)
        started = time.perf_counter()
        answer = self._post("/v1/check", _check_body(batch, pipeline, consumer), "check records")
        return result_from_json(answer, batch, consumer, duration_s=time.perf_counter() - started)

    async def acheck(
        self, records: Iterable[Any], *, pipeline: str, consumer: Mapping[str, Any] | None = None
    ) -> CheckResult:
        """`check`, without blocking the event loop."""
        batch = list(records)
        started = time.perf_counter()
        answer = await self._apost("/v1/check", _check_body(batch, pipeline, consumer), "check records")
        return result_from_json(answer, batch, consumer, duration_s=time.perf_counter() - started)

    # -- consumption links --------------------------------------------------------------------------------

    def link_consumption(
        self, run_id: str, model: str, call_id: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Link a run to the model call that consumed it (POST /v1/runs/{run_id}/consumption)."""
        return self._post(f"/v1/runs/{run_id}/consumption", _link_body(model, call_id, extra), "link a model call")

    async def alink_consumption(
        self, run_id: str, model: str, call_id: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """`link_consumption`, without blocking the event loop."""
        return await self._apost(
            f"/v1/runs/{run_id}/consumption", _link_body(model, call_id, extra), "link a model call"
        )

    # -- plumbing -----------------------------------------------------------------------------------------

    def _post(self, path: str, body: bytes, doing: str) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx2.Client(transport=self._transport, **self._options)
        try:
            response = self._client.post(path, content=body, headers={"content-type": "application/json"})
        except httpx2.HTTPError as exc:
            raise _unreachable(self.base_url, doing, exc) from exc
        return _answer(response, doing)

    async def _apost(self, path: str, body: bytes, doing: str) -> dict[str, Any]:
        if self._async_client is None:
            self._async_client = httpx2.AsyncClient(transport=self._async_transport, **self._options)
        try:
            response = await self._async_client.post(path, content=body, headers={"content-type": "application/json"})
        except httpx2.HTTPError as exc:
            raise _unreachable(self.base_url, doing, exc) from exc
        return _answer(response, doing)

    def close(self) -> None:
        """Close the connections this client opened."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the connections this client opened (both the async and the sync ones)."""
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None
        self.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def result_from_json(
    answer: Mapping[str, Any],
    records: Sequence[Any],
    consumer: Mapping[str, Any] | None = None,
    *,
    duration_s: float = 0.0,
) -> CheckResult:
    """A `CheckResult` rebuilt from a POST /v1/check answer for `records` (decisions come in record order).

    The service does not send the policy's hash, nor the timestamps it read; those stay empty.
    """
    try:
        decisions = list(answer["records"])
        if len(decisions) != len(records):
            raise ValueError(f"{len(decisions)} decisions for {len(records)} records")
        actions = [Action(d["action"]) for d in decisions]
        table = DecisionTable(
            ids=[str(d["id"]) for d in decisions],
            actions=actions,
            reasons=[
                tuple(
                    Reason(ReasonCode(r["code"]), str(r["message"]), dict(r.get("detail") or {})) for r in d["reasons"]
                )
                for d in decisions
            ],
            objects=[d.get("object") for d in decisions],
            keys=[d.get("key") for d in decisions],
            sources=[d.get("source") for d in decisions],
            observed=[None] * len(decisions),
            updated=[None] * len(decisions),
            ages=[d.get("age_s") for d in decisions],
        )
        policy = answer["policy"]
        checked_at = datetime.fromisoformat(answer["checked_at"]).astimezone(UTC)
        return CheckResult(
            run_id=str(answer["run_id"]),
            pipeline=str(answer["pipeline"]),
            policy=PolicyRef(str(policy["name"]), int(policy["version"]), ""),
            checked_at=checked_at,
            decisions=table,
            allowed=tuple(r for r, a in zip(records, actions, strict=True) if a is not Action.BLOCK),
            duration_s=duration_s,
            consumer=dict(consumer) if consumer is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError(
            f"the service's answer to a check is not the shape POST /v1/check gives ({type(exc).__name__}: {exc}); "
            "is base_url a Freshguard service of the same version?"
        ) from exc


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _body_value(value: object) -> object:
    """What `json.dumps` cannot write itself: a mapping that is not a dict (`Guard` reads every mapping alike)
    and, in `consumer` only (records holding one are refused first), a datetime."""
    if isinstance(value, Mapping):
        return dict(value)
    return _jsonable(value)


_SCALARS = (str, int, float, bool, type(None))


def unsendable(value: object) -> tuple[str, str] | None:
    """(member path, type name) of the first value in `value` that JSON cannot carry as it is; None when all can.

    NaN and infinities count as carried: Python's JSON writes them and the service reads them back.
    """
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _SCALARS):
            continue
        if isinstance(node, Mapping):
            members = []
            for name, member in node.items():
                if not isinstance(name, str):
                    return f"{path}[{name!r}]".lstrip("."), f"{type(name).__name__} key"
                members.append((f"{path}.{name}", member))
            stack.extend(reversed(members))  # reported in the order the record is written
        elif isinstance(node, list):
            stack.extend(reversed([(f"{path}[{i}]", item) for i, item in enumerate(node)]))
        else:
            return path.lstrip("."), type(node).__name__
    return None


def _refuse_unsendable(records: Sequence[Any]) -> None:
    for index, record in enumerate(records):
        found = unsendable(record)
        if found is None:
            continue
        member, kind = found
        rid = record.get("id") if isinstance(record, Mapping) else None
        named = f"record #{index}" + (f" ({rid!r:.80})" if isinstance(rid, str) else "")
        article = "an" if kind[:1] in "aeiou" else "a"
        where = f"`{member}` holds {article} {kind}" if member else f"is {article} {kind}"
        raise InputError(
            f"{named} cannot be sent to the Freshguard service as it is: {where}, which JSON cannot carry; "
            "send JSON values (ISO 8601 text for times, lists, numbers or text for decimals), or a guard.Record"
        )


def _check_body(records: list[Any], pipeline: str, consumer: Mapping[str, Any] | None) -> bytes:
    envelopes = [r.to_envelope() if isinstance(r, Record) else r for r in records]
    body: dict[str, Any] = {"pipeline": pipeline, "records": envelopes}
    if consumer is not None:
        body["consumer"] = dict(consumer)
    try:
        encoded = json.dumps(body, default=_body_value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        encoded = None
    # json.dumps quietly turns tuples into lists, keys into strings and (through `default`) datetimes into
    # text: a round trip that does not give the records back says to look for what JSON cannot carry as is.
    if encoded is None or json.loads(encoded)["records"] != envelopes:
        _refuse_unsendable(envelopes)
    if encoded is None:
        raise ServiceError("the check cannot be sent as JSON; send dicts of JSON values or Records")
    return encoded.encode()


def _link_body(model: str, call_id: str | None, extra: Mapping[str, Any] | None) -> bytes:
    body: dict[str, Any] = {**(extra or {}), "model": model}
    if call_id is not None:
        body["call_id"] = call_id
    return json.dumps(body, default=_jsonable).encode()


def _unreachable(base_url: str, doing: str, exc: Exception) -> ServiceError:
    return ServiceError(
        f"could not reach the Freshguard service at {base_url} to {doing} ({type(exc).__name__}: {exc}); "
        "check that it runs (freshguard serve) and that base_url is right"
    )


def _answer(response: httpx2.Response, doing: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.status_code == 200 and isinstance(document, dict):
        return document
    problem = document if isinstance(document, dict) else None
    said = problem.get("detail") if problem is not None else None
    said = said if isinstance(said, str) else response.text[:300]
    hint = {
        401: "pass the pipeline's API key as api_key",
        403: "use a key with the pipeline role",
        404: "check the run id, or base_url",
    }.get(response.status_code, "see the service's log")
    raise ServiceError(
        f"the Freshguard service at {response.request.url.host} refused to {doing}: "
        f"{response.status_code} {said}; {hint}",
        status=response.status_code,
        problem=problem,
    )
