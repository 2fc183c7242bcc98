"""``/invoices``: the pay flow with user text in the customer's name (issue 16 #9), and
a billing run that leaves the event loop to everybody else (issue 18)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from fibernode import clock
from fibernode.components.proof_panel import ProofState
from fibernode.pages.invoices import InvoicesState
from fibernode.services import billing, customers, packages
from tests.services.invoice_data import make_invoice, payments
from tests.state.tabs import decoded, drive, page, run, tab

MARKER_NAME = "<reflex.Var>12345</reflex.Var>"


def _pay(world, method: str):
    cust_id = customers.create_customer(
        world.mitra_a, name=MARKER_NAME, phone="081377770000",
        package_id=packages.list_packages(world.admin)[0].id, billing_date=5)
    inv = make_invoice(customers.get_customer(world.mitra_a, cust_id).name)
    state = page(tab("mitra1"), InvoicesState)
    state._fetch(world.mitra_a)
    drive(run(state, InvoicesState.open_pay, str(inv.id)))
    assert state.pay_invoice["customer"] == MARKER_NAME
    events = drive(run(state, InvoicesState.pay, {"method": method, "amount": ""}))
    return inv, state, decoded(events)


def test_paying_a_customer_named_like_a_var_marker_shows_the_name(world):
    inv, state, events = _pay(world, "cash")
    assert len(payments(inv.id)) == 1 and not state.pay_open
    toasts = [e.payload["function"] for e in events if e.name == "_call_function"
              and "__toast" in e.payload["function"]]
    # The name as a JSON string literal with "<" escaped: shown as typed, never parsed.
    literal = json.dumps(f"Pembayaran {MARKER_NAME} tercatat.").replace("<", "\\u003c")
    assert len(toasts) == 1 and f'["success"]({literal})' in toasts[0]


def test_a_transfer_opens_the_proof_sheet_titled_with_the_literal_name(world):
    _inv, _state, events = _pay(world, "transfer")
    [proof] = [e for e in events if e.name.endswith("open_for")]
    assert proof.name == f"{ProofState.get_full_name()}.open_for"
    assert proof.payload["title"].startswith(f"{MARKER_NAME} · ")


@pytest.mark.timeout(120)
def test_another_tab_is_served_while_a_billing_run_is_busy(world, monkeypatch):
    """The run waits on an event only the other tab's finished handler sets.

    Called on the event loop (the old code), the run holds the loop until its wait
    times out, and the other tab is served only after the run is over.
    """
    started, release = threading.Event(), threading.Event()
    real_run = billing.run_billing

    def slow_run(*args, **kwargs):
        started.set()
        release.wait(timeout=5)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(billing, "run_billing", slow_run)
    admin, mitra = page(tab("superadmin"), InvoicesState), page(tab("mitra1"), InvoicesState)
    mitra.error = "belum dimuat"  # cleared by a list read that went through

    async def both() -> tuple[bool, list]:
        run_task = asyncio.create_task(
            run(admin, InvoicesState.run_billing, {"period": clock.current_period()}))
        while not started.is_set() and not run_task.done():
            await asyncio.sleep(0.01)
        await run(mitra, InvoicesState.refresh)  # another user's event, same loop
        served_while_busy = not run_task.done()
        release.set()
        return served_while_busy, await run_task

    served_while_busy, events = drive(both())
    assert served_while_busy
    # Both handlers did their whole job: the run is shown, the list was read.
    assert events == [] and admin.run_error == "" and admin.run_result["created"]
    assert mitra.error == ""
