"""Test data built through the services, as a real user would create it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import select

from fibernode.db import new_session
from fibernode.models import Customer, User, UserRole
from fibernode.services import auth, users
from fibernode.services.context import Actor
from fibernode.services.seed import seed

ADMIN_PASSWORD = "Admin123!"
MITRA_PASSWORD = "Mitra123!"


def actor_for(username: str, ip: str = "10.0.0.1") -> Actor:
    """Log ``username`` in through the auth service and return its actor."""
    password = ADMIN_PASSWORD if username == "superadmin" else MITRA_PASSWORD
    return auth.login(Actor.anonymous(ip, "pytest"), username, password).actor


@dataclass
class World:
    """The spec's seed data plus logged-in actors for each role."""

    admin: Actor
    mitra_a: Actor
    mitra_b: Actor
    anonymous: Actor

    @classmethod
    def seeded(cls) -> World:
        seed(Actor.system("seed"), demo=True)
        return cls(
            admin=actor_for("superadmin"),
            mitra_a=actor_for("mitra1"),
            mitra_b=actor_for("mitra2"),
            anonymous=Actor.anonymous("10.0.0.9", "pytest"),
        )

    def user_id(self, username: str) -> uuid.UUID:
        with new_session() as s:
            return s.exec(select(User.id).where(User.username == username)).one()

    def customers_of(self, actor: Actor) -> list[Customer]:
        with new_session() as s:
            return list(s.exec(select(Customer).where(Customer.owner_id == actor.user_id)).all())

    def new_mitra(self, username: str, business: str) -> uuid.UUID:
        return users.create_mitra(self.admin, username=username, password=MITRA_PASSWORD,
                                  name=username.title(), business_name=business)


def superadmin_id() -> uuid.UUID:
    with new_session() as s:
        return s.exec(select(User.id).where(User.role == UserRole.SUPERADMIN)).one()
