"""A tab's life over the socket: who it is, what it keeps after logout, what a replayed tab id gets.

Reflex keeps each tab's state under the tab id the browser holds in
``sessionStorage`` (the ``token`` of the websocket URL). These tests use the
same tab id across users and without a session, the way a shared computer or
a copied id would, and hold every update to the sentinel oracle.
"""

from __future__ import annotations

import pytest

from tests.ws import oracle
from tests.ws.client import ROOT, ConnectionClosed, Reply, Tab

CUSTOMERS = f"{ROOT}.fibernode___pages___customers____customers_state.load"
DETAIL = f"{ROOT}.fibernode___pages___customer_detail____customer_detail_state.load"
MITRA = f"{ROOT}.fibernode___pages___admin_mitra____mitra_state.load"
ACTIVITY = f"{ROOT}.fibernode___pages___admin_activity____activity_state.open"
LOGOUT = f"{ROOT}.fibernode___state___session____session_state.logout"


def sentinel_customer(role: str) -> str:
    from sqlmodel import select

    from fibernode.db import new_session
    from fibernode.models import Customer

    with new_session() as s:
        return str(s.exec(select(Customer.id).where(
            Customer.name == f"Pelanggan {oracle.MARK[role]}")).one())


def tour(tab: Tab) -> Reply:
    """The superadmin's afternoon: the subscriber list, one subscriber, the mitra, the audit log."""
    reply = Reply()
    cid = sentinel_customer("mitra_a")
    reply.updates += tab.send(CUSTOMERS, {}, "/customers").updates
    reply.updates += tab.send(DETAIL, {}, f"/customers/{cid}", {"customer_id": cid}).updates
    reply.updates += tab.send(MITRA, {}, "/admin/mitra").updates
    reply.updates += tab.send(ACTIVITY, {}, "/admin/activity").updates
    return reply


def tokens_of(estate, *extra: str) -> dict[str, str]:
    out = dict(estate.tokens)
    out.update({f"extra {i}": t for i, t in enumerate(extra)})
    return out


def test_the_tabs_are_who_their_cookie_says(ws_server, estate):
    """Positive control: a session cookie in the handshake makes the tab that user."""
    tab = Tab(ws_server, cookies={"fn_session": oracle.login("mitra_a")})
    tab.connect("/customers")
    seen = tab.send(CUSTOMERS, {}, "/customers").text + tab.boot.text
    assert oracle.MARK["mitra_a"] in seen, "mitra A's tab does not see mitra A's subscribers"
    admin = Tab(ws_server, cookies={"fn_session": oracle.login("superadmin")})
    admin.connect("/admin/mitra")
    seen = admin.send(MITRA, {}, "/admin/mitra").text + admin.boot.text
    assert oracle.MITRA_MARK in seen, "the superadmin's tab does not see the mitra list"
    tab.close()
    admin.close()


@pytest.mark.parametrize("role", oracle.ROLES)
def test_no_update_ever_carries_a_raw_session_token(ws_server, estate, role):
    """The session token lives in the HttpOnly cookie only: never in state, never on the socket."""
    token = oracle.login(role) if role != "anonymous" else ""
    tab = Tab(ws_server, cookies={"fn_session": token} if token else {})
    reply = Reply()
    reply.updates += tab.connect("/").updates
    reply.updates += tab.send(CUSTOMERS, {}, "/customers").updates
    tab.close()
    leaked = oracle.leaks(reply.text, role, tokens_of(estate, token) if token else estate.tokens)
    leaked = [w for w in leaked if "session token" in w]
    assert not leaked, f"the socket carried {leaked} to the {role}'s own tab"


def test_a_superadmins_tab_id_replayed_without_a_session_carries_no_user_data(ws_server, estate):
    """Hydrating a tab id the superadmin used, with no cookie, returns nothing of theirs."""
    token = oracle.login("superadmin")
    admin = Tab(ws_server, cookies={"fn_session": token})
    admin.connect("/")
    tour(admin)
    admin.close()
    replay = Tab(ws_server, token=admin.token)  # the same tab id, no cookie at all
    reply = Reply()
    reply.updates += replay.connect("/").updates
    reply.updates += replay.send(CUSTOMERS, {}, "/customers").updates
    replay.close()
    leaked = oracle.leaks(reply.text, "anonymous", tokens_of(estate, token))
    assert not leaked, f"a replayed tab id without a session received {leaked}"


def test_the_same_tab_after_logout_carries_nothing_of_the_previous_user(ws_server, estate):
    """Superadmin works, logs out; mitra B logs in on the same tab and gets none of it."""
    token = oracle.login("superadmin")
    tab = Tab(ws_server, cookies={"fn_session": token})
    tab.connect("/")
    tour(tab)
    after_logout = tab.send(LOGOUT, {}, "/")
    leaked = oracle.leaks(after_logout.text, "anonymous", tokens_of(estate, token))
    assert not leaked, f"the logout itself sent {leaked}"
    tab.close()
    # Mitra B logs in on this tab: the login answer sets the new cookie, the page reconnects.
    mitra_token = oracle.login("mitra_b")
    tab.cookies = {"fn_session": mitra_token}
    reply = Reply()
    reply.updates += tab.connect("/login").updates
    reply.updates += tab.send(CUSTOMERS, {}, "/customers").updates
    tab.close()
    leaked = oracle.leaks(reply.text, "mitra_b", tokens_of(estate, token, mitra_token))
    assert not leaked, f"mitra B, on the superadmin's old tab, received {leaked}"


def test_forged_identity_vars_do_not_make_an_anonymous_tab_anyone(ws_server, estate):
    """``update_vars_internal`` with role, user and owner filters, then the admin pages: nothing."""
    tab = Tab(ws_server)
    tab.connect("/")
    name = f"{ROOT}.reflex___state____update_vars_internal_state.update_vars_internal"
    reply = tab.send(name, {"vars": estate.identity_vars("anonymous")}, "/")
    reply.updates += tab.send(MITRA, {}, "/admin/mitra").updates
    reply.updates += tab.send(CUSTOMERS, {}, "/customers").updates
    tab.close()
    leaked = oracle.leaks(reply.text, "anonymous", estate.tokens)
    assert not leaked, f"a forged identity received {leaked}"


TOGGLE = f"{ROOT}.fibernode___pages___customers____customers_state.toggle_selected"


def _state_bytes() -> int:
    """What the server's disk state manager holds (every tab), once its writes settled."""
    import time
    from pathlib import Path

    states = Path(__file__).resolve().parents[2] / ".states"
    last, deadline = -1, time.monotonic() + 8
    while time.monotonic() < deadline:
        size = sum(p.stat().st_size for p in states.glob("*.pkl"))
        if size == last:
            return size
        last = size
        # Longer than the disk state manager's write debounce.
        time.sleep(1.5)
    return last


@pytest.mark.parametrize("size", [100_000, 900_000])  # over the gate's 64 KB; the socket's
@pytest.mark.parametrize("who", [None, "mitra_a"])
def test_an_oversized_event_is_refused_before_it_reaches_a_state(ws_server, estate, who, size):
    """Finding 6: 0.9 MB arguments once grew a tab's state by the same; now nothing is stored."""
    cookies = {"fn_session": oracle.login(who)} if who else {}
    tab = Tab(ws_server, cookies=cookies)
    tab.connect("/customers")
    tab.send(CUSTOMERS, {}, "/customers")
    before = _state_bytes()
    try:
        reply = tab.send(TOGGLE, {"customer_id": "x" * size}, "/customers")
    except ConnectionClosed:
        pass  # the socket's message limit cut it off: refused before any handler
    else:
        assert "x" * 1000 not in reply.text
    tab.close()
    assert _state_bytes() < before + 50_000


def test_an_anonymous_client_stores_nothing_and_is_sent_to_login(ws_server, estate):
    tab = Tab(ws_server)
    tab.connect("/customers")
    before = _state_bytes()
    reply = tab.send(TOGGLE, {"customer_id": "y" * 50_000}, "/customers")
    assert "/login" in reply.redirects()
    tab.settle(0.5)
    assert _state_bytes() < before + 20_000
    tab.close()
