"""The authenticated shell: sidebar and header on desktop, bottom navigation on phones."""

from __future__ import annotations

import reflex as rx

from fibernode.navigation import ACCOUNT_NAV, ADMIN_NAV, BOTTOM_NAV, MAIN_NAV, NavItem
from fibernode.state.branding import BrandingState
from fibernode.state.notifications import NotificationState
from fibernode.state.search import HeaderSearchState
from fibernode.state.session import SessionState
from fibernode.state.ui import UIState


def _is_active(href: str) -> rx.Var:
    path = rx.State.router.url.path
    if href == "/":
        return (path == "/") | (path == "")
    return path.startswith(href)


def _side_link(item: NavItem) -> rx.Component:
    return rx.link(
        rx.icon(item.icon, size=20),
        rx.el.span(item.label, class_name="fn-side-label"),
        href=item.href,
        title=item.label,
        class_name=rx.cond(_is_active(item.href), "fn-side-link active", "fn-side-link"),
        underline="none",
    )


def sidebar() -> rx.Component:
    """Desktop navigation, 260 px wide or 64 px when collapsed."""
    return rx.el.aside(
        rx.el.div(
            rx.el.img(src=BrandingState.logo_url, alt="", class_name="fn-side-logo"),
            rx.el.span(BrandingState.app_name, class_name="fn-side-brand"),
            class_name="fn-side-head",
        ),
        rx.el.nav(
            *[_side_link(i) for i in MAIN_NAV],
            rx.cond(
                SessionState.is_superadmin,
                rx.fragment(
                    rx.el.div("Admin", class_name="fn-side-section"),
                    *[_side_link(i) for i in ADMIN_NAV],
                ),
            ),
            rx.el.div("Akun", class_name="fn-side-section"),
            *[_side_link(i) for i in ACCOUNT_NAV],
            class_name="fn-side-nav",
        ),
        rx.el.button(
            rx.cond(UIState.collapsed, rx.icon("panel_left_open", size=20),
                    rx.icon("panel_left_close", size=20)),
            rx.el.span("Ciutkan menu", class_name="fn-side-label"),
            on_click=UIState.toggle_sidebar,
            class_name="fn-side-link fn-side-toggle",
            title="Ciutkan / lebarkan menu",
            type="button",
        ),
        class_name="fn-sidebar",
        data_testid="sidebar",
    )


def theme_toggle() -> rx.Component:
    """Switch light / dark; the choice is remembered on the device."""
    return rx.el.button(
        rx.color_mode_cond(light=rx.icon("moon", size=20), dark=rx.icon("sun", size=20)),
        on_click=rx.toggle_color_mode,
        class_name="fn-icon-btn",
        title="Ganti mode terang/gelap",
        aria_label="Ganti mode terang/gelap",
        data_testid="theme-toggle",
        type="button",
    )


def user_menu() -> rx.Component:
    """Avatar with the profile and logout actions."""
    return rx.menu.root(
        rx.menu.trigger(
            rx.el.button(
                rx.el.span(SessionState.initials, class_name="fn-avatar"),
                rx.el.span(SessionState.user_name, class_name="fn-user-name"),
                class_name="fn-user-btn",
                data_testid="user-menu",
                type="button",
            ),
        ),
        rx.menu.content(
            rx.menu.item(rx.icon("user_round", size=16), "Profil",
                         on_click=rx.redirect("/profile")),
            rx.menu.separator(),
            rx.menu.item(rx.icon("log_out", size=16), "Keluar", color="red",
                         on_click=SessionState.logout),
        ),
    )


def header_search() -> rx.Component:
    """Find a subscriber by name or phone from any page."""
    h = HeaderSearchState
    return rx.el.div(
        rx.form(
            rx.icon("search", size=16, class_name="fn-search-icon"),
            rx.el.input(name="q", type="search", placeholder="Cari pelanggan…",
                        auto_complete="off", class_name="fn-input",
                        on_change=h.search.debounce(300), aria_label="Cari pelanggan",
                        data_testid="header-search"),
            on_submit=h.submit,
            reset_on_submit=False,
        ),
        rx.cond(h.open, rx.el.div(
            rx.cond(h.hits.length() == 0,
                    rx.el.div("Tidak ada pelanggan yang cocok.",
                              class_name="fn-search-hit fn-muted"),
                    rx.foreach(h.hits, lambda c: rx.link(
                        rx.el.strong(c["name"]),
                        rx.el.span(c["phone"], " · ", c["area"], class_name="fn-muted"),
                        href="/customers/" + c["id"], on_click=h.close, underline="none",
                        class_name="fn-search-hit", data_testid="search-hit"))),
            rx.cond(h.more > 0, rx.link(
                "Lihat semua hasil (", (h.more + h.hits.length()).to_string(), ")",
                href="/customers?q=" + h.term, on_click=h.close, class_name="fn-search-more")),
            class_name="fn-search-results",
        )),
        class_name="fn-header-search",
        on_mouse_leave=h.close,
    )


def notification_bell() -> rx.Component:
    """WhatsApp problems of the owner (disconnected, banned, queue paused, failures)."""
    n = NotificationState
    return rx.popover.root(
        rx.popover.trigger(rx.el.button(
            rx.icon("bell", size=20),
            rx.cond(n.items.length() > 0,
                    rx.el.span(n.items.length().to_string(), class_name="fn-badge-dot",
                               data_testid="bell-count")),
            class_name="fn-icon-btn fn-bell", title="Notifikasi", aria_label="Notifikasi",
            type="button", data_testid="bell", on_mount=n.load)),
        rx.popover.content(
            rx.cond(n.items.length() == 0,
                    rx.el.p("Tidak ada masalah WhatsApp.", class_name="fn-muted"),
                    rx.el.div(rx.foreach(n.items, lambda i: rx.link(
                        rx.icon("triangle_alert", size=16, color="var(--fn-warning)"),
                        rx.el.span(rx.el.strong(i["title"]), rx.el.br(), i["text"]),
                        href=i["href"], class_name="fn-bell-item",
                        underline="none", data_testid="bell-item")),
                        class_name="fn-bell-list")),
            side="bottom", align="end",
        ),
    )


def header(title: str) -> rx.Component:
    """Sticky header: page title on desktop, logo and name on phones."""
    return rx.el.header(
        rx.el.div(
            rx.el.img(src=BrandingState.logo_url, alt="", class_name="fn-header-logo"),
            rx.el.span(BrandingState.app_name, class_name="fn-header-brand"),
            class_name="fn-header-mobile-brand",
        ),
        rx.el.h2(title, class_name="fn-header-title"),
        header_search(),
        rx.el.div(
            rx.link(rx.icon("search", size=20), href="/customers", aria_label="Cari pelanggan",
                    class_name="fn-icon-btn fn-header-search-btn"),
            notification_bell(), theme_toggle(), user_menu(),
            class_name="fn-header-actions"),
        class_name="fn-header",
    )


def bottom_nav() -> rx.Component:
    """Phone navigation along the bottom edge."""
    return rx.el.nav(
        *[
            rx.link(
                rx.icon(i.icon, size=22),
                rx.el.span(i.label),
                href=i.href,
                class_name=rx.cond(_is_active(i.href), "fn-bottom-link active", "fn-bottom-link"),
                underline="none",
            )
            for i in BOTTOM_NAV
        ],
        class_name="fn-bottom-nav",
        data_testid="bottom-nav",
    )


def app_shell(title: str, *content: rx.Component) -> rx.Component:
    """Wrap a protected page's content in the navigation shell."""
    return rx.el.div(
        sidebar(),
        rx.el.div(
            header(title),
            rx.el.main(*content, class_name="fn-main"),
            class_name="fn-content",
        ),
        bottom_nav(),
        class_name=rx.cond(UIState.collapsed, "fn-shell collapsed", "fn-shell"),
    )
