"""Public branding (app name, logos, version) shown before and after login."""

from __future__ import annotations

import reflex as rx

from fibernode import __version__
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor
from fibernode.services.settings import DEFAULT_ICONS, DEFAULT_LOGO, DEFAULTS


class BrandingState(rx.State):
    """Defaults are compiled in so the splash paints before the first round trip.

    The values come from the settings at runtime (``/branding/…`` files of the logo
    pipeline), so a new logo shows without rebuilding the frontend.
    """

    app_name: str = DEFAULTS["app_name"]
    logo_url: str = DEFAULT_LOGO
    splash_logo_url: str = DEFAULT_LOGO
    splash_bg_color: str = DEFAULTS["splash_bg_color"]
    theme_color: str = DEFAULTS["theme_color"]
    favicon_url: str = DEFAULT_ICONS["favicon_url"]
    app_version: str = __version__
    loaded: bool = False

    def _apply(self, b: settings_service.Branding) -> None:
        """Show these branding values (used by :meth:`load` and the settings page)."""
        self.app_name = b.app_name
        self.logo_url = b.logo_url
        self.splash_logo_url = b.splash_logo_url
        self.splash_bg_color = b.splash_bg_color
        self.theme_color = b.theme_color
        self.favicon_url = b.favicon_url
        self.app_version = b.app_version
        self.loaded = True

    @rx.event
    def load(self):
        """Read the branding settings once per client."""
        if self.loaded:
            return
        self._apply(settings_service.get_branding(Actor.anonymous()))
