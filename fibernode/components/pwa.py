"""The installable-app pieces: head tags, the offline banner and pull-to-refresh hooks.

The behaviour lives in static files (``assets/pwa.js``, ``assets/sw.js``), loaded
with plain ``<script>`` tags in the head: Reflex's ``rx.script`` is injected after
load and would never register a service worker in time. The build version is
written into the page when the app is compiled, so the running frontend can tell
that the server has moved on to a newer version.
"""

from __future__ import annotations

import json

import reflex as rx
from reflex_components_core.core.banner import has_connection_errors

from fibernode import __version__
from fibernode.services import settings as settings_service

# Data attribute of the control pull-to-refresh clicks (one per list page).
PTR_ATTR = "data-ptr-refresh"


def head_components() -> list[rx.Component]:
    """Manifest link, iOS home-screen tags, build version and the PWA script.

    The apple-touch-icon link is the branding one (``/branding/current/...``).

    Returns:
        Components for ``rx.App(head_components=...)``.
    """
    version = json.dumps(__version__)
    return [
        rx.el.link(rel="manifest", href="/manifest.webmanifest"),
        rx.el.meta(name="mobile-web-app-capable", content="yes"),
        rx.el.meta(name="apple-mobile-web-app-capable", content="yes"),
        rx.el.meta(name="apple-mobile-web-app-status-bar-style", content="default"),
        rx.el.meta(name="apple-mobile-web-app-title",
                   content=settings_service.DEFAULTS["app_name"].split(" ")[0]),
        rx.el.script(f"window.FN_BUILD_VERSION = {version};"),
        rx.el.script(src=f"/pwa.js?v={__version__}", defer=True),
    ]


def offline_banner() -> rx.Component:
    """The one "Anda offline" banner, an overlay that never re-renders the page.

    Shown while Reflex's websocket cannot reach the server (``fn-ws-down``) or
    while the browser reports no network (``html.fn-net-offline``, set by pwa.js).
    It replaces Reflex's own connection toast and pulser.

    Returns:
        The overlay component.
    """
    # An app wrap gets the rest of the app appended as children: a fragment around a
    # memo keeps the page beside the banner rather than inside it. Like Reflex's own
    # overlay, the memo is made at compile time (the harness clears memos registered
    # at import time).
    return rx.fragment(rx.memo(fn_offline_banner)())


def fn_offline_banner() -> rx.Component:
    """The banner itself (memoised: only it re-renders when the connection changes).

    Returns:
        The banner.
    """
    return rx.el.div(
        rx.icon("wifi_off", size=16),
        rx.el.span("Anda offline", class_name="fn-offline-title"),
        rx.el.span(" \u2014 menyambungkan ulang\u2026 Isian Anda tetap tersimpan.",
                   class_name="fn-offline-text"),
        class_name=rx.cond(has_connection_errors, "fn-offline-banner fn-ws-down",
                           "fn-offline-banner"),
        role="status",
        aria_live="polite",
        data_testid="offline-banner",
    )


def pull_to_refresh(on_refresh) -> rx.Component:
    """A hidden control that pull-to-refresh (pwa.js) clicks to reload a list page.

    Args:
        on_refresh: The page's reload event handler.

    Returns:
        The hidden button.
    """
    return rx.el.button(
        "Muat ulang",
        type="button",
        on_click=on_refresh,
        class_name="fn-ptr-trigger",
        tab_index=-1,
        aria_hidden="true",
        custom_attrs={PTR_ATTR: ""},
    )
