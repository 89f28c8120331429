"""Errors in OpenAI's shape for the gateway's routes: the `error` member the `openai` client reads, inside an
RFC 9457 problem like every other answer of the service.

An error a retry cannot fix (every 4xx, an upstream that refuses the gateway's key, a gateway with no
upstream configured) carries `x-should-retry: false`, so the `openai` client does not send it again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.problem_types import HTTP_ERROR_TYPES, URN_PREFIX
from api.problems import PROBLEM_JSON
from guard import GuardError, InputError, StoreError

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
          405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error"}  # fmt: skip
#: Server-side errors that only the operator can fix: the same request would fail again.
OPERATOR_ERRORS = frozenset({"freshguard_upstream_auth", "freshguard_no_upstream"})
RUN_HEADER = "x-freshguard-run-id"


#: Refusals a retry may cure (a request still in flight, a timeout): the client tries again.
_WORTH_A_RETRY = frozenset({408, 409, 429})


def openai_error(
    status: int,
    message: str,
    *,
    code: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    problem_type: str | None = None,
) -> JSONResponse:
    """An error the `openai` client reads, marked `x-should-retry: false` when a retry cannot fix it.

    Its problem type is `problem_type`, or else the code's words (`freshguard_no_upstream`: `no-upstream`).
    """
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    sent = dict(headers or {})
    if (status < 500 and status not in _WORTH_A_RETRY) or code in OPERATOR_ERRORS:
        sent["x-should-retry"] = "false"
    body = {
        "type": URN_PREFIX + (problem_type or code.removeprefix("freshguard_").replace("_", "-")),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
        "error": {"message": message, "type": kind, "code": code, "param": param},
    }
    return JSONResponse(body, status_code=status, headers=sent, media_type=PROBLEM_JSON)


class OpenAIErrorRoute(APIRoute):
    """A route whose errors, its dependencies' included (401, 403, 503), come in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except HTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
                return openai_error(
                    exc.status_code, detail, code=f"freshguard_{exc.status_code}", headers=exc.headers,
                    problem_type=HTTP_ERROR_TYPES.get(exc.status_code, "http-error"),
                )  # fmt: skip
            except InputError as exc:
                return openai_error(400, str(exc), code="freshguard_invalid_request")
            except GuardError as exc:  # the store or the guard is not there: the service's trouble, not the caller's
                code = "freshguard_store_unavailable" if isinstance(exc, StoreError) else "freshguard_unavailable"
                return openai_error(503, str(exc), code=code)

        return handler
