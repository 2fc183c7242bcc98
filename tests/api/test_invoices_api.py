"""``/api/invoices``: scoped list, detail with payments, pay/unpay (409 stale), generate, export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fibernode import clock
from fibernode.services import invoices, ratelimit, receipts
from tests.api.rest_helpers import client_for, error
from tests.services.invoice_data import make_invoice

PERIOD = clock.current_period()
LAST = clock.shift_period(PERIOD, -1)
TODAY = clock.today()


def _books():
    ahmad = make_invoice("Ahmad Fauzi", PERIOD, due_date=TODAY)
    dewi = make_invoice("Dewi Lestari", PERIOD, due_date=TODAY + timedelta(days=2))
    old = make_invoice("Dewi Lestari", LAST, due_date=TODAY - timedelta(days=20))
    rudi = make_invoice("Rudi Hartono", PERIOD, due_date=TODAY)
    return ahmad, dewi, old, rudi


def test_list_scoped_filtered_paginated(world):
    ahmad, dewi, old, rudi = _books()
    admin, mitra1, mitra2 = (client_for(u) for u in ("superadmin", "mitra1", "mitra2"))
    body = admin.get("/api/invoices").json()
    assert (body["total"], body["per_page"], body["pages"]) == (4, 20, 1)
    assert body["items"][0]["receipt_url"].startswith("/api/receipt/")
    assert {i["id"] for i in mitra1.get("/api/invoices").json()["items"]} == {
        str(ahmad.id), str(dewi.id), str(old.id)}
    assert mitra2.get("/api/invoices").json()["total"] == 0
    assert admin.get("/api/invoices", params={"period": LAST}).json()["items"][0][
        "id"] == str(old.id)
    assert admin.get("/api/invoices", params={"status": "overdue"}).json()["total"] == 1
    ranged = admin.get("/api/invoices", params={"due_from": str(TODAY),
                                                "due_to": str(TODAY + timedelta(days=1))})
    assert {i["id"] for i in ranged.json()["items"]} == {str(ahmad.id), str(rudi.id)}
    paged = admin.get("/api/invoices", params={"per_page": 3, "page": 2}).json()
    assert (paged["total"], paged["pages"], len(paged["items"])) == (4, 2, 1)
    error(admin.get("/api/invoices", params={"period": "2026-13"}), 422)
    error(admin.get("/api/invoices", params={"status": "lunas"}), 422)
    error(admin.get("/api/invoices", params={"due_from": str(TODAY),
                                             "due_to": str(TODAY - timedelta(days=1))}), 422)
    error(admin.get("/api/invoices", params={"per_page": 101}), 422)
    error(mitra1.get("/api/invoices", params={"owner_id": str(world.mitra_b.user_id)}), 403)


def test_pay_unpay_with_optimistic_locking(world):
    ahmad, _dewi, _old, rudi = _books()
    mitra1, mitra2 = client_for("mitra1"), client_for("mitra2")
    url = f"/api/invoices/{ahmad.id}"
    error(mitra2.patch(f"{url}/pay", json={"version": 1, "method": "cash"}), 404)
    error(mitra1.patch(f"/api/invoices/{rudi.id}/pay", json={"version": 1, "method": "cash"}),
          404)
    part = mitra1.patch(f"{url}/pay", json={"version": 1, "method": "transfer",
                                             "amount": 40_000, "note": "BCA 123"})
    assert part.status_code == 200, part.text
    assert (part.json()["status"], part.json()["remaining"], part.json()["version"]) == (
        "partial", 60_000, 2)
    stale = error(mitra1.patch(f"{url}/pay", json={"version": 1, "method": "cash"}), 409)
    assert stale["message"] == invoices.STALE_MESSAGE
    assert error(mitra1.patch(f"{url}/pay", json={"version": 2, "method": "cash",
                                                   "amount": 999_999}), 422)["details"]["amount"]
    error(mitra1.patch(f"{url}/pay", json={"version": 2, "method": "cek"}), 422)
    full = mitra1.patch(f"{url}/pay", json={"version": 2, "method": "cash"}).json()
    assert (full["status"], full["paid_by_name"], full["version"]) == ("paid", "Budi Santoso", 3)
    assert error(mitra1.patch(f"{url}/pay", json={"version": 3, "method": "cash"}), 409)
    detail = mitra1.get(url).json()
    assert [p["amount"] for p in detail["payments"]] == [40_000, 60_000]
    assert detail["payments"][0]["note"] == "BCA 123"
    error(mitra2.get(url), 404)
    assert error(mitra1.patch(f"{url}/unpay", json={"version": 3, "reason": " "}),
                 422)["details"]["reason"]
    error(mitra1.patch(f"{url}/unpay", json={"version": 2, "reason": "Salah catat"}), 409)
    undone = mitra1.patch(f"{url}/unpay", json={"version": 3, "reason": "Salah catat"}).json()
    assert (undone["status"], undone["paid_amount"], undone["version"]) == ("unpaid", 0, 4)
    reversed_rows = mitra1.get(url).json()["payments"]
    assert all(p["reversal_reason"] == "Salah catat" for p in reversed_rows)
    error(client_for(None).patch(f"{url}/pay", json={"version": 4, "method": "cash"}), 401)


def test_generate_is_superadmin_only_and_idempotent(world):
    admin, mitra1 = client_for("superadmin"), client_for("mitra1")
    # Two months ahead: due next month, after the seeded subscribers registered (today).
    nxt = clock.shift_period(PERIOD, 2)
    error(mitra1.post("/api/invoices/generate", json={"period": nxt}), 403)
    preview = admin.post("/api/invoices/generate", json={"period": nxt, "dry_run": True})
    assert preview.status_code == 200 and preview.json()["dry_run"] is True
    assert admin.get("/api/invoices", params={"period": nxt}).json()["total"] == 0
    first = admin.post("/api/invoices/generate", json={"period": nxt}).json()
    assert first["created"] == preview.json()["created"] > 0 and first["periods"] == [nxt]
    again = admin.post("/api/invoices/generate", json={"period": nxt}).json()
    assert (again["created"], again["already_existed"]) == (0, first["created"])
    one = admin.post("/api/invoices/generate", json={
        "period": nxt, "owner_id": str(world.mitra_a.user_id)}).json()
    assert one["owner_id"] == str(world.mitra_a.user_id) and one["created"] == 0
    default = admin.post("/api/invoices/generate").json()  # next month by default
    assert default["periods"] == [clock.shift_period(PERIOD, 1)]
    error(admin.post("/api/invoices/generate", json={"period": "2020-01"}), 422)
    error(admin.post("/api/invoices/generate", json={"period": "maret"}), 422)


def test_export_scoped_by_due_date(world):
    _books()
    admin, mitra1 = client_for("superadmin"), client_for("mitra1")
    res = admin.get("/api/invoices/export", params={"start": str(TODAY), "end": str(TODAY),
                                                    "format": "csv"})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("text/csv")
    names = {row[1] for row in csv.reader(io.StringIO(res.content.decode("utf-8-sig")))
             if len(row) > 1}
    assert {"Ahmad Fauzi", "Rudi Hartono"} <= names and "Dewi Lestari" not in names
    mine = mitra1.get("/api/invoices/export", params={"start": str(TODAY), "end": str(TODAY),
                                                      "format": "xlsx"})
    assert mine.status_code == 200 and mine.content[:2] == b"PK"
    error(mitra1.get("/api/invoices/export", params={
        "start": str(TODAY), "end": str(TODAY), "owner_id": str(world.mitra_b.user_id)}), 403)
    error(admin.get("/api/invoices/export", params={"start": str(TODAY)}), 422)
    error(admin.get("/api/invoices/export", params={"start": str(TODAY), "end": str(TODAY),
                                                    "format": "pdf"}), 422)
    error(client_for(None).get("/api/invoices/export"), 401)


def test_receipt_json_is_public_and_rate_limited(world):
    ratelimit.reset_memory()
    try:
        inv = make_invoice("Ahmad Fauzi")
        invoices.pay_invoice(world.mitra_a, inv.id, version=1, method="qris")
        public = client_for(None)
        res = public.get(f"/api/receipt/{inv.receipt_token}")
        assert res.status_code == 200, res.text
        body = res.json()
        assert (body["customer_name"], body["is_paid"], body["status"]) == (
            "Ahmad Fauzi", True, "paid")
        assert body["pdf_url"] == f"/api/receipt/{inv.receipt_token}.pdf"
        assert body["verification_code"] == receipts.verification_code(inv.receipt_token)
        # The PDF route next to it still answers.
        assert public.get(body["pdf_url"]).headers["content-type"] == "application/pdf"
        missing = error(public.get("/api/receipt/" + "z" * 32), 404)
        assert missing["message"] == "Nota tidak ditemukan."
        error(public.get("/api/receipt/pendek"), 404)
        # A fresh window: exactly 30 views a minute per address, the 31st refused.
        ratelimit.reset_memory()
        codes = [public.get("/api/receipt/" + "z" * 32).status_code for _ in range(31)]
        assert codes == [404] * 30 + [429]
        assert int(public.get(f"/api/receipt/{inv.receipt_token}").headers["retry-after"]) > 0
    finally:
        ratelimit.reset_memory()


def test_older_lists_take_per_page_too(world):
    _books()
    admin = client_for("superadmin")
    month = admin.get("/api/finance/by-period", params={"period": PERIOD, "per_page": 2}).json()
    assert (month["page"]["per_page"], month["page"]["total"], len(month["page"]["items"])) == (
        2, 3, 2)
    day = admin.get("/api/finance/by-date", params={"date": str(TODAY), "per_page": 1}).json()
    assert (day["page"]["per_page"], day["page"]["pages"]) == (1, 2)
    assert admin.get("/api/wa/logs", params={"per_page": 5}).json()["per_page"] == 5
    assert admin.get("/api/wa/queue", params={"per_page": 5}).json()["page"]["per_page"] == 5
    for url in ("/api/finance/by-date", "/api/wa/logs", "/api/wa/queue"):
        error(admin.get(url, params={"per_page": 101}), 422)
    # Without it, the pages keep their 20 rows.
    assert admin.get("/api/wa/logs").json()["per_page"] == 20
