"""Public branding (app name, logos, version) shown before and after login."""

from __future__ import annotations

import reflex as rx

from fibernode import __version__
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor
from fibernode.services.settings import DEFAULT_LOGO, DEFAULTS


class BrandingState(rx.State):
    """Defaults are compiled in so the splash paints before the first round trip."""

    app_name: str = DEFAULTS["app_name"]
    logo_url: str = DEFAULT_LOGO
    splash_logo_url: str = DEFAULT_LOGO
    splash_bg_color: str = DEFAULTS["splash_bg_color"]
    app_version: str = __version__
    loaded: bool = False

    @rx.event
    def load(self):
        """Read the branding settings once per client."""
        if self.loaded:
            return
        b = settings_service.get_branding(Actor.anonymous())
        self.app_name = b.app_name
        self.logo_url = b.logo_url
        self.splash_logo_url = b.splash_logo_url
        self.splash_bg_color = b.splash_bg_color
        self.app_version = b.app_version
        self.loaded = True
