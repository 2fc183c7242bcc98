"""Finance files: the recap export (CSV, XLSX), reports (XLSX, PDF) and the settlement DOCX.

Every figure comes from :mod:`fibernode.services.finance`, so a file shows what the
dashboard and the finance pages show for the same scope and period; this module
only lays the figures out. Scope follows the finance functions: a mitra gets their
own figures and naming another owner raises :class:`PermissionDenied`; the
superadmin gets every owner or one (``owner_id``).

Three ways in:

* :func:`write_recap`, :func:`write_report`, :func:`write_settlement` write a file to
  a stream synchronously (the API's small downloads, and the worker). Each is
  audited (``finance.export``) in the transaction it runs in.
* :func:`start_recap`, :func:`start_report`, :func:`start_settlement` ask a Celery
  worker for the file: a ``file_jobs`` row (see :mod:`fibernode.services.filejobs`),
  audited (``finance.export_job``) and sent to the broker after the commit. The UI
  polls ``filejobs.get_file_job`` and downloads ``/api/files/{job_id}``.
* :func:`build_job` is what the worker runs (task ``workers.tasks.build_finance_file``).
  It rebuilds the creator's :class:`Actor` from the database, so the job's scope is
  checked again exactly as for the creator's own request, and a creator deactivated
  since then gets no file.

Text cells of CSV and XLSX files go through :func:`exports.neutralise` (a cell a
spreadsheet would run as a formula gets a leading ``'``). PDFs use fpdf2's core
fonts (Latin-1), so their text is passed through :func:`pdf_text`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, BinaryIO
from xml.sax.saxutils import escape as xml_escape

from fibernode import clock
from fibernode.clock import JAKARTA
from fibernode.db import new_session
from fibernode.formatting import date_time, long_date, month_year, number, rupiah
from fibernode.models import User
from fibernode.services import filejobs, finance, jobqueue, report_charts, storage, validation
from fibernode.services import settings as settings_service
from fibernode.services.context import Actor, require_user
from fibernode.services.errors import NotFound, PermissionDenied, ServiceError, ValidationFailed
from fibernode.services.exports import DATE_FORMAT, MONEY_FORMAT, neutralise
from fibernode.services.filejobs import FileJobView
from fibernode.services.receipts import METHOD_LABELS, _latin1, _logo_file, _slug
from fibernode.services.scoping import can_touch_owner
from fibernode.services.uow import unit_of_work

log = logging.getLogger(__name__)

FORMATS_RECAP = ("csv", "xlsx")
REPORTS = ("monthly_sales", "package_popularity", "mitra_performance", "aging")
REPORT_FORMATS = ("xlsx", "pdf")
REPORT_LABELS = {
    "monthly_sales": "Penjualan Bulanan",
    "package_popularity": "Popularitas Paket",
    "mitra_performance": "Kinerja Mitra",
    "aging": "Umur Piutang",
}
# What each report is about: a year, a period (YYYY-MM) or a day.
REPORT_BASIS = {"monthly_sales": "year", "package_popularity": "period",
                "mitra_performance": "period", "aging": "on"}
KIND_RECAP = "finance_recap"
KIND_REPORT = "finance_report"
KIND_SETTLEMENT = "finance_settlement"
KINDS = (KIND_RECAP, KIND_REPORT, KIND_SETTLEMENT)
BUILD_TASK = "workers.tasks.build_finance_file"  # the worker task that builds a job's file
FILES_SUBDIR = "finance"
MAX_RANGE_DAYS = finance.RECAP_MAX_DAYS  # a recap's days at most, both ends included
PROGRESS_EVERY = 2000  # recap rows between two progress updates of a job
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
INT_FORMAT = "#,##0"
PERCENT_FORMAT = "0.0%"
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}

ALL_OWNERS = "Semua pemilik"
SETTLEMENT_TITLE = "Laporan Rekonsiliasi / Setoran Mitra"
OWNER_NOT_FOUND = "Pemilik tidak ditemukan."
OTHER_OWNER = "Mitra hanya boleh melihat keuangannya sendiri."
OTHER_SETTLEMENT = "Mitra hanya boleh membuat laporan setoran miliknya sendiri."
BUILD_FAILED = "Terjadi kesalahan sistem saat menyusun file. Silakan coba lagi."
CREATOR_GONE = ("Akun yang meminta file ini sudah tidak aktif, sehingga file tidak dapat "
                "dibuat.")
RECAP_COLUMNS = ("No", "Nama Pelanggan", "Telepon", "Area (mitra)", "Paket", "Kecepatan",
                 "Periode", "Jatuh Tempo", "Harga", "Diskon", "Total", "Dibayar", "Sisa",
                 "Status", "Tanggal Bayar", "Metode", "Dicatat Oleh")
RECAP_WIDTHS = (7, 28, 16, 22, 18, 11, 10, 13, 13, 12, 13, 13, 13, 12, 17, 14, 20)
RECAP_MONEY_COLUMNS = (8, 9, 10, 11, 12)  # Harga, Diskon, Total, Dibayar, Sisa
# The summary block under the rows: its label and value columns (Nama Pelanggan, Telepon).
SUMMARY_LABEL_COL = 1
SUMMARY_VALUE_COL = 2
# fpdf2's core fonts are Latin-1: typographic punctuation becomes its ASCII twin.
_PDF_PUNCTUATION = str.maketrans({"–": "-", "—": "-", "‘": "'", "’": "'", "“": '"',
                                  "”": '"', "…": "...", "•": "-", "\u00a0": " "})
_ILLEGAL_XLSX = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

# --- the streaming XLSX's fixed parts (see _XlsxStream) ---
XLSX_COMPRESSION = 1  # deflate level: the XML compresses well even at the fastest level
XLSX_ZIP64_ROWS = 4_000_000  # beyond this many rows the sheet may pass 4 GiB unpacked
# Excel shows at most 1,048,576 rows a sheet: a larger recap continues on the next
# sheet (header repeated), leaving room for the summary block under the last rows.
XLSX_SHEET_ROWS = 1_000_000
STYLE_HEADER, STYLE_MONEY, STYLE_DATE, STYLE_DATETIME = 1, 2, 3, 4
STYLE_BOLD, STYLE_BOLD_MONEY, STYLE_BOLD_INT, STYLE_BOLD_PERCENT = 5, 6, 7, 8
_COLUMN_LETTERS = [chr(65 + i) for i in range(26)] + [
    chr(65 + i) + chr(65 + j) for i in range(26) for j in range(26)]
_EXCEL_EPOCH = datetime(1899, 12, 30)  # day 0 of Excel's 1900 date system (as used)
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument"
_XLSX_CONTENT_TYPES = (
    f'{_XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.spreadsheetml.sheet.main+xml"/>'
    '{sheets}'
    f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.spreadsheetml.styles+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.spreadsheetml.'
    'sharedStrings+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
    'package.core-properties+xml"/>'
    f'<Override PartName="/docProps/app.xml" ContentType="{_CT}.extended-properties+xml"/>'
    '</Types>')
_XLSX_ROOT_RELS = (
    f'{_XML_HEAD}<Relationships xmlns="{_NS_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
    'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_NS_REL}/extended-properties" '
    'Target="docProps/app.xml"/></Relationships>')
_XLSX_APP = (
    f'{_XML_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    'extended-properties"><Application>FiberNode Internet</Application></Properties>')
_XLSX_CORE = (
    f'{_XML_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/'
    '2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<dc:title>Rekap Keuangan</dc:title><dc:creator>FiberNode Internet</dc:creator>'
    '<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
    '</cp:coreProperties>')
_XLSX_WORKBOOK = (
    f'{_XML_HEAD}<workbook xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}"><bookViews>'
    '<workbookView/></bookViews><sheets>{sheets}</sheets></workbook>')
_XLSX_WORKBOOK_RELS = (
    f'{_XML_HEAD}<Relationships xmlns="{_NS_PKG_REL}">'
    '{sheets}'
    f'<Relationship Id="rIdStyles" Type="{_NS_REL}/styles" Target="styles.xml"/>'
    f'<Relationship Id="rIdStrings" Type="{_NS_REL}/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>')


def _xf(num_fmt: int = 0, font: int = 0, fill: int = 0, extra: str = "") -> str:
    applied = (' applyNumberFormat="1"' if num_fmt else "") + (
        ' applyFont="1"' if font else "") + (' applyFill="1"' if fill else "")
    if extra:
        return (f'<xf numFmtId="{num_fmt}" fontId="{font}" fillId="{fill}" borderId="0" '
                f'xfId="0"{applied} applyAlignment="1">{extra}</xf>')
    return (f'<xf numFmtId="{num_fmt}" fontId="{font}" fillId="{fill}" borderId="0" '
            f'xfId="0"{applied}/>')


# numFmt 164.. are ours; 3 is Excel's built-in "#,##0".
_XLSX_XFS = [_xf(), _xf(0, 1, 2, '<alignment horizontal="center"/>'), _xf(164), _xf(165),
             _xf(166), _xf(0, 1), _xf(164, 1), _xf(3, 1), _xf(167, 1)]
_XLSX_STYLES = (
    f'{_XML_HEAD}<styleSheet xmlns="{_NS_MAIN}"><numFmts count="4">'
    f'<numFmt numFmtId="164" formatCode="{xml_escape(MONEY_FORMAT, {chr(34): "&quot;"})}"/>'
    f'<numFmt numFmtId="165" formatCode="{DATE_FORMAT}"/>'
    f'<numFmt numFmtId="166" formatCode="{DATETIME_FORMAT}"/>'
    f'<numFmt numFmtId="167" formatCode="{PERCENT_FORMAT}"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill '
    'patternType="gray125"/></fill><fill><patternFill patternType="solid"><fgColor '
    'rgb="FFE2E8F0"/><bgColor indexed="64"/></patternFill></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    f'</cellStyleXfs><cellXfs count="{len(_XLSX_XFS)}">{"".join(_XLSX_XFS)}</cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')


# --- validation and scope ------------------------------------------------------------------


def _check_choice(value: str, choices: Sequence[str], field_name: str, message: str) -> str:
    value = (value or "").strip().lower() if isinstance(value, str) else ""
    if value not in choices:
        raise ValidationFailed({field_name: message})
    return value


def _check_format(fmt: str, choices: Sequence[str]) -> str:
    return _check_choice(fmt, choices, "format",
                         f"Format file harus {' atau '.join(choices)}.")


def _as_day(value: Any, field_name: str, label: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationFailed({field_name: f"{label} tidak valid (format TTTT-BB-HH)."})


def check_range(start: Any, end: Any) -> tuple[date, date]:
    """The recap's due-date range, validated (both ends included, at most 366 days).

    Raises:
        ValidationFailed: a missing or malformed date, ``end`` before ``start``, or a
            range longer than :data:`MAX_RANGE_DAYS`.
    """
    if start is None or start == "":
        raise ValidationFailed({"start": "Tanggal mulai wajib diisi."})
    if end is None or end == "":
        raise ValidationFailed({"end": "Tanggal akhir wajib diisi."})
    start = _as_day(start, "start", "Tanggal mulai")
    end = _as_day(end, "end", "Tanggal akhir")
    if end < start:
        raise ValidationFailed({"end": finance.RANGE_ORDER_MESSAGE})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed({"end": finance.RANGE_LENGTH_MESSAGE})
    return start, end


def _check_year(year: Any) -> int:
    if isinstance(year, str) and year.strip().isdigit():
        year = int(year.strip())
    if (isinstance(year, bool) or not isinstance(year, int)
            or not finance.YEAR_MIN <= year <= finance.YEAR_MAX):
        raise ValidationFailed({"year": finance.YEAR_MESSAGE})
    return year


@dataclass(frozen=True)
class _Scope:
    """Whose figures a file shows: ``owner_id`` goes to the finance functions as given."""

    owner_id: uuid.UUID | None
    business_name: str | None = None  # the one owner shown (named, or the mitra itself)
    owner_name: str | None = None

    @property
    def label(self) -> str:
        if self.business_name is None:
            return ALL_OWNERS
        return f"{self.business_name} ({self.owner_name})"

    @property
    def slug(self) -> str:
        return _slug(self.business_name) if self.business_name else ""


def _scope(actor: Actor, owner_id: Any, message: str = OTHER_OWNER) -> _Scope:
    """Check the owner filter before anything is read or audited.

    Raises:
        AuthenticationRequired: nobody is logged in.
        PermissionDenied: a mitra names another owner (or an actor without a role).
        NotFound: no such owner.
    """
    require_user(actor)
    if not (actor.is_system or actor.is_superadmin or actor.is_mitra):
        raise PermissionDenied()
    if owner_id is None or owner_id == "":
        owner_id = None
    else:
        owner_id = validation.as_uuid(owner_id, OWNER_NOT_FOUND)
        if not can_touch_owner(actor, owner_id):
            raise PermissionDenied(message)
    shown = owner_id or (actor.user_id if actor.is_mitra else None)
    if shown is None:
        return _Scope(None)
    with new_session() as s:
        owner = s.get(User, shown)
        if owner is None:
            raise NotFound(OWNER_NOT_FOUND)
        return _Scope(owner_id, owner.business_name, owner.name)


def _job_creator(session, actor: Actor) -> str:
    if actor.user_id is None:
        return actor.name
    user = session.get(User, actor.user_id)
    return user.name if user is not None else actor.name


# --- small formatting helpers --------------------------------------------------------------


def pdf_text(text: Any) -> str:
    """Text for fpdf2's core fonts: ``–`` becomes ``-``, the rest folded into Latin-1."""
    return _latin1(str(text).translate(_PDF_PUNCTUATION))


def _percent(value: float) -> str:
    """``85,5%`` (Indonesian decimal comma)."""
    return f"{value:.1f}%".replace(".", ",")


def _local(moment: datetime | None) -> datetime | None:
    """A stored (UTC) time as a naive Jakarta time: XLSX has no time zones."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(JAKARTA).replace(tzinfo=None)


def _method(value: Any) -> str:
    return METHOD_LABELS.get(str(value), str(value)) if value else ""


def _clean_text(value: Any) -> str:
    return neutralise(_ILLEGAL_XLSX.sub("", str(value or "")))


def recap_filename(start: date, end: date, fmt: str, owner_slug: str = "") -> str:
    """``rekap-keuangan-2026-01-01_2026-12-31.xlsx`` (with the owner's slug for one owner)."""
    middle = f"{owner_slug}-" if owner_slug else ""
    return f"rekap-keuangan-{middle}{start.isoformat()}_{end.isoformat()}.{fmt}"


def report_filename(report: str, fmt: str, subject: str, owner_slug: str = "") -> str:
    """``laporan-penjualan-bulanan-2026.pdf`` (``subject``: year, period or day)."""
    tail = f"-{owner_slug}" if owner_slug else ""
    return f"laporan-{_slug(REPORT_LABELS[report])}-{subject}{tail}.{fmt}"


def settlement_filename(business_name: str, period: str) -> str:
    """``rekonsiliasi-wifi-sukamaju-2026-03.docx``."""
    return f"rekonsiliasi-{_slug(business_name)}-{period}.docx"


# --- recap ---------------------------------------------------------------------------------


def _recap_values(no: int, rec: tuple) -> list[Any]:
    """One :data:`finance.RECAP_FIELDS` record as typed values in :data:`RECAP_COLUMNS` order.

    Text is not neutralised yet.
    """
    (name, phone, area, pkg, speed, period, due, amount, discount, total, paid, status,
     paid_at, method, recorded_by) = rec
    return [no, name, phone, area, pkg, speed, period, due, amount, discount, total, paid,
            max(0, total - paid), finance.STATUS_LABELS.get(status, str(status)),
            _local(paid_at), _method(method), recorded_by or ""]


def _summary(totals: finance.PeriodTotals, start: date, end: date,
             scope: _Scope) -> list[tuple[str, Any, str]]:
    """The recap's closing block: (label, value, kind) with kind text / int / money / pct."""
    return [
        ("Rentang jatuh tempo", f"{long_date(start)} – {long_date(end)}", "text"),
        ("Cakupan", scope.label, "text"),
        ("Jumlah tagihan", totals.invoice_count, "int"),
        ("Tagihan lunas", totals.paid_count, "int"),
        ("Tagihan belum lunas", totals.unpaid_count, "int"),
        ("Total tagihan", totals.billed, "money"),
        ("Terbayar", totals.paid, "money"),
        ("Belum terbayar", totals.unpaid, "money"),
        ("Persentase terkumpul", totals.collected_percent, "pct"),
        ("Dibuat", date_time(clock.now()), "text"),
    ]


def _progress_every(on_progress: Callable[[int], None] | None, count: int) -> None:
    if on_progress is not None and count % PROGRESS_EVERY == 0:
        on_progress(count)


def _recap_csv(rows: Iterable[tuple], summary: list[tuple[str, Any, str]],
               out: BinaryIO, on_progress: Callable[[int], None] | None) -> int:
    # utf-8-sig writes the BOM Excel needs to read the file as UTF-8.
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    count = 0
    try:
        writer = csv.writer(text)
        writer.writerow(RECAP_COLUMNS)
        for row in rows:
            count += 1
            values = _recap_values(count, row)
            writer.writerow([
                v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime)
                else v.isoformat() if isinstance(v, date)
                else neutralise(v) if isinstance(v, str)
                else v
                for v in values])
            _progress_every(on_progress, count)
        writer.writerow([])
        writer.writerow(["", "Ringkasan"])
        blank = [""] * len(RECAP_COLUMNS)
        for label, value, _kind in summary:
            line = list(blank)
            line[SUMMARY_LABEL_COL] = label
            line[SUMMARY_VALUE_COL] = neutralise(value) if isinstance(value, str) else value
            writer.writerow(line)
    finally:
        text.flush()
        text.detach()  # leave the caller's stream open
    return count


class _XlsxStream:
    """A one-sheet XLSX written while the rows stream in.

    openpyxl, even in write-only mode, spends about 250 µs on a recap row (a cell
    object, a style lookup and an lxml element per value): minutes for a year of a
    large install. This writes the sheet's XML directly into the zip, about 15 µs a
    row, with the same result for a reader: typed numbers and dates, money and date
    formats, a frozen bold header, column widths, and text as shared strings (the
    usual XLSX form; Excel never runs a stored string as a formula).

    Styles (``s`` of a cell) are the ``STYLE_*`` indexes into :data:`_XLSX_STYLES`.
    """

    def __init__(self, out: BinaryIO, sheet: str, widths: Sequence[float], *,
                 zip64: bool = False):
        self._zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED,
                                    compresslevel=XLSX_COMPRESSION)
        self._zip64 = zip64
        self._widths = widths
        self._sheets: list[str] = []
        self._strings: dict[str, int] = {}
        self._string_uses = 0
        self._buffer: list[str] = []
        self._open_sheet(sheet)

    @property
    def rows_in_sheet(self) -> int:
        """Rows written to the current sheet (its header included)."""
        return self._row

    def new_sheet(self, name: str) -> None:
        """Finish the current sheet and continue on a new one called ``name``."""
        self._close_sheet()
        self._open_sheet(name)

    def _close_sheet(self) -> None:
        self._flush()
        self._write("</sheetData></worksheet>")
        self._sheet.close()

    def _open_sheet(self, name: str) -> None:
        self._sheets.append(name)
        self._row = 0
        self._sheet = self._zip.open(f"xl/worksheets/sheet{len(self._sheets)}.xml", "w",
                                     force_zip64=self._zip64)
        cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                       for i, w in enumerate(self._widths, 1))
        self._write(
            f'{_XML_HEAD}<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_REL}">'
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" '
            'activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>')

    def _write(self, text: str) -> None:
        self._sheet.write(text.encode("utf-8"))

    def _string(self, text: str) -> int:
        self._string_uses += 1
        index = self._strings.get(text)
        if index is None:
            index = self._strings[text] = len(self._strings)
        return index

    def row(self, values: Sequence[Any], styles: Sequence[int] | None = None) -> None:
        """Append a row: ``None`` is an empty cell, ``str`` text, numbers and dates typed.

        ``styles`` gives each column's style (default: none, or the date styles).
        """
        self._row += 1
        r = self._row
        cells = []
        gap = False
        for i, value in enumerate(values):
            if value is None:
                gap = True  # an absent cell is an empty one
                continue
            style = styles[i] if styles is not None else 0
            # A cell's reference is optional: without one it follows the previous cell.
            # Writing it only after a gap keeps a million-row sheet small and fast.
            ref = f' r="{_COLUMN_LETTERS[i]}{r}"' if gap else ""
            gap = False
            s = f' s="{style}"' if style else ""
            if isinstance(value, str):
                cells.append(f'<c{ref}{s} t="s"><v>{self._string(value)}</v></c>')
            elif isinstance(value, datetime):
                serial = (value - _EXCEL_EPOCH).total_seconds() / 86400
                cells.append(f'<c{ref} s="{style or STYLE_DATETIME}"><v>{serial!r}</v></c>')
            elif isinstance(value, date):
                serial = (value - _EXCEL_EPOCH.date()).days
                cells.append(f'<c{ref} s="{style or STYLE_DATE}"><v>{serial}</v></c>')
            else:
                cells.append(f"<c{ref}{s}><v>{value!r}</v></c>")
        self._buffer.append(f'<row r="{r}">{"".join(cells)}</row>')
        if len(self._buffer) >= 500:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._write("".join(self._buffer))
            self._buffer.clear()

    def close(self) -> None:
        """Finish the sheet and write the workbook's other parts."""
        self._close_sheet()
        z = self._zip
        numbers = range(1, len(self._sheets) + 1)
        z.writestr("[Content_Types].xml", _XLSX_CONTENT_TYPES.replace("{sheets}", "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
            f'ContentType="{_CT}.spreadsheetml.worksheet+xml"/>' for n in numbers)))
        z.writestr("_rels/.rels", _XLSX_ROOT_RELS)
        z.writestr("docProps/app.xml", _XLSX_APP)
        z.writestr("docProps/core.xml", _XLSX_CORE.format(
            now=clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")))
        z.writestr("xl/workbook.xml", _XLSX_WORKBOOK.replace("{sheets}", "".join(
            f'<sheet name="{xml_escape(name, {chr(34): "&quot;"})}" sheetId="{n}" '
            f'r:id="rId{n}"/>' for n, name in zip(numbers, self._sheets, strict=True))))
        z.writestr("xl/_rels/workbook.xml.rels", _XLSX_WORKBOOK_RELS.replace(
            "{sheets}", "".join(f'<Relationship Id="rId{n}" Type="{_NS_REL}/worksheet" '
                                f'Target="worksheets/sheet{n}.xml"/>' for n in numbers)))
        z.writestr("xl/styles.xml", _XLSX_STYLES)
        with z.open("xl/sharedStrings.xml", "w") as sst:
            sst.write(f'{_XML_HEAD}<sst xmlns="{_NS_MAIN}" count="{self._string_uses}" '
                      f'uniqueCount="{len(self._strings)}">'.encode())
            chunk = []
            for text in self._strings:  # dicts keep insertion order: index order
                chunk.append(f'<si><t xml:space="preserve">{_xml_text(text)}</t></si>')
                if len(chunk) >= 1000:
                    sst.write("".join(chunk).encode("utf-8"))
                    chunk.clear()
            sst.write(("".join(chunk) + "</sst>").encode("utf-8"))
        z.close()


def _xml_text(text: str) -> str:
    """Text for an XLSX part: characters XML 1.0 cannot hold removed, markup escaped."""
    return xml_escape(_ILLEGAL_XLSX.sub("", text))


def _recap_xlsx(rows: Iterable[tuple], summary: list[tuple[str, Any, str]],
                out: BinaryIO, on_progress: Callable[[int], None] | None, *,
                expected: int = 0) -> int:
    book = _XlsxStream(out, "Rekap Keuangan", RECAP_WIDTHS,
                       zip64=expected > XLSX_ZIP64_ROWS)
    book.row(RECAP_COLUMNS, [STYLE_HEADER] * len(RECAP_COLUMNS))
    styles = [0] * len(RECAP_COLUMNS)
    for i in RECAP_MONEY_COLUMNS:
        styles[i] = STYLE_MONEY
    count = 0
    for row in rows:
        count += 1
        if book.rows_in_sheet > XLSX_SHEET_ROWS:
            book.new_sheet(f"Rekap Keuangan ({count // XLSX_SHEET_ROWS + 1})")
            book.row(RECAP_COLUMNS, [STYLE_HEADER] * len(RECAP_COLUMNS))
        book.row([neutralise(v) if isinstance(v, str) else v
                  for v in _recap_values(count, row)], styles)
        _progress_every(on_progress, count)
    book.row([])
    book.row([None, "Ringkasan"], [0, STYLE_BOLD])
    kinds = {"text": 0, "money": STYLE_BOLD_MONEY, "int": STYLE_BOLD_INT,
             "pct": STYLE_BOLD_PERCENT}
    for label, value, kind in summary:
        line: list[Any] = [None] * (SUMMARY_VALUE_COL + 1)
        line[SUMMARY_LABEL_COL] = label
        line[SUMMARY_VALUE_COL] = (neutralise(value) if kind == "text"
                                   else value / 100 if kind == "pct" else value)
        book.row(line, [0, 0, kinds[kind]])
    book.close()
    return count


def write_recap(actor: Actor, out: BinaryIO, *, start: date, end: date, fmt: str,
                owner_id: uuid.UUID | None = None,
                on_progress: Callable[[int], None] | None = None) -> int:
    """Write every invoice due from ``start`` to ``end`` (inclusive) and a summary block.

    Rows are streamed from :func:`finance.recap_records`; the summary (total billed,
    paid, unpaid, invoice counts) is :func:`finance.recap_totals`, so it is the
    figure the finance pages show for the same range. The export is audited
    (``finance.export``).

    Args:
        actor: The superadmin (every owner, or one with ``owner_id``) or a mitra (own).
        out: A binary stream to write to; it is left open.
        start: First due date.
        end: Last due date (at most 366 days after ``start``, both included).
        fmt: ``"csv"`` (UTF-8 with BOM) or ``"xlsx"`` (typed cells, frozen header).
        owner_id: One owner only.
        on_progress: Called with the number of rows written every ``PROGRESS_EVERY``.

    Returns:
        How many invoices were written.

    Raises:
        AuthenticationRequired: nobody is logged in.
        PermissionDenied: a mitra names another owner.
        NotFound: no such owner.
        ValidationFailed: unknown format, bad or too long range.
    """
    require_user(actor)
    fmt = _check_format(fmt, FORMATS_RECAP)
    start, end = check_range(start, end)
    scope = _scope(actor, owner_id)
    with unit_of_work(actor) as uow:
        totals = finance.recap_totals(actor, start, end, scope.owner_id)
        rows = finance.recap_records(actor, start, end, scope.owner_id)
        summary = _summary(totals, start, end, scope)
        if fmt == "csv":
            count = _recap_csv(rows, summary, out, on_progress)
        else:
            count = _recap_xlsx(rows, summary, out, on_progress, expected=totals.invoice_count)
        uow.audit("finance.export", "invoices", None, kind="recap", format=fmt,
                  start=start.isoformat(), end=end.isoformat(), owner_id=scope.owner_id,
                  rows=count)
    return count


# --- reports: the model --------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A report column: ``kind`` is text, int, money or pct (a 0–100 percentage)."""

    header: str
    kind: str = "text"
    width: float = 14  # XLSX characters; the PDF shares its width in proportion


@dataclass
class Section:
    """One table of a report (an XLSX sheet; a table in the PDF), with its totals row."""

    title: str
    sheet: str
    columns: list[Column]
    rows: list[list[Any]]
    total: list[Any] | None = None


@dataclass
class Report:
    """A report ready to lay out: heading lines, tables, the main chart and a note."""

    key: str
    title: str
    period_label: str
    scope_label: str
    subject: str  # for the filename: year, period or day
    sections: list[Section]
    chart: bytes | None = None
    note: str = ""
    generated_at: datetime = field(default_factory=clock.now)


def _monthly_sales(actor: Actor, scope: _Scope, year: int) -> Report:
    summary = finance.year_summary(actor, year, scope.owner_id)
    columns = [Column("Bulan", "text", 16), Column("Jumlah tagihan", "int", 11),
               Column("Total tagihan", "money", 16), Column("Terbayar", "money", 16),
               Column("Belum terbayar", "money", 16), Column("Terkumpul", "pct", 10),
               Column("Pendapatan", "money", 16), Column("Diterima", "money", 16),
               Column("Dibatalkan", "money", 14), Column("Pelanggan baru", "int", 11)]

    def line(label: str, t: finance.PeriodTotals, revenue: int, received: int,
             reversed_: int, new: int) -> list[Any]:
        return [label, t.invoice_count, t.billed, t.paid, t.unpaid, t.collected_percent,
                revenue, received, reversed_, new]

    rows = [line(month_year(m.period), m.totals, m.revenue, m.received, m.reversed,
                 m.new_customers) for m in summary.months]
    total = line("Total", summary.totals, summary.revenue, summary.received,
                 summary.reversed, summary.new_customers)
    return Report("monthly_sales", f"Laporan {REPORT_LABELS['monthly_sales']}",
                  f"Tahun {year}", scope.label, str(year),
                  [Section("Ringkasan per bulan", "Penjualan Bulanan", columns, rows, total)],
                  chart=report_charts.monthly_sales_chart(summary), note=finance.BASIS_NOTE)


def _package_popularity(actor: Actor, scope: _Scope, period: str) -> Report:
    packages = finance.package_popularity(actor, period, scope.owner_id)
    # The totals row is the scope's figures from finance (as on the dashboard), so it
    # agrees with every other page; the subscriber counts are the listed packages' sums.
    totals = finance.period_totals(actor, period, scope.owner_id)
    columns = [Column("Paket", "text", 22), Column("Kecepatan", "text", 11),
               Column("Harga", "money", 13), Column("Pelanggan aktif", "int", 11),
               Column("Semua pelanggan", "int", 11), Column("Pangsa", "pct", 9),
               Column("Jumlah tagihan", "int", 11), Column("Total tagihan", "money", 16),
               Column("Terbayar", "money", 16), Column("Belum terbayar", "money", 16)]
    rows = [[p.name, p.speed, p.price, p.active_customers, p.customers, p.share_percent,
             p.totals.invoice_count, p.totals.billed, p.totals.paid, p.totals.unpaid]
            for p in packages]
    active = sum(p.active_customers for p in packages)
    total = ["Total", "", None, active, sum(p.customers for p in packages),
             100.0 if active else 0.0, totals.invoice_count, totals.billed, totals.paid,
             totals.unpaid]
    return Report("package_popularity", f"Laporan {REPORT_LABELS['package_popularity']}",
                  month_year(period), scope.label, period,
                  [Section("Paket menurut pelanggan aktif", "Popularitas Paket", columns,
                           rows, total)],
                  chart=report_charts.package_popularity_chart(packages),
                  note="Pangsa = bagian dari pelanggan aktif. Tagihan = tagihan periode "
                       f"{month_year(period)} pelanggan pada paket tersebut.")


def _mitra_performance(actor: Actor, scope: _Scope, period: str) -> Report:
    owners = finance.mitra_performance(actor, period, scope.owner_id)
    totals = finance.period_totals(actor, period, scope.owner_id)
    revenue = finance.revenue(actor, period, scope.owner_id)
    columns = [Column("Mitra", "text", 20), Column("Pemilik", "text", 16),
               Column("Pelanggan aktif", "int", 12), Column("Isolir", "int", 8),
               Column("Jumlah tagihan", "int", 10), Column("Total tagihan", "money", 15),
               Column("Terbayar", "money", 15), Column("Belum terbayar", "money", 15),
               Column("Terkumpul", "pct", 11), Column("Pendapatan", "money", 15),
               Column("Lewat jatuh tempo", "int", 10), Column("Tunggakan", "money", 15)]
    rows = [[m.business_name, m.owner_name, m.active_customers, m.isolated_customers,
             m.totals.invoice_count, m.totals.billed, m.totals.paid, m.totals.unpaid,
             m.totals.collected_percent, m.revenue, m.overdue_count, m.overdue_amount]
            for m in owners]
    total = ["Total", "", sum(m.active_customers for m in owners),
             sum(m.isolated_customers for m in owners), totals.invoice_count, totals.billed,
             totals.paid, totals.unpaid, totals.collected_percent, revenue,
             sum(m.overdue_count for m in owners), sum(m.overdue_amount for m in owners)]
    return Report("mitra_performance", f"Laporan {REPORT_LABELS['mitra_performance']}",
                  month_year(period), scope.label, period,
                  [Section("Kinerja per mitra", "Kinerja Mitra", columns, rows, total)],
                  chart=report_charts.mitra_performance_chart(owners),
                  note=finance.BASIS_NOTE + " Tunggakan = tagihan lewat jatuh tempo yang "
                                            "belum lunas per hari ini.")


def _aging(actor: Actor, scope: _Scope, on: date) -> Report:
    report = finance.aging(actor, on, scope.owner_id)
    buckets = finance.AGING_BUCKETS
    amounts = Section(
        "Sisa tagihan menurut umur", "Sisa Tagihan",
        [Column("Pemilik", "text", 24), *(Column(b, "money", 15) for b in buckets),
         Column("Total", "money", 16)],
        [[r.business_name, *r.amounts, r.total_amount] for r in report.rows],
        ["Total", *report.amounts, sum(report.amounts)])
    counts = Section(
        "Jumlah tagihan terbuka menurut umur", "Jumlah Tagihan",
        [Column("Pemilik", "text", 24), *(Column(b, "int", 12) for b in buckets),
         Column("Total", "int", 12)],
        [[r.business_name, *r.counts, r.total_count] for r in report.rows],
        ["Total", *report.counts, sum(report.counts)])
    return Report("aging", f"Laporan {REPORT_LABELS['aging']}", f"Per {long_date(on)}",
                  scope.label, on.isoformat(), [amounts, counts],
                  chart=report_charts.aging_chart(report, buckets),
                  note="Tagihan yang belum lunas (periode mana pun) menurut berapa hari "
                       "lewat dari jatuh tempo; jumlahnya adalah sisa yang belum dibayar.")


def _report_args(report: str, period: Any, year: Any, on: Any) -> tuple[str, Any]:
    """The report's subject, validated; defaults: this year, this period, today."""
    basis = REPORT_BASIS[report]
    if basis == "year":
        return basis, _check_year(clock.today().year if year is None or year == "" else year)
    if basis == "period":
        return basis, finance.check_period(period or clock.current_period())
    return basis, clock.today() if on is None or on == "" else _as_day(on, "on", "Tanggal")


def _build_report(actor: Actor, scope: _Scope, report: str, subject: Any) -> Report:
    builders = {"monthly_sales": _monthly_sales, "package_popularity": _package_popularity,
                "mitra_performance": _mitra_performance, "aging": _aging}
    return builders[report](actor, scope, subject)


# --- reports: XLSX -------------------------------------------------------------------------


def report_xlsx(report: Report) -> bytes:
    """The report as a workbook.

    One sheet per table (typed cells, frozen header, bold totals row), then ``Info``
    with the title, period, scope, time, note and the main chart.
    """
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="E2E8F0")
    top = Border(top=Side(style="thin"))
    formats = {"money": MONEY_FORMAT, "int": INT_FORMAT, "pct": PERCENT_FORMAT}
    first = True
    for section in report.sections:
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = section.sheet[:31]
        for i, col in enumerate(section.columns, 1):
            ws.column_dimensions[get_column_letter(i)].width = col.width
            cell = ws.cell(row=1, column=i, value=col.header)
            cell.font, cell.fill = bold, fill
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.freeze_panes = "A2"
        lines = [*section.rows, *([section.total] if section.total is not None else [])]
        for r, values in enumerate(lines, 2):
            is_total = section.total is not None and r == len(lines) + 1
            for i, (col, value) in enumerate(zip(section.columns, values, strict=True), 1):
                if value is None or value == "":
                    cell = ws.cell(row=r, column=i)
                elif col.kind == "text":
                    cell = ws.cell(row=r, column=i, value=_clean_text(value))
                    cell.data_type = "s"
                else:
                    cell = ws.cell(row=r, column=i,
                                   value=value / 100 if col.kind == "pct" else value)
                    cell.number_format = formats[col.kind]
                if is_total:
                    cell.font, cell.border = bold, top

    info = wb.create_sheet("Info")
    info.column_dimensions["A"].width = 14
    info.column_dimensions["B"].width = 60
    info["A1"] = report.title
    info["A1"].font = Font(bold=True, size=14)
    facts = [("Periode", report.period_label), ("Cakupan", report.scope_label),
             ("Dibuat", date_time(report.generated_at)), ("Catatan", report.note)]
    for r, (label, value) in enumerate(facts, 3):
        info.cell(row=r, column=1, value=label).font = bold
        cell = info.cell(row=r, column=2, value=_clean_text(value))
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    if report.chart:
        image = Image(io.BytesIO(report.chart))
        scale = 760 / image.width  # about the width of columns A-J
        image.width, image.height = int(image.width * scale), int(image.height * scale)
        info.add_image(image, "A9")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- reports: PDF --------------------------------------------------------------------------

PDF_MARGIN = 12.0
PDF_WIDTH = 297.0 - 2 * PDF_MARGIN  # A4 landscape, millimetres
PDF_CHART_WIDTH = 200.0
PDF_CHART_MAX_HEIGHT = 100.0


def _cell_text(value: Any, kind: str) -> str:
    if value is None or value == "":
        return ""
    if kind == "money":
        return rupiah(value)
    if kind == "int":
        return number(value)
    if kind == "pct":
        return _percent(value)
    return pdf_text(value)


def _pdf(app_name: str, footer: str):
    from fpdf import FPDF

    class ReportPDF(FPDF):
        def footer(self) -> None:
            self.set_y(-9)
            self.set_font("Helvetica", "", 7.5)
            self.set_text_color(100, 116, 139)
            self.cell(0, 5, pdf_text(f"{app_name}  -  {footer}"), align="L")
            self.set_x(self.l_margin)
            self.cell(0, 5, f"Halaman {self.page_no()}/{{nb}}", align="R")

    pdf = ReportPDF(orientation="landscape", unit="mm", format="A4")
    pdf.set_margins(PDF_MARGIN, PDF_MARGIN, PDF_MARGIN)
    pdf.set_auto_page_break(True, margin=14)
    pdf.set_creator(pdf_text(app_name))
    return pdf


def _pdf_heading(pdf, title: str, lines: list[str], logo_url: str, app_name: str) -> None:
    x = PDF_MARGIN
    logo = _logo_file(logo_url) if logo_url else None
    if logo is not None:
        try:
            pdf.image(str(logo), x=PDF_MARGIN, y=PDF_MARGIN, h=14)
            x = PDF_MARGIN + 18
        except Exception:  # a logo fpdf2 cannot draw: the report goes without it
            log.info("finance PDF without logo %s", logo, exc_info=True)
    pdf.set_xy(x, PDF_MARGIN)
    pdf.set_text_color(100, 116, 139)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 5, pdf_text(app_name), new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(17, 24, 39)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 8, pdf_text(title), new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(51, 65, 85)
    for text in lines:
        pdf.cell(0, 4.6, pdf_text(text), new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(17, 24, 39)
    pdf.set_y(max(pdf.get_y(), PDF_MARGIN + 16) + 3)


def _pdf_table(pdf, section: Section) -> None:
    from fpdf.fonts import FontFace

    pdf.set_font("Helvetica", "B", 10.5)
    pdf.cell(0, 7, pdf_text(section.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    widths = [c.width for c in section.columns]
    aligns = ["LEFT" if c.kind == "text" else "RIGHT" for c in section.columns]
    heading = FontFace(emphasis="BOLD", fill_color=(226, 232, 240))
    strong = FontFace(emphasis="BOLD", fill_color=(241, 245, 249))
    with pdf.table(col_widths=widths, width=PDF_WIDTH, line_height=5.2,
                   headings_style=heading, borders_layout="HORIZONTAL_LINES",
                   repeat_headings=1, text_align="LEFT", padding=(0.8, 1.2)) as table:
        head = table.row()
        for col, align in zip(section.columns, aligns, strict=True):
            head.cell(pdf_text(col.header), align="CENTER" if align == "RIGHT" else align)
        for values in section.rows:
            row = table.row()
            for col, align, value in zip(section.columns, aligns, values, strict=True):
                row.cell(_cell_text(value, col.kind), align=align)
        if not section.rows:
            row = table.row()
            row.cell("Belum ada data.", colspan=len(section.columns), align="CENTER")
        if section.total is not None:
            row = table.row(style=strong)
            for col, align, value in zip(section.columns, aligns, section.total, strict=True):
                row.cell(_cell_text(value, col.kind), align=align)
    pdf.ln(4)


def report_pdf(report: Report, *, app_name: str = "", logo_url: str = "") -> bytes:
    """The report as an A4 landscape PDF.

    Logo, title, period, scope and time, the main chart, then the tables (their header
    repeated on every page) with totals rows, and the note.
    """
    pdf = _pdf(app_name, report.title)
    pdf.set_title(pdf_text(report.title))
    pdf.add_page()
    _pdf_heading(pdf, report.title, [
        f"Periode: {report.period_label}",
        f"Cakupan: {report.scope_label}",
        f"Dibuat: {date_time(report.generated_at)}",
    ], logo_url, app_name)
    if report.chart:
        from PIL import Image as PILImage

        # Usually 10 x 4.2 inches; the package chart grows a bar per package, so a tall
        # chart is drawn narrower to keep it on the first page.
        with PILImage.open(io.BytesIO(report.chart)) as img:
            ratio = img.height / img.width
        chart_w = min(PDF_CHART_WIDTH, PDF_CHART_MAX_HEIGHT / ratio)
        pdf.image(io.BytesIO(report.chart), x=PDF_MARGIN + (PDF_WIDTH - chart_w) / 2,
                  y=pdf.get_y(), w=chart_w, h=chart_w * ratio)
        pdf.set_y(pdf.get_y() + chart_w * ratio + 3)
    for section in report.sections:
        _pdf_table(pdf, section)
    if report.note:
        pdf.set_font("Helvetica", "I", 7.5)
        pdf.set_text_color(100, 116, 139)
        pdf.multi_cell(PDF_WIDTH, 4, pdf_text(report.note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def write_report(actor: Actor, out: BinaryIO, *, report: str, fmt: str,
                 period: str | None = None, year: int | None = None, on: date | None = None,
                 owner_id: uuid.UUID | None = None) -> str:
    """Write a finance report as XLSX or PDF (audited ``finance.export``).

    Reports: ``monthly_sales`` (``year``: twelve months, billed and revenue),
    ``package_popularity`` and ``mitra_performance`` (``period``), ``aging``
    (``on``, default today). A missing year / period defaults to the current one.

    Args:
        actor: The superadmin (every owner, or one) or a mitra (own scope).
        out: A binary stream to write to; it is left open.
        report: One of :data:`REPORTS`.
        fmt: ``"xlsx"`` or ``"pdf"``.
        period: ``YYYY-MM`` for the period reports.
        year: For ``monthly_sales``.
        on: For ``aging``.
        owner_id: One owner only.

    Returns:
        The file's download name, e.g. ``laporan-penjualan-bulanan-2026.pdf``.

    Raises:
        AuthenticationRequired: nobody is logged in.
        PermissionDenied: a mitra names another owner.
        NotFound: no such owner.
        ValidationFailed: unknown report or format, bad year / period / day.
    """
    require_user(actor)
    report = _check_choice(report, REPORTS, "report", "Jenis laporan tidak dikenal.")
    fmt = _check_format(fmt, REPORT_FORMATS)
    basis, subject = _report_args(report, period, year, on)
    scope = _scope(actor, owner_id)
    with unit_of_work(actor) as uow:
        built = _build_report(actor, scope, report, subject)
        if fmt == "xlsx":
            data = report_xlsx(built)
        else:
            brand = settings_service.get_branding(actor)
            data = report_pdf(built, app_name=brand.app_name, logo_url=brand.logo_url)
        out.write(data)
        uow.audit("finance.export", "invoices", None, kind="report", report=report,
                  format=fmt, owner_id=scope.owner_id, **{basis: str(subject)})
    return report_filename(report, fmt, built.subject, scope.slug)


# --- settlement DOCX -----------------------------------------------------------------------


def _docx_cell(cell, text: str, *, bold: bool = False, align=None, size: float | None = None):
    from docx.shared import Pt

    cell.text = ""
    lines = str(text).split("\n")
    para = cell.paragraphs[0]
    for i, line in enumerate(lines):
        if i:
            para = cell.add_paragraph()
        run = para.add_run(line)
        run.bold = bold
        if size:
            run.font.size = Pt(size)
        if align is not None:
            para.alignment = align
    return cell


def _docx_widths(table, widths_cm: Sequence[float]) -> None:
    from docx.shared import Cm

    table.autofit = False
    for row in table.rows:
        for cell, width in zip(row.cells, widths_cm, strict=False):
            cell.width = Cm(width)


def _docx_no_borders(table) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    props = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    props.append(borders)


def settlement_docx(st: finance.Settlement, *, generated_on: date | None = None) -> bytes:
    """The printable settlement statement.

    Both parties, the period, what was collected, the paid lines (and reversals) with
    totals, and a signature block for both sides.
    """
    from docx import Document
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    generated_on = generated_on or clock.today()
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(1.8)
    section.top_margin = section.bottom_margin = Cm(1.6)
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10)
    center, right = WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.RIGHT

    def paragraph(text: str = "", *, bold: bool = False, size: float | None = None,
                  align=None, space_after: float = 4):
        para = doc.add_paragraph()
        if text:
            run = para.add_run(text)
            run.bold = bold
            if size:
                run.font.size = Pt(size)
        if align is not None:
            para.alignment = align
        para.paragraph_format.space_after = Pt(space_after)
        return para

    paragraph(st.company_name, bold=True, size=11, align=center, space_after=0)
    paragraph(SETTLEMENT_TITLE, bold=True, size=15, align=center, space_after=0)
    paragraph(f"Periode: {month_year(st.period)}", size=11, align=center, space_after=10)

    parties = doc.add_table(rows=2, cols=2)
    parties.style = "Table Grid"
    parties.alignment = WD_TABLE_ALIGNMENT.CENTER
    _docx_cell(parties.cell(0, 0), "Pihak Pertama (Perusahaan)", bold=True)
    _docx_cell(parties.cell(0, 1), "Pihak Kedua (Mitra)", bold=True)
    _docx_cell(parties.cell(1, 0), "\n".join([
        st.company_name, f"Diwakili oleh: {st.admin_name} (Superadmin)"]))
    bank = " ".join(x for x in (st.bank_name, st.bank_account) if x)
    if bank and st.bank_holder:
        bank = f"{bank} a.n. {st.bank_holder}"
    _docx_cell(parties.cell(1, 1), "\n".join([
        st.business_name, f"Pemilik: {st.owner_name}", f"Telepon: {st.owner_phone or '-'}",
        f"Rekening: {bank or '-'}"]))
    _docx_widths(parties, (8.7, 8.7))

    paragraph(space_after=2)
    para = paragraph(space_after=6)
    para.add_run(f"Jumlah terkumpul pada periode {month_year(st.period)}: ")
    amount = para.add_run(rupiah(st.collected))
    amount.bold = True
    amount.font.size = Pt(12)

    summary = doc.add_table(rows=3, cols=2)
    summary.style = "Table Grid"
    for r, (label, value) in enumerate([
            ("Pembayaran diterima", st.received),
            ("Pembayaran dibatalkan", st.reversed),
            ("Total terkumpul (disetorkan)", st.collected)]):
        _docx_cell(summary.cell(r, 0), label, bold=r == 2)
        _docx_cell(summary.cell(r, 1), rupiah(value), bold=r == 2, align=right)
    _docx_widths(summary, (9.0, 5.0))

    headers = ("No", "Pelanggan", "Periode tagihan", "Paket", "Tanggal bayar", "Metode",
               "Dicatat oleh", "Jumlah")
    widths = (0.9, 3.6, 2.2, 2.7, 2.6, 1.9, 2.2, 2.3)

    def lines_table(title: str, lines: list[finance.SettlementLine], total: int,
                    *, reversal: bool) -> None:
        paragraph(space_after=2)
        paragraph(title, bold=True, size=11)
        if not lines:
            paragraph("Tidak ada pembayaran pada periode ini." if not reversal
                      else "Tidak ada pembatalan pada periode ini.")
            return
        cols = list(headers)
        if reversal:
            cols[4] = "Tanggal batal"
        table = doc.add_table(rows=1, cols=len(cols))
        table.style = "Table Grid"
        for i, name in enumerate(cols):
            _docx_cell(table.rows[0].cells[i], name, bold=True, size=9)
        for no, line in enumerate(lines, 1):
            method = _method(line.method)
            if not reversal and line.reversed_at is not None:
                method = f"{method} (dibatalkan)"
            when = line.reversed_at if reversal else line.recorded_at
            cells = table.add_row().cells
            for i, text in enumerate([str(no), line.customer_name, month_year(line.period),
                                      line.package, date_time(when), method, line.recorded_by,
                                      rupiah(line.amount)]):
                _docx_cell(cells[i], text, size=9, align=right if i == 7 else None)
        cells = table.add_row().cells
        merged = cells[0].merge(cells[6])
        _docx_cell(merged, "Total", bold=True, size=9)
        _docx_cell(cells[7], rupiah(total), bold=True, size=9, align=right)
        _docx_widths(table, widths)

    lines_table("Rincian pembayaran diterima", st.lines, st.received, reversal=False)
    if st.reversals:
        lines_table("Pembayaran dibatalkan", st.reversals, st.reversed, reversal=True)
    paragraph(space_after=2)
    paragraph("Total terkumpul = pembayaran yang dicatat pada bulan ini dikurangi pembayaran "
              "yang dibatalkan pada bulan ini (menurut buku pembayaran).", size=8.5)

    paragraph(space_after=6)
    signatures = doc.add_table(rows=4, cols=2)
    _docx_no_borders(signatures)
    _docx_cell(signatures.cell(0, 1), f"................, {long_date(generated_on)}",
               align=center)
    _docx_cell(signatures.cell(1, 0), "Pihak Kedua (Mitra),", align=center)
    _docx_cell(signatures.cell(1, 1), "Pihak Pertama (Superadmin),", align=center)
    _docx_cell(signatures.cell(2, 0), "\n\n\n", align=center)
    _docx_cell(signatures.cell(2, 1), "\n\n\n", align=center)
    _docx_cell(signatures.cell(3, 0), f"( {st.owner_name} )\n{st.business_name}", bold=True,
               align=center)
    _docx_cell(signatures.cell(3, 1), f"( {st.admin_name} )\n{st.company_name}", bold=True,
               align=center)
    _docx_widths(signatures, (8.7, 8.7))

    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _settlement_owner(actor: Actor, owner_id: Any) -> _Scope:
    if owner_id is None or owner_id == "":
        raise ValidationFailed({"owner_id": "Pilih mitra."})
    return _scope(actor, owner_id, OTHER_SETTLEMENT)


def write_settlement(actor: Actor, out: BinaryIO, *, owner_id: uuid.UUID, period: str) -> str:
    """Write an owner's monthly settlement statement as DOCX (audited ``finance.export``).

    Args:
        actor: The superadmin (any owner) or a mitra (itself only).
        out: A binary stream to write to; it is left open.
        owner_id: Whose statement.
        period: The ``YYYY-MM`` month of the payments.

    Returns:
        The file's download name, e.g. ``rekonsiliasi-wifi-sukamaju-2026-03.docx``.

    Raises:
        AuthenticationRequired: nobody is logged in.
        PermissionDenied: a mitra names another owner.
        NotFound: no such owner.
        ValidationFailed: no owner, or a malformed period.
    """
    require_user(actor)
    period = finance.check_period(period)
    scope = _settlement_owner(actor, owner_id)
    with unit_of_work(actor) as uow:
        st = finance.settlement(actor, scope.owner_id, period)
        out.write(settlement_docx(st))
        uow.audit("finance.export", "payments", None, kind="settlement",
                  owner_id=scope.owner_id, period=period, collected=st.collected,
                  payments=len(st.lines))
    return settlement_filename(st.business_name, period)


# --- background jobs -----------------------------------------------------------------------


def _start(actor: Actor, *, kind: str, filename: str, total: int,
           params: dict[str, Any]) -> FileJobView:
    with unit_of_work(actor) as uow:
        job = filejobs.create_job(uow, kind=kind, filename=filename, total=total,
                                  params=params)
        uow.audit("finance.export_job", "file_jobs", job.id, kind=kind, filename=filename,
                  **params)
        jobqueue.enqueue_on_commit(uow, BUILD_TASK, job.id, fail=filejobs.fail_unqueued)
        return filejobs.view(job, _job_creator(uow.session, actor))


def start_recap(actor: Actor, *, start: date, end: date, fmt: str,
                owner_id: uuid.UUID | None = None) -> FileJobView:
    """Ask a worker for the recap file of :func:`write_recap` (large ranges).

    Returns:
        The pending job (``finance_recap``); its progress total is the invoice count.

    Raises:
        As :func:`write_recap`, before anything is stored.
    """
    require_user(actor)
    fmt = _check_format(fmt, FORMATS_RECAP)
    start, end = check_range(start, end)
    scope = _scope(actor, owner_id)
    count = finance.recap_totals(actor, start, end, scope.owner_id).invoice_count
    return _start(actor, kind=KIND_RECAP, filename=recap_filename(start, end, fmt, scope.slug),
                  total=count, params={
                      "start": start.isoformat(), "end": end.isoformat(), "format": fmt,
                      "owner_id": str(scope.owner_id) if scope.owner_id else None})


def start_report(actor: Actor, *, report: str, fmt: str, period: str | None = None,
                 year: int | None = None, on: date | None = None,
                 owner_id: uuid.UUID | None = None) -> FileJobView:
    """Ask a worker for a report file (see :func:`write_report` for the arguments).

    Returns:
        The pending job (``finance_report``).

    Raises:
        As :func:`write_report`, before anything is stored.
    """
    require_user(actor)
    report = _check_choice(report, REPORTS, "report", "Jenis laporan tidak dikenal.")
    fmt = _check_format(fmt, REPORT_FORMATS)
    basis, subject = _report_args(report, period, year, on)
    scope = _scope(actor, owner_id)
    subject_text = subject.isoformat() if isinstance(subject, date) else str(subject)
    return _start(actor, kind=KIND_REPORT,
                  filename=report_filename(report, fmt, subject_text, scope.slug), total=1,
                  params={"report": report, "format": fmt, basis: subject_text,
                          "owner_id": str(scope.owner_id) if scope.owner_id else None})


def start_settlement(actor: Actor, *, owner_id: uuid.UUID, period: str) -> FileJobView:
    """Ask a worker for an owner's settlement statement (DOCX, see :func:`write_settlement`).

    Returns:
        The pending job (``finance_settlement``).

    Raises:
        As :func:`write_settlement`, before anything is stored.
    """
    require_user(actor)
    period = finance.check_period(period)
    scope = _settlement_owner(actor, owner_id)
    return _start(actor, kind=KIND_SETTLEMENT,
                  filename=settlement_filename(scope.business_name or "", period), total=1,
                  params={"owner_id": str(scope.owner_id), "period": period})


def _creator_actor(user_id: uuid.UUID | None) -> Actor | None:
    """The job creator as an actor, read again now; ``None`` if gone or deactivated."""
    if user_id is None:
        return None
    with new_session() as s:
        user = s.get(User, user_id)
        if user is None or not user.is_active:
            return None
        return Actor(user_id=user.id, role=user.role, name=user.name,
                     user_agent="celery:finance-file")


def _write_streamed(job_id: uuid.UUID, suffix: str, fill: Callable[[BinaryIO], Any]) -> str:
    """As :func:`filejobs.write_file`, but streamed to disk (a recap can be large)."""
    relative = f"{FILES_SUBDIR}/{job_id}{suffix}"
    with storage.atomic_writer(filejobs.absolute(relative)) as out:
        fill(out)
    return relative


def _run(job, actor: Actor) -> tuple[str, int, dict[str, Any]]:
    """Build a claimed job's file as its creator; returns (path, total, audit facts)."""
    params = job.params or {}
    owner_id = params.get("owner_id") or None
    if job.kind == KIND_RECAP:
        fmt = params["format"]
        written: list[int] = []

        def fill(out: BinaryIO) -> None:
            written.append(write_recap(
                actor, out, start=date.fromisoformat(params["start"]),
                end=date.fromisoformat(params["end"]), fmt=fmt, owner_id=owner_id,
                on_progress=lambda n: filejobs.progress(job.id, n)))

        relative = _write_streamed(job.id, f".{fmt}", fill)
        return relative, written[0], {"rows": written[0]}
    if job.kind == KIND_REPORT:
        fmt = params["format"]
        buf = io.BytesIO()
        write_report(actor, buf, report=params["report"], fmt=fmt,
                     period=params.get("period"), year=params.get("year"),
                     on=params.get("on"), owner_id=owner_id)
        return filejobs.write_file(job.id, FILES_SUBDIR, f".{fmt}", buf.getvalue()), 1, {
            "report": params["report"]}
    if job.kind == KIND_SETTLEMENT:
        buf = io.BytesIO()
        write_settlement(actor, buf, owner_id=owner_id, period=params["period"])
        return filejobs.write_file(job.id, FILES_SUBDIR, ".docx", buf.getvalue()), 1, {}
    raise ValueError(f"not a finance file job: {job.kind!r}")


def build_job(job_id: uuid.UUID | str) -> dict[str, Any]:
    """Build the file of a finance job (the ``build_finance_file`` task).

    The job runs as its creator, rebuilt from the database: a mitra's job can only
    ever read that mitra's rows, and a creator deactivated or deleted since the
    request gets a failed job. Expected refusals (a permission or validation error)
    fail the job with their message; anything else with a generic one, logged.

    Returns:
        ``{"status": "done" | "failed" | "skipped" | None, ...}`` for the task result.
    """
    try:
        job_id = filejobs.as_uuid(job_id)
    except NotFound:
        return {"status": None}
    job = filejobs.claim(job_id)
    if job is None:
        return {"status": "skipped"}
    try:
        if job.kind not in KINDS:
            raise ValueError(f"not a finance file job: {job.kind!r}")
        actor = _creator_actor(job.created_by)
        if actor is None:
            filejobs.fail(job_id, CREATOR_GONE)
            return {"status": "failed", "kind": job.kind}
        relative, total, facts = _run(job, actor)
        filejobs.finish(job_id, relative, total, kind=job.kind, **facts)
        return {"status": "done", "kind": job.kind, **facts}
    except ServiceError as exc:
        log.warning("finance file %s refused: %s", job_id, exc.message)
        filejobs.fail(job_id, exc.message)
        return {"status": "failed", "kind": job.kind}
    except Exception:
        log.exception("finance file %s failed", job_id)
        filejobs.fail(job_id, BUILD_FAILED)
        return {"status": "failed", "kind": job.kind}
