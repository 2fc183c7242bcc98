"""``/api/docs`` works offline: Swagger UI comes from the app, never from a CDN."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from fibernode.api import create_api


def test_docs_page_uses_only_local_files():
    client = TestClient(create_api())
    page = client.get("/api/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(u.startswith("/api/") for u in urls), urls
    assert not re.search(r"https?://", page.text)
    for url in urls:
        assert client.get(url).status_code == 200, url
    spec = client.get("/api/openapi.json").json()
    assert "/api/auth/login" in spec["paths"]
