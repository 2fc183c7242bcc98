"""Every event handler of every state × anonymous / mitra A / mitra B / superadmin, over the socket.

The websocket counterpart of ``tests/api/test_tenant_isolation.py``. The rows
live in ``tests/ws/handlers.py``; :func:`test_the_table_describes_every_handler`
fails as soon as the app has a handler the table does not describe.

Each caller is a browser tab (``tests/ws/client.py``) on the real server, with
its session in the ``fn_session`` cookie of the handshake. Every row is sent
the way the page sends it (on the state's page, with plausible arguments;
id-taking handlers get another tenant's fresh row), and whatever the server
answers is held to one oracle:

* no update carries a sentinel the caller must not see (``oracle.forbidden``):
  anonymous sees no one's data, a mitra sees nothing of the other mitra's or
  of the superadmin's, and no one ever receives a raw session token;
* no update carries the generic server-error notice (a handler crashed);
* nothing the caller may not change has changed in the database
  (``oracle.fingerprint``): a refused or forged call leaves other tenants'
  rows, the packages, the settings and the accounts exactly as they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from fibernode.services import wa_direct
from tests.ws import oracle
from tests.ws.client import ROOT, Reply, Tab
from tests.ws.handlers import PAGES, ROWS, SETVAR, Row, Target, enumerate_handlers
from tests.ws.oracle import ROLES, SERVER_ERROR

ON_LOAD = f"{ROOT}.reflex___state____on_load_internal_state.on_load_internal"
TARGETS = {t.key: t for t in enumerate_handlers()}
HANDLER_KEYS = sorted(k for k in TARGETS if not k.endswith(".setvar"))
SETVAR_KEYS = sorted(k for k in TARGETS if k.endswith(".setvar"))


def test_the_table_describes_every_handler():
    """A handler without a row (or a row without a handler) fails here."""
    assert len({t.state_full for t in TARGETS.values()}) == len(
        {t.state for t in TARGETS.values()}), "two states share a short name"
    missing = sorted(set(HANDLER_KEYS) - set(ROWS))
    gone = sorted(set(ROWS) - set(HANDLER_KEYS))
    assert not missing, f"event handlers with no row in tests/ws/handlers.py: {missing}"
    assert not gone, f"rows for handlers the app no longer has: {gone}"
    states = {t.state for t in TARGETS.values()}
    assert not sorted(states - set(PAGES)), f"states with no page: {sorted(states - set(PAGES))}"
    for key, row in ROWS.items():
        assert row.access in {"public", "user", "super", "owned", "ui", "upload", "helper"}, key
        if row.access == "owned":
            assert row.kind, f"{key}: an owned row names the kind of row it takes"


# --- fixtures: the estate and one tab per caller ---------------------------------------------


class Tabs:
    """One long-lived tab per caller, plus throwaway tabs for rows that end a session."""

    def __init__(self, base: str, estate) -> None:
        self.base, self.estate = base, estate
        self.open: dict[str, Tab] = {}
        self.extra: list[Tab] = []

    def new(self, role: str, token: str | None = None) -> Tab:
        cookies = {}
        if role != "anonymous":
            cookies["fn_session"] = token or oracle.login(role)
        tab = Tab(self.base, cookies=cookies)
        tab.connect("/")
        self.extra.append(tab)
        return tab

    def get(self, role: str) -> Tab:
        if role not in self.open:
            token = self.estate.tokens.get(role)
            self.open[role] = self.new(role, token)
        return self.open[role]

    def close(self) -> None:
        for tab in self.extra:
            tab.close()


@pytest.fixture(scope="module")
def tabs(ws_server, estate) -> Iterator[Tabs]:
    t = Tabs(ws_server, estate)
    yield t
    t.close()


def page_of(state: str, row: Row | None, estate, role: str) -> tuple[str, dict | None]:
    """The path (and route params) the tab is on when the page sends this event."""
    pattern = (row.page if row and row.page else None) or PAGES[state]
    if "{customer}" in pattern:
        cid = str(estate.other("customer", role))
        return pattern.replace("{customer}", cid), {"customer_id": cid}
    if "{receipt}" in pattern:
        token = "r" * 32
        return pattern.replace("{receipt}", token), {"token": token}
    return pattern, None


def check(reply: Reply, role: str, estate, what: str) -> None:
    """The oracle every row meets, for every caller."""
    leaked = oracle.leaks(reply.text, role, estate.tokens)
    assert not leaked, f"{what} as {role}: the socket carried {leaked}"
    crashed = [t for t in reply.toasts() if SERVER_ERROR in t]
    assert not crashed, f"{what} as {role}: the handler crashed (server error notice)"


def run_row(tabs: Tabs, estate, role: str, target: Target, row: Row, payload: dict,
            follow: str | None = None) -> Reply:
    tab = tabs.new(role) if row.fresh_tab else tabs.get(role)
    path, query = page_of(target.state, row, estate, role)
    # Receipts go out on a thread after a payment the estate made: let them land first.
    wa_direct.wait_for_dispatch(10)
    before = oracle.fingerprint(role, estate.ids)
    reply = Reply()
    if tab.page != (path, query):
        # A browser reaches the handler's page first: its on_load handlers run.
        reply.updates += tab.send(ON_LOAD, {}, path, query).updates
    reply.updates += tab.send(target.event_name, payload, path, query).updates
    if follow:
        name = follow if "." in follow else f"{target.state}.{follow}"
        full = TARGETS[name].event_name if name in TARGETS else f"{target.state_full}.{follow}"
        reply.updates += tab.send(full, {}, path, query).updates
    if row.background:
        # let a first round of the background task report
        reply.updates += tab.settle(0.3).updates
    reply.updates += tab.settle().updates
    check(reply, role, estate, target.key)
    after = oracle.fingerprint(role, estate.ids)
    changed = sorted(k for k in before if before[k] != after[k])
    assert not changed, f"{target.key} as {role} changed rows it may not touch: {changed}"
    return reply


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", HANDLER_KEYS)
def test_handler(key, role, tabs, estate):
    """One handler, one caller: nothing leaks, nothing crashes, nothing foreign changes."""
    target, row = TARGETS[key], ROWS.get(key)
    if row is None:
        pytest.fail(f"{key} has no row in tests/ws/handlers.py")
    payload = row.args(estate, role) if row.args else {}
    run_row(tabs, estate, role, target, row, payload)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("key", SETVAR_KEYS)
def test_setvar(key, role, tabs, estate):
    """``setvar`` of every state with the var an attacker would pick; the follow-up shows it."""
    target = TARGETS[key]
    var, value, follow = SETVAR.get(target.state, (None, None, None))
    if var is None:
        var = next((v for v in target.vars if not v.startswith("_")), None)
        if var is None:
            pytest.skip(f"{target.state} has no var to set")
        value = _default(target, var)
        payload = {"var_name": var, "value": value}
    else:
        payload = {"var_name": var, "value": value(estate, role)}
    run_row(tabs, estate, role, target, Row("public"), payload, follow)


def _default(target: Target, var: str):
    from reflex.state import State

    path = tuple(target.state_full.split(".")[1:])
    cls = State.get_class_substate(path) if path else State
    spec = cls.get_fields()[var]
    if spec.default is dataclasses.MISSING:
        return spec.default_factory() if callable(spec.default_factory) else ""
    return spec.default
