"""``/api/packages``: every role reads (mitra: active only), the superadmin manages."""

from __future__ import annotations

from fibernode.services import packages
from tests.api.rest_helpers import client_for, error

NEW = {"name": "Paket Turbo", "speed": "100 Mbps", "price": 450_000,
       "description": "Untuk kantor"}


def test_list_is_paginated_and_mitra_see_active_only(world):
    admin, mitra = client_for("superadmin"), client_for("mitra1")
    all_rows = admin.get("/api/packages").json()
    assert all_rows["total"] == 5 and all_rows["per_page"] == 20
    assert [p["price"] for p in all_rows["items"]] == sorted(p["price"]
                                                             for p in all_rows["items"])
    two = admin.get("/api/packages", params={"per_page": 2, "page": 3}).json()
    assert (two["total"], two["pages"], len(two["items"])) == (5, 3, 1)
    hidden = next(p["id"] for p in all_rows["items"] if not p["subscriber_count"])
    assert admin.delete(f"/api/packages/{hidden}").status_code == 204  # soft delete
    assert mitra.get("/api/packages").json()["total"] == 4
    assert mitra.get("/api/packages", params={"include_inactive": True}).json()["total"] == 4
    assert admin.get("/api/packages", params={"include_inactive": True}).json()["total"] == 5
    assert admin.get(f"/api/packages/{hidden}").json()["is_active"] is False
    error(mitra.get(f"/api/packages/{hidden}"), 404)
    # Subscriber counts are the caller's own.
    counts = {p["id"]: p["subscriber_count"] for p in mitra.get("/api/packages").json()["items"]}
    assert sum(counts.values()) == 2
    assert error(admin.get("/api/packages", params={"per_page": 500}), 422)


def test_create_update_delete(world):
    admin = client_for("superadmin")
    res = admin.post("/api/packages", json=NEW)
    assert res.status_code == 201, res.text
    pkg = res.json()
    assert pkg["subscriber_count"] == 0 and pkg["is_active"] is True
    assert error(admin.post("/api/packages", json={**NEW, "price": 0}), 422)["details"]["price"]
    assert error(admin.post("/api/packages", json={**NEW, "price": "mahal"}), 422)
    changed = admin.patch(f"/api/packages/{pkg['id']}", json={"price": 400_000})
    assert changed.json()["price"] == 400_000 and changed.json()["name"] == NEW["name"]
    off = admin.patch(f"/api/packages/{pkg['id']}", json={"is_active": False})
    assert off.json()["is_active"] is False
    assert admin.delete(f"/api/packages/{pkg['id']}", params={"permanent": True}
                        ).status_code == 204
    error(admin.get(f"/api/packages/{pkg['id']}"), 404)
    used = next(p for p in packages.list_packages(world.admin) if p.subscriber_count)
    assert "masih dipakai" in error(admin.delete(f"/api/packages/{used.id}",
                                                 params={"permanent": True}), 409)["message"]
    # A price below a subscriber's discount is refused by the service (422).
    error(admin.patch("/api/packages/00000000-0000-0000-0000-000000000000",
                      json={"price": 1}), 404)


def test_mitra_cannot_change_packages(world):
    mitra = client_for("mitra1")
    pkg = packages.list_packages(world.admin)[0]
    assert error(mitra.post("/api/packages", json=NEW), 403)["code"] == "PermissionDenied"
    error(mitra.patch(f"/api/packages/{pkg.id}", json={"price": 1000}), 403)
    error(mitra.delete(f"/api/packages/{pkg.id}"), 403)
    assert mitra.get(f"/api/packages/{pkg.id}").status_code == 200
    error(client_for(None).get("/api/packages"), 401)
