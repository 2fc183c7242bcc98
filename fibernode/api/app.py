"""FastAPI application: health and public branding for now; the spec's endpoints follow."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fibernode.services import health as health_service
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor

api = FastAPI(
    title="FiberNode Internet API",
    version=settings_service.__version__,
    openapi_url="/api/openapi.json",
    # Interactive docs arrive with the REST API work, served without a CDN.
    docs_url=None,
    redoc_url=None,
)


class BrandingOut(BaseModel):
    """Public branding used by the splash and login before authentication."""

    app_name: str
    logo_url: str
    splash_logo_url: str
    splash_bg_color: str
    meta_description: str
    app_version: str


@api.get("/api/settings/branding", response_model=BrandingOut, tags=["settings"])
def branding() -> BrandingOut:
    """App name, logos and version (no login needed)."""
    b = settings_service.get_branding(Actor.anonymous())
    return BrandingOut(**b.__dict__)


@api.get("/api/health", tags=["health"])
def health() -> JSONResponse:
    """Database, broker, worker and beat status; 503 when the database is down."""
    report = health_service.check()
    return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)
