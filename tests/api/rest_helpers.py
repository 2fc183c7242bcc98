"""Bearer-token clients for the REST tests (tokens from ``api_tokens.login``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fibernode.api import create_api
from fibernode.services import api_tokens
from fibernode.services.context import Actor
from tests.factories import ADMIN_PASSWORD, MITRA_PASSWORD


def token_for(username: str) -> str:
    """A fresh access JWT for ``username`` (seeded passwords)."""
    password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
    return api_tokens.login(Actor.anonymous("10.7.7.7", "pytest"), username,
                            password).access_token


def client_for(username: str | None, api=None) -> TestClient:
    """A test client sending ``username``'s bearer token (none for ``None``)."""
    client = TestClient(api or create_api())
    if username:
        client.headers["Authorization"] = f"Bearer {token_for(username)}"
    return client


def error(res, status: int) -> dict:
    """The one error shape's body, after checking the status."""
    assert res.status_code == status, res.text
    body = res.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]
