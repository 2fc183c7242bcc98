"""One transaction per use case, with its audit rows and after-commit hooks."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState
from sqlmodel import Session

from fibernode.db import new_session
from fibernode.models import ActivityLog
from fibernode.services.context import Actor

log = logging.getLogger(__name__)

# Tables whose rows are bookkeeping of another audited act (or telemetry) and so do
# not need an audit row of their own when a unit of work writes only them.
UNAUDITED_TABLES = frozenset({
    "activity_logs",
    "login_attempts",  # the lockout counter; the login itself is audited
    "user_sessions",  # touched on every request (last seen); login/logout are audited
    "refresh_tokens",  # issued with an audited login/refresh
    "wa_numbers",  # cache of "is this number on WhatsApp" answers
    "wa_outbox",  # the local gateway's record of sends
})


class UnauditedMutation(AssertionError):
    """A unit of work changed audited tables without writing an audit row.

    Raised only in strict mode (``AUDIT_STRICT=1``, set by the test suite) so that
    every use case is held to the rule; in production the commit goes ahead and
    the omission is logged, because losing the user's change would be worse.
    """


def _strict() -> bool:
    return os.environ.get("AUDIT_STRICT", "").strip().lower() in ("1", "true", "yes")


def _reason(reason: str) -> str:
    """A bookkeeping reason, refused when blank: every unaudited write says why."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("bookkeeping needs a reason")
    return reason.strip()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return str(value)


def apply_changes(obj: Any, **values: Any) -> dict[str, dict[str, Any]]:
    """Set attributes on a row and return what really changed, for the audit row.

    Returns:
        ``{field: {"from": old, "to": new}}`` for every value that differs.
    """
    changes = {}
    for key, value in values.items():
        old = getattr(obj, key)
        if old != value:
            changes[key] = {"from": old, "to": value}
            setattr(obj, key, value)
    return changes


class UnitOfWork:
    """The session of one use case plus what must happen around its commit."""

    def __init__(self, session: Session, actor: Actor):
        self.session = session
        self.actor = actor
        self._after_commit: list[Callable[[], None]] = []
        self.audited = False
        self.bookkeeping_reason = ""
        self.touched: set[str] = set()
        event.listen(session, "after_flush", self._note_flush)
        event.listen(session, "do_orm_execute", self._note_statement)

    def _note_flush(self, session: Session, _context: Any) -> None:
        for obj in (*session.new, *session.deleted):
            self.touched.add(obj.__table__.name)
        for obj in session.dirty:
            if session.is_modified(obj, include_collections=False):
                self.touched.add(obj.__table__.name)

    def _note_statement(self, state: ORMExecuteState) -> Any:
        if not (state.is_update or state.is_delete or state.is_insert):
            return None
        table = getattr(state.statement, "table", None)
        result = state.invoke_statement()
        # An UPDATE or DELETE that matched no row (a lost race, a guard) changed nothing.
        if table is not None and getattr(result, "rowcount", -1) != 0:
            self.touched.add(table.name)
        return result

    def bookkeeping(self, reason: str) -> None:
        """Declare that this work only records state the system keeps its own log of.

        Delivery outcomes of WhatsApp messages (each is a row of ``wa_message_logs``
        or ``wa_message_queue`` with its times and error) and gateway telemetry such
        as QR rotation would flood the audit trail with one row per message; the
        decisions around them (sending, retrying, cancelling, pausing) are audited.
        For a unit that is bookkeeping from the start, open it with
        ``unit_of_work(actor).bookkeeping(reason)`` instead.

        Args:
            reason: Why no audit row is needed, for the strict-mode message and review.

        Raises:
            ValueError: ``reason`` is empty.
        """
        self.bookkeeping_reason = _reason(reason)

    def unaudited_tables(self) -> set[str]:
        """Audited tables this unit of work changed, if it wrote no audit row."""
        if self.audited or self.bookkeeping_reason:
            return set()
        return self.touched - UNAUDITED_TABLES

    def audit(
        self,
        action: str,
        resource: str | None = None,
        resource_id: uuid.UUID | None = None,
        **meta: Any,
    ) -> ActivityLog:
        """Record the mutation in ``activity_logs`` inside this transaction.

        Args:
            action: Dotted verb, e.g. ``auth.login`` or ``user.deactivate``.
            resource: Table or concept touched.
            resource_id: Row touched.
            **meta: Extra facts (before/after values, counts); never secrets.

        Returns:
            The pending log row.
        """
        self.audited = True
        if self.actor.is_system and self.actor.name != "system":
            meta.setdefault("job", self.actor.name)
        row = ActivityLog(
            user_id=self.actor.user_id,
            action=action,
            resource=resource,
            resource_id=resource_id,
            meta=_jsonable(meta) or None,
            ip_address=(self.actor.ip or "")[:45] or None,  # VARCHAR(45)
        )
        self.session.add(row)
        return row

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(fn)


class OpenUnitOfWork:
    """What :func:`unit_of_work` returns: a context manager yielding a :class:`UnitOfWork`.

    ``with unit_of_work(actor) as uow:`` is a use case, held to the audit rule;
    ``with unit_of_work(actor).bookkeeping("heartbeat") as uow:`` is a write the
    system makes for itself (heartbeats, claims, caches, counters, the last-seen
    time of a session), accepted without an audit row even in strict mode.
    """

    def __init__(self, actor: Actor):
        self._actor = actor
        self._reason = ""
        self._running: AbstractContextManager[UnitOfWork] | None = None

    def bookkeeping(self, reason: str) -> OpenUnitOfWork:
        """Mark the whole unit as deliberately unaudited bookkeeping.

        Args:
            reason: Why no audit row is needed (non-empty), for review and the logs.

        Returns:
            This context manager, to be entered with ``with``.

        Raises:
            ValueError: ``reason`` is empty.
        """
        self._reason = _reason(reason)
        return self

    def __enter__(self) -> UnitOfWork:
        if self._running is not None:
            raise RuntimeError("a unit of work is entered once")
        self._running = _run(self._actor, self._reason)
        return self._running.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        assert self._running is not None  # only after __enter__
        return self._running.__exit__(exc_type, exc, tb)


def unit_of_work(actor: Actor) -> OpenUnitOfWork:
    """Open a transaction for ``actor``; commit on success, roll back on error.

    After-commit hooks run only after a successful commit; a failing hook is
    logged and does not undo what was committed. Use it as ``with
    unit_of_work(actor) as uow:``, or ``with unit_of_work(actor).bookkeeping(reason)
    as uow:`` for writes that need no audit row (see :class:`OpenUnitOfWork`).

    Raises:
        UnauditedMutation: in strict mode, when the work changed audited tables
            without an audit row (the transaction is rolled back).
    """
    return OpenUnitOfWork(actor)


@contextmanager
def _run(actor: Actor, bookkeeping: str) -> Iterator[UnitOfWork]:
    session = new_session()
    uow = UnitOfWork(session, actor)
    if bookkeeping:
        uow.bookkeeping(bookkeeping)
    try:
        yield uow
        session.flush()
        missing = uow.unaudited_tables()
        if missing:
            if _strict():
                raise UnauditedMutation(
                    f"unit of work changed {sorted(missing)} without an audit row")
            log.error("unaudited mutation", extra={"tables": sorted(missing)})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    for fn in uow._after_commit:
        try:
            fn()
        except Exception:
            log.exception("after-commit hook failed")
