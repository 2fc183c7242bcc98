"""``/customers/import``: CSV upload → preview → confirm → result (superadmin).

Small files are checked and imported while the user waits; larger ones run as
Celery tasks and this page polls their progress.
"""

from __future__ import annotations

import asyncio
import uuid

import reflex as rx

from fibernode.components.layout import app_shell
from fibernode.components.ui import empty_state, page_title, pager, superadmin_page
from fibernode.formatting import number, rupiah
from fibernode.services import imports
from fibernode.services.context import Actor
from fibernode.services.errors import NotFound, ServiceError
from fibernode.state.branding import BrandingState
from fibernode.state.handlers import off_loop, service_event
from fibernode.state.session import current_actor, to_login
from fibernode.state.ui import toast, user_text

UPLOAD_ID = "customer_csv"
OUTCOME_CHIPS = [("", "Semua"), ("valid", "Valid"), ("invalid", "Error"),
                 ("imported", "Diimpor"), ("skipped", "Dilewati")]
SAMPLE_CSV = (
    "nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,tanggal_register\n"
    "Ahmad Fauzi,6281234567890,0,5,WiFi Sukamaju,Paket 10 Mbps,100000,100000,"
    "3201234567890001,2025-01-15\n"
)


class ImportState(rx.State):
    """The import job on screen (one page of its rows) and upload feedback."""

    forbidden: bool = False
    ready: bool = False
    job_id: str = ""
    filename: str = ""
    status: str = ""
    total_rows: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    imported_rows: int = 0
    skipped_rows: int = 0
    progress_done: int = 0
    progress_total: int = 0
    job_error: str = ""
    rows: list[dict] = []
    page: int = 1
    pages: int = 1
    outcome: str = ""
    upload_error: str = ""
    busy: bool = False
    polling: bool = False
    progress_percent: int = 0
    running: bool = False  # a Celery task is still working on the job

    def _show(self, view) -> None:
        self.job_id, self.filename = str(view.id), view.filename
        self.status = view.status.value
        self.total_rows, self.valid_rows = view.total_rows, view.valid_rows
        self.invalid_rows, self.imported_rows = view.invalid_rows, view.imported_rows
        self.skipped_rows = view.skipped_rows
        self.progress_done, self.progress_total = view.progress_done, view.progress_total
        self.progress_percent, self.running = view.progress_percent, view.is_running
        self.job_error = view.error or ""
        self.page, self.pages = view.page, view.pages
        self.rows = [
            {"line": str(r.line_no), "name": r.name, "phone": r.phone, "area": r.area,
             "package": r.package, "total": rupiah(r.total) if r.total is not None else "",
             "outcome": r.outcome.value,
             "problems": list(r.problems)}
            for r in view.rows
        ]

    async def _reload(self) -> bool:
        actor = await current_actor(self)
        if actor is None or not self.job_id:
            return False
        try:
            view = imports.get_import(actor, uuid.UUID(self.job_id), page=self.page,
                                      outcome=self.outcome or None)
        except ServiceError as exc:
            self.upload_error, self.job_id = exc.message, ""
            return False
        self._show(view)
        return True

    @rx.event
    async def load(self):
        """Page load; ``?job=`` reopens an earlier import."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        self.forbidden = not actor.is_superadmin
        self.ready = True
        self.upload_error = ""
        job = self.router.url.query_parameters.get("job", "")
        if job and not self.forbidden:
            self.job_id, self.page, self.outcome = job, 1, ""
            await self._reload()
        if self.running:
            return ImportState.poll
        return None

    @rx.event
    @service_event(message="upload_error", detail="file", reset={"busy": False})
    async def handle_upload(self, actor: Actor, files: list[rx.UploadFile]):
        """Read the dropped file and let the import service check it."""
        if not files:
            return
        self.busy, self.upload_error = True, ""
        yield
        upload = files[0]
        # Read one byte past the limit so an oversized file is refused, not truncated.
        content = await upload.read(imports.MAX_FILE_BYTES + 1)
        # Parsing and checking up to SYNC_ROWS rows: in a thread, off the event loop.
        view = await off_loop(imports.upload_import, actor,
                              upload.name or "pelanggan.csv", content)
        self.outcome = ""
        self._show(view)
        self.busy = False
        if self.running:
            yield ImportState.poll

    @rx.event
    @service_event(reset={"busy": False}, after="_reload")
    async def confirm(self, actor: Actor):
        """Import the valid rows (in one transaction); a refusal reloads the job."""
        self.busy = True
        yield
        view = await off_loop(imports.confirm_import, actor, self._job_id())
        self.outcome = ""
        self._show(view)
        self.busy = False
        if self.running:
            yield ImportState.poll
        elif self.status == "done":
            yield rx.toast.success(f"{number(self.imported_rows)} pelanggan diimpor.")

    def _job_id(self) -> uuid.UUID:
        """The open import's id; a refusal in Indonesian when none is open."""
        try:
            return uuid.UUID(self.job_id)
        except ValueError:
            raise NotFound("Tidak ada impor yang sedang dibuka.") from None

    @rx.event
    async def cancel(self):
        """Drop a previewed import without importing anything."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            imports.cancel_import(actor, self._job_id())
        except ServiceError as exc:
            return toast("error", exc.message)
        return ImportState.start_over

    @rx.event
    def start_over(self):
        """Back to the upload step."""
        self.job_id = self.status = self.filename = self.job_error = self.upload_error = ""
        self.running = False
        self.rows, self.page, self.pages, self.outcome = [], 1, 1, ""
        return rx.clear_selected_files(UPLOAD_ID)

    @rx.event
    async def set_outcome(self, value: str):
        """Show only valid / invalid / … rows."""
        self.outcome, self.page = value, 1
        await self._reload()

    @rx.event
    async def go(self, delta: int):
        """Previous / next page of rows."""
        self.page = max(1, min(self.pages, self.page + delta))
        await self._reload()

    @rx.event
    @service_event()
    async def download_errors(self, actor: Actor):
        """The rows that were not imported, with the reason, as CSV."""
        data = await off_loop(imports.error_report_csv, actor, self._job_id())
        stem = self.filename.rsplit(".", 1)[0] or "impor"
        return rx.download(data=data, filename=user_text(f"{stem}-gagal.csv"),
                           mime_type="text/csv")

    @rx.event
    def download_sample(self):
        """A template with the spec's header and one example row."""
        return rx.download(data="\ufeff" + SAMPLE_CSV, filename="contoh-impor-pelanggan.csv",
                           mime_type="text/csv")

    @rx.event(background=True)
    async def poll(self):
        """Follow a background validation / import until it finishes."""
        async with self:
            if self.polling:
                return
            self.polling = True
        try:
            while True:
                await asyncio.sleep(1)
                async with self:
                    if not await self._reload() or not self.running:
                        break
        finally:
            async with self:
                self.polling = False


S = ImportState


def _upload_step() -> rx.Component:
    return rx.el.div(
        rx.upload.root(
            rx.el.div(
                rx.icon("file_spreadsheet", size=40, class_name="fn-empty-icon"),
                rx.el.strong("Pilih atau seret file CSV ke sini"),
                rx.el.span("Maksimal 5 MB dan 20.000 baris. Pemisah koma atau titik koma.",
                           class_name="fn-muted"),
                class_name="fn-dropzone",
            ),
            id=UPLOAD_ID,
            multiple=False,
            max_files=1,
            accept={"text/csv": [".csv"], "text/plain": [".csv", ".txt"],
                    "application/vnd.ms-excel": [".csv"]},
            on_drop=S.handle_upload(rx.upload_files(upload_id=UPLOAD_ID)),
            disabled=S.busy,
            data_testid="csv-upload",
        ),
        rx.cond(S.busy, rx.el.div(rx.spinner(), "Memeriksa file…", class_name="fn-card-row")),
        rx.cond(S.upload_error != "", rx.el.div(rx.icon("circle_alert", size=18), S.upload_error,
                                                class_name="fn-alert fn-alert-error",
                                                role="alert", data_testid="upload-error")),
        rx.el.div(
            rx.el.strong("Format kolom"),
            rx.el.code("nama, telepon, diskon, tanggal, area, paket_nama, paket_tarif, "
                       "total_bayar, nik, tanggal_register", class_name="fn-detail"),
            rx.el.ul(
                rx.el.li("area = nama usaha mitra (atau superadmin) pemilik pelanggan"),
                rx.el.li("telepon boleh 08…, +62… atau 62…; tanggal = tanggal tagihan 1–28"),
                rx.el.li("tarif dan total boleh 100000, 100.000 atau Rp 100.000; "
                         "total_bayar = paket_tarif − diskon"),
                rx.el.li("tanggal_register YYYY-MM-DD atau DD/MM/YYYY; nik boleh kosong"),
                class_name="fn-muted",
            ),
            rx.button(rx.icon("download", size=16), "Unduh contoh CSV", variant="soft",
                      on_click=S.download_sample),
            class_name="fn-stack-tight",
        ),
        class_name="fn-card fn-stack",
    )


def _counts() -> rx.Component:
    def stat(label, value, tone, test_id):
        return rx.el.div(rx.el.div(label, class_name="fn-stat-label"),
                         rx.el.div(value.to_string(), class_name=f"fn-stat-value {tone}",
                                   data_testid=test_id),
                         class_name="fn-card fn-stat")
    return rx.el.div(
        stat("Total baris", S.total_rows, "", "count-total"),
        stat("Valid", S.valid_rows, "fn-text-green", "count-valid"),
        stat("Error", S.invalid_rows, "fn-text-red", "count-invalid"),
        rx.cond(S.status == "done", rx.fragment(
            stat("Diimpor", S.imported_rows, "fn-text-green", "count-imported"),
            stat("Dilewati (sudah ada)", S.skipped_rows, "", "count-skipped"),
        )),
        class_name="fn-stats",
    )


def _rows_table() -> rx.Component:
    return rx.el.div(rx.el.table(
        rx.el.thead(rx.el.tr(*[rx.el.th(h) for h in ("Baris", "Nama", "Telepon", "Area", "Paket",
                                                      "Total", "Keterangan")])),
        rx.el.tbody(rx.foreach(S.rows, lambda r: rx.el.tr(
            rx.el.td(r["line"]), rx.el.td(r["name"]), rx.el.td(r["phone"]),
            rx.el.td(r["area"]), rx.el.td(r["package"]), rx.el.td(r["total"]),
            rx.el.td(rx.match(
                r["outcome"],
                ("valid", rx.el.span("Valid", class_name="fn-pill fn-pill-green")),
                ("imported", rx.el.span("Diimpor", class_name="fn-pill fn-pill-green")),
                ("skipped", rx.el.div(rx.el.span("Dilewati", class_name="fn-pill fn-pill-grey"),
                                      rx.el.ul(rx.foreach(r["problems"].to(list[str]),
                                                          rx.el.li),
                                               class_name="fn-problems"))),
                rx.el.ul(rx.foreach(r["problems"].to(list[str]), rx.el.li),
                         class_name="fn-problems"),
            )),
            class_name=rx.match(r["outcome"], ("invalid", "fn-row-invalid"),
                                ("skipped", "fn-row-invalid"), "fn-row-valid"),
            data_testid="import-row-" + r["outcome"].to(str),
        ))),
        class_name="fn-table",
    ), class_name="fn-table-wrap")


def _preview_step() -> rx.Component:
    return rx.el.div(
        rx.el.div(rx.el.strong(S.filename), rx.el.span(rx.match(
            S.status,
            ("validating", "Sedang diperiksa…"), ("previewed", "Pratinjau — belum diimpor"),
            ("importing", "Sedang diimpor…"), ("done", "Selesai"), ("failed", "Gagal"),
            ("cancelled", "Dibatalkan"), ""), class_name="fn-muted", data_testid="import-status"),
            class_name="fn-card-row"),
        rx.cond(S.running, rx.el.div(
            rx.el.div(rx.el.div(style={"width": S.progress_percent.to_string() + "%"}),
                      class_name="fn-progress", data_testid="import-progress"),
            rx.el.span(S.progress_done.to_string(), " / ", S.progress_total.to_string(),
                       " baris (", S.progress_percent.to_string(), "%)", class_name="fn-muted"),
            class_name="fn-stack-tight",
        )),
        rx.cond(S.job_error != "", rx.el.div(S.job_error, class_name="fn-alert fn-alert-error")),
        _counts(),
        rx.el.div(
            *[rx.el.button(label, type="button", on_click=S.set_outcome(value),
                           class_name=rx.cond(S.outcome == value, "fn-chip active", "fn-chip"))
              for value, label in OUTCOME_CHIPS],
            class_name="fn-chips",
        ),
        rx.cond(S.rows.length() == 0, empty_state("list_filter", "Tidak ada baris di sini"),
                _rows_table()),
        pager(S.page, S.pages, S.total_rows.to_string(), "baris", S.go(-1), S.go(1)),
        rx.el.div(
            rx.cond(S.status == "previewed", rx.fragment(
                rx.button("Batal", variant="soft", color_scheme="gray", on_click=S.cancel),
                rx.button(rx.icon("check", size=16), "Impor ", S.valid_rows.to_string(),
                          " baris valid", on_click=S.confirm, loading=S.busy,
                          disabled=S.valid_rows == 0, data_testid="confirm-import"),
            )),
            rx.cond((S.invalid_rows > 0) | (S.skipped_rows > 0),
                    rx.button(rx.icon("download", size=16), "Unduh laporan error (CSV)",
                              variant="soft", on_click=S.download_errors,
                              data_testid="error-report")),
            rx.cond(~S.running & (S.status != "previewed"),
                    rx.button("Impor file lain", variant="soft", on_click=S.start_over)),
            rx.cond(S.status == "done",
                    rx.link(rx.button("Lihat pelanggan"), href="/customers")),
            class_name="fn-dialog-actions",
        ),
        class_name="fn-card fn-stack",
    )


@rx.page(route="/customers/import", title="Impor Pelanggan — FiberNode Internet",
         on_load=[BrandingState.load, ImportState.load])
def import_page() -> rx.Component:
    """CSV import of subscribers."""
    return app_shell(
        "Impor Pelanggan",
        superadmin_page(
            S.ready, S.forbidden,
            rx.el.div(
                rx.el.div(rx.link(rx.icon("arrow_left", size=16), "Pelanggan",
                                  href="/customers", class_name="fn-back-link"),
                          page_title("Impor Pelanggan dari CSV",
                                     "Periksa dulu, baru impor. Baris yang sudah terdaftar "
                                     "tidak akan diimpor dua kali."),
                          class_name="fn-page-head"),
                class_name="fn-page-bar",
            ),
            rx.cond(S.job_id == "", _upload_step(), _preview_step()),
        ),
    )
