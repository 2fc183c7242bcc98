"""``/api/users``: mitra accounts through the users service (superadmin only)."""

from __future__ import annotations

from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import ActivityLog
from tests.api.rest_helpers import client_for, error
from tests.factories import MITRA_PASSWORD

NEW = {"username": "mitra3", "password": "Rahasia123!", "name": "Budi",
       "business_name": "WiFi Cempaka", "phone": "081234567890"}


def _actions(resource_id) -> list[str]:
    with new_session() as s:
        return [a.action for a in s.exec(select(ActivityLog).where(
            ActivityLog.resource_id == resource_id).order_by(ActivityLog.created_at)).all()]


def test_list_paginates_with_counts(world):
    admin = client_for("superadmin")
    for i in range(3):
        world.new_mitra(f"extra{i}", f"Zeta {i}")
    body = admin.get("/api/users", params={"per_page": 2}).json()
    assert (body["total"], body["page"], body["per_page"], body["pages"]) == (5, 1, 2, 3)
    assert len(body["items"]) == 2
    last = admin.get("/api/users", params={"per_page": 2, "page": 3}).json()
    assert [u["business_name"] for u in last["items"]] == ["Zeta 2"]
    everyone = {u["username"]: u for u in admin.get("/api/users").json()["items"]}
    assert everyone["mitra1"]["customer_count"] == 2
    assert everyone["mitra2"]["customer_count"] == 0
    assert "password_hash" not in everyone["mitra1"]
    assert admin.get("/api/users", params={"search": "zeta"}).json()["total"] == 3
    assert error(admin.get("/api/users", params={"per_page": 101}), 422)["details"]
    assert error(admin.get("/api/users", params={"page": 0}), 422)


def test_create_get_update_and_validation(world):
    admin = client_for("superadmin")
    created = admin.post("/api/users", json=NEW)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["phone"] == "6281234567890" and user["is_active"] is True
    assert admin.get(f"/api/users/{user['id']}").json() == user
    taken = error(admin.post("/api/users", json=NEW), 422)
    assert set(taken["details"]) == {"username", "business_name"}
    weak = error(admin.post("/api/users", json={**NEW, "username": "x9", "password": "a"}), 422)
    assert "password" in weak["details"]
    assert error(admin.post("/api/users", json={**NEW, "rogue": 1}), 422)

    changed = admin.patch(f"/api/users/{user['id']}", json={"name": "Budi Santoso",
                                                           "bank_account": "1234567"})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    # Omitted fields stay as they were.
    assert (after["name"], after["business_name"], after["phone"], after["bank_account"]) == (
        "Budi Santoso", "WiFi Cempaka", "6281234567890", "1234567")
    assert error(admin.patch(f"/api/users/{user['id']}",
                             json={"bank_account": "abc"}), 422)["details"]["bank_account"]
    assert _actions(world.user_id("mitra3"))[:2] == ["user.create", "user.update"]


def test_password_reset_and_deactivation(world):
    admin = client_for("superadmin")
    mitra2 = client_for("mitra2")
    assert mitra2.get("/api/auth/me").status_code == 200
    mitra2_id = world.user_id("mitra2")
    reset = admin.patch(f"/api/users/{mitra2_id}", json={"new_password": "BaruSekali2024"})
    assert reset.status_code == 200
    # Every token of the mitra was revoked with the reset.
    assert mitra2.get("/api/auth/me").status_code == 401
    assert error(admin.patch(f"/api/users/{mitra2_id}", json={"new_password": "x"}),
                 422)["details"]["new_password"]
    off = admin.patch(f"/api/users/{mitra2_id}", json={"is_active": False})
    assert off.status_code == 200 and off.json()["is_active"] is False
    on = admin.patch(f"/api/users/{mitra2_id}", json={"is_active": True})
    assert on.json()["is_active"] is True
    assert "user.password_reset" in _actions(mitra2_id)


def test_delete_is_a_soft_delete_refused_while_owning_customers(world):
    admin = client_for("superadmin")
    mitra1_id, mitra2_id = world.user_id("mitra1"), world.user_id("mitra2")
    refused = error(admin.delete(f"/api/users/{mitra1_id}"), 409)
    assert "masih memiliki 2 pelanggan" in refused["message"]
    assert admin.delete(f"/api/users/{mitra2_id}").status_code == 204
    assert admin.get(f"/api/users/{mitra2_id}").json()["is_active"] is False
    # A deactivated mitra cannot log in through the API any more.
    res = client_for(None).post("/api/auth/login",
                                json={"username": "mitra2", "password": MITRA_PASSWORD})
    assert res.status_code == 401
    # Permanent deletion: only for an account without history.
    fresh = world.new_mitra("salah", "Akun Salah")
    assert admin.delete(f"/api/users/{fresh}", params={"permanent": True}).status_code == 204
    error(admin.get(f"/api/users/{fresh}"), 404)
    assert error(admin.delete(f"/api/users/{mitra1_id}", params={"permanent": True}), 409)


def test_mitra_and_anonymous_are_refused(world):
    mitra2_id = world.user_id("mitra2")
    mitra = client_for("mitra1")
    for method, url, body in (("get", "/api/users", None), ("post", "/api/users", NEW),
                              ("get", f"/api/users/{mitra2_id}", None),
                              ("patch", f"/api/users/{mitra2_id}", {"name": "X"}),
                              ("delete", f"/api/users/{mitra2_id}", None)):
        kwargs = {"json": body} if body else {}
        assert error(getattr(mitra, method)(url, **kwargs), 403)["code"] == "PermissionDenied"
        assert error(getattr(client_for(None), method)(url, **kwargs), 401)
    admin = client_for("superadmin")
    # The superadmin's own account is not a mitra: 404, like an unknown id.
    error(admin.get(f"/api/users/{world.admin.user_id}"), 404)
    error(admin.get("/api/users/00000000-0000-0000-0000-000000000000"), 404)
    assert error(admin.get("/api/users/bukan-id"), 422)


def test_patch_mixing_use_cases_is_refused_whole(world):
    from fibernode.services import users
    from tests.api.rest_helpers import client_for

    client = client_for("superadmin")
    before = users.get_mitra(world.admin, world.mitra_a.user_id)
    mixed = client.patch(f"/api/users/{world.mitra_a.user_id}",
                         json={"name": "Nama Baru", "is_active": False})
    assert mixed.status_code == 422
    body = mixed.json()["error"]
    assert body["message"] == ("Kirim perubahan data mitra dan status aktif dalam "
                               "permintaan terpisah.")
    assert set(body["details"]) == {"name", "is_active"}
    after = users.get_mitra(world.admin, world.mitra_a.user_id)
    assert (after.name, after.is_active) == (before.name, before.is_active)
