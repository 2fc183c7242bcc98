"""Column types shared by the tables."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Current time as an aware UTC datetime."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A fresh random primary key."""
    return uuid.uuid4()


class AwareDateTime(TypeDecorator):
    """A ``timestamptz`` that is always aware in Python, on every database.

    PostgreSQL keeps the zone; SQLite has none, so values are stored as naive
    UTC there and made aware again on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: D102
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Waktu harus memiliki zona waktu (timezone-aware).")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):  # noqa: D102
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_column(enum_cls: type[enum.Enum], name: str, **kwargs) -> sa.Column:
    """A column for a ``str`` enum stored by value (native enum on PostgreSQL)."""
    return sa.Column(
        sa.Enum(
            enum_cls,
            name=name,
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
        ),
        **kwargs,
    )


def ts_column(*, nullable: bool = True, default=None, onupdate=None, index: bool = False):
    """A timezone-aware timestamp column."""
    return sa.Column(
        AwareDateTime(),
        nullable=nullable,
        default=default,
        onupdate=onupdate,
        index=index,
    )


def fk(target: str, ondelete: str | None, *, nullable: bool, index: bool = False,
       unique: bool = False) -> sa.Column:
    """A UUID foreign key column with an explicit ``ON DELETE`` rule."""
    return sa.Column(
        sa.Uuid(),
        sa.ForeignKey(target, ondelete=ondelete),
        nullable=nullable,
        index=index,
        unique=unique,
    )
