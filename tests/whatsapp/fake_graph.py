"""A fake Meta Graph API over real HTTP on 127.0.0.1, as strict as the real one.

It knows the phone number ids and access tokens it was given, answers a bad token with
Meta's OAuthException (code 190, HTTP 401) and an unknown id with its
GraphMethodException (code 100, subcode 33), and checks template sends against the
templates "approved" on it: unknown name or language → 132001, wrong parameter count →
132000, a parameter with a newline or tab → 132018. Queued errors answer the next call.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from fibernode.config import reset_settings
from fibernode.services import wa_cloud

TOKEN = "EAAG-test-token-0123456789abcdef"  # noqa: S105
PHONE_ID = "106540352242922"
DISPLAY_NUMBER = "+62 812-3456-7890"


def approved_templates(language: str = "id") -> dict[tuple[str, str], int]:
    """The shipped templates as WhatsApp Manager would hold them once approved."""
    return {(t.default_name, language): len(re.findall(r"\{\{\d+\}\}", t.body))
            for t in wa_cloud.TEMPLATES.values()}


def _fbtrace() -> str:
    return "AbCdEf0123456789xyz"


def bad_token_error() -> tuple[int, dict]:
    return 401, {"message": "Invalid OAuth access token - Cannot parse access token",
                 "type": "OAuthException", "code": 190, "fbtrace_id": _fbtrace()}


def unknown_id_error(object_id: str) -> tuple[int, dict]:
    return 400, {"message": f"Unsupported get request. Object with ID '{object_id}' does "
                 "not exist, cannot be loaded due to missing permissions, or does not "
                 "support this operation. Please read the Graph API documentation at "
                 "https://developers.facebook.com/docs/graph-api",
                 "type": "GraphMethodException", "code": 100, "error_subcode": 33,
                 "fbtrace_id": _fbtrace()}


class FakeGraph:
    """Records requests; answers like the Graph API for the numbers it knows."""

    def __init__(self):
        self.requests: list[dict] = []
        self.errors: list[tuple[int, dict]] = []
        self.numbers = {PHONE_ID: {"display_phone_number": DISPLAY_NUMBER,
                                   "verified_name": "WiFi Sukamaju", "id": PHONE_ID}}
        self.tokens = {TOKEN}
        self.templates = approved_templates()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer(self, body: dict | None) -> None:
                auth = self.headers.get("Authorization") or ""
                fake.requests.append({"method": self.command, "path": self.path,
                                      "auth": auth, "json": body})
                if fake.errors:
                    status, error = fake.errors.pop(0)
                    return self._send(status, {"error": error})
                if auth.removeprefix("Bearer ") not in fake.tokens:
                    status, error = bad_token_error()
                    return self._send(status, {"error": error})
                parts = urlparse(self.path).path.strip("/").split("/")
                object_id = parts[1] if len(parts) > 1 else ""
                if object_id not in fake.numbers:
                    status, error = unknown_id_error(object_id)
                    return self._send(status, {"error": error})
                if self.command == "GET":
                    return self._send(200, fake.numbers[object_id])
                problem = fake._template_problem(body)
                if problem is not None:
                    return self._send(400, {"error": problem})
                return self._send(200, {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": f"wamid.{len(fake.requests)}"}]})

            def do_GET(self):  # noqa: N802
                self._answer(None)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                self._answer(json.loads(self.rfile.read(length)))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _template_problem(self, body: dict) -> dict | None:
        if body.get("type") != "template":
            return None
        tpl = body["template"]
        key = (tpl["name"], tpl["language"]["code"])
        if key not in self.templates:
            return {"message": "(#132001) Template name does not exist in the translation",
                    "type": "OAuthException", "code": 132001, "fbtrace_id": _fbtrace()}
        params = [p["text"] for c in tpl.get("components") or [] if c["type"] == "body"
                  for p in c["parameters"]]
        if len(params) != self.templates[key]:
            return {"message": "(#132000) Number of parameters does not match the expected "
                    "number of params", "type": "OAuthException", "code": 132000,
                    "fbtrace_id": _fbtrace()}
        if any(not p or re.search(r"[\n\t]| {5,}", p) for p in params):
            return {"message": "(#132018) There was an issue with the parameters in your "
                    "template.", "type": "OAuthException", "code": 132018,
                    "fbtrace_id": _fbtrace()}
        return None

    def sent(self) -> list[dict]:
        """The bodies of message sends, in order."""
        return [r["json"] for r in self.requests if r["method"] == "POST"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


SECRET = "app-secret-for-tests"  # noqa: S105


@pytest.fixture
def graph(monkeypatch, world):
    """The fake Graph API, with the app pointed at it (and the webhook's secrets set)."""
    fake = FakeGraph()
    monkeypatch.setenv("WA_CLOUD_API_BASE", fake.url)
    monkeypatch.setenv("WA_CLOUD_APP_SECRET", SECRET)
    monkeypatch.setenv("WA_CLOUD_VERIFY_TOKEN", "verify-me")
    reset_settings()
    yield fake
    fake.close()
    reset_settings()
