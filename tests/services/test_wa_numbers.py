"""Number checks: cached for 30 days, asked only through a connected session, slowly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fibernode import clock
from fibernode.db import new_session
from fibernode.models import WaNumber, WaSessionStatus
from fibernode.services import wa_numbers
from fibernode.services.wa_sessions import SessionEvent, record_event
from fibernode.whatsapp.base import ErrorKind, GatewayError
from fibernode.whatsapp.outbox import OutboxGateway

pytestmark = pytest.mark.both_dialects(
    "the 30-day number cache is an insert_for upsert")


class Counting(OutboxGateway):
    def __init__(self, answer=True, error=None):
        self.answer, self.error, self.asked = answer, error, []

    def check_numbers(self, owner_id, phones):
        self.asked.append(list(phones))
        if self.error:
            raise self.error
        return dict.fromkeys(phones, self.answer)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(wa_numbers, "CHECK_SPACING_S", 0)


PHONE = "6281234567890"


def test_not_connected_means_unknown_and_no_question(world):
    gw = Counting()
    assert wa_numbers.check_number(gw, world.mitra_a.user_id, PHONE) is None
    assert gw.asked == []


def test_answer_is_cached_until_stale(world):
    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    gw = Counting(answer=False)
    assert wa_numbers.check_number(gw, world.mitra_a.user_id, PHONE) is False
    assert wa_numbers.check_number(gw, world.mitra_a.user_id, PHONE) is False
    assert len(gw.asked) == 1
    with new_session() as s:
        assert wa_numbers.known(s, [PHONE, "6280000000000"]) == {PHONE: False}
        row = s.get(WaNumber, PHONE)
        row.checked_at = clock.now() - timedelta(days=31)
        s.commit()
        assert wa_numbers.known(s, [PHONE]) == {}
    gw.answer = True
    assert wa_numbers.check_number(gw, world.mitra_a.user_id, PHONE) is True
    assert len(gw.asked) == 2


def test_cache_answers_even_without_a_session(world):
    with new_session() as s:
        wa_numbers.remember(s, {PHONE: True})
        s.commit()
    assert wa_numbers.check_number(Counting(), world.mitra_b.user_id, PHONE) is True


def test_gateway_error_is_unknown(world):
    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    gw = Counting(error=GatewayError(ErrorKind.NOT_CONNECTED, "Gateway mati."))
    assert wa_numbers.check_number(gw, world.mitra_a.user_id, PHONE) is None


def test_consecutive_checks_of_one_owner_are_spaced(world, monkeypatch):
    monkeypatch.setattr(wa_numbers, "CHECK_SPACING_S", 0.3)
    record_event(world.mitra_a.user_id, SessionEvent(status=WaSessionStatus.CONNECTED))
    gw = Counting()
    import time

    start = time.monotonic()
    for i in range(3):
        wa_numbers.check_number(gw, world.mitra_a.user_id, f"62812345678{i:02d}")
    assert time.monotonic() - start >= 0.55
