"""User text in toasts and event arguments: never read as a Reflex Var marker (issue 16 #9)."""

from __future__ import annotations

import json

import pytest

from fibernode.state.ui import toast, user_text
from tests.state.tabs import decoded

MARKER_NAME = "<reflex.Var>12345</reflex.Var>"


def _literal(text: str) -> str:
    """How the text appears in the toast's JavaScript: a JSON string, "<" escaped."""
    return json.dumps(text).replace("<", "\\u003c")


def test_a_toast_with_a_var_marker_in_the_name_carries_the_literal_text():
    text = f"Pembayaran {MARKER_NAME} tercatat."
    [event] = decoded([toast("success", text)])
    script = event.payload["function"]
    assert '["success"](' in script and _literal(text) in script
    assert "<reflex.Var>" not in script
    # What the browser's string literal evaluates to is exactly the name as typed.
    assert json.loads(_literal(text)) == text


@pytest.mark.timeout(10)  # Reflex 0.10.1 loops forever on a marker around a non-number
def test_a_marker_around_anything_is_just_text():
    for name in ("<reflex.Var>abc</reflex.Var>x", "<reflex.Var>-1</reflex.Var>",
                 "<reflex.Var></reflex.Var>", 'Budi "Wifi" </script><b>'):
        [event] = decoded([toast("error", name, description=name, id="x")])
        assert _literal(name) in event.payload["function"]


def test_user_text_decodes_to_itself_as_an_event_argument():
    var = user_text(MARKER_NAME)
    assert var._decode() == MARKER_NAME
    assert "<" not in str(var)


def test_the_toast_keeps_the_text_first_like_rx_toast():
    import reflex as rx

    mine = decoded([toast("error", "Gagal.", id="backend_error", position="top-center")])
    theirs = decoded([rx.toast.error("Gagal.", id="backend_error", position="top-center")])
    assert mine[0].payload == theirs[0].payload
