"""``/``: the day's figures for the logged-in role."""

from __future__ import annotations

import uuid

import plotly.graph_objects as go
import reflex as rx

from fibernode import clock
from fibernode.components import charts
from fibernode.components.layout import app_shell
from fibernode.components.ui import page_title, stat_card
from fibernode.formatting import month_year, number, rupiah
from fibernode.services import dashboard, finance, users
from fibernode.services.errors import ServiceError
from fibernode.state.branding import BrandingState
from fibernode.state.notifications import NotificationState
from fibernode.state.session import SessionState, current_actor, to_login

ALL_OWNERS = "all"


class DashboardState(rx.State):
    """Formatted figures; the numbers come from the dashboard service."""

    period_label: str = ""
    active_customers: str = "0"
    isolated_customers: str = "0"
    billed: str = "Rp 0"
    invoice_count: str = "0"
    paid: str = "Rp 0"
    paid_count: str = "0"
    unpaid: str = "Rp 0"
    unpaid_count: str = "0"
    collected_percent: str = "0"
    overdue: str = "Rp 0"
    overdue_count: str = "0"
    revenue: str = "Rp 0"
    due_soon: list[dict[str, str]] = []
    # The two charts, ready to draw (a few KB: 12 points each, no template).
    revenue_chart: go.Figure = charts.empty_figure()
    growth_chart: go.Figure = charts.empty_figure()
    owner_filter: str = ALL_OWNERS
    owner_options: list[dict[str, str]] = []
    error: str = ""
    loaded: bool = False

    @rx.event
    async def load(self):
        """Fetch the figures for the current scope."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            if actor.is_superadmin:
                self.owner_options = [{"id": ALL_OWNERS, "label": "Semua pemilik"}] + [
                    {"id": str(o.id), "label": o.business_name} for o in users.list_owners(actor)
                ]
            owner = None if self.owner_filter == ALL_OWNERS else self.owner_filter
            owner_id = uuid.UUID(owner) if owner else None
            view = dashboard.overview(actor, owner_id)
            stats, points = view.stats, view.series
        except (ServiceError, ValueError) as exc:
            self.error = getattr(exc, "message", "Filter tidak valid.")
            return
        self.error = ""
        self.period_label = month_year(stats.period)
        self.active_customers = number(stats.active_customers)
        self.isolated_customers = number(stats.isolated_customers)
        self.billed = rupiah(stats.billed)
        self.invoice_count = number(stats.invoice_count)
        self.paid = rupiah(stats.paid)
        self.paid_count = number(stats.paid_count)
        self.unpaid = rupiah(stats.unpaid)
        self.unpaid_count = number(stats.unpaid_count)
        self.collected_percent = number(stats.collected_percent)
        self.overdue = rupiah(stats.overdue_amount)
        self.overdue_count = number(stats.overdue_count)
        self.revenue = rupiah(stats.revenue)
        self.revenue_chart = charts.revenue_figure(points)
        self.growth_chart = charts.growth_figure(points)
        today = clock.today()
        self.due_soon = [
            {"id": str(v.id), "customer": v.customer_name, "customer_id": str(v.customer_id),
             "when": "Hari ini" if v.due_date == today else "Besok",
             "remaining": rupiah(v.remaining), "area": v.area}
            for v in view.due_soon
        ]
        self.loaded = True

    @rx.event
    async def set_owner_filter(self, value: str):
        """Superadmin narrows the figures to one owner."""
        self.owner_filter = value
        return DashboardState.load


def _owner_picker() -> rx.Component:
    return rx.cond(
        SessionState.is_superadmin,
        rx.el.select(
            rx.foreach(DashboardState.owner_options,
                       lambda o: rx.el.option(o["label"], value=o["id"])),
            value=DashboardState.owner_filter,
            on_change=DashboardState.set_owner_filter,
            class_name="fn-input fn-select",
            aria_label="Pilih pemilik",
            data_testid="owner-filter",
        ),
    )


@rx.page(route="/", title="Dashboard — FiberNode Internet",
         on_load=[BrandingState.load, DashboardState.load])
def dashboard_page() -> rx.Component:
    """Headline figures for the current period."""
    return app_shell(
        "Dashboard",
        rx.el.div(
            page_title("Dashboard",
                       rx.cond(DashboardState.period_label != "",
                               "Periode " + DashboardState.period_label, "")),
            _owner_picker(),
            class_name="fn-page-bar",
        ),
        rx.cond(DashboardState.error != "",
                rx.el.div(DashboardState.error, class_name="fn-alert fn-alert-error")),
        rx.cond(NotificationState.banner != "", rx.el.div(
            rx.icon("message_circle_warning", size=18),
            rx.el.span(NotificationState.banner),
            rx.link(rx.button("Hubungkan WhatsApp", size="1"), href="/whatsapp"),
            class_name="fn-alert fn-alert-warning fn-banner", role="status",
            data_testid="wa-banner")),
        rx.el.div(
            stat_card("Pelanggan Aktif", DashboardState.active_customers, "users",
                      DashboardState.isolated_customers + " diisolir", "accent",
                      test_id="stat-active"),
            stat_card("Tagihan Bulan Ini", DashboardState.billed, "receipt",
                      DashboardState.invoice_count + " tagihan", "primary",
                      test_id="stat-billed"),
            stat_card("Sudah Terbayar", DashboardState.paid, "circle_check",
                      DashboardState.paid_count + " lunas", "accent", test_id="stat-paid"),
            stat_card("Belum Terbayar", DashboardState.unpaid, "clock",
                      DashboardState.unpaid_count + " belum lunas", "warning",
                      test_id="stat-unpaid"),
            stat_card("Persentase Terkumpul", DashboardState.collected_percent + "%",
                      "percent", "dari total tagihan periode ini", "primary",
                      test_id="stat-percent"),
            stat_card("Terlambat", DashboardState.overdue, "triangle_alert",
                      DashboardState.overdue_count + " tagihan lewat jatuh tempo", "warning",
                      test_id="stat-overdue"),
            stat_card("Pendapatan Bulan Ini", DashboardState.revenue, "wallet",
                      "pembayaran tercatat bulan ini", "accent", test_id="stat-revenue"),
            class_name=rx.cond(DashboardState.loaded, "fn-stats", "fn-stats fn-loading"),
        ),
        rx.el.p(finance.BASIS_NOTE, class_name="fn-muted fn-note", data_testid="basis-note"),
        rx.el.div(
            charts.chart_card("Grafik Pendapatan", "12 bulan terakhir, menurut buku pembayaran",
                              DashboardState.revenue_chart, "chart-revenue",
                              tip=finance.BASIS_NOTE),
            charts.chart_card("Grafik Pelanggan",
                              "Pelanggan baru per bulan (batang) dan total pelanggan (garis)",
                              DashboardState.growth_chart, "chart-growth",
                              tip="Pelanggan baru dihitung dari tanggal registrasi; total = "
                                  "semua pelanggan yang terdaftar sampai akhir bulan itu."),
            class_name="fn-chart-grid fn-note",
        ),
        rx.el.div(rx.link(rx.icon("chart_line", size=16), "Laporan keuangan lengkap",
                          href="/finance", class_name="fn-back-link"),
                  class_name="fn-note"),
        rx.el.div(
            rx.el.div(rx.el.h3("Jatuh Tempo Hari Ini & Besok", class_name="fn-section-title"),
                      rx.link("Lihat tagihan", href="/invoices?status=unpaid"),
                      class_name="fn-card-row"),
            rx.cond(
                DashboardState.due_soon.length() == 0,
                rx.el.p("Tidak ada tagihan yang jatuh tempo hari ini atau besok.",
                        class_name="fn-muted"),
                rx.el.div(rx.foreach(DashboardState.due_soon, lambda d: rx.link(
                    rx.el.div(rx.el.strong(d["customer"]),
                              rx.el.span(d["when"], " · ", d["area"], class_name="fn-muted")),
                    rx.el.span(d["remaining"], class_name="fn-card-amount"),
                    href="/customers/" + d["customer_id"], underline="none",
                    class_name="fn-card-row fn-message-row", data_testid="due-soon",
                )), class_name="fn-stack-tight"),
            ),
            class_name="fn-card fn-note",
        ),
    )
