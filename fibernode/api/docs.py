"""Interactive API docs at ``/api/docs``, with Swagger UI served by the app (no CDN).

Mitra and the superadmin may be on a network that cannot reach public CDNs, and
the security headers allow same-origin scripts only. The Swagger UI 5 files
(OpenAPI 3.1, which FastAPI emits) come from the ``fastapi-offline`` package.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = "/api/docs/static"


def install(api: FastAPI) -> None:
    """Add ``/api/docs`` and its static files to ``api``."""
    directory = str(files("fastapi_offline") / "static")
    api.mount(STATIC, StaticFiles(directory=directory), name="swagger-ui")

    @api.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=api.openapi_url or "/api/openapi.json",
            title=f"{api.title} — dokumentasi",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
        )
