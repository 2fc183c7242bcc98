"""The 3-second splash shown each time the app is opened.

It sits at the app root (an app wrap), so it plays once per app open and not on
every navigation; pure CSS animations run it, so it paints before hydration.
"""

from __future__ import annotations

import reflex as rx

from fibernode.state.branding import BrandingState


def splash() -> rx.Component:
    """Full-screen logo, app name and version that fade away after 3 s."""
    return rx.fragment(
        rx.el.div(
            rx.el.div(
                rx.el.img(src=BrandingState.splash_logo_url, alt="", class_name="fn-splash-logo"),
                rx.el.div(BrandingState.app_name, class_name="fn-splash-name"),
                rx.el.div("v", BrandingState.app_version, class_name="fn-splash-version"),
                class_name="fn-splash-inner",
            ),
            id="fn-splash",
            class_name="fn-splash",
            style={"--fn-splash-bg": BrandingState.splash_bg_color},
            aria_hidden="true",
        ),
    )
