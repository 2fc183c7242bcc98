"""``/admin/finance``: every owner's figures of a month side by side (superadmin).

Sorting is done in SQL by :func:`fibernode.services.finance.by_mitra`; the totals row
comes from the same service over all owners, so it matches the dashboard.
A row opens ``/finance`` narrowed to that owner and month.
"""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx

from fibernode import clock
from fibernode.components.layout import app_shell
from fibernode.components.ui import empty_state, page_title, skeleton_rows, superadmin_page
from fibernode.formatting import month_year, number, rupiah
from fibernode.pages.finance import (
    MONTHS,
    basis_note,
    error_text,
    select,
    split_period,
    year_options,
    year_select,
)
from fibernode.services import finance
from fibernode.services.errors import ServiceError
from fibernode.state.branding import BrandingState
from fibernode.state.session import current_actor, to_login

# (sort key of finance.MITRA_SORTS, header) in column order.
COLUMNS = [("business_name", "Mitra"), ("customers", "Pelanggan aktif"),
           ("billed", "Tagihan"), ("paid", "Terkumpul"), ("outstanding", "Belum terbayar"),
           ("rate", "% terkumpul"), ("overdue", "Terlambat"), ("revenue", "Pendapatan")]


def mitra_row(r: finance.MitraRow) -> dict[str, str]:
    """One owner formatted for the table and the cards."""
    return {
        "id": str(r.owner_id), "business_name": r.business_name, "owner_name": r.owner_name,
        "admin": "1" if r.is_superadmin else "",
        "customers": number(r.active_customers), "isolated": number(r.isolated_customers),
        "billed": rupiah(r.totals.billed), "count": number(r.totals.invoice_count),
        "paid": rupiah(r.totals.paid), "outstanding": rupiah(r.totals.unpaid),
        "rate": number(r.totals.collected_percent), "revenue": rupiah(r.revenue),
        "overdue": rupiah(r.overdue_amount), "overdue_count": number(r.overdue_count),
    }


class AdminFinanceState(rx.State):
    """The month, the sort and the owners' rows."""

    ready: bool = False
    denied: bool = False
    loading: bool = True
    error: str = ""
    month: str = ""
    year: str = ""
    years: list[str] = []
    sort: str = "business_name"
    descending: bool = False
    rows: list[dict[str, str]] = []
    totals: dict[str, str] = {}

    @rx.var
    def period(self) -> str:
        """The chosen month as ``YYYY-MM``."""
        return f"{self.year}-{self.month}"

    @rx.var
    def period_label(self) -> str:
        """``Maret 2026``."""
        try:
            return month_year(self.period)
        except ValueError:
            return ""

    async def _reload(self):
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.denied = not actor.is_superadmin
        if self.denied:
            return None
        try:
            rows = finance.by_mitra(actor, self.period, sort=self.sort,
                                    descending=self.descending)
            # The period's totals and revenue; subscribers and overdue "as of today",
            # as in each row: one statement.
            h = finance.headline(actor, self.period)
        except (ServiceError, ValueError) as exc:
            self.error, self.rows, self.totals = error_text(exc), [], {}
            return None
        self.error = ""
        self.rows = [mitra_row(r) for r in rows]
        totals = h.totals
        self.totals = {
            "customers": number(h.active_customers), "billed": rupiah(totals.billed),
            "count": number(totals.invoice_count), "paid": rupiah(totals.paid),
            "outstanding": rupiah(totals.unpaid), "rate": number(totals.collected_percent),
            "revenue": rupiah(h.revenue), "overdue": rupiah(h.overdue_amount),
            "overdue_count": number(h.overdue_count),
        }
        return None

    @rx.event
    async def load(self):
        """Page load (``?period=YYYY-MM``); a mitra gets the no-access view."""
        today = clock.today()
        self.year, self.month = str(today.year), f"{today.month:02d}"
        if (parts := split_period(self.router.url.query_parameters.get("period", ""))):
            self.year, self.month = parts
        self.years = year_options(self.year)
        self.loading = True
        redirect = await self._reload()
        self.ready, self.loading = True, False
        return redirect

    @rx.event
    async def set_month(self, value: str):
        """Month picker."""
        self.month = value
        return await self._reload()

    @rx.event
    async def set_year(self, value: str):
        """Year picker."""
        self.year = value
        return await self._reload()

    @rx.event
    async def sort_by(self, column: str):
        """Header click: the same column flips the order.

        A new column starts descending (biggest figures first), the name ascending.
        """
        if column not in finance.MITRA_SORTS:
            return None
        if column == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = column, column != "business_name"
        return await self._reload()

    @rx.event
    def open_owner(self, owner_id: str):
        """One owner's month on ``/finance``."""
        # Quoted: the id comes from the client, and no "<" may reach Reflex's Var parsing.
        query = urlencode({"tab": "month", "owner": owner_id, "period": self.period})
        return rx.redirect(f"/finance?{query}")


S = AdminFinanceState


def _header(column: str, label: str) -> rx.Component:
    return rx.el.th(rx.el.button(
        label,
        rx.cond(S.sort == column,
                rx.cond(S.descending, rx.icon("arrow_down", size=14),
                        rx.icon("arrow_up", size=14)),
                rx.icon("arrow_up_down", size=14, class_name="fn-sort-idle")),
        on_click=S.sort_by(column), type="button", class_name="fn-sort-btn",
        data_testid=f"mitra-sort-{column}",
    ))


def _table() -> rx.Component:
    t = S.totals
    return rx.el.div(rx.el.table(
        rx.el.thead(rx.el.tr(*[_header(c, label) for c, label in COLUMNS])),
        rx.el.tbody(rx.foreach(S.rows, lambda r: rx.el.tr(
            rx.el.td(rx.link(r["business_name"],
                             href="/finance?tab=month&owner=" + r["id"] + "&period=" + S.period,
                             # The row's own click would navigate a second time.
                             on_click=rx.stop_propagation, class_name="fn-row-link"),
                     rx.el.div(r["owner_name"], rx.cond(r["admin"] != "", " · Superadmin", ""),
                               class_name="fn-muted")),
            rx.el.td(r["customers"], rx.el.div(r["isolated"], " isolir", class_name="fn-muted")),
            rx.el.td(r["billed"], rx.el.div(r["count"], " tagihan", class_name="fn-muted"),
                     class_name="fn-nowrap"),
            rx.el.td(r["paid"], class_name="fn-nowrap"),
            rx.el.td(r["outstanding"], class_name="fn-nowrap"),
            rx.el.td(r["rate"], "%"),
            rx.el.td(r["overdue"], rx.el.div(r["overdue_count"], " tagihan",
                                             class_name="fn-muted"), class_name="fn-nowrap"),
            rx.el.td(r["revenue"], class_name="fn-nowrap"),
            on_click=S.open_owner(r["id"]),
            class_name="fn-row-click",
            data_testid="mitra-finance-row",
        ))),
        rx.el.tfoot(rx.el.tr(
            rx.el.th("Total semua"), rx.el.th(t["customers"]), rx.el.th(t["billed"]),
            rx.el.th(t["paid"]), rx.el.th(t["outstanding"]), rx.el.th(t["rate"], "%"),
            rx.el.th(t["overdue"]), rx.el.th(t["revenue"]),
            data_testid="mitra-finance-total",
        )),
        class_name="fn-table fn-table-num",
    ), class_name="fn-table-wrap fn-desktop-only")


def _cards() -> rx.Component:
    return rx.el.div(
        rx.el.div(*[rx.el.button(label, type="button", on_click=S.sort_by(c),
                                 class_name=rx.cond(S.sort == c, "fn-chip active", "fn-chip"))
                    for c, label in COLUMNS], class_name="fn-chips fn-chips-scroll"),
        rx.foreach(S.rows, lambda r: rx.link(
            rx.el.div(rx.el.div(r["business_name"], class_name="fn-card-title"),
                      rx.el.span(r["rate"], "%", class_name="fn-pill fn-pill-grey"),
                      class_name="fn-card-row"),
            rx.el.div(rx.el.span(r["customers"], " pelanggan aktif", class_name="fn-muted"),
                      rx.el.span(r["paid"], class_name="fn-card-amount"),
                      class_name="fn-card-row"),
            rx.el.div("Tagihan ", r["billed"], " · belum ", r["outstanding"],
                      class_name="fn-muted"),
            rx.el.div("Pendapatan ", r["revenue"], " · terlambat ", r["overdue"],
                      class_name="fn-muted"),
            href="/finance?tab=month&owner=" + r["id"] + "&period=" + S.period,
            underline="none", class_name="fn-list-card fn-card-link",
            data_testid="mitra-finance-card",
        )),
        class_name="fn-card-list fn-mobile-only",
    )


@rx.page(route="/admin/finance", title="Keuangan Mitra — FiberNode Internet",
         on_load=[BrandingState.load, AdminFinanceState.load])
def admin_finance_page() -> rx.Component:
    """Owners side by side."""
    return app_shell(
        "Keuangan Mitra",
        superadmin_page(
            S.ready, S.denied,
            rx.el.div(
                page_title("Keuangan Mitra", "Periode " + S.period_label),
                rx.el.div(
                    rx.link(rx.button(rx.icon("chart_line", size=16), "Keuangan",
                                      variant="soft"), href="/finance"),
                    rx.link(rx.button(rx.icon("file_down", size=16), "Ekspor & Laporan",
                                      variant="soft"), href="/finance/report"),
                    class_name="fn-toolbar-actions",
                ),
                class_name="fn-page-bar",
            ),
            rx.el.div(
                select(S.month, S.set_month, MONTHS, "Bulan", "mitra-finance-month"),
                year_select(S.year, S.set_year, S.years, "mitra-finance-year"),
                class_name="fn-filter-bar",
            ),
            rx.cond(S.error != "", rx.el.div(S.error, class_name="fn-alert fn-alert-error fn-note",
                                             role="alert")),
            rx.el.div(
                rx.cond(S.loading, skeleton_rows(), rx.cond(
                    S.rows.length() == 0,
                    empty_state("landmark", "Belum ada mitra aktif"),
                    rx.fragment(_table(), _cards()),
                )),
                class_name="fn-card fn-stack fn-list-panel fn-note",
            ),
            rx.el.p("Pelanggan aktif dan tagihan terlambat dihitung per hari ini; tagihan, "
                    "terkumpul dan pendapatan untuk periode terpilih. Klik baris untuk "
                    "membuka keuangan mitra tersebut.", class_name="fn-muted fn-note"),
            basis_note(),
        ),
    )
