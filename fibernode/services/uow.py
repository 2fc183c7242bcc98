"""One transaction per use case, with its audit rows and after-commit hooks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session

from fibernode.db import new_session
from fibernode.models import ActivityLog
from fibernode.services.context import Actor

log = logging.getLogger(__name__)


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


@contextmanager
def unit_of_work(actor: Actor) -> Iterator[UnitOfWork]:
    """Open a transaction for ``actor``; commit on success, roll back on error.

    After-commit hooks run only after a successful commit; a failing hook is
    logged and does not undo what was committed.
    """
    session = new_session()
    uow = UnitOfWork(session, actor)
    try:
        yield uow
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
