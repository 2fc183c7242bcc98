"""Whether a phone number is on WhatsApp: asked slowly through the owner's session, cached.

WhatsApp notices an account that looks up many numbers quickly, so every answer is
kept in ``wa_numbers`` for :data:`FRESH_FOR` and consecutive lookups of one owner are
spaced by :data:`CHECK_SPACING_S`. A lookup needs the owner's session to be connected;
otherwise the answer is ``None`` ("unknown") and the caller sends anyway.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from fibernode import clock
from fibernode.db import insert_for, new_session
from fibernode.models import WaNumber, WaSession, WaSessionStatus
from fibernode.services.context import Actor
from fibernode.services.uow import unit_of_work
from fibernode.whatsapp.base import Gateway, GatewayError

log = logging.getLogger(__name__)

FRESH_FOR = timedelta(days=30)
CHECK_SPACING_S = 2.0  # between two gateway lookups of one owner ("slowly")
ACTOR = "wa.numbers"
CACHE = "cache of WhatsApp's answers about numbers"

_spacing_lock = threading.Lock()
_last_check: dict[uuid.UUID, float] = {}


def known(session: Session, phones: Iterable[str]) -> dict[str, bool]:
    """Fresh cached answers for ``phones`` (numbers never checked or stale are absent)."""
    phones = list(dict.fromkeys(p for p in phones if p))
    if not phones:
        return {}
    since = clock.now() - FRESH_FOR
    rows = session.exec(select(WaNumber.phone, WaNumber.on_whatsapp).where(
        WaNumber.phone.in_(phones), WaNumber.checked_at >= since)).all()
    return {phone: bool(on) for phone, on in rows}


def remember(session: Session, answers: dict[str, bool]) -> None:
    """Store lookup answers (insert or refresh), in the caller's transaction."""
    now = clock.now()
    if not answers:
        return
    stmt = insert_for(session)(WaNumber.__table__).values(
        [{"phone": phone, "on_whatsapp": bool(on), "checked_at": now}
         for phone, on in answers.items()])
    session.execute(stmt.on_conflict_do_update(
        index_elements=["phone"], set_={"on_whatsapp": stmt.excluded.on_whatsapp,
                                        "checked_at": stmt.excluded.checked_at}))


def session_connected(session: Session, owner_id: uuid.UUID) -> bool:
    """Whether the owner's WhatsApp session is connected (one read of ``wa_sessions``)."""
    status = session.exec(select(WaSession.status).where(WaSession.user_id == owner_id)).first()
    return status == WaSessionStatus.CONNECTED


def _wait_turn(owner_id: uuid.UUID) -> None:
    """Keep :data:`CHECK_SPACING_S` between two lookups of one owner (this process)."""
    with _spacing_lock:
        last = _last_check.get(owner_id)
        now = time.monotonic()
        wait = 0.0 if last is None else max(0.0, last + CHECK_SPACING_S - now)
        _last_check[owner_id] = now + wait
    if wait:
        time.sleep(wait)


def check_number(gateway: Gateway, owner_id: uuid.UUID, phone: str, *,
                 refresh: bool = False) -> bool | None:
    """Whether ``phone`` is on WhatsApp, from the cache or the owner's session.

    Args:
        gateway: The gateway to ask.
        owner_id: Whose session asks (its number does the lookup).
        phone: International digits (``62…``).
        refresh: Ask again even when a fresh answer is cached.

    Returns:
        ``True`` / ``False``, or ``None`` when nobody could tell (no fresh answer and the
        session is not connected, or the gateway failed).
    """
    with new_session() as s:
        if not refresh:
            cached = known(s, [phone])
            if phone in cached:
                return cached[phone]
        if not session_connected(s, owner_id):
            return None
    _wait_turn(owner_id)
    try:
        answers = gateway.check_numbers(owner_id, [phone])
    except GatewayError as exc:
        log.info("number check for owner %s failed: %s", owner_id, exc.message)
        return None
    except Exception:  # a broken gateway must not stop a send
        log.exception("number check for owner %s crashed", owner_id)
        return None
    if phone not in answers:
        return None
    with unit_of_work(Actor.system(ACTOR)).bookkeeping(CACHE) as uow:
        remember(uow.session, {phone: answers[phone]})
    return bool(answers[phone])


def forget(phones: Iterable[str]) -> int:
    """Drop cached answers (a number changed hands); returns how many were removed."""
    phones = list(phones)
    if not phones:
        return 0
    with unit_of_work(Actor.system(ACTOR)).bookkeeping(CACHE) as uow:
        n = uow.session.execute(sa.delete(WaNumber.__table__).where(
            WaNumber.__table__.c.phone.in_(phones))).rowcount
    return int(n or 0)
