"""The menu: one registry for the sidebar and the bottom navigation.

Only pages that exist are listed; later features add their entries here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NavItem:
    """A menu entry."""

    label: str
    icon: str
    href: str
    admin_only: bool = False
    in_bottom_nav: bool = False


MAIN_NAV = [
    NavItem("Dashboard", "layout_dashboard", "/", in_bottom_nav=True),
    NavItem("Pelanggan", "users", "/customers", in_bottom_nav=True),
    NavItem("Tagihan", "receipt", "/invoices", in_bottom_nav=True),
    NavItem("WhatsApp", "message_circle", "/whatsapp", in_bottom_nav=True),
    NavItem("Keuangan", "chart_line", "/finance"),
]
ADMIN_NAV = [
    NavItem("Mitra", "handshake", "/admin/mitra", admin_only=True),
    NavItem("Paket Internet", "package", "/admin/packages", admin_only=True),
    NavItem("Keuangan Mitra", "landmark", "/admin/finance", admin_only=True),
    NavItem("Log Aktivitas", "scroll_text", "/admin/activity", admin_only=True),
    NavItem("Pengaturan", "settings", "/admin/settings", admin_only=True),
]
ACCOUNT_NAV = [
    NavItem("Profil", "user_round", "/profile", in_bottom_nav=True),
]
BOTTOM_NAV = [item for item in MAIN_NAV + ACCOUNT_NAV if item.in_bottom_nav]
