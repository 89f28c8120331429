"""`POST /beta/litellm_basic_guardrail_api`: Freshguard as a LiteLLM guardrail (its Generic Guardrail API).

Teams behind a LiteLLM proxy adopt Freshguard with configuration alone:

    guardrails:
      - guardrail_name: freshguard
        litellm_params:
          guardrail: generic_guardrail_api
          mode: pre_call
          api_base: http://freshguard:8000
          headers: {Authorization: "Bearer <a pipeline key>"}
          additional_provider_specific_params: {pipeline: support-bot, on_block: withhold}

Run it as `mode: pre_call`: in `during_call` LiteLLM calls the model in parallel with the guardrail,
so a rewrite or a block cannot stop what was already sent. The records the request carries are checked
(see `api.gateway_litellm`); the run is linked to LiteLLM's call id unless the call is blocked (best-effort:
a store that fails to link is logged, the answer still given). The answer is always 200 with an action;
a body LiteLLM would not send is a 422 problem.

`on_block` comes from `additional_provider_specific_params`, which LiteLLM's end users can set in their
requests; `FRESHGUARD_LITELLM_FORCE_ON_BLOCK` (withhold | refuse) overrides whatever they say.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.deps import CurrentGuardDep, MetricsDep, PipelineCaller, SettingsDep
from api.gateway_litellm import GuardrailRequest, GuardrailResponse, answer, read_guardrail_request
from api.problems import responses
from api.settings import Settings
from guard import Guard, GuardError, InputError, tally_check
from guard._timestamps import utc_now
from guard.limits import MAX_NAME_LENGTH

_log = logging.getLogger("freshguard.litellm")
router = APIRouter(tags=["litellm"])
INTEGRATION = "litellm"
DEFAULT_PIPELINE = "litellm"
UNKNOWN_MODEL = "unknown"  # a LiteLLM that names no model (older versions)


@router.post(
    "/beta/litellm_basic_guardrail_api",
    response_model=GuardrailResponse,
    response_model_exclude_none=True,
    responses=responses(400, 401, 403, 413, 415, 422, 503, types={422: ("invalid-request", "input-error")}),
    summary="LiteLLM's Generic Guardrail API: check the records a model call carries",
)
async def litellm_guardrail(
    body: GuardrailRequest, caller: PipelineCaller, guard: CurrentGuardDep, settings: SettingsDep, metrics: MetricsDep
) -> GuardrailResponse:
    """NONE when nothing is blocked, GUARDRAIL_INTERVENED with blocked records withheld, or BLOCKED (refuse)."""
    params = body.additional_provider_specific_params or {}
    on_block = _chosen_on_block(params, settings)
    pipeline = _pipeline(params.get("pipeline"), caller)
    if body.input_type == "response":
        return GuardrailResponse(action="NONE")  # the model's answer carries no records to guard
    found = read_guardrail_request(body)
    if not found.found and not found.withheld:
        return GuardrailResponse(action="NONE")
    if len(found.found) > settings.max_records:
        raise InputError(f"the call carries {len(found.found):,} records; at most {settings.max_records:,} are checked")
    for unreadable in found.withheld:
        _log.warning("litellm: %s withheld unchecked: %s", unreadable.where, unreadable.why.why)

    def decide() -> GuardrailResponse:
        if not found.found:
            return answer(body, found, None, on_block)
        result = guard.check(found.envelopes, pipeline=pipeline)
        metrics.observe_check(result, tally_check(result.decisions), guard.policy)
        decided = answer(body, found, result, on_block)
        if decided.action != "BLOCKED":
            _link(guard, result.run_id, body, params)
        return decided

    return await run_in_threadpool(decide)


def _chosen_on_block(params: dict[str, Any], settings: Settings) -> Literal["withhold", "refuse"]:
    """The operator's forced choice, else the request's (LiteLLM's end users can set it), else the default."""
    if settings.litellm_force_on_block is not None:
        return settings.litellm_force_on_block
    return _on_block(params.get("on_block"), settings.openai_on_block)


def _on_block(value: object, default: str) -> Literal["withhold", "refuse"]:
    chosen = default if value is None else value
    if chosen not in ("withhold", "refuse"):
        raise InputError(
            f"additional_provider_specific_params.on_block must be 'withhold' or 'refuse', not {chosen!r:.40}"
        )
    return "refuse" if chosen == "refuse" else "withhold"


def _pipeline(value: object, caller: Caller) -> str:
    if value is None:
        return DEFAULT_PIPELINE if caller.open else caller.name
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise InputError(
            f"additional_provider_specific_params.pipeline must be a name of 1 to {MAX_NAME_LENGTH} characters"
        )
    return value


def _link(guard: Guard, run_id: str, body: GuardrailRequest, params: dict[str, Any]) -> None:
    if guard.store is None:
        return
    configured = params.get("model") if isinstance(params.get("model"), str) else None  # LiteLLM before `model`
    model = body.model or configured or UNKNOWN_MODEL
    extra: dict[str, Any] = {"integration": INTEGRATION}
    if body.litellm_trace_id:
        extra["trace_id"] = body.litellm_trace_id
    try:
        guard.store.link_consumption(run_id, model, body.litellm_call_id, extra, linked_at=utc_now())
    except GuardError as exc:  # the records are decided: a lost link must not turn the answer into an error
        _log.error(
            "litellm: run %s could not be linked to call %s (%s): %s",
            run_id, body.litellm_call_id, type(exc).__name__, exc,
        )  # fmt: skip
