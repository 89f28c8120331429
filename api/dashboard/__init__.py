"""The dashboard at `/`: what model-ops teams read. Server-rendered, offline, no front-end build.

`install(app)` adds its pages, its stylesheet, the redirect to /login for pages that need a key,
and HTML error pages for people (the API keeps its problem+json answers).
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.dashboard.auth import LoginRequired
from api.dashboard.pages import HERE, router, templates

__all__ = ["install"]

#: Paths that belong to the API (problem+json errors), not to the dashboard (HTML errors).
_API_PREFIXES = ("/v1/", "/metrics", "/openapi", "/docs", "/redoc", "/healthz", "/readyz", "/static-offline-docs",
                 "/beta/")  # fmt: skip


def install(app: FastAPI) -> None:
    """Add the dashboard to the service."""
    app.include_router(router)
    app.mount("/static/dashboard", StaticFiles(directory=HERE / "static"), name="dashboard-static")
    app.add_exception_handler(LoginRequired, _to_login)
    problems = app.exception_handlers[HTTPException]

    async def html_or_problem(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and _for_people(request):
            detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
            return templates.TemplateResponse(
                request, "error.html",
                {"status": exc.status_code, "title": HTTPStatus(exc.status_code).phrase, "detail": detail,
                 "caller": None, "policy": None},
                status_code=exc.status_code,
            )  # fmt: skip
        answered = problems(request, exc)
        response: Response = await answered if not isinstance(answered, Response) else answered
        return response

    app.add_exception_handler(HTTPException, html_or_problem)


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)  # noqa: S101 - registered for this class only
    query = {"next": exc.next_path, **({"error": exc.message} if exc.message else {})}
    return RedirectResponse(f"/login?{urlencode(query)}", status_code=303)


def _for_people(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(_API_PREFIXES) and "text/html" in request.headers.get("accept", "")
