"""``/customers``: the subscriber list, paged and filtered in SQL.

Desktop shows a sortable table with inline filters; phones show cards, a
floating add button and forms in a bottom sheet.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.pwa import pull_to_refresh
from fibernode.components.ui import (
    empty_state,
    fab,
    page_title,
    pager,
    sheet,
    skeleton_rows,
    status_badge,
)
from fibernode.formatting import rupiah
from fibernode.pages.customer_form import (
    BILLING_DAYS,
    CustomerFormMixin,
    customer_form,
    move_sheet,
)
from fibernode.services import customers
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError
from fibernode.state.branding import BrandingState
from fibernode.state.paging import PagedListMixin
from fibernode.state.session import SessionState, current_actor, to_login

STATUS_CHIPS = [("", "Semua"), ("active", "Aktif"), ("isolated", "Isolir"),
                ("inactive", "Nonaktif")]
SORTABLE = {"name": "Nama", "billing_date": "Tgl Tagih", "total_bill": "Total",
            "register_date": "Terdaftar"}


def customer_row(c: customers.CustomerView) -> dict[str, str]:
    """A subscriber formatted for the table and the cards."""
    return {
        "id": str(c.id), "name": c.name, "phone": c.phone, "area": c.area,
        "package": c.package_name, "speed": c.package_speed,
        "total": rupiah(c.total_bill), "discount": rupiah(c.discount) if c.discount else "",
        "billing_date": str(c.billing_date), "status": c.status.value,
    }


class CustomersState(PagedListMixin, CustomerFormMixin, rx.State):
    """One page of subscribers plus the filters that produced it."""

    rows: list[dict[str, str]] = []
    status: str = ""
    package_filter: str = ""
    owner_filter: str = ""
    day_filter: str = ""
    sort: str = "name"
    error: str = ""
    filters_open: bool = False
    selected: list[str] = []  # ticked for a bulk move (superadmin)

    @rx.var
    def export_query(self) -> str:
        """The current filter as a query string for the export links."""
        params = {"search": self.search, "status": self.status,
                  "package_id": self.package_filter, "owner_id": self.owner_filter,
                  "billing_date": self.day_filter, "sort": self.sort}
        return urlencode({k: v for k, v in params.items() if v})

    @rx.var
    def active_filter_count(self) -> int:
        """How many filters besides the search narrow the list (badge on phones)."""
        return sum(1 for v in (self.status, self.package_filter, self.owner_filter,
                               self.day_filter) if v)

    def _fetch(self, actor: Actor) -> None:
        try:
            result = customers.list_customers(
                actor, page=self.page, search=self.search, status=self.status or None,
                package_id=uuid.UUID(self.package_filter) if self.package_filter else None,
                owner_id=(uuid.UUID(self.owner_filter)
                          if self.owner_filter and actor.is_superadmin else None),
                billing_date=int(self.day_filter) if self.day_filter else None,
                sort=self.sort)
        except (ServiceError, ValueError) as exc:
            self.error = getattr(exc, "message", "Filter tidak valid.")
            self.rows, self.total, self.pages = [], 0, 1
            return
        if self.page > result.pages:  # the last page shrank (e.g. after a delete)
            self.page = result.pages
            return self._fetch(actor)
        self.error = ""
        self.rows = [customer_row(c) for c in result.items]
        self.total, self.pages, self.page = result.total, result.pages, result.page
        self.selected = [s for s in self.selected if any(r["id"] == s for r in self.rows)]
        return None

    async def _after_save(self, actor: Actor, customer_id: uuid.UUID) -> None:
        self._fetch(actor)

    @rx.event
    async def load(self):
        """Page load: options, the ``?q=`` from the header search, the first page."""
        actor = await current_actor(self)
        if actor is None:
            yield await to_login(self)
            return
        self.loading = True
        yield
        query = self.router.url.query_parameters
        if "q" in query:
            self.search = query.get("q", "").strip()
            self.page = 1
        if query.get("mitra") and actor.is_superadmin:
            self.owner_filter, self.page = query["mitra"], 1
        self._load_options(actor)
        self._fetch(actor)
        self.loading = False

    @rx.event
    async def clear_search(self):
        """Drop the search term."""
        self.search, self.page = "", 1
        return await self._refetch()

    @rx.event
    async def set_status(self, value: str):
        """Status chip."""
        return await self._set_filter("status", value)

    @rx.event
    async def set_package_filter(self, value: str):
        """Package filter."""
        return await self._set_filter("package_filter", value)

    @rx.event
    async def set_owner_filter(self, value: str):
        """Owner filter (superadmin)."""
        return await self._set_filter("owner_filter", value)

    @rx.event
    async def set_day_filter(self, value: str):
        """Billing-day filter."""
        return await self._set_filter("day_filter", value)

    @rx.event
    async def reset_filters(self):
        """Back to everything."""
        self.status = self.package_filter = self.owner_filter = self.day_filter = ""
        self.page = 1
        return await self._refetch()

    @rx.event
    def set_filters_open(self, value: bool):
        """Phone filter sheet."""
        self.filters_open = value

    @rx.event
    async def sort_by(self, column: str):
        """Click on a column header: ascending, then descending."""
        if column not in SORTABLE:
            return None
        self.sort = f"-{column}" if self.sort == column else column
        self.page = 1
        return await self._refetch()

    # --- superadmin: select and move -----------------------------------------------------

    @rx.event
    def toggle_selected(self, customer_id: str):
        """Tick / untick one row."""
        if customer_id in self.selected:
            self.selected = [s for s in self.selected if s != customer_id]
        else:
            self.selected = [*self.selected, customer_id]

    @rx.event
    def toggle_all(self):
        """Tick every row of this page, or none."""
        ids = [r["id"] for r in self.rows]
        self.selected = [] if set(ids) <= set(self.selected) else ids

    @rx.event
    async def move_selected(self, form: dict):
        """Give the ticked subscribers to another owner, in one transaction."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        moved = self._move(actor, self.selected, form)
        if moved is None:
            return None
        self.selected = []
        self._fetch(actor)
        return rx.toast.success(f"{moved} pelanggan dipindahkan.")


S = CustomersState


def _chips() -> rx.Component:
    return rx.el.div(
        *[rx.el.button(label, type="button", on_click=S.set_status(value),
                       class_name=rx.cond(S.status == value, "fn-chip active", "fn-chip"),
                       data_testid=f"chip-{value or 'all'}")
          for value, label in STATUS_CHIPS],
        class_name="fn-chips",
    )


def _filter_selects() -> rx.Component:
    all_opt = rx.el.option
    return rx.fragment(
        rx.el.select(all_opt("Semua paket", value=""),
                     rx.foreach(S.package_options,
                                lambda o: rx.el.option(o["label"], value=o["value"])),
                     value=S.package_filter, on_change=S.set_package_filter,
                     class_name="fn-input fn-select", aria_label="Filter paket",
                     data_testid="filter-package"),
        rx.cond(SessionState.is_superadmin,
                rx.el.select(all_opt("Semua mitra", value=""),
                             rx.foreach(S.owner_options,
                                        lambda o: rx.el.option(o["label"], value=o["value"])),
                             value=S.owner_filter, on_change=S.set_owner_filter,
                             class_name="fn-input fn-select", aria_label="Filter mitra",
                             data_testid="filter-owner")),
        rx.el.select(all_opt("Semua tanggal tagih", value=""),
                     *[rx.el.option(o["label"], value=o["value"]) for o in BILLING_DAYS],
                     value=S.day_filter, on_change=S.set_day_filter,
                     class_name="fn-input fn-select", aria_label="Filter tanggal tagihan",
                     data_testid="filter-day"),
    )


def _search_bar() -> rx.Component:
    return rx.form(
        rx.el.div(
            rx.icon("search", size=18, class_name="fn-search-icon"),
            rx.el.input(name="search", default_value=S.search, placeholder="Cari nama atau nomor…",
                        class_name="fn-input fn-search-input", type="search",
                        aria_label="Cari pelanggan", data_testid="customer-search"),
            class_name="fn-search",
        ),
        rx.button("Cari", type="submit", variant="soft", class_name="fn-desktop-only"),
        rx.el.button(rx.icon("sliders_horizontal", size=18),
                     rx.cond(S.active_filter_count > 0,
                             rx.el.span(S.active_filter_count.to_string(),
                                        class_name="fn-badge-dot")),
                     type="button", on_click=S.set_filters_open(True),
                     class_name="fn-icon-btn fn-mobile-only", aria_label="Filter",
                     data_testid="open-filters"),
        on_submit=S.apply_search,
        reset_on_submit=False,
        key=S.search,
        class_name="fn-search-row",
    )


def _sort_head(column: str, label: str) -> rx.Component:
    return rx.el.th(
        rx.el.button(
            label,
            rx.match(S.sort, (column, rx.icon("arrow_up", size=14)),
                     (f"-{column}", rx.icon("arrow_down", size=14)),
                     rx.icon("arrow_up_down", size=14, class_name="fn-sort-idle")),
            on_click=S.sort_by(column), type="button", class_name="fn-sort-btn",
            data_testid=f"sort-{column}",
        ),
    )


def _table() -> rx.Component:
    return rx.el.div(
        rx.el.table(
            rx.el.thead(rx.el.tr(
                rx.cond(SessionState.is_superadmin, rx.el.th(
                    rx.el.input(type="checkbox", on_change=S.toggle_all, class_name="fn-checkbox",
                                checked=(S.selected.length() > 0)
                                & (S.selected.length() == S.rows.length()),
                                aria_label="Pilih semua"))),
                _sort_head("name", "Nama"),
                rx.el.th("Telepon"),
                rx.cond(SessionState.is_superadmin, rx.el.th("Area")),
                rx.el.th("Paket"),
                _sort_head("billing_date", "Tgl Tagih"),
                _sort_head("total_bill", "Total"),
                rx.el.th("Status"),
                rx.el.th(""),
            )),
            rx.el.tbody(rx.foreach(S.rows, lambda r: rx.el.tr(
                rx.cond(SessionState.is_superadmin, rx.el.td(
                    rx.el.input(type="checkbox", checked=S.selected.contains(r["id"]),
                                on_change=S.toggle_selected(r["id"]),
                                class_name="fn-checkbox", aria_label="Pilih"))),
                rx.el.td(rx.link(r["name"], href="/customers/" + r["id"],
                                 class_name="fn-row-link")),
                rx.el.td(r["phone"], class_name="fn-nowrap"),
                rx.cond(SessionState.is_superadmin, rx.el.td(r["area"])),
                rx.el.td(r["package"], rx.el.div(r["speed"], class_name="fn-muted")),
                rx.el.td(r["billing_date"]),
                rx.el.td(r["total"], rx.cond(r["discount"] != "", rx.el.div(
                    "diskon ", r["discount"], class_name="fn-muted")), class_name="fn-nowrap"),
                rx.el.td(status_badge(r["status"])),
                rx.el.td(rx.button(rx.icon("pencil", size=14), "Ubah", size="1", variant="soft",
                                   on_click=S.open_edit(r["id"]),
                                   data_testid="edit-" + r["id"])),
                data_testid="customer-row",
            ))),
            class_name="fn-table",
        ),
        class_name="fn-table-wrap fn-desktop-only",
    )


def _cards() -> rx.Component:
    return rx.el.div(
        rx.foreach(S.rows, lambda r: rx.el.div(
            rx.link(
                rx.el.div(
                    rx.el.div(r["name"], class_name="fn-card-title"),
                    status_badge(r["status"]),
                    class_name="fn-card-row",
                ),
                rx.el.div(r["phone"], " · ", r["package"], class_name="fn-muted"),
                rx.el.div(
                    rx.el.span("Tgl ", r["billing_date"], class_name="fn-muted"),
                    rx.el.span(r["total"], class_name="fn-card-amount"),
                    class_name="fn-card-row",
                ),
                href="/customers/" + r["id"], underline="none", class_name="fn-card-link",
            ),
            rx.el.button(rx.icon("pencil", size=18), on_click=S.open_edit(r["id"]),
                         class_name="fn-icon-btn fn-card-action", aria_label="Ubah",
                         type="button", data_testid="card-edit-" + r["id"]),
            class_name="fn-list-card",
            data_testid="customer-card",
        )),
        class_name="fn-card-list fn-mobile-only",
    )


def _toolbar() -> rx.Component:
    return rx.el.div(
        page_title("Pelanggan", S.total_label + " pelanggan"),
        rx.el.div(
            rx.cond(SessionState.is_superadmin, rx.fragment(
                rx.link(rx.button(rx.icon("upload", size=16), "Impor CSV", variant="soft"),
                        href="/customers/import", data_testid="import-link"),
                rx.menu.root(
                    rx.menu.trigger(rx.button(rx.icon("download", size=16), "Ekspor",
                                              variant="soft", data_testid="export-menu")),
                    rx.menu.content(
                        rx.menu.item("CSV", on_click=rx.redirect(
                            "/api/customers/export?format=csv&" + S.export_query,
                            is_external=True)),
                        rx.menu.item("Excel (XLSX)", on_click=rx.redirect(
                            "/api/customers/export?format=xlsx&" + S.export_query,
                            is_external=True)),
                    ),
                ),
            )),
            rx.button(rx.icon("plus", size=16), "Tambah Pelanggan", on_click=S.open_create,
                      class_name="fn-desktop-only", data_testid="add-customer"),
            class_name="fn-toolbar-actions",
        ),
        class_name="fn-page-bar",
    )


def _bulk_bar() -> rx.Component:
    return rx.cond(
        SessionState.is_superadmin & (S.selected.length() > 0),
        rx.el.div(
            rx.el.span(S.selected.length().to_string(), " dipilih"),
            rx.button(rx.icon("arrow_right_left", size=16), "Pindahkan ke mitra lain",
                      size="2", on_click=S.set_move_open(True), data_testid="bulk-move"),
            class_name="fn-bulk-bar",
        ),
    )


def _move_sheet() -> rx.Component:
    return move_sheet(S, "Pindahkan Pelanggan",
                      S.selected.length().to_string() + " pelanggan akan dipindahkan.",
                      S.move_selected)


def _filter_sheet() -> rx.Component:
    return sheet(
        S.filters_open, S.set_filters_open, "Filter Pelanggan",
        rx.el.div(
            rx.el.span("Status", class_name="fn-field-label"),
            _chips(),
            _filter_selects(),
            rx.el.div(
                rx.button("Atur ulang", variant="soft", color_scheme="gray",
                          on_click=S.reset_filters),
                rx.dialog.close(rx.button("Tampilkan", data_testid="apply-filters")),
                class_name="fn-dialog-actions",
            ),
            class_name="fn-form fn-filter-sheet",
        ),
        test_id="filter-sheet",
    )


def _list() -> rx.Component:
    return rx.cond(
        S.loading,
        skeleton_rows(),
        rx.cond(
            S.rows.length() == 0,
            empty_state("users", "Tidak ada pelanggan",
                        rx.cond((S.search != "") | (S.active_filter_count > 0),
                                "Tidak ada yang cocok dengan pencarian atau filter ini.",
                                "Tambahkan pelanggan pertama Anda dengan tombol +.")),
            rx.fragment(_table(), _cards()),
        ),
    )


@rx.page(route="/customers", title="Pelanggan — FiberNode Internet",
         on_load=[BrandingState.load, CustomersState.load])
def customers_page() -> rx.Component:
    """The subscriber list."""
    return app_shell(
        "Pelanggan",
        pull_to_refresh(S.load),
        _toolbar(),
        rx.el.div(
            _search_bar(),
            rx.el.div(_chips(), _filter_selects(),
                      rx.cond(S.active_filter_count > 0,
                              rx.button("Atur ulang", variant="ghost", on_click=S.reset_filters)),
                      class_name="fn-filter-bar fn-desktop-only"),
            rx.cond(S.search != "", rx.el.div(
                "Hasil pencarian \u201c", S.search, "\u201d ",
                rx.el.button("hapus", on_click=S.clear_search, type="button",
                             class_name="fn-link-btn"),
                class_name="fn-muted")),
            rx.cond(S.error != "", rx.el.div(S.error, class_name="fn-alert fn-alert-error")),
            _bulk_bar(),
            _list(),
            pager(S.page, S.pages, S.total_label, "pelanggan", S.go(-1), S.go(1)),
            class_name="fn-card fn-stack fn-list-panel",
        ),
        fab("Tambah pelanggan", S.open_create),
        customer_form(S),
        _filter_sheet(),
        _move_sheet(),
    )
