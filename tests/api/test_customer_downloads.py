"""Cookie-authenticated downloads: subscriber export and the JSON error shape."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from fibernode.api import create_api
from fibernode.services import auth
from fibernode.services.context import Actor
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD


def _client(username: str | None) -> TestClient:
    client = TestClient(create_api())
    if username:
        password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
        token = auth.login(Actor.anonymous("10.1.1.1", "pytest"), username, password).token
        client.cookies.set(auth.SESSION_COOKIE, token)
        # A browser sends its page's origin; cookie-authenticated changes need it.
        client.headers["Origin"] = "http://testserver"
    return client


def test_superadmin_downloads_csv_of_the_current_filter(world):
    res = _client("superadmin").get(
        "/api/customers/export", params={"format": "csv", "owner_id": str(world.mitra_a.user_id)})
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/csv")
    assert 'attachment; filename="pelanggan-' in res.headers["content-disposition"]
    text = res.content.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("nama,telepon,diskon,tanggal,area")
    assert len(lines) == 3  # header + mitra1's two subscribers
    assert all("WiFi Sukamaju" in line for line in lines[1:])


def test_superadmin_downloads_xlsx(world):
    res = _client("superadmin").get("/api/customers/export", params={"format": "xlsx"})
    assert res.status_code == 200
    ws = load_workbook(io.BytesIO(res.content)).active
    assert ws.max_row == 4  # header + 3 seeded subscribers


@pytest.mark.parametrize(("who", "status", "code"), [
    ("mitra1", 403, "PermissionDenied"),
    (None, 401, "AuthenticationRequired"),
])
def test_export_refused_with_one_error_shape(world, who, status, code):
    res = _client(who).get("/api/customers/export", params={"format": "csv"})
    assert res.status_code == status
    error = res.json()["error"]
    assert error["code"] == code
    assert error["message"]  # Indonesian text for the user


def test_bad_parameters_are_422_in_the_same_shape(world):
    res = _client("superadmin").get("/api/customers/export",
                                    params={"format": "pdf", "owner_id": "bukan-uuid"})
    assert res.status_code == 422
    error = res.json()["error"]
    assert error["code"] == "ValidationFailed"
    assert "format" in error["details"]


def test_revoked_session_cookie_is_anonymous(world):
    client = _client("superadmin")
    auth.logout(Actor.anonymous(), client.cookies.get(auth.SESSION_COOKIE))
    assert client.get("/api/customers/export").status_code == 401
