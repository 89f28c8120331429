"""Open mode answers loopback names only: a request addressed to any other host is refused (DNS rebinding)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import problem
from api.settings import is_loopback


class LoopbackHostsOnly:
    """ASGI middleware for a service without API keys: a `Host` that is not loopback answers 421.

    A web page the operator visits could otherwise point its own host name at 127.0.0.1 and
    drive the service from the browser; its requests carry that name in `Host`.
    """

    def __init__(self, app: ASGIApp, *, open_mode: Callable[[], bool]) -> None:
        self.app = app
        self.open_mode = open_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.open_mode():
            await self.app(scope, receive, send)
            return
        host = _host_name(scope)
        if host is not None and is_loopback(host):
            await self.app(scope, receive, send)
            return
        shown = "no Host header" if host is None else repr(host[:100])
        refused = problem(
            421,
            "misdirected-request",
            f"this service runs without API keys, so it answers only requests addressed to 127.0.0.1, ::1 or "
            f"localhost, not {shown}; configure API keys (FRESHGUARD_KEYS_FILE or FRESHGUARD_API_KEYS) "
            "to serve other names",
        )
        await refused(scope, receive, send)


def _host_name(scope: Scope) -> str | None:
    """The host the request was addressed to, without its port (`[::1]:8000` is `::1`)."""
    for name, value in scope["headers"]:
        if name == b"host":
            text: str = value.decode("latin-1").strip()
            if text.startswith("["):
                return text[1 : text.find("]")] if "]" in text else text
            return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return None
