"""Who is acting: the first argument of every use case."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from fibernode.models import UserRole
from fibernode.services.errors import AuthenticationRequired, PermissionDenied


@dataclass(frozen=True)
class Actor:
    """The tenant context of a call.

    Attributes:
        user_id: The logged-in user, or ``None`` for anonymous and system callers.
        role: The user's role; ``None`` when not a user.
        name: Display name, for messages and logs.
        ip: Client IP address (empty for background jobs).
        user_agent: Client user agent (empty for background jobs).
        is_system: True for scheduled jobs and the seeder, which act for everyone.
        token_family: For API callers, the refresh-token family of their access token.
    """

    user_id: uuid.UUID | None = None
    role: UserRole | None = None
    name: str = ""
    ip: str = ""
    user_agent: str = ""
    is_system: bool = False
    token_family: uuid.UUID | None = None

    @classmethod
    def anonymous(cls, ip: str = "", user_agent: str = "") -> Actor:
        """A caller that has not logged in (login page, public receipts)."""
        return cls(ip=ip, user_agent=user_agent)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """A background job or maintenance command."""
        return cls(name=name, is_system=True)

    @property
    def is_authenticated(self) -> bool:
        """Whether this is a logged-in user."""
        return self.user_id is not None and self.role is not None

    @property
    def is_superadmin(self) -> bool:
        """Whether this is a logged-in superadmin."""
        return self.role == UserRole.SUPERADMIN and self.user_id is not None

    @property
    def is_mitra(self) -> bool:
        """Whether this is a logged-in mitra."""
        return self.role == UserRole.MITRA and self.user_id is not None

    def with_client(self, ip: str, user_agent: str) -> Actor:
        """The same actor seen from another client address."""
        return replace(self, ip=ip, user_agent=user_agent)


def require_user(actor: Actor) -> None:
    """Reject anonymous callers.

    Raises:
        AuthenticationRequired: when nobody is logged in.
    """
    if actor.is_system:
        return
    if not actor.is_authenticated:
        raise AuthenticationRequired()


def require_superadmin(actor: Actor) -> None:
    """Reject everyone but a superadmin (and system jobs).

    Raises:
        AuthenticationRequired: when nobody is logged in.
        PermissionDenied: when a mitra calls.
    """
    require_user(actor)
    if not (actor.is_system or actor.is_superadmin):
        raise PermissionDenied()
