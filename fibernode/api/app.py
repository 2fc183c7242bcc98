"""FastAPI application mounted under /api by Reflex (``api_transformer``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fibernode import __version__
from fibernode.api import activity as activity_routes
from fibernode.api import auth as auth_routes
from fibernode.api import branding as branding_routes
from fibernode.api import customers as customer_routes
from fibernode.api import docs as api_docs
from fibernode.api import finance as finance_routes
from fibernode.api import invoices as invoice_routes
from fibernode.api import packages as package_routes
from fibernode.api import payment_proofs as payment_proof_routes
from fibernode.api import pwa as pwa_routes
from fibernode.api import receipts as receipt_routes
from fibernode.api import security
from fibernode.api import users as user_routes
from fibernode.api import wa_webhook as wa_webhook_routes
from fibernode.api import web_session as web_session_routes
from fibernode.api import whatsapp as whatsapp_routes
from fibernode.api.deps import error_response, request_problems
from fibernode.services import health as health_service
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError, ValidationFailed


def create_api() -> FastAPI:
    """Build the API app; Reflex mounts one, tests build their own."""
    api = FastAPI(
        title="FiberNode Internet API",
        version=__version__,
        openapi_url="/api/openapi.json",
        # /api/docs is added by fibernode.api.docs (Swagger UI without a CDN).
        docs_url=None,
        redoc_url=None,
    )

    @api.exception_handler(ServiceError)
    async def service_error(_request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @api.exception_handler(RequestValidationError)
    async def request_invalid(_request, exc: RequestValidationError) -> JSONResponse:
        return error_response(ValidationFailed(request_problems(exc)))

    @api.get("/api/settings/branding", response_model=settings_service.Branding,
             tags=["settings"])
    def branding() -> settings_service.Branding:
        """App name, logos and version used by splash and login (no login needed)."""
        return settings_service.get_branding(Actor.anonymous())

    @api.get("/api/health", tags=["health"])
    def health() -> JSONResponse:
        """Database, broker, worker and beat status; 503 when the database is down."""
        report = health_service.check()
        return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)

    api_docs.install(api)
    # Request ids and JSON access logs, security headers, body limits, rate limits.
    security.install(api)
    api.include_router(auth_routes.router)
    api.include_router(branding_routes.router)
    api.include_router(customer_routes.router)
    api.include_router(finance_routes.router)
    api.include_router(payment_proof_routes.router)
    api.include_router(pwa_routes.router)
    api.include_router(receipt_routes.router)
    api.include_router(wa_webhook_routes.router)
    api.include_router(whatsapp_routes.router)
    api.include_router(user_routes.router)
    api.include_router(package_routes.router)
    api.include_router(invoice_routes.router)
    api.include_router(activity_routes.router)
    api.include_router(web_session_routes.router)
    return api
