"""Structured (JSON) logs with the request id, and secrets kept out of them.

Every process (web, worker, beat, wa-gateway, CLI) calls :func:`configure` once.
Each record becomes one JSON object per line with time, level, logger, message,
the current request id (set by the web middleware, empty elsewhere) and any
``extra=`` fields. Values whose key looks like a credential (password, token,
secret, cookie, authorization, session store) are replaced by ``"[disembunyikan]"``
and bearer tokens inside messages are masked, so a careless ``log.info(... %s,
headers)`` cannot leak them.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

REDACTED = "[disembunyikan]"
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|session_store|api_key|otp|totp|nik",
    re.IGNORECASE,
)
_BEARER = re.compile(
    r"(?i)\b(bearer|token=|fn_session=|fn_remember=|fn_device=)\s*[A-Za-z0-9._~+/=-]{8,}")
# Keys every LogRecord has: not ``extra`` fields.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with credential-like keys and bearer tokens masked."""
    if key and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, value)
    return value


class _Context(logging.Filter):
    """Adds the request id and masks secrets in the message and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        if record.args:
            try:
                record.msg = record.getMessage()
                record.args = None
            except (TypeError, ValueError):
                pass
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        for key in set(vars(record)) - _RESERVED - {"request_id"}:
            setattr(record, key, redact(getattr(record, key), key))
        return True


def json_handler(stream=None) -> logging.Handler:
    """A stream handler writing one redacted JSON object per record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(
        "{asctime}{levelname}{name}{message}{request_id}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    ))
    handler.addFilter(_Context())
    return handler


def configure(level: str | int = "INFO", stream=None) -> None:
    """Send every logger's records, as JSON, to stderr (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fibernode", False):
            root.removeHandler(handler)
    handler = json_handler(stream)
    handler._fibernode = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Request lines come from our middleware (with the request id); uvicorn's own
    # access log would repeat them without it.
    logging.getLogger("uvicorn.access").propagate = False
    logging.getLogger("uvicorn.access").disabled = True
