"""Errors as RFC 9457 problem details (`application/problem+json`), and the handlers that make them.

Nothing a client sends may end in a 500: a body that is not JSON answers 400 (415 when sent as
another media type), a body of the wrong shape 422 (naming every location), one too large 413,
an unreachable store 503. Every `type` is one of `api.problem_types`, and `responses()` declares, in
the OpenAPI document, which of them each route may answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from api.problem_types import COMMON_TYPES, HTTP_ERROR_TYPES, PROBLEM_TYPES, ProblemType
from api.schemas import UNSTORABLE
from guard.errors import ConfigurationError, GuardError, InputError, PolicyError, StoreError, StoreUnavailableError

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("freshguard.api")


class ProblemLocation(BaseModel):
    """One thing wrong in a request: where (`["body", "records"]`) and what."""

    loc: list[str | int] = Field(description="Where in the request: body, query or path, then the members.")
    message: str
    type: str = Field(description="A stable code for the kind of error (pydantic's error type).")


class Problem(BaseModel):
    """An RFC 9457 problem: why a request could not be served, in words and as a stable `type`."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "type": "urn:freshguard:problem:invalid-request",
                "title": "Unprocessable Content",
                "status": 422,
                "detail": "the request does not have the shape POST /v1/check takes: body.records: Input should be "
                "a valid list",
                "errors": [
                    {"loc": ["body", "records"], "message": "Input should be a valid list", "type": "list_type"}
                ],
            }
        }
    )

    type: str = Field("about:blank", description="A URI that names the kind of problem.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="What is wrong with this request and what to do about it.")
    errors: list[ProblemLocation] | None = Field(None, description="Every location found wrong, for 422.")


def problem(status: int, kind: str, detail: str, errors: Sequence[ProblemLocation] | None = None) -> JSONResponse:
    """A problem+json response of the type `kind` names (one of `api.problem_types`)."""
    problem_type = PROBLEM_TYPES.get(kind)
    if problem_type is None:
        raise ValueError(f"problem type {kind!r} is not in api.problem_types; add it there, with what it means")
    body = Problem(
        type=problem_type.urn,
        title=HTTPStatus(status).phrase,
        status=status,
        detail=_utf8(detail),
        errors=[_utf8_location(error) for error in errors] if errors is not None else None,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON)


def _utf8(text: str) -> str:
    """`text` as UTF-8 can carry it: what a client sent may hold lone surrogates (`\\udb4b` stands for one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _utf8_location(error: ProblemLocation) -> ProblemLocation:
    return ProblemLocation(
        loc=[part if isinstance(part, int) else _utf8(part) for part in error.loc],
        message=_utf8(error.message),
        type=error.type,
    )


def problem_refusal(status: int, kind: str, detail: str, headers: Mapping[str, str]) -> Response:
    """`problem()` with headers: how plain API routes refuse (see `api.idempotency.Refusal`)."""
    response = problem(status, kind, detail)
    response.headers.update(headers)
    return response


def responses(
    *statuses: int, said: Mapping[int, str] | None = None, types: Mapping[int, Sequence[str]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the problems a route may answer: each status in words, with its problem types.

    A status answers the shared handlers' types (`COMMON_TYPES`) unless `types` names the route's own;
    `said` words a status for this route. The document then allows only those types in each answer.
    """
    chosen = {**COMMON_TYPES, **(types or {})}
    undeclared = set(types or {}) - set(statuses)
    if undeclared:
        raise ValueError(f"types are given for {sorted(undeclared)}, statuses this route does not declare")
    words = {**_DESCRIPTIONS, **(said or {})}
    return {status: _declaration(status, words[status], chosen[status]) for status in statuses}


#: Where `responses` leaves a status's problem types for `problem_json_openapi` to turn into the schema.
_TYPES_KEY = "x-freshguard-problem-types"


def _declaration(status: int, words: str, names: Sequence[str]) -> dict[str, Any]:
    kinds = [PROBLEM_TYPES[name] for name in names]
    listed = "\n".join(f"- `{kind.urn}`: {kind.meaning}" for kind in kinds)
    declaration: dict[str, Any] = {
        "model": Problem,
        "description": f"{words}\n\n{listed}",
        "content": {"application/json": {"examples": {kind.name: {"value": _example(status, kind)} for kind in kinds}}},
        _TYPES_KEY: [kind.urn for kind in kinds],
    }
    if status == 401:
        declaration["headers"] = {
            "WWW-Authenticate": {"description": "`Bearer`: send an API key.", "schema": {"type": "string"}}
        }
    return declaration


def _example(status: int, kind: ProblemType) -> dict[str, Any]:
    if status not in kind.examples:
        raise ValueError(f"problem type {kind.name} is not answered with {status} (api.problem_types says when it is)")
    example: dict[str, Any] = {
        "type": kind.urn, "title": HTTPStatus(status).phrase, "status": status, "detail": kind.examples[status],
    }  # fmt: skip
    if (status, kind.name) == (422, "invalid-request"):
        example["errors"] = [
            {"loc": ["body", "records"], "message": "Input should be a valid list", "type": "list_type"}
        ]
    return example


_DESCRIPTIONS = {
    400: "The body cannot be read.",
    401: "No API key, or one this service does not accept (`WWW-Authenticate: Bearer`).",
    403: "The API key may not use this endpoint; the detail names the key needed.",
    404: "No such resource.",
    409: "The request conflicts with what is already there.",
    413: "The body, or the number of records, is over the service's limit.",
    415: "The body is not sent as JSON (Content-Type: application/json).",
    422: "The request cannot be served as it is: its `type` says why, its `errors` name every location.",
    502: "The upstream could not be reached, or refused the service.",
    503: "The lineage store is unreachable, or the guard is not ready.",
    504: "The upstream did not answer in time.",
}


def _locations(errors: Iterable[Any]) -> list[ProblemLocation]:
    return [
        ProblemLocation(
            loc=[part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            message=str(error.get("msg", "invalid")),
            type=str(error.get("type", "invalid")),
        )
        for error in errors
    ]


async def _validation_failed(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for this class only
        raise exc
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        where = next(e for e in errors if e.get("type") == "json_invalid")
        context = where.get("ctx") or {}
        return problem(
            400,
            "not-json",
            f"the body is not JSON ({context.get('error', 'it does not parse')}); "
            "send a JSON document with Content-Type: application/json",
        )
    declared = request.headers.get("content-type", "")
    if declared and "json" not in declared.split(";")[0].lower() and any(e.get("loc") == ("body",) for e in errors):
        return problem(
            415, "not-json", f"the body is {declared}, not JSON; send it with Content-Type: application/json"
        )
    found = _locations(errors)
    listed = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.message}" for e in found[:5])
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    endpoint = f"{request.method} {request.url.path}"
    if all(error.get("type") == UNSTORABLE for error in errors):  # the right shape, but text no store can keep
        return problem(
            422, "input-error", f"{endpoint} holds text the lineage store cannot keep: {listed}{more}", found
        )
    detail = f"the request does not have the shape {endpoint} takes: {listed}{more}"
    return problem(422, "invalid-request", detail, found)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):  # registered for this class only
        raise exc
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    if (
        exc.status_code == 400 and detail == "There was an error parsing the body"
    ):  # FastAPI's words, say for a RecursionError
        detail = (
            "the body could not be read as JSON: it is nested too deeply or is not valid JSON text; "
            "send records as JSON objects nested at most a few hundred levels"
        )
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"nothing is served at {request.url.path}; see /docs for the endpoints"
    response = problem(exc.status_code, HTTP_ERROR_TYPES.get(exc.status_code, "http-error"), detail)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:  # Starlette names the methods of the first route that matched the path only
        response.headers["Allow"] = ", ".join(_methods_at(request))
    return response


def _methods_at(request: Request) -> list[str]:
    """Every method some route of the app takes at the request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def _guard_error(request: Request, exc: Exception) -> JSONResponse:
    return guard_error_response(request.method, request.url.path, exc)


def guard_error_response(method: str, path: str, exc: Exception) -> JSONResponse:
    """The problem a `GuardError` met while answering `method path` is answered with."""
    if isinstance(exc, StoreError):
        _log.error("lineage store error on %s %s: %s", method, path, exc)
        response = problem(503, "store-unavailable", str(exc))
        if isinstance(exc, StoreUnavailableError):  # it may pass: a retry in a second may well succeed
            response.headers["Retry-After"] = "1"
        return response
    if isinstance(exc, ConfigurationError):
        return problem(503, "misconfigured", str(exc))
    if isinstance(exc, PolicyError):
        return problem(422, "policy-error", str(exc))
    if isinstance(exc, InputError):
        return problem(422, "input-error", str(exc))
    return problem(422, "guard-error", str(exc))


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error the service answers a problem+json body."""
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(GuardError, _guard_error)


def problem_json_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare every 4xx/5xx response of `schema` as `application/problem+json`, of the types its route declared.

    (FastAPI writes them as `application/json`, of any type.)
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                urns = response.pop(_TYPES_KEY, None)
                if str(status)[0] not in "45" or "application/json" not in content:
                    continue
                media = content[PROBLEM_JSON] = content.pop("application/json")
                if urns is not None:
                    declared = {"required": ["type"], "properties": {"type": {"enum": urns}}}
                    media["schema"] = {"allOf": [media["schema"], declared]}
    return schema
