"""What the user sees when an event handler fails (``App.backend_exception_handler``)."""

from __future__ import annotations

import logging

from fibernode.services.errors import RateLimited
from fibernode.state.session import backend_error


def _js(spec) -> str:
    return str(spec.args[0][1])


def test_a_refusal_shows_its_own_indonesian_message():
    assert "Terlalu banyak permintaan. Coba lagi sebentar lagi." in _js(
        backend_error(RateLimited(30)))


def test_anything_else_is_logged_and_shown_without_internals(caplog):
    with caplog.at_level(logging.ERROR, logger="fibernode.state.session"):
        try:
            raise KeyError("rahasia_internal")
        except KeyError as exc:
            js = _js(backend_error(exc))
    assert "Terjadi kesalahan di server." in js and "rahasia_internal" not in js
    [record] = caplog.records
    assert record.exc_info and "rahasia_internal" in str(record.exc_info[1])
