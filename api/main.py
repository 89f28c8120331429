"""The app as the server's worker processes build it: settings from FRESHGUARD_* variables.

    granian --interface asgi --factory api.main:app_from_environment --workers 4

`freshguard serve --workers N` sets the variables and starts granian this way (any ASGI server
can run the factory; `freshguard serve` adds the request-head timeout and the settings' checks).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings


def app_from_environment() -> FastAPI:
    """The service for the settings in the environment (FRESHGUARD_POLICY, FRESHGUARD_DATABASE_URL, ...)."""
    return create_app(Settings())  # pydantic-settings fills the fields from the environment
