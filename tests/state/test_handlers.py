"""``service_event`` / ``off_loop``: the actor, the refusals, the thread (issue 18).

The wrapped handlers here belong to a plain object, not a Reflex state: a new
state class would join the app's state tree, which the websocket suite walks.
The pages' own handlers are run through Reflex's real states in tests/pages and
tests/ws; these tests pin the rules every handler shares.
"""

from __future__ import annotations

import inspect
import threading

import pytest

from fibernode.pages.customer_import import ImportState
from fibernode.pages.invoices import InvoicesState
from fibernode.services.context import Actor
from fibernode.services.errors import Conflict, NotFound, ValidationFailed
from fibernode.state import handlers
from fibernode.state.gate import resolved_session
from fibernode.state.handlers import off_loop, service_event
from tests.state.tabs import decoded, drive, page, redirects_to_login, run, tab

ACTOR = Actor.system()


class Page:
    """The vars a page state would have, and handlers that raise what they are given."""

    def __init__(self):
        self.form_errors: dict[str, str] = {}
        self.error = ""
        self.conflict = ""
        self.busy = True
        self.reloaded = False
        self.seen: list = []

    async def _reload(self):
        self.reloaded = True

    @service_event(fields="form_errors", conflict="conflict")
    async def save(self, actor: Actor, raise_: Exception | None = None):
        self.seen.append(actor)
        if raise_:
            raise raise_
        return "saved"

    @service_event(message="error", detail="period", reset={"busy": False})
    async def message_only(self, actor: Actor, raise_: Exception):
        raise raise_

    @service_event(reset={"busy": False}, after="_reload")
    async def steps(self, actor: Actor, raise_: Exception):
        self.busy = True
        yield "loading"
        raise raise_


@pytest.fixture
def acting(monkeypatch):
    async def resolved(_state):
        return ACTOR
    monkeypatch.setattr(handlers, "current_actor", resolved)


async def _events(state, fn, *args):
    result = fn(state, *args)
    if inspect.isasyncgen(result):
        return [e async for e in result]
    return [await result]


def test_the_actor_is_passed_in_and_reflex_sees_only_the_handlers_own_arguments(acting):
    state = Page()
    assert drive(_events(state, Page.save)) == ["saved"] and state.seen == [ACTOR]
    assert list(inspect.signature(Page.save).parameters) == ["self", "raise_"]
    assert "actor" not in Page.save.__annotations__
    # The pages' handlers as Reflex maps an event's payload onto them.
    assert list(InvoicesState.run_billing._parameters) == ["self", "form"]
    assert list(ImportState.handle_upload._parameters) == ["self", "files"]
    assert list(ImportState.confirm._parameters) == ["self"]


def test_rejected_input_goes_to_the_fields_and_a_conflict_to_the_notice(acting):
    state = Page()
    drive(_events(state, Page.save, ValidationFailed({"name": "Nama wajib diisi."})))
    assert state.form_errors == {"name": "Nama wajib diisi."} and state.conflict == ""
    state = Page()
    drive(_events(state, Page.save, Conflict("Data sudah diubah orang lain.")))
    assert state.conflict == "Data sudah diubah orang lain." and state.form_errors == {}
    state = Page()
    assert drive(_events(state, Page.save, NotFound())) == [None]
    assert state.form_errors == {"form": "Data tidak ditemukan."}


def test_one_message_line_prefers_its_field_and_resets_the_busy_flag(acting):
    state = Page()
    drive(_events(state, Page.message_only,
                  ValidationFailed({"period": "Periode tidak valid."}, "Data tidak valid.")))
    assert state.error == "Periode tidak valid." and state.busy is False
    state = Page()
    drive(_events(state, Page.message_only, NotFound()))
    assert state.error == "Data tidak ditemukan."


def test_anything_else_is_a_toast_after_the_loading_step_then_the_reload(acting):
    state = Page()
    events = drive(_events(state, Page.steps, NotFound("Impor tidak ditemukan.")))
    assert events[0] == "loading" and len(events) == 2
    [toast] = decoded(events[1:])
    assert "Impor tidak ditemukan." in toast.payload["function"]
    assert state.busy is False and state.reloaded


def test_a_tab_without_a_session_goes_to_login_and_the_handler_does_not_run(db):
    state = page(tab(None), InvoicesState)
    events = drive(run(state, InvoicesState.run_billing, {"period": "2026-01"}))
    assert redirects_to_login(events) and state.run_result == {}


def test_the_thread_sees_the_session_the_gate_resolved():
    async def in_thread():
        resolved_session.set(("ref", ACTOR))
        seen, worker = await off_loop(lambda: (resolved_session.get(), threading.get_ident()))
        return seen, worker != threading.get_ident()

    assert drive(in_thread()) == (("ref", ACTOR), True)
