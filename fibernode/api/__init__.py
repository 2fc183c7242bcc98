"""The REST API (FastAPI), mounted into the Reflex backend under ``/api``."""

from fibernode.api.app import create_api

__all__ = ["create_api"]
