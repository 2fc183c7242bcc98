"""The finance endpoints: cookie login, one error shape, the services' figures, files."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from fibernode import clock
from fibernode.api import create_api
from fibernode.services import auth, dashboard, finance, finance_files, invoices
from fibernode.services.context import Actor
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD
from tests.services.invoice_data import make_invoice

PERIOD = clock.current_period()
TODAY = clock.today()
LAST_PERIOD = clock.shift_period(PERIOD, -1)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _client(username: str | None) -> TestClient:
    client = TestClient(create_api())
    if username:
        password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
        token = auth.login(Actor.anonymous("10.3.3.3", "pytest"), username, password).token
        client.cookies.set(auth.SESSION_COOKIE, token)
        # A browser sends its page's origin; cookie-authenticated changes need it.
        client.headers["Origin"] = "http://testserver"
    return client


@pytest.fixture
def books(world):
    """This month: Ahmad (mitra1) paid, Dewi (mitra1) open due today, Rudi (superadmin)
    half paid due tomorrow; last month: Dewi open and overdue, Ahmad paid."""
    ahmad = make_invoice("Ahmad Fauzi", PERIOD, due_date=TODAY)
    dewi = make_invoice("Dewi Lestari", PERIOD, due_date=TODAY)
    rudi = make_invoice("Rudi Hartono", PERIOD, due_date=TODAY + timedelta(days=1))
    make_invoice("Dewi Lestari", LAST_PERIOD, due_date=TODAY - timedelta(days=20))
    old = make_invoice("Ahmad Fauzi", LAST_PERIOD, due_date=TODAY - timedelta(days=25))
    invoices.pay_invoice(world.mitra_a, ahmad.id, version=1, method="cash")
    invoices.pay_invoice(world.admin, rudi.id, version=1, method="qris", amount=100_000)
    invoices.pay_invoice(world.mitra_a, old.id, version=1, method="transfer")
    return {"ahmad": ahmad, "dewi": dewi, "rudi": rudi}


def _error(res, status: int) -> dict:
    assert res.status_code == status, res.text
    return res.json()["error"]


GETS = [
    "/api/dashboard/stats",
    "/api/finance/summary",
    f"/api/finance/by-period?period={PERIOD}",
    f"/api/finance/by-period?year={TODAY.year}",
    f"/api/finance/by-date?date={TODAY}",
    f"/api/finance/by-mitra?period={PERIOD}",
    f"/api/finance/export?start={TODAY}&end={TODAY}&format=csv",
]
POSTS = [
    ("/api/finance/export-jobs", {"start": str(TODAY), "end": str(TODAY), "format": "csv"}),
    ("/api/finance/reports", {"report": "aging", "format": "xlsx"}),
    ("/api/finance/settlements", {"owner_id": "00000000-0000-0000-0000-000000000001",
                                  "period": PERIOD}),
]


def test_anonymous_gets_401_everywhere(books):
    client = _client(None)
    for url in GETS:
        assert _error(client.get(url), 401)["code"] == "AuthenticationRequired", url
    for url, body in POSTS:
        assert _error(client.post(url, json=body), 401)["code"] == "AuthenticationRequired"
    assert client.get(f"/api/files/{books['ahmad'].id}/status").status_code == 401


def test_dashboard_stats_are_the_services_figures(world, books):
    for username, actor in (("superadmin", world.admin), ("mitra1", world.mitra_a),
                            ("mitra2", world.mitra_b)):
        body = _client(username).get("/api/dashboard/stats").json()
        stats = dashboard.dashboard_stats(actor)
        for name in ("period", "active_customers", "isolated_customers", "invoice_count",
                     "billed", "paid", "unpaid", "paid_count", "unpaid_count",
                     "overdue_count", "overdue_amount", "revenue", "collected_percent"):
            assert body[name] == getattr(stats, name), (username, name)
        assert [d["id"] for d in body["due_soon"]] == [
            str(v.id) for v in dashboard.due_soon(actor)]
        assert [(p["period"], p["revenue"], p["new_customers"], p["customers_total"])
                for p in body["series"]] == [
            (p.period, p.revenue, p.new_customers, p.customers_total)
            for p in finance.series(actor)]
        assert len(body["series"]) == 12 and body["series"][-1]["period"] == PERIOD
    mitra = _client("mitra1").get("/api/dashboard/stats").json()
    assert (mitra["billed"], mitra["paid"], mitra["overdue_count"]) == (240_000, 100_000, 1)
    assert mitra["collected_percent"] == 41.7
    # Cash basis: this month's two payments, one of them for last month's invoice.
    assert mitra["revenue"] == 200_000 and mitra["series"][-1]["revenue"] == 200_000
    assert {d["customer_name"] for d in mitra["due_soon"]} == {"Dewi Lestari"}
    admin = _client("superadmin").get("/api/dashboard/stats").json()
    assert {d["customer_name"] for d in admin["due_soon"]} == {"Dewi Lestari", "Rudi Hartono"}
    assert admin["revenue"] == 300_000 and admin["active_customers"] == 3
    narrowed = _client("superadmin").get(
        "/api/dashboard/stats", params={"owner_id": str(world.mitra_a.user_id)}).json()
    assert narrowed["billed"] == mitra["billed"]
    assert _client("mitra2").get("/api/dashboard/stats").json()["billed"] == 0


def test_summary_matches_the_services(world, books):
    body = _client("superadmin").get("/api/finance/summary").json()
    totals = finance.period_totals(world.admin, PERIOD)
    assert body["period"] == PERIOD
    assert body["totals"]["billed"] == totals.billed == 100_000 + 140_000 + 250_000
    assert body["totals"]["paid"] == totals.paid == 200_000
    assert body["totals"]["partial_count"] == 1
    assert body["revenue"] == finance.revenue(world.admin, PERIOD)
    assert body["collected_percent"] == totals.collected_percent
    assert (body["overdue_count"], body["overdue_amount"]) == (1, 140_000)
    last = _client("mitra1").get("/api/finance/summary", params={"period": LAST_PERIOD}).json()
    assert last["totals"] == {**last["totals"], "billed": 240_000, "paid": 100_000,
                              "invoice_count": 2}
    assert last["period"] == LAST_PERIOD


def test_mitra_b_cannot_name_mitra_a(world, books):
    client = _client("mitra2")
    owner = str(world.mitra_a.user_id)
    for url in ("/api/dashboard/stats", "/api/finance/summary",
                f"/api/finance/by-period?period={PERIOD}",
                f"/api/finance/by-period?year={TODAY.year}",
                f"/api/finance/by-date?date={TODAY}",
                f"/api/finance/export?start={TODAY}&end={TODAY}&format=xlsx"):
        sep = "&" if "?" in url else "?"
        res = client.get(f"{url}{sep}owner_id={owner}")
        assert _error(res, 403)["code"] == "PermissionDenied", url
    res = client.post("/api/finance/export-jobs", json={
        "start": str(TODAY), "end": str(TODAY), "format": "csv", "owner_id": owner})
    assert res.status_code == 403
    res = client.post("/api/finance/settlements", json={"owner_id": owner, "period": PERIOD})
    assert res.status_code == 403
    # Their own figures are empty, never mitra1's.
    body = client.get("/api/finance/by-period", params={"period": PERIOD}).json()
    assert body["totals"]["invoice_count"] == 0 and body["page"]["items"] == []


def test_by_mitra_is_for_the_superadmin(world, books):
    assert _error(_client("mitra1").get("/api/finance/by-mitra"), 403)["code"] == \
        "PermissionDenied"
    body = _client("superadmin").get("/api/finance/by-mitra",
                                     params={"sort": "billed", "desc": "true"}).json()
    rows = finance.by_mitra(world.admin, PERIOD, sort="billed", descending=True)
    assert [r["owner_id"] for r in body["rows"]] == [str(r.owner_id) for r in rows]
    assert [r["totals"]["billed"] for r in body["rows"]] == [r.totals.billed for r in rows]
    mitra1 = next(r for r in body["rows"] if r["business_name"] == "WiFi Sukamaju")
    assert (mitra1["totals"]["billed"], mitra1["overdue_count"]) == (240_000, 1)
    assert body["period"] == PERIOD and body["sort"] == "billed" and body["desc"] is True
    res = _client("superadmin").get("/api/finance/by-mitra", params={"sort": "nope"})
    assert "sort" in _error(res, 422)["details"]


def test_by_period_month_and_year(world, books):
    client = _client("mitra1")
    body = client.get("/api/finance/by-period", params={"period": PERIOD}).json()
    detail = finance.month_detail(world.mitra_a, PERIOD)
    assert body["kind"] == "month" and body["totals"]["billed"] == detail.totals.billed
    assert body["revenue"] == detail.revenue
    assert [r["customer_name"] for r in body["page"]["items"]] == ["Ahmad Fauzi",
                                                                   "Dewi Lestari"]
    ahmad = body["page"]["items"][0]
    assert (ahmad["status"], ahmad["status_label"], ahmad["recorded_by"]) == (
        "paid", "Lunas", "Budi Santoso")
    assert (body["page"]["total"], body["page"]["page"], body["page"]["pages"]) == (2, 1, 1)
    unpaid = client.get("/api/finance/by-period",
                        params={"period": PERIOD, "status": "unpaid"}).json()
    assert [r["customer_name"] for r in unpaid["page"]["items"]] == ["Dewi Lestari"]
    search = client.get("/api/finance/by-period", params={"period": PERIOD, "search": "ahm"})
    assert search.json()["page"]["total"] == 1

    year = client.get("/api/finance/by-period", params={"year": TODAY.year}).json()
    summary = finance.year_summary(world.mitra_a, TODAY.year)
    assert year["kind"] == "year" and len(year["months"]) == 12
    assert year["totals"]["billed"] == summary.totals.billed
    assert year["revenue"] == summary.revenue
    assert [m["totals"]["billed"] for m in year["months"]] == [
        m.totals.billed for m in summary.months]


def test_bad_parameters_get_422_in_indonesian(world, books):
    client = _client("superadmin")
    cases = [
        ("/api/finance/by-period", {}, "period", "Isi salah satu"),
        ("/api/finance/by-period", {"period": PERIOD, "year": "2026"}, "period",
         "Isi salah satu"),
        ("/api/finance/by-period", {"period": "2026-13"}, "period", "Periode harus"),
        ("/api/finance/by-period", {"year": "20x6"}, "year", "Tahun harus"),
        ("/api/finance/by-period", {"period": PERIOD, "status": "lunas"}, "status",
         "Status tidak dikenal"),
        ("/api/finance/summary", {"period": "March"}, "period", "Periode harus"),
        ("/api/finance/by-date", {"date": "2026-02-30"}, "date", "Tanggal harus"),
        ("/api/finance/by-date", {"date": str(TODAY), "page": 0}, "page", "Nilai 'page'"),
        ("/api/finance/export", {"start": str(TODAY), "end": str(TODAY), "format": "pdf"},
         "format", "Format file harus"),
        ("/api/finance/export", {"start": "kemarin", "end": str(TODAY)}, "start",
         "Tanggal mulai tidak valid"),
        ("/api/finance/export", {"end": str(TODAY)}, "start", "Tanggal mulai wajib"),
        ("/api/finance/export", {"start": str(TODAY), "end": str(TODAY - timedelta(days=1))},
         "end", "Tanggal akhir"),
        ("/api/dashboard/stats", {"owner_id": "bukan-id"}, "owner_id", "Nilai 'owner_id'"),
    ]
    for url, params, field, start in cases:
        error = _error(client.get(url, params=params), 422)
        assert error["code"] == "ValidationFailed", (url, params)
        assert error["details"][field].startswith(start), (url, params, error)
    res = client.post("/api/finance/reports", json={"report": "profit", "format": "xlsx"})
    assert _error(res, 422)["details"]["report"] == "Jenis laporan tidak dikenal."
    res = client.post("/api/finance/reports", json={"report": "aging", "format": "docx"})
    assert _error(res, 422)["details"]["format"] == "Format file harus xlsx atau pdf."
    res = client.post("/api/finance/reports", json={"report": "aging", "on": "besok"})
    assert _error(res, 422)["details"]["on"].startswith("Tanggal harus")
    res = client.post("/api/finance/export-jobs", json={"start": "x", "end": str(TODAY)})
    assert _error(res, 422)["details"]["start"].startswith("Tanggal mulai tidak valid")


def test_by_date_lists_who_paid_and_who_did_not(world, books):
    client = _client("superadmin")
    body = client.get("/api/finance/by-date", params={"date": str(TODAY)}).json()
    report = finance.by_date(world.admin, TODAY)
    assert body["day"] == str(TODAY)
    assert body["due"]["invoice_count"] == report.due.invoice_count == 2
    assert body["received"] == report.received
    assert {r["customer_name"]: r["status"] for r in body["page"]["items"]} == {
        "Ahmad Fauzi": "paid", "Dewi Lestari": "unpaid"}
    unpaid = client.get("/api/finance/by-date",
                        params={"date": str(TODAY), "status": "unpaid"}).json()
    assert [r["customer_name"] for r in unpaid["page"]["items"]] == ["Dewi Lestari"]
    assert client.get("/api/finance/by-date").json()["day"] == str(TODAY)
    mitra2 = _client("mitra2").get("/api/finance/by-date", params={"date": str(TODAY)}).json()
    assert mitra2["due"]["invoice_count"] == 0


def _csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_export_csv_and_xlsx_download_with_the_recap_totals(world, books):
    start, end = TODAY - timedelta(days=40), TODAY + timedelta(days=5)
    params = {"start": str(start), "end": str(end)}
    for username, actor in (("superadmin", world.admin), ("mitra1", world.mitra_a)):
        totals = finance.recap_totals(actor, start, end)
        res = _client(username).get("/api/finance/export", params={**params, "format": "csv"})
        assert res.status_code == 200, res.text
        assert res.headers["content-type"].startswith("text/csv")
        assert res.headers["content-disposition"].startswith("attachment;")
        assert res.headers["content-disposition"].endswith('.csv"')
        text = res.content.decode("utf-8-sig")
        rows = _csv_rows(res.content)
        names = {r[1] for r in rows[1:] if len(r) > 2}
        assert ("Rudi Hartono" in names) == (username == "superadmin")
        assert str(totals.billed) in text and str(totals.unpaid) in text

        res = _client(username).get("/api/finance/export", params={**params, "format": "xlsx"})
        assert res.status_code == 200, res.text
        assert res.headers["content-type"] == XLSX
        sheet = load_workbook(io.BytesIO(res.content), read_only=True).worksheets[0]
        cells = [c for row in sheet.iter_rows(values_only=True) for c in row]
        assert ("Rudi Hartono" in cells) == (username == "superadmin")
        for figure in (totals.billed, totals.paid, totals.unpaid):
            assert figure in cells, (username, figure)
    narrowed = _client("superadmin").get("/api/finance/export", params={
        **params, "format": "csv", "owner_id": str(world.mitra_a.user_id)})
    assert "Rudi Hartono" not in narrowed.content.decode("utf-8-sig")


def test_file_jobs_start_with_202_and_download_when_built(world, books, sent_jobs):
    mitra = _client("mitra1")
    res = mitra.post("/api/finance/export-jobs", json={
        "start": str(TODAY - timedelta(days=40)), "end": str(TODAY), "format": "xlsx"})
    assert res.status_code == 202, res.text
    job = res.json()
    assert job["status"] == "pending" and job["is_running"]
    assert sent_jobs == [(finance_files.BUILD_TASK, (job["id"],))]  # the test builds it
    assert job["status_url"] == f"/api/files/{job['id']}/status"
    assert job["download_url"] is None
    assert mitra.get(job["status_url"]).json()["progress_percent"] == 0
    assert _client("mitra2").get(job["status_url"]).status_code == 404

    finance_files.build_job(job["id"])
    done = mitra.get(job["status_url"]).json()
    assert done["status"] == "done" and done["is_ready"] and done["progress_percent"] == 100
    res = mitra.get(done["download_url"])
    assert res.status_code == 200 and res.headers["content-type"] == XLSX
    assert res.headers["content-disposition"].startswith("attachment;")
    assert load_workbook(io.BytesIO(res.content), read_only=True).worksheets

    admin = _client("superadmin")
    res = admin.post("/api/finance/reports", json={"report": "aging", "format": "pdf"})
    assert res.status_code == 202, res.text
    report = res.json()
    finance_files.build_job(report["id"])
    res = admin.get(f"/api/files/{report['id']}")
    assert res.status_code == 200 and res.headers["content-type"] == "application/pdf"

    res = admin.post("/api/finance/reports", json={"report": "monthly_sales", "format": "xlsx",
                                                   "year": TODAY.year})
    assert res.status_code == 202, res.text

    res = mitra.post("/api/finance/settlements", json={
        "owner_id": str(world.mitra_a.user_id), "period": PERIOD})
    assert res.status_code == 202, res.text
    settlement = res.json()
    finance_files.build_job(settlement["id"])
    res = mitra.get(f"/api/files/{settlement['id']}")
    assert res.status_code == 200
    assert res.headers["content-type"] == ("application/vnd.openxmlformats-officedocument."
                                           "wordprocessingml.document")
    assert len(sent_jobs) == 4


def test_openapi_lists_the_finance_endpoints(world):
    paths = _client(None).get("/api/openapi.json").json()["paths"]
    for path in ("/api/dashboard/stats", "/api/finance/summary", "/api/finance/by-period",
                 "/api/finance/by-date", "/api/finance/by-mitra", "/api/finance/export",
                 "/api/finance/export-jobs", "/api/finance/reports",
                 "/api/finance/settlements", "/api/files/{job_id}/status"):
        assert path in paths, path
