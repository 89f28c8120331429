"""The Freshguard HTTP service: a thin FastAPI layer that pipelines call before inference.

from api import Settings, create_app
app = create_app(Settings(policy="policies/support-assistant.yaml"))
"""

from api.app import create_app
from api.settings import Settings

__all__ = ["Settings", "create_app"]
