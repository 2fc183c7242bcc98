"""The session gate in front of every websocket event (fibernode/state/gate.py), in-process.

The websocket suite (tests/ws) drives it over a real socket; these pin its rules.
"""

from __future__ import annotations

import os
import stat

from reflex.event import Event
from reflex.state import StateUpdate

from fibernode.pages.customers import CustomersState
from fibernode.pages.login import LoginState
from fibernode.state import gate
from fibernode.state.session import SessionState
from tests.state.tabs import drive, page, tab


def _event(cls, handler: str, **payload) -> Event:
    return Event(name=f"{cls.get_full_name()}.{handler}", payload=payload)


def _gate(root, event):
    return drive(gate.SessionGate().preprocess(None, root, event))


def test_an_address_without_a_session_gets_a_small_budget(world, real_rate_limits, monkeypatch):
    monkeypatch.setattr(gate, "ANONYMOUS_PER_MINUTE", 3)
    root = tab(None)
    outs = [_gate(root, _event(LoginState, "submit", form={})) for _ in range(5)]
    assert outs[:3] == [None, None, None]
    assert all(isinstance(o, StateUpdate) and not o.events and not o.delta for o in outs[3:])


def test_a_private_event_without_a_session_only_gets_sent_to_login(world):
    root = tab(None)
    out = _gate(root, _event(CustomersState, "toggle_selected", customer_id="x"))
    assert [e.name for e in out.events] == ["_redirect"]


def test_a_tab_whose_user_changed_is_reset_before_the_event(world):
    root = tab("superadmin")
    customers = page(root, CustomersState)
    customers.search = "rahasia superadmin"
    session = page(root, SessionState)
    session._bound_user = "someone-else"
    assert _gate(root, _event(CustomersState, "load")) is None
    assert customers.search == ""
    assert session._bound_user == str(world.admin.user_id)


def test_setvar_sets_nothing_and_oversized_events_are_dropped(world):
    root = tab("mitra1")
    refused = _gate(root, _event(CustomersState, "setvar", var_name="owner_filter", value="x"))
    assert isinstance(refused, StateUpdate) and not refused.events
    big = _gate(root, _event(CustomersState, "toggle_selected", customer_id="x" * 70_000))
    assert isinstance(big, StateUpdate) and not big.events


def test_the_state_files_are_private_to_the_app_user(tmp_path, monkeypatch):
    import fibernode.fibernode as web

    monkeypatch.setenv("REFLEX_STATES_WORKDIR", str(tmp_path / "states"))
    web._private_states_dir()
    mode = stat.S_IMODE(os.stat(tmp_path / "states").st_mode)
    assert mode == 0o700
