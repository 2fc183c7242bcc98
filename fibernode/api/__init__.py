"""The REST API (FastAPI), mounted into the Reflex backend under ``/api``."""

from fibernode.api.app import api

__all__ = ["api"]
