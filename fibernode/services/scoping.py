"""The one place where tenant-owned queries are narrowed to what the actor may see."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.sql import Select

from fibernode.services.context import Actor, require_user
from fibernode.services.errors import PermissionDenied

S = TypeVar("S", bound=Select)


def scoped(stmt: S, actor: Actor, owner_column: Any) -> S:
    """Restrict ``stmt`` to rows the actor owns.

    Superadmin and system jobs see every owner; a mitra sees only rows whose
    ``owner_column`` is their own id; anonymous callers see nothing.

    Args:
        stmt: A select over a tenant-owned table.
        actor: Who asks.
        owner_column: The column holding the owning user's id.

    Returns:
        The narrowed select.

    Raises:
        AuthenticationRequired: for anonymous callers.
        PermissionDenied: for an authenticated caller without a known role.
    """
    require_user(actor)
    if actor.is_system or actor.is_superadmin:
        return stmt
    if actor.is_mitra:
        return stmt.where(owner_column == actor.user_id)
    raise PermissionDenied()


def can_touch_owner(actor: Actor, owner_id: Any) -> bool:
    """Whether the actor may act on rows belonging to ``owner_id``."""
    if actor.is_system or actor.is_superadmin:
        return True
    return actor.is_mitra and owner_id == actor.user_id


def check_owner_filter(actor: Actor, owner_id: Any) -> None:
    """An explicit owner filter (``owner_id=…``): a mitra may name only itself.

    Raises:
        AuthenticationRequired: for anonymous callers.
        PermissionDenied: when a mitra names another owner.
    """
    require_user(actor)
    if owner_id is not None and not (actor.is_system or actor.is_superadmin
                                     or owner_id == actor.user_id):
        raise PermissionDenied()
