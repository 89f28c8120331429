"""Who is calling: the `Caller` behind a request's API key, and the role checks routes depend on.

A key is sent as `Authorization: Bearer <key>` (or `X-API-Key: <key>`). No key, or one the
service does not know, answers 401 with `WWW-Authenticate: Bearer`; a key whose role may not use
the endpoint answers 403 naming the role needed. `admin` may do everything. With no keys
configured the service runs open (loopback only) and every request is the open caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.keys import KeyRing, Role
from api.settings import Settings
from guard.errors import ConfigurationError

_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="An API key: `Authorization: Bearer <key>`.")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="The same API key, as `X-API-Key: <key>`."
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The key a request came with: its name, role and (for a source key) bound source; never the key."""

    name: str
    role: Role
    source: str | None = None
    open: bool = False  # True when the service has no keys and runs open on loopback


#: Every request's caller when no keys are configured: the service runs open, on loopback only.
OPEN_CALLER = Caller(name="(open mode: no API keys configured)", role=Role.ADMIN, open=True)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> Caller:
    """The caller behind the request's key; 401 without a key or with one the service does not know."""
    presented = bearer.credentials if bearer is not None else header_key
    return caller_of(request.app.state, presented)


def caller_of(state: Any, presented: str | None) -> Caller:
    """The caller behind the key `presented` (None: no key sent), for the app whose `state` this is; 401 without
    a key or with one the service does not know."""
    settings: Settings = state.settings
    if not settings.keys_configured:
        return OPEN_CALLER
    keyring: KeyRing | None = getattr(state, "keyring", None)
    if keyring is None:  # keys are configured but not loaded yet: fail closed
        raise ConfigurationError("the service is not ready: its API keys are still being loaded")
    if not presented:
        raise _unauthorized("this endpoint needs an API key: send `Authorization: Bearer <key>` (or `X-API-Key`)")
    key = keyring.lookup(presented)
    if key is None:
        raise _unauthorized("the API key is not one this service accepts; check it with whoever issued it")
    return Caller(name=key.name, role=key.role, source=key.source)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def _needed(roles: tuple[Role, ...]) -> str:
    names = [role.value for role in roles]
    return " or ".join(names)


def require_roles(*roles: Role | str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets through callers with one of `roles` (admin always), 403 for the others."""
    allowed = tuple(dict.fromkeys([*(Role(role) for role in roles), Role.ADMIN]))

    async def dependency(caller: CurrentCaller) -> Caller:
        return allow_roles(caller, allowed)

    return dependency


def allow_roles(caller: Caller, allowed: tuple[Role, ...]) -> Caller:
    """`caller` if its role is one of `allowed`; 403 otherwise."""
    if caller.role not in allowed:
        raise HTTPException(
            403, f"this endpoint needs a {_needed(allowed)} key; the key sent is a {caller.role.value} key"
        )
    return caller


def allow_source(caller: Caller, source_name: str) -> Caller:
    """`caller` if it may post for `source_name` (an admin, or a source key bound to it); 403 otherwise."""
    if caller.role is Role.ADMIN:
        return caller
    needed = f"this endpoint needs a source key bound to {source_name!r}"
    if caller.role is not Role.SOURCE:
        raise HTTPException(403, f"{needed}; the key sent is a {caller.role.value} key")
    if caller.source != source_name:
        raise HTTPException(403, f"{needed}; the key sent is bound to {caller.source!r}")
    return caller


def require_source(source_name: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that lets through an admin, or a source key bound to `source_name`; 403 for the others.

    For the changes and heartbeats routes: an ERP key cannot post CRM changes.
    """

    async def dependency(caller: CurrentCaller) -> Caller:
        return allow_source(caller, source_name)

    return dependency


async def source_in_path(source: str, caller: CurrentCaller) -> Caller:
    """A dependency for routes under `/v1/sources/{source}/`: the caller, if its key may post for that source."""
    return allow_source(caller, source)
