"""``/api/activity-logs``: the audit trail, filtered and paginated (superadmin only)."""

from __future__ import annotations

from datetime import timedelta

from fibernode import clock
from tests.api.rest_helpers import client_for, error


def test_filters_and_paging(world):
    admin = client_for("superadmin")
    mitra1 = world.user_id("mitra1")
    assert admin.patch(f"/api/users/{mitra1}", json={"phone": "081299990000"}
                       ).status_code == 200
    everything = admin.get("/api/activity-logs").json()
    assert everything["total"] > 5 and everything["per_page"] == 20
    newest = everything["items"][0]
    assert newest["action"] == "user.update" and newest["username"] == "superadmin"
    assert newest["resource"] == "users" and newest["resource_id"] == str(mitra1)
    assert newest["meta"]["changes"]["phone"]
    only = admin.get("/api/activity-logs", params={"action": "user.up"}).json()
    assert [r["action"] for r in only["items"]] == ["user.update"]
    by_row = admin.get("/api/activity-logs", params={"resource": "users",
                                                     "resource_id": str(mitra1)}).json()
    assert {r["action"] for r in by_row["items"]} == {"user.create", "user.update"}
    mine = admin.get("/api/activity-logs", params={"user_id": str(world.admin.user_id)}).json()
    assert mine["total"] and all(r["username"] == "superadmin" for r in mine["items"])
    assert admin.get("/api/activity-logs", params={"username": "superadmin"}
                     ).json()["total"] == mine["total"]
    today = clock.today()
    assert admin.get("/api/activity-logs", params={"date_from": str(today),
                                                   "date_to": str(today)}
                     ).json()["total"] == everything["total"]
    assert admin.get("/api/activity-logs", params={
        "date_from": str(today + timedelta(days=1))}).json()["total"] == 0
    error(admin.get("/api/activity-logs", params={"date_from": str(today),
                                                  "date_to": str(today - timedelta(days=1))}),
          422)
    paged = admin.get("/api/activity-logs", params={"per_page": 2, "page": 2}).json()
    assert len(paged["items"]) == 2 and paged["pages"] == -(-everything["total"] // 2)
    assert paged["items"][0]["id"] == everything["items"][2]["id"]
    system = admin.get("/api/activity-logs", params={"system": "true"}).json()
    assert system["total"] and all(r["username"] == "sistem" for r in system["items"])
    assert system["total"] + mine["total"] + admin.get(
        "/api/activity-logs", params={"user_id": str(mitra1)}).json()["total"] \
        <= everything["total"]
    error(admin.get("/api/activity-logs", params={"per_page": 101}), 422)
    error(admin.get("/api/activity-logs", params={"date_from": "kemarin"}), 422)


def test_refused_for_mitra_and_anonymous(world):
    assert error(client_for("mitra1").get("/api/activity-logs"), 403)
    assert error(client_for(None).get("/api/activity-logs"), 401)
