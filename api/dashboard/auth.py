"""Who may read the dashboard: an API key sent as a header, or given once at /login and kept in a cookie.

The cookie holds the key itself (HttpOnly, SameSite=Strict, Secure over HTTPS), so every worker
accepts it without a shared session secret; logging out clears it. Forms that change something
(acknowledge, log out) must come from the dashboard's own pages: the Origin (or Referer) has to
name this host. With no keys configured the dashboard is open, like the API (loopback only).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from api.auth import OPEN_CALLER, Caller
from api.keys import KeyRing, Role

COOKIE = "freshguard_key"
COOKIE_AGE_S = 12 * 3600
#: Roles that may read the dashboard; acknowledging needs viewer or admin.
READERS = frozenset({Role.VIEWER, Role.PIPELINE, Role.ADMIN})
OPERATORS = frozenset({Role.VIEWER, Role.ADMIN})


class LoginRequired(Exception):  # noqa: N818 - a signal, answered with a redirect to /login
    """The page needs a key the request did not carry."""

    def __init__(self, next_path: str, message: str = "") -> None:
        super().__init__(message)
        self.next_path = next_path
        self.message = message


def caller_of(request: Request, presented: str | None) -> Caller | None:
    """The caller behind a key (None when the key is unknown); the open caller when no keys are configured."""
    if not request.app.state.settings.keys_configured:
        return OPEN_CALLER
    keyring: KeyRing | None = getattr(request.app.state, "keyring", None)
    if keyring is None or not presented:
        return None
    key = keyring.lookup(presented)
    return None if key is None else Caller(name=key.name, role=key.role, source=key.source)


def presented_key(request: Request) -> str | None:
    """The key a request carries: `Authorization: Bearer`, `X-API-Key`, or the dashboard's cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or request.cookies.get(COOKIE) or None


async def dashboard_reader(request: Request) -> Caller:
    """The caller, if it may read the dashboard; else a redirect to /login."""
    caller = caller_of(request, presented_key(request))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if caller is None:
        said = "that key is not one this service accepts" if request.cookies.get(COOKIE) else ""
        raise LoginRequired(target, said)
    if caller.role not in READERS:
        raise LoginRequired(target, f"a {caller.role.value} key cannot read the dashboard: use a viewer key")
    return caller


async def dashboard_operator(request: Request, caller: Annotated[Caller, Depends(dashboard_reader)]) -> Caller:
    """The caller, if it may act from the dashboard (viewer or admin), for a form posted by the dashboard itself."""
    same_site(request)
    if caller.role not in OPERATORS:
        raise HTTPException(403, f"acknowledging needs a viewer or admin key; yours is a {caller.role.value} key")
    return caller


def same_site(request: Request) -> None:
    """403 unless a form comes from this host's own pages (cross-site request forgery)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None or urlsplit(origin).netloc != request.url.netloc:
        raise HTTPException(403, "this form must be sent from the dashboard's own pages")


DashboardReader = Annotated[Caller, Depends(dashboard_reader)]
DashboardOperator = Annotated[Caller, Depends(dashboard_operator)]
