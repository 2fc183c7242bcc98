"""``/finance``: finance figures per month, per year and per due date.

Mitra see only their own figures; the superadmin sees every owner or one (the
owner picker, or ``?owner=<id>`` from ``/admin/finance``). ``?tab=month|year|date``,
``?period=YYYY-MM``, ``?year=YYYY`` and ``?day=YYYY-MM-DD`` open a given view.
Every figure comes from :mod:`fibernode.services.finance`, so it matches the
dashboard, the exports and the reports.
"""

from __future__ import annotations

import uuid
from datetime import date

import plotly.graph_objects as go
import reflex as rx
from babel.dates import format_date

from fibernode import clock
from fibernode.components import charts
from fibernode.components.layout import app_shell
from fibernode.components.ui import empty_state, page_title, pager, skeleton_rows, stat_card
from fibernode.formatting import LOCALE, date_time, long_date, month_year, number, rupiah
from fibernode.services import finance, users
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError
from fibernode.state.branding import BrandingState
from fibernode.state.paging import PagedListMixin
from fibernode.state.session import SessionState, current_actor, to_login

TABS = [("month", "Per Bulan", "calendar"), ("year", "Per Tahun", "chart_column"),
        ("date", "Per Tanggal", "calendar_days")]
TAB_KEYS = {t[0] for t in TABS}
STATUS_CHIPS = [("", "Semua"), ("paid", "Lunas"), ("unpaid", "Belum lunas")]
MONTHS = [{"value": f"{m:02d}", "label": format_date(date(2000, m, 1), "LLLL", locale=LOCALE)}
          for m in range(1, 13)]
INVALID_FILTER = "Filter tidak valid."


# --- helpers shared by the finance pages ----------------------------------------------------

def error_text(exc: Exception) -> str:
    """The Indonesian sentence of a service error (the first field message if any)."""
    if isinstance(exc, ServiceError):
        return next(iter(exc.details.values()), None) or exc.message
    return INVALID_FILTER


def owner_options(actor: Actor) -> list[dict[str, str]]:
    """The owner pick list of a superadmin (empty for a mitra)."""
    if not actor.is_superadmin:
        return []
    return [{"value": str(o.id), "label": o.business_name} for o in users.list_owners(actor)]


def year_options(selected: str = "") -> list[str]:
    """Five years back to next year, plus ``selected`` when it lies outside."""
    this = clock.today().year
    years = [str(y) for y in range(this + 1, this - 6, -1)]
    if selected and selected not in years and selected.isdigit():
        years.append(selected)
    return years


def split_period(value: str) -> tuple[str, str] | None:
    """``("2026", "03")`` from ``2026-03`` (None if it does not look like a period)."""
    parts = value.split("-")
    if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit() and len(parts[1]) == 2:
        return parts[0], parts[1]
    return None


def owner_uuid(actor: Actor, value: str) -> uuid.UUID | None:
    """The chosen owner for a service call: only the superadmin picks one."""
    return uuid.UUID(value) if value and actor.is_superadmin else None


def totals_view(t: finance.PeriodTotals) -> dict[str, str]:
    """Billed-basis totals formatted for the figure cards."""
    return {
        "billed": rupiah(t.billed), "paid": rupiah(t.paid), "unpaid": rupiah(t.unpaid),
        "percent": number(t.collected_percent), "count": number(t.invoice_count),
        "paid_count": number(t.paid_count), "partial_count": number(t.partial_count),
        "unpaid_count": number(t.unpaid_count),
    }


def detail_row(r: finance.DetailRow) -> dict[str, str]:
    """One invoice of the spec's "Tabel Detail Tagihan"."""
    return {
        "id": str(r.invoice_id), "customer": r.customer_name, "customer_id": str(r.customer_id),
        "area": r.area, "package": f"{r.package_name} ({r.package_speed})",
        "amount": rupiah(r.total_amount), "paid": rupiah(r.paid_amount),
        "remaining": rupiah(r.remaining), "status": r.status.value,
        "status_label": r.status_label, "due": long_date(r.due_date),
        "period": month_year(r.period),
        "paid_at": date_time(r.paid_at) if r.paid_at else "-",
        "recorded_by": r.recorded_by or "-",
    }


def month_row(m: finance.MonthRow) -> dict[str, str]:
    """One month of the year table."""
    return {"period": m.period, "label": month_year(m.period), **totals_view(m.totals),
            "revenue": rupiah(m.revenue), "new_customers": number(m.new_customers)}


def status_pill(status: rx.Var, label: rx.Var) -> rx.Component:
    """Lunas / Sebagian / Belum Bayar as a coloured pill."""
    return rx.match(
        status,
        ("paid", rx.el.span(label, class_name="fn-pill fn-pill-green")),
        ("partial", rx.el.span(label, class_name="fn-pill fn-pill-amber")),
        rx.el.span(label, class_name="fn-pill fn-pill-grey"),
    )


def select(value: rx.Var, on_change, options, label: str, test_id: str,
           placeholder: tuple[str, str] | None = None) -> rx.Component:
    """A controlled ``<select>`` over ``[{"value", "label"}]`` (or plain strings)."""
    if isinstance(options, rx.Var):
        items = rx.foreach(options, lambda o: rx.el.option(o["label"], value=o["value"]))
    else:
        items = rx.fragment(*[rx.el.option(o["label"], value=o["value"]) for o in options])
    return rx.el.select(
        rx.el.option(placeholder[1], value=placeholder[0]) if placeholder else rx.fragment(),
        items,
        value=value, on_change=on_change, class_name="fn-input fn-select",
        aria_label=label, data_testid=test_id,
    )


def year_select(value: rx.Var, on_change, years: rx.Var, test_id: str) -> rx.Component:
    """The year picker."""
    return rx.el.select(rx.foreach(years, lambda y: rx.el.option(y, value=y)),
                        value=value, on_change=on_change, class_name="fn-input fn-select",
                        aria_label="Tahun", data_testid=test_id)


def owner_select(value: rx.Var, on_change, options: rx.Var,
                 test_id: str = "finance-owner") -> rx.Component:
    """The superadmin's owner picker ("Semua mitra" or one)."""
    return rx.cond(SessionState.is_superadmin,
                   select(value, on_change, options, "Mitra", test_id, ("", "Semua mitra")))


def basis_note() -> rx.Component:
    """The billed-vs-revenue explanation, visible (tooltips do not work on touch)."""
    return rx.el.div(charts.info_tip(finance.BASIS_NOTE),
                     rx.el.p(finance.BASIS_NOTE, class_name="fn-muted"),
                     class_name="fn-basis-note")


# --- state ------------------------------------------------------------------------------------

class FinanceState(PagedListMixin, rx.State):
    """The chosen view, its filters and one page of invoices (20 rows, paged in SQL)."""

    tab: str = "month"
    ready: bool = False
    error: str = ""
    owner_filter: str = ""
    owner_options: list[dict[str, str]] = []
    month: str = ""
    year: str = ""
    years: list[str] = []
    day: str = ""
    status: str = ""
    totals: dict[str, str] = {}
    revenue: str = "Rp 0"
    received: str = "Rp 0"
    rows: list[dict[str, str]] = []
    year_rows: list[dict[str, str]] = []
    year_totals: dict[str, str] = {}
    year_chart: go.Figure = charts.empty_figure()

    @rx.var
    def period(self) -> str:
        """The chosen month as ``YYYY-MM``."""
        return f"{self.year}-{self.month}"

    @rx.var
    def heading(self) -> str:
        """What the figures are of: the month, the year or the day."""
        try:
            if self.tab == "year":
                return f"Tahun {self.year}"
            if self.tab == "date":
                return "Jatuh tempo " + long_date(date.fromisoformat(self.day))
            return month_year(self.period)
        except ValueError:
            return ""

    def _fetch(self, actor: Actor) -> None:
        try:
            owner = owner_uuid(actor, self.owner_filter)
            if self.tab == "year":
                self._fetch_year(actor, owner)
                return
            if self.tab == "date":
                report = finance.by_date(actor, date.fromisoformat(self.day), owner,
                                         page=self.page, status=self.status or None)
                self.totals, page = totals_view(report.due), report.page
                self.received = rupiah(report.received)
            else:
                detail = finance.month_detail(actor, self.period, owner, page=self.page,
                                              status=self.status or None, search=self.search)
                self.totals, page = totals_view(detail.totals), detail.page
                self.revenue = rupiah(detail.revenue)
        except (ServiceError, ValueError) as exc:
            self.error = error_text(exc)
            self.rows, self.totals, self.total, self.pages = [], {}, 0, 1
            return
        if self.page > page.pages:  # a filter shrank the list under the current page
            self.page = page.pages
            self._fetch(actor)
            return
        self.error = ""
        self.rows = [detail_row(r) for r in page.items]
        self.total, self.pages, self.page = page.total, page.pages, page.page

    def _fetch_year(self, actor: Actor, owner: uuid.UUID | None) -> None:
        summary = finance.year_summary(actor, int(self.year), owner)
        self.error = ""
        self.year_rows = [month_row(m) for m in summary.months]
        self.year_totals = {**totals_view(summary.totals), "revenue": rupiah(summary.revenue),
                            "new_customers": number(summary.new_customers)}
        self.year_chart = charts.year_figure(summary.months)
        self.total, self.pages = len(summary.months), 1

    @rx.event
    async def load(self):
        """Page load: ``?tab=``, ``?owner=``, ``?period=``, ``?year=``, ``?day=``."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        self.loading = True
        yield
        today = clock.today()
        query = self.router.url.query_parameters
        self.year, self.month = str(today.year), f"{today.month:02d}"
        self.day, self.status, self.search, self.page = today.isoformat(), "", "", 1
        self.tab = query.get("tab", "") if query.get("tab", "") in TAB_KEYS else "month"
        if (parts := split_period(query.get("period", ""))) is not None:
            self.year, self.month = parts
        if query.get("year", "").isdigit():
            self.year = query["year"]
        if query.get("day"):
            self.day = query["day"]
        self.owner_options = owner_options(actor)
        self.owner_filter = query.get("owner", "") if actor.is_superadmin else ""
        self.years = year_options(self.year)
        self._fetch(actor)
        self.ready, self.loading = True, False

    @rx.event
    async def set_tab(self, tab: str):
        """Switch view (the status filter and search start over)."""
        self.status, self.search = "", ""
        return await self._set_filter("tab", tab if tab in TAB_KEYS else "month")

    @rx.event
    async def set_month(self, value: str):
        """Month picker."""
        return await self._set_filter("month", value)

    @rx.event
    async def set_year(self, value: str):
        """Year picker."""
        return await self._set_filter("year", value)

    @rx.event
    async def set_day(self, value: str):
        """Date picker of the date view."""
        return await self._set_filter("day", value)

    @rx.event
    async def set_status(self, value: str):
        """Paid / not fully paid / all."""
        return await self._set_filter("status", value)

    @rx.event
    async def set_owner_filter(self, value: str):
        """Superadmin: every owner or one."""
        return await self._set_filter("owner_filter", value)


S = FinanceState


# --- view -------------------------------------------------------------------------------------

def _tabs() -> rx.Component:
    return rx.el.div(
        *[rx.el.button(rx.icon(icon, size=16), label, type="button", on_click=S.set_tab(key),
                       class_name=rx.cond(S.tab == key, "fn-chip active", "fn-chip"),
                       data_testid=f"finance-tab-{key}")
          for key, label, icon in TABS],
        class_name="fn-chips fn-chips-scroll fn-wa-tabs",
    )


def _pickers() -> rx.Component:
    return rx.el.div(
        rx.match(
            S.tab,
            ("year", year_select(S.year, S.set_year, S.years, "finance-year")),
            ("date", rx.el.input(type="date", value=S.day, on_change=S.set_day,
                                 class_name="fn-input fn-select", aria_label="Tanggal",
                                 data_testid="finance-day")),
            rx.fragment(
                select(S.month, S.set_month, MONTHS, "Bulan", "finance-month"),
                year_select(S.year, S.set_year, S.years, "finance-year"),
            ),
        ),
        owner_select(S.owner_filter, S.set_owner_filter, S.owner_options),
        class_name="fn-filter-bar",
    )


def _figures() -> rx.Component:
    t = S.totals
    return rx.el.div(
        stat_card(rx.cond(S.tab == "date", "Jatuh Tempo", "Total Tagihan"), t["billed"],
                  "receipt", t["count"] + " tagihan", "primary", test_id="fin-billed"),
        stat_card("Sudah Terbayar", t["paid"], "circle_check",
                  t["paid_count"] + " lunas · " + t["partial_count"] + " sebagian", "accent",
                  test_id="fin-paid"),
        stat_card("Belum Terbayar", t["unpaid"], "clock", t["unpaid_count"] + " belum lunas",
                  "warning", test_id="fin-unpaid"),
        stat_card("Persentase Terkumpul", t["percent"] + "%", "percent",
                  "terbayar dari total tagihan", "primary", test_id="fin-percent"),
        rx.cond(S.tab == "date",
                stat_card("Diterima Hari Itu", S.received, "wallet",
                          "pembayaran tercatat pada tanggal ini", "accent",
                          test_id="fin-received"),
                stat_card("Pendapatan", S.revenue, "wallet",
                          "uang yang dicatat pada bulan tersebut", "accent",
                          test_id="fin-revenue")),
        class_name=rx.cond(S.loading, "fn-stats fn-loading", "fn-stats"),
    )


def _table() -> rx.Component:
    return rx.el.div(rx.el.table(
        rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in (
            "Nama Pelanggan", "Paket", "Nominal", "Status", "Tanggal Bayar", "Dicatat Oleh")])),
        rx.el.tbody(rx.foreach(S.rows, lambda r: rx.el.tr(
            rx.el.td(rx.link(r["customer"], href="/customers/" + r["customer_id"],
                             class_name="fn-row-link"),
                     rx.el.div("Jatuh tempo ", r["due"],
                               rx.cond(SessionState.is_superadmin, rx.el.span(" · ", r["area"])),
                               class_name="fn-muted")),
            rx.el.td(r["package"]),
            rx.el.td(r["amount"], rx.cond(r["status"] == "partial", rx.el.div(
                "dibayar ", r["paid"], class_name="fn-muted")), class_name="fn-nowrap"),
            rx.el.td(status_pill(r["status"], r["status_label"])),
            rx.el.td(r["paid_at"], class_name="fn-nowrap"),
            rx.el.td(r["recorded_by"]),
            data_testid="finance-row",
        ))),
        class_name="fn-table",
    ), class_name="fn-table-wrap fn-desktop-only")


def _cards() -> rx.Component:
    return rx.el.div(rx.foreach(S.rows, lambda r: rx.el.div(
        rx.link(
            rx.el.div(rx.el.div(r["customer"], class_name="fn-card-title"),
                      status_pill(r["status"], r["status_label"]), class_name="fn-card-row"),
            rx.el.div(rx.el.span(r["package"], class_name="fn-muted"),
                      rx.el.span(r["amount"], class_name="fn-card-amount"),
                      class_name="fn-card-row"),
            rx.el.div(rx.cond(r["paid_at"] != "-",
                              rx.el.span("Dibayar ", r["paid_at"], " · ", r["recorded_by"]),
                              rx.el.span("Jatuh tempo ", r["due"])),
                      class_name="fn-muted"),
            href="/customers/" + r["customer_id"], underline="none", class_name="fn-card-link",
        ),
        class_name="fn-list-card",
        data_testid="finance-card",
    )), class_name="fn-card-list fn-mobile-only")


def _invoice_list() -> rx.Component:
    return rx.el.div(
        rx.el.div(
            *[rx.el.button(label, type="button", on_click=S.set_status(value),
                           class_name=rx.cond(S.status == value, "fn-chip active", "fn-chip"),
                           data_testid=f"finance-chip-{value or 'all'}")
              for value, label in STATUS_CHIPS],
            class_name="fn-chips fn-chips-scroll",
        ),
        rx.cond(S.tab == "month", rx.form(
            rx.el.div(rx.icon("search", size=18, class_name="fn-search-icon"),
                      rx.el.input(name="search", default_value=S.search, type="search",
                                  placeholder="Cari nama atau nomor…",
                                  class_name="fn-input fn-search-input"),
                      class_name="fn-search"),
            rx.button("Cari", type="submit", variant="soft"),
            on_submit=S.apply_search, reset_on_submit=False, class_name="fn-search-row",
        )),
        rx.cond(S.loading, skeleton_rows(), rx.cond(
            S.rows.length() == 0,
            empty_state("receipt", "Tidak ada tagihan",
                        rx.cond(S.tab == "date", "Tidak ada tagihan yang jatuh tempo pada "
                                                 "tanggal ini.",
                                "Belum ada tagihan untuk periode ini.")),
            rx.fragment(_table(), _cards()),
        )),
        pager(S.page, S.pages, S.total_label, "tagihan", S.go(-1), S.go(1)),
        class_name="fn-card fn-stack fn-list-panel fn-note",
    )


def _year_view() -> rx.Component:
    t = S.year_totals
    return rx.fragment(
        rx.el.div(
            stat_card("Total Tagihan", t["billed"], "receipt", t["count"] + " tagihan",
                      "primary", test_id="year-billed"),
            stat_card("Sudah Terbayar", t["paid"], "circle_check", t["paid_count"] + " lunas",
                      "accent", test_id="year-paid"),
            stat_card("Belum Terbayar", t["unpaid"], "clock", t["unpaid_count"] + " belum lunas",
                      "warning", test_id="year-unpaid"),
            stat_card("Persentase Terkumpul", t["percent"] + "%", "percent",
                      "terbayar dari total tagihan", "primary"),
            stat_card("Pendapatan Setahun", t["revenue"], "wallet",
                      t["new_customers"] + " pelanggan baru", "accent", test_id="year-revenue"),
            class_name=rx.cond(S.loading, "fn-stats fn-loading", "fn-stats"),
        ),
        rx.el.div(charts.chart_card("Tagihan, Terbayar & Pendapatan", "Per bulan",
                                    S.year_chart, "chart-year", tip=finance.BASIS_NOTE),
                  class_name="fn-note"),
        rx.el.div(
            rx.el.div(rx.el.table(
                rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in (
                    "Bulan", "Tagihan", "Total Tagihan", "Terbayar", "Belum Terbayar",
                    "% Terkumpul", "Pendapatan", "Pelanggan Baru")])),
                rx.el.tbody(rx.foreach(S.year_rows, lambda m: rx.el.tr(
                    rx.el.td(rx.link(m["label"], href="/finance?tab=month&period=" + m["period"]
                                     + rx.cond(S.owner_filter != "",
                                               "&owner=" + S.owner_filter, ""),
                                     class_name="fn-row-link"), class_name="fn-nowrap"),
                    rx.el.td(m["count"]),
                    rx.el.td(m["billed"], class_name="fn-nowrap"),
                    rx.el.td(m["paid"], class_name="fn-nowrap"),
                    rx.el.td(m["unpaid"], class_name="fn-nowrap"),
                    rx.el.td(m["percent"], "%"),
                    rx.el.td(m["revenue"], class_name="fn-nowrap"),
                    rx.el.td(m["new_customers"]),
                    data_testid="year-row",
                ))),
                rx.el.tfoot(rx.el.tr(
                    rx.el.th("Total"), rx.el.th(t["count"]), rx.el.th(t["billed"]),
                    rx.el.th(t["paid"]), rx.el.th(t["unpaid"]), rx.el.th(t["percent"], "%"),
                    rx.el.th(t["revenue"]), rx.el.th(t["new_customers"]),
                )),
                class_name="fn-table fn-table-num",
            ), class_name="fn-table-wrap fn-desktop-only"),
            rx.el.div(rx.foreach(S.year_rows, lambda m: rx.el.div(
                rx.el.div(rx.el.div(m["label"], class_name="fn-card-title"),
                          rx.el.span(m["percent"], "%", class_name="fn-pill fn-pill-grey"),
                          class_name="fn-card-row"),
                rx.el.div(rx.el.span("Tagihan ", m["billed"], class_name="fn-muted"),
                          rx.el.span(m["paid"], class_name="fn-card-amount"),
                          class_name="fn-card-row"),
                rx.el.div("Pendapatan ", m["revenue"], " · ", m["new_customers"],
                          " pelanggan baru", class_name="fn-muted"),
                class_name="fn-list-card fn-card-link", data_testid="year-card",
            )), class_name="fn-card-list fn-mobile-only"),
            class_name="fn-card fn-list-panel fn-note",
        ),
    )


@rx.page(route="/finance", title="Keuangan — FiberNode Internet",
         on_load=[BrandingState.load, FinanceState.load])
def finance_page() -> rx.Component:
    """Finance per month, per year and per due date."""
    return app_shell(
        "Keuangan",
        rx.el.div(
            page_title("Keuangan", S.heading),
            rx.el.div(
                rx.cond(SessionState.is_superadmin, rx.link(
                    rx.button(rx.icon("landmark", size=16), "Per Mitra", variant="soft"),
                    href="/admin/finance")),
                rx.link(rx.button(rx.icon("file_down", size=16), "Ekspor & Laporan",
                                  variant="soft"),
                        href="/finance/report", data_testid="finance-report-link"),
                class_name="fn-toolbar-actions",
            ),
            class_name="fn-page-bar",
        ),
        _tabs(),
        _pickers(),
        rx.cond(S.error != "", rx.el.div(S.error, class_name="fn-alert fn-alert-error fn-note",
                                         role="alert", data_testid="finance-error")),
        rx.cond(S.ready, rx.el.div(
            rx.cond(S.tab == "year", _year_view(), rx.fragment(_figures(), _invoice_list())),
            basis_note(),
            class_name="fn-note",
        )),
    )
