"""``/invoices`` pay flow with user text in the customer's name (issue 16 #9)."""

from __future__ import annotations

import asyncio
import json

from fibernode.components.proof_panel import ProofState
from fibernode.pages.invoices import InvoicesState
from fibernode.services import customers, packages
from tests.services.invoice_data import make_invoice, payments
from tests.state.tabs import decoded, page, run, tab

MARKER_NAME = "<reflex.Var>12345</reflex.Var>"


def _pay(world, method: str):
    cust_id = customers.create_customer(
        world.mitra_a, name=MARKER_NAME, phone="081377770000",
        package_id=packages.list_packages(world.admin)[0].id, billing_date=5)
    inv = make_invoice(customers.get_customer(world.mitra_a, cust_id).name)
    state = page(tab("mitra1"), InvoicesState)
    state._fetch(world.mitra_a)
    asyncio.run(run(state, InvoicesState.open_pay, str(inv.id)))
    assert state.pay_invoice["customer"] == MARKER_NAME
    events = asyncio.run(run(state, InvoicesState.pay, {"method": method, "amount": ""}))
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
