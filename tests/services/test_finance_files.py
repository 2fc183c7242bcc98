"""Finance files: recap CSV/XLSX, reports XLSX/PDF, settlement DOCX, background jobs.

Every file is opened again (csv, openpyxl, pypdf, python-docx) and its figures are
checked against hand-computed amounts and against :mod:`fibernode.services.finance`.
"""

from __future__ import annotations

import calendar
import csv
import io
import uuid
import zipfile
from datetime import date, datetime, timedelta

import pytest
from docx import Document
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlmodel import select

from fibernode import clock
from fibernode.config import reset_settings
from fibernode.db import new_session
from fibernode.formatting import month_year
from fibernode.models import FileJob, FileJobStatus, Package, User, UserRole
from fibernode.services import (
    customers,
    filejobs,
    finance,
    finance_files,
    invoices,
    report_charts,
)
from fibernode.services.errors import (
    AuthenticationRequired,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from fibernode.services.exports import MONEY_FORMAT
from tests.services.invoice_data import invoice, logs, make_invoice, set_bank

P = clock.current_period()
YEAR = int(P[:4])
FIRST = date(YEAR, int(P[5:]), 1)
LAST = date(YEAR, int(P[5:]), calendar.monthrange(YEAR, int(P[5:]))[1])
PREVIOUS = clock.shift_period(P, -1)


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Files of jobs go to a temporary data directory."""
    monkeypatch.setenv("FIBERNODE_DATA_DIR", str(tmp_path / "data"))
    reset_settings()
    yield tmp_path / "data"
    reset_settings()


def pay(actor, inv_id, **kw):
    return invoices.pay_invoice(actor, inv_id, version=invoice(inv_id).version, **kw)


@pytest.fixture
def books(world):
    """This month (P), all invoices due in P:

    * Ahmad Fauzi (mitra1) 100.000, paid in full, cash.
    * Dewi Lestari (mitra1) 140.000 (150.000 less 10.000), 50.000 paid by transfer.
    * Rudi Hartono (superadmin) 250.000, paid then reversed: unpaid.
    * Sari Wulan (mitra2) 200.000, paid in full, QRIS.

    Plus Ahmad's invoice of the previous period (due then, unpaid: overdue).
    billed 690.000, paid 350.000, unpaid 340.000; revenue 600.000 − 250.000 = 350.000.
    """
    with new_session() as s:
        pkg30 = s.exec(select(Package.id).where(Package.name == "Paket 30 Mbps")).one()
    customers.create_customer(world.mitra_b, name="Sari Wulan", phone="081277770001",
                              package_id=pkg30, billing_date=20)
    ahmad = make_invoice("Ahmad Fauzi", P, due_date=FIRST.replace(day=5))
    dewi = make_invoice("Dewi Lestari", P, due_date=FIRST.replace(day=10))
    rudi = make_invoice("Rudi Hartono", P, due_date=FIRST.replace(day=15))
    sari = make_invoice("Sari Wulan", P, due_date=FIRST.replace(day=20))
    old_due = clock.period_start(PREVIOUS).replace(day=5)
    make_invoice("Ahmad Fauzi", PREVIOUS, due_date=old_due)
    pay(world.mitra_a, ahmad.id, method="cash")
    pay(world.mitra_a, dewi.id, method="transfer", amount=50_000)
    pay(world.admin, rudi.id, method="cash")
    invoices.unpay_invoice(world.admin, rudi.id, version=invoice(rudi.id).version,
                           reason="Salah catat")
    pay(world.mitra_b, sari.id, method="qris")
    set_bank(world.mitra_a.user_id, "BCA", "1234567890", "Budi Santoso")
    return world


def summary_of(rows: list[list], label_col: int = 1, value_col: int = 2) -> dict:
    return {r[label_col]: r[value_col] for r in rows
            if len(r) > value_col and isinstance(r[label_col], str) and r[label_col]}


# --- recap ---------------------------------------------------------------------------------


def test_recap_xlsx_is_typed_with_frozen_header_and_summary(books):
    buf = io.BytesIO()
    count = finance_files.write_recap(books.admin, buf, start=FIRST, end=LAST, fmt="xlsx")
    assert count == 4
    wb = load_workbook(io.BytesIO(buf.getvalue()))
    ws = wb["Rekap Keuangan"]
    assert ws.freeze_panes == "A2"
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert tuple(rows[0]) == finance_files.RECAP_COLUMNS
    assert all(c.font.b for c in ws[1])
    assert ws.column_dimensions["B"].width == 28
    data = rows[1:5]
    # Due date order, then name.
    assert [r[1] for r in data] == ["Ahmad Fauzi", "Dewi Lestari", "Rudi Hartono", "Sari Wulan"]
    assert [r[0] for r in data] == [1, 2, 3, 4]
    col = {name: i for i, name in enumerate(finance_files.RECAP_COLUMNS)}
    dewi = data[1]
    assert dewi[col["Area (mitra)"]] == "WiFi Sukamaju"
    assert (dewi[col["Harga"]], dewi[col["Diskon"]], dewi[col["Total"]],
            dewi[col["Dibayar"]], dewi[col["Sisa"]]) == (150_000, 10_000, 140_000, 50_000,
                                                        90_000)
    assert dewi[col["Status"]] == "Sebagian" and dewi[col["Periode"]] == P
    ahmad = data[0]
    assert ahmad[col["Status"]] == "Lunas" and ahmad[col["Metode"]] == "Tunai"
    assert ahmad[col["Dicatat Oleh"]] == "Budi Santoso"
    assert isinstance(ahmad[col["Jatuh Tempo"]], datetime)
    assert ahmad[col["Jatuh Tempo"]].date() == FIRST.replace(day=5)
    assert isinstance(ahmad[col["Tanggal Bayar"]], datetime)
    assert data[2][col["Tanggal Bayar"]] is None  # reversed: unpaid again
    for r in range(2, 6):
        for name in ("Harga", "Total", "Dibayar", "Sisa"):
            cell = ws.cell(row=r, column=col[name] + 1)
            assert cell.data_type == "n" and cell.number_format == MONEY_FORMAT
    summary = summary_of(rows[5:])
    totals = finance.recap_totals(books.admin, FIRST, LAST)
    assert (totals.billed, totals.paid, totals.unpaid, totals.invoice_count) == (
        690_000, 350_000, 340_000, 4)
    assert summary["Total tagihan"] == totals.billed
    assert summary["Terbayar"] == totals.paid
    assert summary["Belum terbayar"] == totals.unpaid
    assert summary["Jumlah tagihan"] == totals.invoice_count == 4
    assert summary["Tagihan lunas"] == 2 and summary["Tagihan belum lunas"] == 2
    assert summary["Cakupan"] == "Semua pemilik"
    value_cells = {r[1].value: r[2] for r in ws.iter_rows(min_row=7) if r[1].value}
    assert value_cells["Total tagihan"].number_format == MONEY_FORMAT
    assert value_cells["Total tagihan"].font.b
    [log] = logs("finance.export")
    assert log.user_id == books.admin.user_id
    assert log.meta["kind"] == "recap" and log.meta["rows"] == 4
    assert log.meta["format"] == "xlsx" and log.meta["start"] == FIRST.isoformat()


def test_recap_xlsx_continues_on_a_new_sheet_past_the_sheet_limit(books, monkeypatch):
    # Excel shows 1,048,576 rows a sheet; the limit is lowered to see the split.
    monkeypatch.setattr(finance_files, "XLSX_SHEET_ROWS", 3)
    buf = io.BytesIO()
    assert finance_files.write_recap(books.admin, buf, start=FIRST, end=LAST, fmt="xlsx") == 4
    wb = load_workbook(io.BytesIO(buf.getvalue()))
    assert wb.sheetnames == ["Rekap Keuangan", "Rekap Keuangan (2)"]
    first = [[c.value for c in row] for row in wb.worksheets[0].iter_rows()]
    second = [[c.value for c in row] for row in wb.worksheets[1].iter_rows()]
    assert tuple(first[0]) == tuple(second[0]) == finance_files.RECAP_COLUMNS
    assert [r[0] for r in first[1:]] == [1, 2, 3]
    assert second[1][0] == 4
    assert wb.worksheets[1].freeze_panes == "A2"
    assert summary_of(second[2:])["Total tagihan"] == 690_000


def test_recap_csv_of_a_mitra_holds_only_its_own_invoices(books):
    buf = io.BytesIO()
    assert finance_files.write_recap(books.mitra_a, buf, start=FIRST, end=LAST,
                                     fmt="csv") == 2
    raw = buf.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == finance_files.RECAP_COLUMNS
    assert [r[1] for r in rows[1:3]] == ["Ahmad Fauzi", "Dewi Lestari"]
    assert rows[3] == []
    text = raw.decode("utf-8-sig")
    assert "Rudi Hartono" not in text and "Sari Wulan" not in text
    assert rows[1][7] == FIRST.replace(day=5).isoformat() and rows[1][10] == "100000"
    summary = summary_of(rows[4:])
    totals = finance.recap_totals(books.mitra_a, FIRST, LAST)
    assert summary["Total tagihan"] == str(totals.billed) == "240000"
    assert summary["Terbayar"] == str(totals.paid) == "150000"
    assert summary["Belum terbayar"] == str(totals.unpaid) == "90000"
    assert summary["Jumlah tagihan"] == "2"
    assert summary["Cakupan"] == "WiFi Sukamaju (Budi Santoso)"


def test_a_mitra_recap_leaves_out_what_the_spec_keeps_from_mitra(books):
    """Mitra may not export subscriber data: their recap has no NIK and no address."""
    mine = books.mitra_a
    [ahmad] = [c for c in customers.list_customers(mine, search="Ahmad").items]
    customers.update_customer(books.admin, ahmad.id, nik="3201234567890123",
                              address="Jl. Rahasia No. 7")
    assert not {"NIK", "Alamat"} & {c.split()[0] for c in finance_files.RECAP_COLUMNS}
    for fmt in ("csv", "xlsx"):
        buf = io.BytesIO()
        finance_files.write_recap(mine, buf, start=FIRST, end=LAST, fmt=fmt)
        raw = buf.getvalue()
        text = (raw.decode("utf-8-sig") if fmt == "csv" else "\n".join(
            str(v) for ws in load_workbook(io.BytesIO(raw)).worksheets
            for row in ws.iter_rows(values_only=True) for v in row if v is not None))
        assert "Ahmad Fauzi" in text
        assert "3201234567890123" not in text and "Rahasia" not in text


def test_superadmin_recap_of_one_owner(books):
    buf = io.BytesIO()
    mitra2 = books.mitra_b.user_id
    assert finance_files.write_recap(books.admin, buf, start=FIRST, end=LAST, fmt="csv",
                                     owner_id=mitra2) == 1
    rows = list(csv.reader(io.StringIO(buf.getvalue().decode("utf-8-sig"))))
    assert rows[1][1] == "Sari Wulan"
    assert summary_of(rows[3:])["Total tagihan"] == "200000"
    # The owner id may come as text (API query strings).
    buf = io.BytesIO()
    assert finance_files.write_recap(books.admin, buf, start=FIRST, end=LAST, fmt="csv",
                                     owner_id=str(mitra2)) == 1


def test_recap_range_follows_due_dates(books):
    buf = io.BytesIO()
    start = clock.period_start(PREVIOUS)
    # Previous month through the 9th of this one: the old invoice and Ahmad's.
    assert finance_files.write_recap(books.admin, buf, start=start,
                                     end=FIRST.replace(day=9), fmt="csv") == 2


def test_recap_validation_and_permissions(books):
    def recap(actor, **kw):
        args = {"start": FIRST, "end": LAST, "fmt": "xlsx"} | kw
        return finance_files.write_recap(actor, io.BytesIO(), **args)

    with pytest.raises(ValidationFailed) as err:
        recap(books.admin, fmt="pdf")
    assert err.value.details == {"format": "Format file harus csv atau xlsx."}
    with pytest.raises(ValidationFailed) as err:
        recap(books.admin, start=LAST, end=FIRST)
    assert err.value.details == {"end": "Tanggal akhir tidak boleh sebelum tanggal mulai."}
    with pytest.raises(ValidationFailed) as err:
        recap(books.admin, start=date(2025, 1, 1), end=date(2026, 1, 2))
    assert list(err.value.details) == ["end"]
    # 366 days, both ends included, is the longest recap.
    recap(books.admin, start=date(2028, 1, 1), end=date(2028, 12, 31))
    with pytest.raises(ValidationFailed) as err:
        recap(books.admin, start=None)
    assert err.value.details == {"start": "Tanggal mulai wajib diisi."}
    with pytest.raises(ValidationFailed):
        recap(books.admin, start="31-01-2026")
    before = len(logs("finance.export"))
    with pytest.raises(PermissionDenied):
        recap(books.mitra_b, owner_id=books.mitra_a.user_id)
    with pytest.raises(AuthenticationRequired):
        recap(books.anonymous)
    with pytest.raises(NotFound):
        recap(books.admin, owner_id=uuid.uuid4())
    with pytest.raises(NotFound):
        recap(books.admin, owner_id="not-an-id")
    assert len(logs("finance.export")) == before


def test_recap_reports_progress(books, monkeypatch):
    monkeypatch.setattr(finance_files, "PROGRESS_EVERY", 2)
    seen: list[int] = []
    finance_files.write_recap(books.admin, io.BytesIO(), start=FIRST, end=LAST, fmt="xlsx",
                              on_progress=seen.append)
    assert seen == [2, 4]


# --- reports -------------------------------------------------------------------------------


def report(actor, name: str, fmt: str, **kw) -> tuple[bytes, str]:
    buf = io.BytesIO()
    filename = finance_files.write_report(actor, buf, report=name, fmt=fmt, **kw)
    return buf.getvalue(), filename


def pdf_text(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, "\n".join(p.extract_text() for p in reader.pages)


def test_monthly_sales_xlsx(books):
    data, filename = report(books.admin, "monthly_sales", "xlsx", year=YEAR)
    assert filename == f"laporan-penjualan-bulanan-{YEAR}.xlsx"
    wb = load_workbook(io.BytesIO(data))
    ws = wb["Penjualan Bulanan"]
    assert ws.freeze_panes == "A2"
    header = [c.value for c in ws[1]]
    assert header[:5] == ["Bulan", "Jumlah tagihan", "Total tagihan", "Terbayar",
                          "Belum terbayar"]
    rows = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    assert len(rows) == 13  # twelve months and the totals row
    month = rows[month_year(P)]
    col = {name: i for i, name in enumerate(header)}
    assert [month[col[n]].value for n in ("Jumlah tagihan", "Total tagihan", "Terbayar",
                                          "Belum terbayar", "Pendapatan", "Diterima",
                                          "Dibatalkan")] == [
        4, 690_000, 350_000, 340_000, 350_000, 600_000, 250_000]
    assert month[col["Total tagihan"]].number_format == MONEY_FORMAT
    assert month[col["Terkumpul"]].value == pytest.approx(0.507)
    assert month[col["Terkumpul"]].number_format == "0.0%"
    total = rows["Total"]
    summary = finance.year_summary(books.admin, YEAR)
    assert total[col["Total tagihan"]].value == summary.totals.billed
    assert total[col["Pendapatan"]].value == summary.revenue
    assert total[0].font.b
    info = wb["Info"]
    assert info["A1"].value == "Laporan Penjualan Bulanan"
    assert info["B3"].value == f"Tahun {YEAR}" and info["B4"].value == "Semua pemilik"
    assert any(n.startswith("xl/media/") for n in zipfile.ZipFile(io.BytesIO(data)).namelist())


def test_monthly_sales_pdf_has_logo_title_totals_and_chart(books):
    data, filename = report(books.admin, "monthly_sales", "pdf", year=YEAR)
    assert filename == f"laporan-penjualan-bulanan-{YEAR}.pdf"
    reader, text = pdf_text(data)
    assert "Laporan Penjualan Bulanan" in text
    assert f"Tahun {YEAR}" in text and "Semua pemilik" in text
    assert "Rp 690.000" in text and "Rp 350.000" in text and "Rp 340.000" in text
    assert month_year(P) in text and "Total" in text
    assert len(reader.pages[0].images) >= 1  # the chart
    box = reader.pages[0].mediabox
    assert box.width > box.height  # landscape


def test_mitra_gets_its_own_scope_of_a_report(books):
    data, filename = report(books.mitra_a, "monthly_sales", "pdf", year=YEAR)
    assert filename == f"laporan-penjualan-bulanan-{YEAR}-wifi-sukamaju.pdf"
    _reader, text = pdf_text(data)
    assert "WiFi Sukamaju (Budi Santoso)" in text
    assert "Rp 240.000" in text and "Rp 690.000" not in text
    data, _ = report(books.mitra_a, "mitra_performance", "xlsx", period=P)
    ws = load_workbook(io.BytesIO(data)).active
    names = [r[0].value for r in ws.iter_rows(min_row=2)]
    assert names == ["WiFi Sukamaju", "Total"]
    with pytest.raises(PermissionDenied):
        report(books.mitra_a, "aging", "pdf", owner_id=books.mitra_b.user_id)
    with pytest.raises(PermissionDenied):
        report(books.mitra_b, "monthly_sales", "xlsx", owner_id=books.mitra_a.user_id)


def test_package_popularity_report(books):
    data, filename = report(books.admin, "package_popularity", "xlsx", period=P)
    assert filename == f"laporan-popularitas-paket-{P}.xlsx"
    ws = load_workbook(io.BytesIO(data)).active
    assert ws.freeze_panes == "A2"
    rows = {r[0].value: [c.value for c in r] for r in ws.iter_rows(min_row=2)}
    header = [c.value for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    assert rows["Paket 30 Mbps"][col["Pelanggan aktif"]] == 1
    assert rows["Paket 30 Mbps"][col["Total tagihan"]] == 200_000
    assert rows["Total"][col["Pelanggan aktif"]] == 4
    assert rows["Total"][col["Total tagihan"]] == 690_000
    assert rows["Total"][col["Terbayar"]] == 350_000
    data, _ = report(books.admin, "package_popularity", "pdf", period=P)
    reader, text = pdf_text(data)
    assert "Laporan Popularitas Paket" in text and f"Periode: {month_year(P)}" in text
    assert "Paket 50 Mbps" in text and "Rp 690.000" in text
    assert reader.pages[0].images


def test_mitra_performance_report(books):
    data, _ = report(books.admin, "mitra_performance", "xlsx", period=P)
    ws = load_workbook(io.BytesIO(data)).active
    header = [c.value for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    rows = {r[0].value: [c.value for c in r] for r in ws.iter_rows(min_row=2)}
    assert set(rows) == {"FiberNode Pusat", "Net Mekarjaya", "WiFi Sukamaju", "Total"}
    assert rows["WiFi Sukamaju"][col["Total tagihan"]] == 240_000
    assert rows["WiFi Sukamaju"][col["Pendapatan"]] == 150_000
    assert rows["WiFi Sukamaju"][col["Lewat jatuh tempo"]] >= 1  # last period's invoice
    assert rows["FiberNode Pusat"][col["Pendapatan"]] == 0  # paid and reversed
    assert rows["Total"][col["Total tagihan"]] == 690_000
    assert rows["Total"][col["Pendapatan"]] == 350_000
    assert rows["Total"][col["Terkumpul"]] == pytest.approx(0.507)
    data, filename = report(books.admin, "mitra_performance", "pdf", period=P)
    assert filename == f"laporan-kinerja-mitra-{P}.pdf"
    reader, text = pdf_text(data)
    assert "Laporan Kinerja Mitra" in text and "Net Mekarjaya" in text
    assert "50,7%" in text and reader.pages[0].images


def test_long_tables_break_pages_with_the_header_repeated(books):
    with new_session() as s:
        for i in range(60):
            s.add(User(username=f"mitra-x{i:02d}", password_hash="-", name=f"Mitra {i:02d}",
                       role=UserRole.MITRA, business_name=f"Net Uji {i:02d}"))
        s.commit()
    data, _ = report(books.admin, "mitra_performance", "pdf", period=P)
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 2
    pages = [p.extract_text() for p in reader.pages]
    assert all("Pelanggan" in p and "Pendapatan" in p for p in pages[1:] if "Net Uji" in p)
    assert "Net Uji 59" in "".join(pages)
    assert f"Halaman 2/{len(reader.pages)}" in pages[1]


def test_aging_report_keeps_bucket_labels(books):
    on = LAST + timedelta(days=1)
    data, filename = report(books.admin, "aging", "xlsx", on=on)
    assert filename == f"laporan-umur-piutang-{on.isoformat()}.xlsx"
    wb = load_workbook(io.BytesIO(data))
    amounts = wb["Sisa Tagihan"]
    assert [c.value for c in amounts[1]] == ["Pemilik", *finance.AGING_BUCKETS, "Total"]
    rows = {r[0].value: [c.value for c in r] for r in amounts.iter_rows(min_row=2)}
    aging = finance.aging(books.admin, on)
    assert rows["Total"][1:6] == list(aging.amounts)
    assert rows["Total"][6] == sum(aging.amounts)
    # Dewi 90.000 and Rudi 250.000 open this month, Ahmad's old 100.000.
    assert rows["Total"][6] == 440_000
    counts = {r[0].value: [c.value for c in r] for r in wb["Jumlah Tagihan"].iter_rows(min_row=2)}
    assert counts["Total"][6] == 3
    data, _ = report(books.admin, "aging", "pdf", on=on)
    reader, text = pdf_text(data)
    assert "1-30 hari" in text and "> 90 hari" in text and "Belum jatuh tempo" in text
    assert "Rp 440.000" in text and reader.pages[0].images


def test_report_defaults_and_validation(books):
    _data, filename = report(books.admin, "package_popularity", "xlsx")
    assert filename == f"laporan-popularitas-paket-{P}.xlsx"
    _data, filename = report(books.admin, "aging", "xlsx")
    assert filename == f"laporan-umur-piutang-{clock.today().isoformat()}.xlsx"
    with pytest.raises(ValidationFailed) as err:
        report(books.admin, "laba_rugi", "pdf")
    assert list(err.value.details) == ["report"]
    with pytest.raises(ValidationFailed) as err:
        report(books.admin, "aging", "docx")
    assert list(err.value.details) == ["format"]
    with pytest.raises(ValidationFailed) as err:
        report(books.admin, "package_popularity", "pdf", period="2026-13")
    assert list(err.value.details) == ["period"]
    with pytest.raises(ValidationFailed) as err:
        report(books.admin, "monthly_sales", "pdf", year=1990)
    assert list(err.value.details) == ["year"]
    with pytest.raises(AuthenticationRequired):
        report(books.anonymous, "aging", "pdf")


# --- settlement ----------------------------------------------------------------------------


def docx_text(data: bytes) -> tuple[str, list[list[list[str]]]]:
    doc = Document(io.BytesIO(data))
    paragraphs = "\n".join(p.text for p in doc.paragraphs)
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in doc.tables]
    return paragraphs, tables


def test_settlement_docx_of_a_mitra(books):
    buf = io.BytesIO()
    filename = finance_files.write_settlement(books.mitra_a, buf,
                                              owner_id=books.mitra_a.user_id, period=P)
    assert filename == f"rekonsiliasi-wifi-sukamaju-{P}.docx"
    text, tables = docx_text(buf.getvalue())
    assert "Laporan Rekonsiliasi / Setoran Mitra" in text
    assert f"Periode: {month_year(P)}" in text
    assert "Rp 150.000" in text  # collected: 100.000 + 50.000
    parties = tables[0]
    assert parties[0] == ["Pihak Pertama (Perusahaan)", "Pihak Kedua (Mitra)"]
    assert "FiberNode Internet" in parties[1][0] and "Superadmin" in parties[1][0]
    assert "WiFi Sukamaju" in parties[1][1] and "Budi Santoso" in parties[1][1]
    assert "BCA 1234567890 a.n. Budi Santoso" in parties[1][1]
    summary = {r[0]: r[1] for r in tables[1]}
    assert summary == {"Pembayaran diterima": "Rp 150.000",
                       "Pembayaran dibatalkan": "Rp 0",
                       "Total terkumpul (disetorkan)": "Rp 150.000"}
    lines = tables[2]
    assert lines[0] == ["No", "Pelanggan", "Periode tagihan", "Paket", "Tanggal bayar",
                        "Metode", "Dicatat oleh", "Jumlah"]
    assert [r[1] for r in lines[1:-1]] == ["Ahmad Fauzi", "Dewi Lestari"]
    assert lines[1][2] == month_year(P) and lines[1][3] == "Paket 10 Mbps (10 Mbps)"
    assert lines[2][5] == "Transfer Bank" and lines[2][7] == "Rp 50.000"
    assert lines[-1][0] == "Total" and lines[-1][-1] == "Rp 150.000"
    signatures = tables[3]
    assert "Pihak Kedua (Mitra)," in signatures[1][0]
    assert "Pihak Pertama (Superadmin)," in signatures[1][1]
    assert "( Budi Santoso )" in signatures[3][0]
    assert len(tables) == 4  # no reversals table
    [log] = logs("finance.export")
    assert log.meta["kind"] == "settlement" and log.meta["collected"] == 150_000


def test_settlement_lists_reversals(books):
    buf = io.BytesIO()
    finance_files.write_settlement(books.admin, buf, owner_id=books.admin.user_id, period=P)
    text, tables = docx_text(buf.getvalue())
    summary = {r[0]: r[1] for r in tables[1]}
    assert summary["Pembayaran diterima"] == "Rp 250.000"
    assert summary["Pembayaran dibatalkan"] == "Rp 250.000"
    assert summary["Total terkumpul (disetorkan)"] == "Rp 0"
    assert "Pembayaran dibatalkan" in text
    paid, reversed_ = tables[2], tables[3]
    assert "(dibatalkan)" in paid[1][5]
    assert reversed_[0][4] == "Tanggal batal" and reversed_[1][1] == "Rudi Hartono"
    assert reversed_[-1][-1] == "Rp 250.000"


def test_settlement_permissions(books):
    with pytest.raises(PermissionDenied):
        finance_files.write_settlement(books.mitra_b, io.BytesIO(),
                                       owner_id=books.mitra_a.user_id, period=P)
    with pytest.raises(PermissionDenied):
        finance_files.start_settlement(books.mitra_a, owner_id=books.admin.user_id, period=P)
    with pytest.raises(NotFound):
        finance_files.write_settlement(books.admin, io.BytesIO(), owner_id=uuid.uuid4(),
                                       period=P)
    with pytest.raises(ValidationFailed):
        finance_files.write_settlement(books.admin, io.BytesIO(),
                                       owner_id=books.mitra_a.user_id, period="2026/03")
    with pytest.raises(ValidationFailed):
        finance_files.write_settlement(books.admin, io.BytesIO(), owner_id=None, period=P)
    assert logs("finance.export") == [] and logs("finance.export_job") == []


# --- jobs ----------------------------------------------------------------------------------


def test_recap_job_end_to_end(books, sent_jobs, data_dir, monkeypatch):
    job = finance_files.start_recap(books.admin, start=FIRST, end=LAST, fmt="xlsx")
    assert (job.status, job.kind, job.progress_total) == (
        FileJobStatus.PENDING, "finance_recap", 4)
    assert job.filename == f"rekap-keuangan-{FIRST.isoformat()}_{LAST.isoformat()}.xlsx"
    assert job.params == {"start": FIRST.isoformat(), "end": LAST.isoformat(),
                          "format": "xlsx", "owner_id": None}
    assert sent_jobs == [(finance_files.BUILD_TASK, (str(job.id),))]
    [log] = logs("finance.export_job")
    assert log.user_id == books.admin.user_id and log.meta["kind"] == "finance_recap"

    monkeypatch.setattr(finance_files, "PROGRESS_EVERY", 1)
    seen = []
    real = filejobs.progress

    def spy(job_id, done):
        real(job_id, done)
        seen.append(filejobs.get_file_job(books.admin, job_id).progress_done)

    monkeypatch.setattr(filejobs, "progress", spy)
    assert finance_files.build_job(str(job.id)) == {"status": "done", "kind": "finance_recap",
                                                    "rows": 4}
    assert seen == [1, 2, 3, 4]
    done = filejobs.get_file_job(books.admin, job.id)
    assert done.is_ready and done.progress_percent == 100
    path = filejobs.file_job_path(books.admin, job.id)
    assert data_dir / "files" / "finance" in path.parents and path.suffix == ".xlsx"
    assert not list(path.parent.glob("*.part"))
    ws = load_workbook(path)["Rekap Keuangan"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    assert summary_of(rows[5:])["Total tagihan"] == 690_000
    # The export itself is audited as the creator, the file as the system.
    [export] = logs("finance.export")
    assert export.user_id == books.admin.user_id and export.meta["rows"] == 4
    assert logs("file_job.done")
    # A second delivery does nothing; garbage ids are ignored.
    assert finance_files.build_job(job.id) == {"status": "skipped"}
    assert finance_files.build_job("not-a-uuid") == {"status": None}


def test_start_recap_sends_the_celery_task_after_commit(books, sent_jobs):
    job = finance_files.start_recap(books.mitra_a, start=FIRST, end=LAST, fmt="csv")
    assert sent_jobs == [("workers.tasks.build_finance_file", (str(job.id),))]
    assert job.filename == (f"rekap-keuangan-wifi-sukamaju-{FIRST.isoformat()}_"
                            f"{LAST.isoformat()}.csv")


def test_broker_failure_fails_the_job(books, sent_jobs):
    sent_jobs.refuse(ConnectionError("broker down"))
    job = finance_files.start_report(books.admin, report="aging", fmt="pdf")
    failed = filejobs.get_file_job(books.admin, job.id)
    assert failed.status == FileJobStatus.FAILED and failed.error == filejobs.ENQUEUE_FAILED


def test_mitra_job_is_rebuilt_in_the_mitras_scope(books, sent_jobs):
    job = finance_files.start_recap(books.mitra_a, start=FIRST, end=LAST, fmt="csv")
    assert job.progress_total == 2
    assert finance_files.build_job(job.id)["status"] == "done"
    path = filejobs.file_job_path(books.mitra_a, job.id)
    text = path.read_bytes().decode("utf-8-sig")
    assert "Ahmad Fauzi" in text and "Dewi Lestari" in text
    assert "Rudi Hartono" not in text and "Sari Wulan" not in text


def test_tampered_job_params_cannot_widen_a_mitras_scope(books, sent_jobs):
    job = finance_files.start_recap(books.mitra_a, start=FIRST, end=LAST, fmt="csv")
    with new_session() as s:
        row = s.get(FileJob, job.id)
        row.params = {**row.params, "owner_id": str(books.mitra_b.user_id)}
        s.commit()
    assert finance_files.build_job(job.id)["status"] == "failed"
    failed = filejobs.get_file_job(books.mitra_a, job.id)
    assert failed.status == FileJobStatus.FAILED
    assert failed.error == finance_files.OTHER_OWNER
    assert logs("finance.export") == []


def test_deactivated_creator_gets_no_file(books, sent_jobs):
    job = finance_files.start_recap(books.mitra_a, start=FIRST, end=LAST, fmt="xlsx")
    with new_session() as s:
        s.get(User, books.mitra_a.user_id).is_active = False
        s.commit()
    assert finance_files.build_job(job.id) == {"status": "failed", "kind": "finance_recap"}
    with new_session() as s:
        row = s.get(FileJob, job.id)
    assert row.status == FileJobStatus.FAILED and row.error == finance_files.CREATOR_GONE
    assert row.path is None


def test_unexpected_error_fails_the_job_with_a_generic_message(books, sent_jobs, monkeypatch):
    job = finance_files.start_report(books.admin, report="monthly_sales", fmt="pdf",
                                     year=YEAR)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(finance, "year_summary", broken)
    assert finance_files.build_job(job.id)["status"] == "failed"
    failed = filejobs.get_file_job(books.admin, job.id)
    assert failed.error == finance_files.BUILD_FAILED


@pytest.mark.parametrize(("name", "fmt", "kw", "filename"), [
    ("monthly_sales", "pdf", {"year": YEAR}, f"laporan-penjualan-bulanan-{YEAR}.pdf"),
    ("package_popularity", "xlsx", {"period": P}, f"laporan-popularitas-paket-{P}.xlsx"),
    ("aging", "pdf", {"on": FIRST}, f"laporan-umur-piutang-{FIRST.isoformat()}.pdf"),
])
def test_report_job_through_the_worker_task(books, sent_jobs, name, fmt, kw, filename):
    from workers import tasks

    job = finance_files.start_report(books.admin, report=name, fmt=fmt, **kw)
    assert job.kind == "finance_report" and job.filename == filename
    assert job.params["report"] == name and job.params["format"] == fmt
    assert all(isinstance(v, str) for k, v in job.params.items() if k != "owner_id")
    assert tasks.build_finance_file(str(job.id)) == {"status": "done",
                                                     "kind": "finance_report",
                                                     "report": name}
    path = filejobs.file_job_path(books.admin, job.id)
    assert path.suffix == f".{fmt}"
    if fmt == "pdf":
        assert PdfReader(str(path)).pages[0].images
    else:
        assert load_workbook(path).active.freeze_panes == "A2"


def test_settlement_job(books, sent_jobs):
    job = finance_files.start_settlement(books.mitra_a, owner_id=books.mitra_a.user_id,
                                         period=P)
    assert job.kind == "finance_settlement"
    assert job.filename == f"rekonsiliasi-wifi-sukamaju-{P}.docx"
    assert job.params == {"owner_id": str(books.mitra_a.user_id), "period": P}
    assert finance_files.build_job(job.id)["status"] == "done"
    text, _tables = docx_text(filejobs.file_job_path(books.mitra_a, job.id).read_bytes())
    assert "Rp 150.000" in text


def test_start_validates_before_storing_anything(books, sent_jobs):
    with pytest.raises(ValidationFailed):
        finance_files.start_recap(books.admin, start=LAST, end=FIRST, fmt="csv")
    with pytest.raises(PermissionDenied):
        finance_files.start_recap(books.mitra_a, start=FIRST, end=LAST, fmt="csv",
                                  owner_id=books.mitra_b.user_id)
    with pytest.raises(ValidationFailed):
        finance_files.start_report(books.admin, report="aging", fmt="csv")
    with pytest.raises(PermissionDenied):
        finance_files.start_report(books.mitra_b, report="aging", fmt="pdf",
                                   owner_id=books.admin.user_id)
    with pytest.raises(AuthenticationRequired):
        finance_files.start_settlement(books.anonymous, owner_id=books.mitra_a.user_id,
                                       period=P)
    assert sent_jobs == []
    with new_session() as s:
        assert s.exec(select(FileJob)).all() == []


# --- helpers -------------------------------------------------------------------------------


def test_pdf_text_keeps_bucket_labels_readable():
    assert finance_files.pdf_text("1–30 hari") == "1-30 hari"
    assert finance_files.pdf_text("“Rp” … ‘ok’") == "\"Rp\" ... 'ok'"
    assert finance_files.pdf_text("Café") == "Café"


def test_chart_helpers():
    assert report_charts.short_month("2026-08") == "Agu"
    assert report_charts.short_month("2026-05") == "Mei"
    assert report_charts.compact_rupiah(1_500_000) == "Rp 1,5 jt"
    assert report_charts.compact_rupiah(2_000_000) == "Rp 2 jt"
    assert report_charts.compact_rupiah(750_000) == "Rp 750 rb"
    assert report_charts.compact_rupiah(0) == "Rp 0"


def test_charts_draw_empty_data():
    empty = finance.AgingReport(on=date(2026, 3, 1), rows=[], counts=(0,) * 5,
                                amounts=(0,) * 5)
    for png in (report_charts.package_popularity_chart([]),
                report_charts.mitra_performance_chart([]),
                report_charts.aging_chart(empty, finance.AGING_BUCKETS)):
        assert png.startswith(b"\x89PNG")


def test_aging_chart_groups_small_owners():
    rows = [finance.AgingRow(owner_id=uuid.uuid4(), business_name=f"Net {i}",
                             counts=(1, 1, 0, 0, 0), amounts=(1000 * i, 500, 0, 0, 0))
            for i in range(1, 12)]
    amounts = tuple(sum(r.amounts[b] for r in rows) for b in range(5))
    report_ = finance.AgingReport(on=date(2026, 3, 1), rows=rows, counts=(11, 11, 0, 0, 0),
                                  amounts=amounts)
    assert report_charts.aging_chart(report_, finance.AGING_BUCKETS).startswith(b"\x89PNG")
