"""The Reflex app: pages, theme, splash, and the REST API under /api."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import reflex as rx

# Before any request: makes the project's Celery app the default in every thread, so jobs
# sent from the executor threads go to the configured broker (see workers/celery_app.py).
import workers.celery_app  # noqa: F401
from fibernode import __version__, logs
from fibernode.api import create_api, security
from fibernode.components import pwa
from fibernode.components.splash import splash
from fibernode.config import get_settings
from fibernode.pages import (  # noqa: F401  (each module registers its route)
    admin_activity,
    admin_finance,
    admin_mitra,
    admin_packages,
    admin_settings,
    customer_detail,
    customer_import,
    customers,
    dashboard,
    finance,
    finance_report,
    invoices,
    login,
    profile,
    receipt,
    whatsapp,
)
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor
from fibernode.state.gate import SessionGate
from fibernode.state.session import backend_error

log = logging.getLogger("fibernode")
# One JSON object per log line, with the request id (fibernode.logs).
logs.configure(get_settings().log_level)

# Websocket messages are small events (files go through /_upload): Reflex's default
# buffer would let one message carry megabytes into a state.
os.environ.setdefault("REFLEX_SOCKET_MAX_HTTP_BUFFER_SIZE", str(256 * 1024))

# Refuse to serve production with development or placeholder secrets.
get_settings().validate_for_startup()


def _record_version() -> None:
    """Write the running version to the ``app_version`` setting at startup."""
    try:
        settings_service.record_app_version(Actor.system("startup"), __version__)
    except Exception:  # noqa: BLE001 - an unmigrated database must not stop the server
        log.exception("could not record app_version; run `python -m fibernode.cli migrate`")


class FiberNodeApp(rx.App):
    """The Reflex app, served behind :class:`~fibernode.api.security.StrictCors`.

    Reflex wraps its backend (and every ``api_transformer``) in a top-level app
    with an allow-every-origin CORS layer that echoes any ``Origin`` with
    credentials; only a wrapper outside that layer decides which origins may use
    the app. Production and the test harnesses serve ``app()``, this.
    """

    def __call__(self):  # noqa: D102
        _private_states_dir()
        return security.StrictCors(super().__call__())


def _private_states_dir() -> None:
    """Page states (pickled by Reflex's disk state manager) are readable by the app user only."""
    from reflex.utils import prerequisites

    states = Path(prerequisites.get_states_dir())
    states.mkdir(parents=True, exist_ok=True)
    states.chmod(0o700)


app = FiberNodeApp(
    stylesheets=["/styles.css"],
    html_lang="id",
    head_components=[
        rx.el.meta(name="theme-color", content="#3B82F6"),
        rx.el.meta(name="description", content=settings_service.DEFAULTS["meta_description"]),
        # Stable, uncached redirects to the uploaded (or shipped) icons: they follow the
        # settings without a rebuild (fibernode/api/branding.py).
        rx.el.link(rel="icon", href="/branding/current/favicon", type="image/png"),
        rx.el.link(rel="apple-touch-icon", href="/branding/current/apple-touch-icon"),
        # Subscribers opening a receipt link get the receipt at once, not the app's splash.
        rx.el.script("if (location.pathname.indexOf('/receipt/') === 0) "
                     "document.documentElement.classList.add('fn-public');"),
        # Manifest, build version, service worker + install/offline/update (assets/pwa.js).
        *pwa.head_components(),
    ],
    # The splash sits inside the state and theme providers but outside the
    # pages, so it plays once per app open rather than on every navigation.
    extra_app_wraps={
        (3, "Splash"): lambda stateful: splash() if stateful else None,
        # One Indonesian "Anda offline" banner instead of Reflex's connection toast.
        (5, "Overlay"): lambda stateful: pwa.offline_banner() if stateful else None,
    },
    # The API (with the security middlewares) wraps Reflex; StrictCors wraps the
    # whole served app (FiberNodeApp.__call__).
    api_transformer=create_api(),
    backend_exception_handler=backend_error,
)
# Every websocket event passes the session gate first (binding, anonymous budget, sizes).
app.add_middleware(SessionGate())
app.register_lifespan_task(_record_version)
