"""Reflex configuration, derived from the same environment as the rest of FiberNode."""

import os

import reflex as rx

from fibernode.config import get_settings

settings = get_settings()

config = rx.Config(
    app_name="fibernode",
    db_url=settings.database_url,
    # A Redis URL switches Reflex to the Redis state manager, so several
    # backend workers share state; without it one worker keeps state on disk.
    redis_url=settings.redis_url,
    frontend_port=settings.frontend_port,
    backend_port=settings.backend_port,
    api_url=os.environ.get("API_URL", f"http://localhost:{settings.backend_port}"),
    deploy_url=settings.public_url,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="blue", gray_color="slate", radius="large",
                           appearance="inherit", has_background=False),
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
