"""``/api/customers``: list, CRUD, isolate and the CSV import through the services."""

from __future__ import annotations

import pytest
from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog, Customer
from fibernode.services import packages
from tests.api.rest_helpers import client_for, error
from tests.services.invoice_data import customer, make_invoice

CSV = (b"nama,telepon,diskon,tanggal,area,paket_nama,paket_tarif,total_bayar,nik,"
       b"tanggal_register\n"
       b"Impor Baru,081277776666,0,5,WiFi Sukamaju,Paket 10 Mbps,100000,100000,,2025-01-15\n"
       b"Impor Salah,0812,0,5,Tidak Ada,Paket 10 Mbps,100000,100000,,2025-01-15\n")


@pytest.fixture(autouse=True)
def no_celery(sent_jobs):
    """Import jobs are recorded, not sent to a Celery broker."""


def _package(world, name: str = "Paket 20 Mbps"):
    return next(p for p in packages.list_packages(world.admin) if p.name == name)


def _new(world, **extra) -> dict:
    return {"name": "Pelanggan Baru", "phone": "0812 3456 0001",
            "package_id": str(_package(world).id), "billing_date": 7, **extra}


def _audit(action: str) -> list[ActivityLog]:
    with new_session() as s:
        return list(s.exec(select(ActivityLog).where(ActivityLog.action == action)).all())


def test_list_is_scoped_filtered_and_paginated(world):
    admin, mitra1, mitra2 = (client_for(u) for u in ("superadmin", "mitra1", "mitra2"))
    body = admin.get("/api/customers").json()
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (3, 1, 20, 1)
    assert all(c["nik"] is None for c in body["items"])  # never in lists
    assert {c["name"] for c in mitra1.get("/api/customers").json()["items"]} == {
        "Ahmad Fauzi", "Dewi Lestari"}
    assert mitra2.get("/api/customers").json()["total"] == 0
    page2 = admin.get("/api/customers", params={"per_page": 2, "page": 2}).json()
    assert [c["name"] for c in page2["items"]] == ["Rudi Hartono"] and page2["pages"] == 2
    assert admin.get("/api/customers", params={"search": "0898"}).json()["items"][0][
        "name"] == "Dewi Lestari"
    assert admin.get("/api/customers", params={"sort": "-billing_date"}).json()["items"][0][
        "name"] == "Rudi Hartono"
    assert admin.get("/api/customers", params={"owner_id": str(world.mitra_a.user_id)}
                     ).json()["total"] == 2
    # A mitra naming another owner is refused; unknown filters are 422.
    error(mitra1.get("/api/customers", params={"owner_id": str(world.mitra_b.user_id)}), 403)
    error(admin.get("/api/customers", params={"status": "hilang"}), 422)
    error(admin.get("/api/customers", params={"sort": "nik"}), 422)
    error(admin.get("/api/customers", params={"per_page": 101}), 422)


def test_create_and_get(world):
    admin, mitra1, mitra2 = (client_for(u) for u in ("superadmin", "mitra1", "mitra2"))
    res = mitra1.post("/api/customers", json=_new(world))
    assert res.status_code == 201, res.text
    made = res.json()
    assert made["owner_id"] == str(world.mitra_a.user_id) and made["phone"] == "6281234560001"
    assert made["total_bill"] == 150_000 and made["area"] == "WiFi Sukamaju"
    error(mitra1.post("/api/customers", json=_new(world, phone="0812 3456 0002",
                                                  owner_id=str(world.mitra_b.user_id))), 403)
    bad = error(mitra1.post("/api/customers", json=_new(world, billing_date=31, phone="1")), 422)
    assert {"billing_date", "phone"} <= set(bad["details"])
    for_b = admin.post("/api/customers", json=_new(world, phone="0812 3456 0003", nik="3201"
                                                   "234567890123", owner_id=str(
                                                       world.mitra_b.user_id)))
    assert for_b.status_code == 201 and for_b.json()["nik"] == "3201234567890123"
    b_id = for_b.json()["id"]
    assert mitra2.get(f"/api/customers/{b_id}").json()["nik"] is None  # masked only
    assert mitra2.get(f"/api/customers/{b_id}").json()["nik_masked"].endswith("0123")
    # Another tenant's subscriber does not exist for a mitra.
    assert error(mitra1.get(f"/api/customers/{b_id}"), 404)["code"] == "NotFound"
    history = mitra2.get(f"/api/customers/{b_id}/history").json()
    assert history == {"invoices": [], "payments": [], "messages": []}
    error(mitra1.get(f"/api/customers/{b_id}/history"), 404)


def test_update_rules(world):
    admin, mitra1, mitra2 = (client_for(u) for u in ("superadmin", "mitra1", "mitra2"))
    dewi = customer("Dewi Lestari")
    ok = mitra1.patch(f"/api/customers/{dewi.id}", json={"phone": "081200001111",
                                                        "discount": 20_000})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["phone"], ok.json()["total_bill"]) == ("6281200001111", 130_000)
    refused = error(mitra1.patch(f"/api/customers/{dewi.id}", json={"name": "Dewi L"}), 403)
    assert refused["message"] == "Mitra hanya boleh mengubah nomor telepon dan diskon."
    error(mitra2.patch(f"/api/customers/{dewi.id}", json={"phone": "081200002222"}), 404)
    error(mitra1.patch(f"/api/customers/{dewi.id}", json={"discount": 10_000_000}), 422)
    error(mitra1.patch(f"/api/customers/{dewi.id}", json={"owner_id": str(
        world.mitra_b.user_id)}), 403)
    error(admin.patch(f"/api/customers/{dewi.id}", json={"colour": "red"}), 422)
    pkg = _package(world, "Paket 30 Mbps")
    mixed = admin.patch(f"/api/customers/{dewi.id}", json={
        "name": "Dewi Lestari S", "owner_id": str(world.mitra_b.user_id)})
    assert error(mixed, 422)["message"] == (
        "Kirim perubahan data pelanggan dan pemilik dalam permintaan terpisah.")
    edited = admin.patch(f"/api/customers/{dewi.id}", json={
        "name": "Dewi Lestari S", "package_id": str(pkg.id), "address": "Jl. Mawar 1"})
    assert edited.status_code == 200, edited.text
    moved = admin.patch(f"/api/customers/{dewi.id}", json={
        "owner_id": str(world.mitra_b.user_id)})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["name"], body["package_name"], body["total_bill"], body["owner_id"]) == (
        "Dewi Lestari S", "Paket 30 Mbps", 180_000, str(world.mitra_b.user_id))
    off = admin.patch(f"/api/customers/{dewi.id}", json={"inactive": True})
    assert off.json()["status"] == "inactive"
    assert _audit("customer.move") and _audit("customer.deactivate")


def test_isolate_and_delete_are_superadmin_only(world):
    admin, mitra1 = client_for("superadmin"), client_for("mitra1")
    ahmad = customer("Ahmad Fauzi")
    error(mitra1.patch(f"/api/customers/{ahmad.id}/isolate",
                       json={"isolated": True, "reason": "Telat"}), 403)
    assert error(admin.patch(f"/api/customers/{ahmad.id}/isolate", json={"isolated": True}),
                 422)["details"]["reason"]
    cut = admin.patch(f"/api/customers/{ahmad.id}/isolate",
                      json={"isolated": True, "reason": "Telat 2 bulan"})
    assert cut.status_code == 200 and cut.json()["changed"] is True
    assert cut.json()["customer"]["status"] == "isolated"
    again = admin.patch(f"/api/customers/{ahmad.id}/isolate",
                        json={"isolated": True, "reason": "Telat 2 bulan"})
    assert again.json()["changed"] is False
    back = admin.patch(f"/api/customers/{ahmad.id}/isolate", json={"isolated": False})
    assert back.json()["customer"]["status"] == "active"
    assert _audit("customer.isolate")[0].meta["reason"] == "Telat 2 bulan"
    make_invoice(ahmad)
    error(mitra1.delete(f"/api/customers/{ahmad.id}"), 403)
    assert admin.delete(f"/api/customers/{ahmad.id}").status_code == 204
    error(admin.get(f"/api/customers/{ahmad.id}"), 404)
    error(admin.delete(f"/api/customers/{ahmad.id}"), 404)


def test_import_preview_confirm_status(world):
    admin, mitra1 = client_for("superadmin"), client_for("mitra1")
    files = {"file": ("pelanggan.csv", CSV, "text/csv")}
    error(mitra1.post("/api/customers/import", files=files), 403)
    error(client_for(None).post("/api/customers/import", files=files), 401)
    res = admin.post("/api/customers/import", files=files)
    assert res.status_code == 201, res.text
    job = res.json()
    assert (job["status"], job["total_rows"], job["valid_rows"], job["invalid_rows"]) == (
        "previewed", 2, 1, 1)
    assert job["can_confirm"] and job["confirm_url"].endswith("/confirm")
    assert {r["outcome"] for r in job["rows"]} == {"valid", "invalid"}
    invalid = admin.get(job["status_url"], params={"outcome": "invalid"}).json()
    assert [r["name"] for r in invalid["rows"]] == ["Impor Salah"] and invalid["row_count"] == 1
    error(mitra1.get(job["status_url"]), 403)
    error(mitra1.post(job["confirm_url"]), 403)
    done = admin.post(job["confirm_url"])
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["imported_rows"]) == ("done", 1)
    assert error(admin.post(job["confirm_url"]), 409)
    assert admin.get(done.json()["error_report_url"]).status_code == 200
    with new_session() as s:
        assert s.exec(select(Customer).where(Customer.name == "Impor Baru")).one()
    bad = error(admin.post("/api/customers/import",
                           files={"file": ("x.csv", b"", "text/csv")}), 422)
    assert "file" in bad["details"]
    other = admin.post("/api/customers/import", files=files).json()
    cancelled = admin.post(f"/api/customers/import/{other['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    error(admin.get("/api/customers/import/00000000-0000-0000-0000-000000000000"), 404)


def test_recent_imports_are_listed_newest_first_and_paginated(world):
    admin, mitra1 = client_for("superadmin"), client_for("mitra1")
    files = {"file": ("pelanggan.csv", CSV, "text/csv")}
    made = [admin.post("/api/customers/import", files=files).json()["id"] for _ in range(3)]
    error(mitra1.get("/api/customers/import"), 403)
    error(client_for(None).get("/api/customers/import"), 401)
    first = admin.get("/api/customers/import", params={"per_page": 2}).json()
    assert (first["total"], first["pages"], first["per_page"]) == (3, 2, 2)
    second = admin.get("/api/customers/import", params={"per_page": 2, "page": 2}).json()
    listed = [j["id"] for j in first["items"] + second["items"]]
    assert sorted(listed) == sorted(made) and len(set(listed)) == 3
    job = first["items"][0]
    assert (job["status"], job["valid_rows"], job["invalid_rows"]) == ("previewed", 1, 1)
    assert "rows" not in job and admin.get(job["status_url"]).status_code == 200
    assert error(admin.get("/api/customers/import", params={"per_page": 101}), 422)
