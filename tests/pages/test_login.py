"""``/login``: a login whose one-time code expired on its way to the cookie is explained."""

from __future__ import annotations

import dataclasses

from reflex.istate.data import ReflexURL

from fibernode.pages.login import CLAIM_EXPIRED, LoginState
from fibernode.state.gate import PUBLIC_HANDLERS
from tests.state.tabs import drive, page, run, tab


def _arrive(query: str) -> LoginState:
    root = tab(None)
    root.router = dataclasses.replace(root.router,
                                      url=ReflexURL(f"http://127.0.0.1:3000/login{query}"))
    state = page(root, LoginState)
    drive(run(state, LoginState.arrive))
    return state


def test_an_expired_claim_says_why_the_login_page_came_back(world):
    state = _arrive("?kedaluwarsa=1")
    assert state.notice == CLAIM_EXPIRED
    assert state.error == "" and state.field_errors == {}  # the typing was not wrong


def test_a_plain_visit_shows_no_notice_and_a_new_attempt_clears_it(world):
    assert _arrive("").notice == ""
    assert _arrive("?kedaluwarsa=0").notice == ""
    state = _arrive("?kedaluwarsa=1")
    drive(run(state, LoginState.submit, {"username": "superadmin", "password": "salah"}))
    assert state.notice == "" and state.error


def test_an_anonymous_visitor_may_run_it():
    assert "arrive" in PUBLIC_HANDLERS["fibernode.pages.login.LoginState"]
