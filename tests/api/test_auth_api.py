"""``/api/auth/*``: bearer tokens, rotation, reuse detection, profile, two-step login."""

from __future__ import annotations

import pyotp
import pytest
from fastapi.testclient import TestClient

from fibernode import clock
from fibernode.api import create_api
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD


@pytest.fixture
def client(world) -> TestClient:
    return TestClient(create_api())


def login(client: TestClient, username: str, password: str, **extra) -> dict:
    response = client.post("/api/auth/login",
                           json={"username": username, "password": password, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_me_refresh_logout(client):
    pair = login(client, "mitra1", MITRA_PASSWORD)
    assert pair["token_type"] == "bearer" and pair["role"] == "mitra"

    me = client.get("/api/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200 and me.json()["username"] == "mitra1"
    # The bearer token works on the other routers too (same services, same scope).
    assert client.get("/api/finance/summary",
                      headers=bearer(pair["access_token"])).status_code == 200

    new = client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert new.status_code == 200
    new = new.json()
    reuse = client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["error"]["message"].startswith("Token sudah pernah dipakai")
    # Reuse revoked the family: the newest tokens are dead as well.
    assert client.get("/api/auth/me", headers=bearer(new["access_token"])).status_code == 401

    fresh = login(client, "mitra1", MITRA_PASSWORD)
    out = client.post("/api/auth/logout", headers=bearer(fresh["access_token"]))
    assert out.status_code == 200 and out.json() == {"revoked": 1}
    assert client.get("/api/auth/me", headers=bearer(fresh["access_token"])).status_code == 401


def test_errors_use_the_one_shape(client):
    wrong = client.post("/api/auth/login", json={"username": "mitra1", "password": "salah"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "Username atau password salah."
    assert client.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me", headers=bearer("garbage")).status_code == 401
    bad = client.post("/api/auth/login", json={"username": "mitra1"})
    assert bad.status_code == 422 and "password" in bad.json()["error"]["details"]
    for _ in range(4):
        client.post("/api/auth/login", json={"username": "mitra1", "password": "salah"})
    locked = client.post("/api/auth/login",
                         json={"username": "mitra1", "password": MITRA_PASSWORD})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


def test_profile_update_and_password_change_revokes(client):
    pair = login(client, "mitra1", MITRA_PASSWORD)
    headers = bearer(pair["access_token"])
    changed = client.patch("/api/auth/me", headers=headers, json={"phone": "081234567899"})
    assert changed.status_code == 200 and changed.json()["phone"] == "6281234567899"
    bad = client.patch("/api/auth/me", headers=headers,
                       json={"current_password": MITRA_PASSWORD, "new_password": "pendek",
                             "confirm_password": "pendek"})
    assert bad.status_code == 422 and "new_password" in bad.json()["error"]["details"]
    ok = client.patch("/api/auth/me", headers=headers,
                      json={"current_password": MITRA_PASSWORD, "new_password": "GantiBaru2024",
                            "confirm_password": "GantiBaru2024"})
    assert ok.status_code == 200
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    assert client.post("/api/auth/refresh",
                       json={"refresh_token": pair["refresh_token"]}).status_code == 401
    login(client, "mitra1", "GantiBaru2024")


def test_two_step_login_over_the_api(client):
    admin = login(client, "superadmin", ADMIN_PASSWORD)
    headers = bearer(admin["access_token"])
    mitra = login(client, "mitra1", MITRA_PASSWORD)
    assert client.post("/api/auth/2fa/enroll",
                       headers=bearer(mitra["access_token"])).status_code == 403

    enrolment = client.post("/api/auth/2fa/enroll", headers=headers).json()
    totp = pyotp.TOTP(enrolment["secret"])
    codes = client.post("/api/auth/2fa/confirm", headers=headers,
                        json={"code": totp.at(clock.now())}).json()["recovery_codes"]
    assert len(codes) == 10
    assert client.get("/api/auth/2fa", headers=headers).json()["enabled"] is True

    need = client.post("/api/auth/login",
                       json={"username": "superadmin", "password": ADMIN_PASSWORD})
    assert need.status_code == 401
    assert need.json()["error"]["code"] == "TwoFactorRequired"
    recovered = login(client, "superadmin", ADMIN_PASSWORD, otp=codes[0])
    off = client.post("/api/auth/2fa/disable", headers=bearer(recovered["access_token"]),
                      json={"password": ADMIN_PASSWORD, "code": codes[1]})
    assert off.status_code == 200 and off.json()["enabled"] is False
    login(client, "superadmin", ADMIN_PASSWORD)


def test_a_device_token_keeps_an_api_client_logging_in_while_the_username_is_locked(client):
    first = login(client, "mitra1", MITRA_PASSWORD)
    token = first["device_token"]
    assert token
    # The token is a credential: it stays out of the refresh response.
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.json()["device_token"] is None
    for _ in range(5):
        client.post("/api/auth/login", json={"username": "mitra1", "password": "tebakan-1"})

    unknown = client.post("/api/auth/login",
                          json={"username": "mitra1", "password": MITRA_PASSWORD})
    assert unknown.status_code == 429
    in_body = login(client, "mitra1", MITRA_PASSWORD, device_token=token)
    assert in_body["device_token"] and in_body["user_id"] == first["user_id"]
    in_header = client.post("/api/auth/login",
                            json={"username": "mitra1", "password": MITRA_PASSWORD},
                            headers={"X-Device-Token": in_body["device_token"]})
    assert in_header.status_code == 200, in_header.text
    forged = client.post("/api/auth/login",
                         json={"username": "mitra1", "password": MITRA_PASSWORD},
                         headers={"X-Device-Token": token.rsplit(".", 1)[0] + "." + "A" * 43})
    assert forged.status_code == 429
