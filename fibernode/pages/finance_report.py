"""``/finance/report``: recap exports, reports and the mitra settlement statement.

Each request becomes a background file job (a Celery worker builds the file);
the page polls the jobs every second, shows their progress and a download link
(``/api/files/{id}``) when done. Files are kept 24 hours. A mitra only ever gets
their own figures: the services re-check the scope, here and in the worker.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import reflex as rx

from fibernode import clock
from fibernode.components.layout import app_shell
from fibernode.components.ui import alert, field, page_title
from fibernode.formatting import date_time, month_year
from fibernode.pages.finance import (
    MONTHS,
    error_text,
    owner_options,
    owner_uuid,
    year_options,
)
from fibernode.services import filejobs, finance_files
from fibernode.services.context import Actor
from fibernode.services.errors import ServiceError, ValidationFailed
from fibernode.services.filejobs import FileJobView
from fibernode.state.branding import BrandingState
from fibernode.state.session import SessionState, current_actor, to_login

RECAP_FORMATS = [{"value": "xlsx", "label": "Excel (.xlsx)"}, {"value": "csv", "label": "CSV"}]
REPORT_FORMATS = [{"value": "xlsx", "label": "Excel (.xlsx)"}, {"value": "pdf", "label": "PDF"}]
REPORT_OPTIONS = [{"value": key, "label": label}
                  for key, label in finance_files.REPORT_LABELS.items()]
# Which parameter each report takes (see finance_files.start_report).
REPORT_PARAM = {"monthly_sales": "year", "package_popularity": "period",
                "mitra_performance": "period", "aging": "on"}
POLL_SECONDS = 1
POLL_LIMIT = 900  # 15 minutes of polling at most; the job keeps running regardless
MAX_JOBS = 8
PICK_OWNER = "Pilih mitra terlebih dahulu."


def _day(value: str, name: str, label: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed({name: f"{label} tidak valid."}) from None


def _period(form: dict) -> str:
    return f"{form.get('year', '')}-{form.get('month', '')}"


def job_view(job: FileJobView, label: str) -> dict[str, str]:
    """A file job as the progress list shows it."""
    return {"id": str(job.id), "label": label, "filename": job.filename,
            "status": job.status.value, "percent": str(job.progress_percent),
            "error": job.error or "", "created": date_time(job.created_at)}


class FinanceReportState(rx.State):
    """The three forms' errors, the chosen report and the jobs of this visit."""

    ready: bool = False
    owner_options: list[dict[str, str]] = []
    years: list[str] = []
    this_year: str = ""
    this_month: str = ""
    month_start: str = ""
    month_end: str = ""
    today: str = ""
    report: str = "monthly_sales"
    recap_error: str = ""
    report_error: str = ""
    settle_error: str = ""
    jobs: list[dict[str, str]] = []
    polling: bool = False

    @rx.var
    def report_param(self) -> str:
        """``year`` / ``period`` / ``on``: which input the chosen report needs."""
        return REPORT_PARAM.get(self.report, "year")

    @rx.event
    async def load(self):
        """Page load: defaults (this month, this year, today) and the owner list."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        today = clock.today()
        self.today = today.isoformat()
        self.this_year, self.this_month = str(today.year), f"{today.month:02d}"
        self.month_start = today.replace(day=1).isoformat()
        nxt = date(today.year + today.month // 12, today.month % 12 + 1, 1)
        self.month_end = date.fromordinal(nxt.toordinal() - 1).isoformat()
        self.years = year_options()
        self.owner_options = owner_options(actor)
        self.ready = True
        return None

    @rx.event
    def set_report(self, value: str):
        """Choose a report (its parameter input follows)."""
        self.report = value if value in REPORT_PARAM else "monthly_sales"

    def _add(self, job: FileJobView, label: str) -> None:
        self.jobs = [job_view(job, label), *self.jobs][:MAX_JOBS]

    async def _start(self, error_field: str, start):
        """Run ``start(actor)`` (a finance_files call); show its error or follow its job."""
        actor = await current_actor(self)
        if actor is None:
            return await to_login(self)
        try:
            job, label = start(actor)
        except (ServiceError, ValueError) as exc:
            setattr(self, error_field, error_text(exc))
            return None
        setattr(self, error_field, "")
        self._add(job, label)
        if not self.polling:
            self.polling = True
            return FinanceReportState.poll_jobs
        return None

    @rx.event
    async def start_recap(self, form: dict):
        """The recap of the invoices due between two dates, as CSV or XLSX."""
        def start(actor: Actor):
            first = _day(form.get("start", ""), "start", "Tanggal mulai")
            last = _day(form.get("end", ""), "end", "Tanggal akhir")
            fmt = form.get("fmt") or "xlsx"
            job = finance_files.start_recap(actor, start=first, end=last, fmt=fmt,
                                            owner_id=owner_uuid(actor, form.get("owner", "")))
            return job, (f"Rekap tagihan {first.strftime('%d/%m/%Y')}–"
                         f"{last.strftime('%d/%m/%Y')} ({fmt.upper()})")

        return await self._start("recap_error", start)

    @rx.event
    async def start_report(self, form: dict):
        """One of the reports as XLSX or PDF, with the parameter it needs."""
        report = self.report

        def start(actor: Actor):
            fmt = form.get("fmt") or "xlsx"
            args: dict = {}
            param = REPORT_PARAM.get(report, "year")
            if param == "year":
                year = form.get("year", "")
                args["year"] = int(year) if year.isdigit() else 0
            elif param == "period":
                args["period"] = _period(form)
            else:
                args["on"] = _day(form.get("on", ""), "on", "Tanggal")
            # The service validates; the label is only made for an accepted request.
            job = finance_files.start_report(actor, report=report, fmt=fmt,
                                             owner_id=owner_uuid(actor, form.get("owner", "")),
                                             **args)
            what = (str(args["year"]) if param == "year"
                    else month_year(args["period"]) if param == "period"
                    else "per " + args["on"].strftime("%d/%m/%Y"))
            label = finance_files.REPORT_LABELS.get(report, report)
            return job, f"{label} {what} ({fmt.upper()})"

        return await self._start("report_error", start)

    @rx.event
    async def start_settlement(self, form: dict):
        """A mitra's settlement statement for a month (DOCX to print and sign)."""
        def start(actor: Actor):
            if actor.is_superadmin:
                owner = form.get("owner", "")
                if not owner:
                    raise ValidationFailed({"owner": PICK_OWNER})
                owner_id = uuid.UUID(owner)
            else:
                owner_id = actor.user_id
            period = _period(form)
            job = finance_files.start_settlement(actor, owner_id=owner_id, period=period)
            return job, f"Rekonsiliasi {month_year(period)} (DOCX)"

        return await self._start("settle_error", start)

    @rx.event(background=True)
    async def poll_jobs(self):
        """Follow the running jobs until each is done or failed."""
        for _ in range(POLL_LIMIT):
            await asyncio.sleep(POLL_SECONDS)
            async with self:
                actor = await current_actor(self)
                if actor is None:
                    self.polling = False
                    return
                running = False
                updated = []
                for row in self.jobs:
                    if row["status"] in ("pending", "running"):
                        try:
                            job = filejobs.get_file_job(actor, uuid.UUID(row["id"]))
                        except ServiceError as exc:
                            row = {**row, "status": "failed", "error": exc.message}
                        else:
                            row = job_view(job, row["label"])
                            running = running or job.is_running
                    updated.append(row)
                self.jobs = updated
                if not running:
                    self.polling = False
                    return
        async with self:
            self.polling = False

    @rx.event
    def clear_jobs(self):
        """Forget the finished jobs in this list (their files stay downloadable 24 h)."""
        self.jobs = [j for j in self.jobs if j["status"] in ("pending", "running")]


S = FinanceReportState


def _select(name: str, options, default: rx.Var | str = "", test_id: str = "",
            on_change=None) -> rx.Component:
    if isinstance(options, rx.Var):
        items = rx.foreach(options, lambda o: rx.el.option(o["label"], value=o["value"]))
    else:
        items = rx.fragment(*[rx.el.option(o["label"], value=o["value"]) for o in options])
    return rx.el.select(items, name=name, default_value=default, on_change=on_change,
                        class_name="fn-input", data_testid=test_id or None)


def _year(name: str = "year", test_id: str = "") -> rx.Component:
    return rx.el.select(rx.foreach(S.years, lambda y: rx.el.option(y, value=y)), name=name,
                        default_value=S.this_year, class_name="fn-input",
                        data_testid=test_id or None)


def _month_year(prefix: str) -> rx.Component:
    return rx.el.div(
        field("Bulan", _select("month", MONTHS, S.this_month, f"{prefix}-month")),
        field("Tahun", _year("year", f"{prefix}-year")),
        class_name="fn-form-grid",
    )


def _owner_field(prefix: str, everyone: str = "Semua mitra") -> rx.Component:
    return rx.cond(SessionState.is_superadmin, field("Mitra", rx.el.select(
        rx.el.option(everyone, value=""),
        rx.foreach(S.owner_options, lambda o: rx.el.option(o["label"], value=o["value"])),
        name="owner", class_name="fn-input", data_testid=f"{prefix}-owner")))


def _submit(label: str, icon: str, test_id: str) -> rx.Component:
    return rx.el.div(rx.button(rx.icon(icon, size=16), label, type="submit", size="3",
                               data_testid=test_id),
                     class_name="fn-dialog-actions")


def _section(title: str, icon: str, text: str, *content: rx.Component) -> rx.Component:
    return rx.el.div(
        rx.el.div(rx.el.span(rx.icon(icon, size=20), class_name="fn-stat-icon fn-tone-primary"),
                  rx.el.div(rx.el.h3(title, class_name="fn-section-title"),
                            rx.el.p(text, class_name="fn-muted")),
                  class_name="fn-report-head"),
        *content,
        class_name="fn-card fn-stack-tight",
    )


def _recap() -> rx.Component:
    return _section(
        "Rekap Tagihan", "file_spreadsheet",
        "Semua tagihan yang jatuh tempo dalam rentang tanggal, lengkap dengan ringkasan "
        "(total, terbayar, belum terbayar) di baris terakhir. Paling lama 366 hari.",
        rx.form(
            rx.el.div(
                field("Tanggal mulai", rx.el.input(type="date", name="start",
                                                   default_value=S.month_start,
                                                   class_name="fn-input",
                                                   data_testid="recap-start")),
                field("Tanggal akhir", rx.el.input(type="date", name="end",
                                                   default_value=S.month_end,
                                                   class_name="fn-input",
                                                   data_testid="recap-end")),
                field("Format", _select("fmt", RECAP_FORMATS, "xlsx", "recap-fmt")),
                _owner_field("recap"),
                class_name="fn-form-grid",
            ),
            alert(S.recap_error),
            _submit("Buat Rekap", "file_down", "start-recap"),
            on_submit=S.start_recap, reset_on_submit=False, class_name="fn-form",
        ),
    )


def _report() -> rx.Component:
    return _section(
        "Laporan", "file_chart_column",
        "Penjualan bulanan, popularitas paket, kinerja mitra dan umur piutang, sebagai "
        "Excel atau PDF (dengan logo, tabel dan grafik).",
        rx.form(
            rx.el.div(
                field("Laporan", rx.el.select(
                    *[rx.el.option(o["label"], value=o["value"]) for o in REPORT_OPTIONS],
                    name="report", value=S.report, on_change=S.set_report,
                    class_name="fn-input", data_testid="report-kind")),
                field("Format", _select("fmt", REPORT_FORMATS, "xlsx", "report-fmt")),
                rx.match(
                    S.report_param,
                    ("period", rx.fragment(
                        field("Bulan", _select("month", MONTHS, S.this_month, "report-month")),
                        field("Tahun", _year("year", "report-year")))),
                    ("on", field("Per tanggal", rx.el.input(
                        type="date", name="on", default_value=S.today, class_name="fn-input",
                        data_testid="report-day"))),
                    field("Tahun", _year("year", "report-year")),
                ),
                _owner_field("report"),
                class_name="fn-form-grid",
            ),
            alert(S.report_error),
            _submit("Buat Laporan", "file_down", "start-report"),
            on_submit=S.start_report, reset_on_submit=False, class_name="fn-form",
        ),
    )


def _settlement() -> rx.Component:
    return _section(
        "Rekonsiliasi Mitra (DOCX)", "handshake",
        "Pernyataan setoran bulanan mitra: identitas kedua pihak, jumlah terkumpul, daftar "
        "pembayaran dan kolom tanda tangan, siap dicetak.",
        rx.form(
            _month_year("settle"),
            _owner_field("settle", "Pilih mitra…"),
            alert(S.settle_error),
            _submit("Buat Dokumen", "file_text", "start-settlement"),
            on_submit=S.start_settlement, reset_on_submit=False, class_name="fn-form",
        ),
    )


def _job(j) -> rx.Component:
    return rx.el.div(
        rx.el.div(rx.el.strong(j["label"]),
                  rx.el.span(j["created"], class_name="fn-muted"),
                  class_name="fn-stack-tight fn-job-text"),
        rx.match(
            j["status"],
            ("done", rx.el.a(rx.icon("download", size=16), "Unduh",
                             href="/api/files/" + j["id"], class_name="fn-chip fn-download",
                             data_testid="job-ready")),
            ("failed", rx.el.span(rx.cond(j["error"] != "", j["error"], "Gagal membuat file."),
                                  class_name="fn-field-error", data_testid="job-failed")),
            rx.el.div(
                rx.el.div(rx.el.div(style={"width": j["percent"] + "%"}),
                          class_name="fn-progress", style={"width": "160px"}),
                rx.el.span(j["percent"], "%", class_name="fn-muted"),
                class_name="fn-card-row", data_testid="job-progress",
            ),
        ),
        class_name="fn-job",
        data_testid="job",
    )


def _jobs() -> rx.Component:
    return rx.cond(S.jobs.length() > 0, rx.el.div(
        rx.el.div(rx.el.h3("File yang Disiapkan", class_name="fn-section-title"),
                  rx.button("Bersihkan", size="1", variant="soft", on_click=S.clear_jobs),
                  class_name="fn-card-row"),
        rx.el.p("File diproses di latar belakang dan disimpan 24 jam.", class_name="fn-muted"),
        rx.foreach(S.jobs, _job),
        class_name="fn-card fn-stack-tight",
        data_testid="jobs",
    ))


@rx.page(route="/finance/report", title="Ekspor & Laporan Keuangan — FiberNode Internet",
         on_load=[BrandingState.load, FinanceReportState.load])
def finance_report_page() -> rx.Component:
    """Recap, reports and settlement statements."""
    return app_shell(
        "Ekspor & Laporan",
        rx.el.div(
            page_title("Ekspor & Laporan", rx.cond(
                SessionState.is_superadmin, "Semua mitra atau satu mitra",
                "Hanya data pelanggan Anda sendiri")),
            rx.link(rx.button(rx.icon("chart_line", size=16), "Keuangan", variant="soft"),
                    href="/finance"),
            class_name="fn-page-bar",
        ),
        rx.cond(S.ready, rx.el.div(
            _jobs(),
            rx.el.div(_recap(), _report(), _settlement(), class_name="fn-report-grid"),
            class_name="fn-stack",
        )),
    )
