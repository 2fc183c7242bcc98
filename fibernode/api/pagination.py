"""Paging of every list endpoint: ``page`` / ``per_page`` in, ``{items, total, …}`` out.

``page`` starts at 1; ``per_page`` defaults to 20 and may be at most 100 (more is
a 422 in the one error shape). The services page in SQL; this module only turns
their :class:`fibernode.services.paging.Page` into the response model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from fibernode.api.deps import request_actor
from fibernode.services.context import Actor, require_user
from fibernode.services.paging import MAX_PER_PAGE

T = TypeVar("T")
DEFAULT_PER_PAGE = 20
# Far beyond any real list, and keeps the SQL OFFSET inside a bigint.
MAX_PAGE = 1_000_000

PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Halaman, mulai dari 1")]
PerPageQuery = Annotated[int, Query(ge=1, le=MAX_PER_PAGE,
                                    description=f"Baris per halaman (1–{MAX_PER_PAGE})")]


def user_actor(actor: Annotated[Actor, Depends(request_actor)]) -> Actor:
    """The logged-in caller; anonymous requests get 401 before any parameter check."""
    require_user(actor)
    return actor


ActorDep = Annotated[Actor, Depends(user_actor)]


class Out(BaseModel):
    """Response models built from the services' dataclasses by attribute."""

    model_config = ConfigDict(from_attributes=True)


class Body(BaseModel):
    """Request bodies: unknown keys are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class PageOut(BaseModel, Generic[T]):
    """One page of a list and what a pager needs."""

    items: list[T]
    total: int
    page: int
    per_page: int
    pages: int


def page_out(items: Iterable[Any], *, total: int, page: int, per_page: int,
             convert: Callable[[Any], Any]) -> dict[str, Any]:
    """The fields of a :class:`PageOut` with every item converted."""
    return {"items": [convert(i) for i in items], "total": int(total), "page": page,
            "per_page": per_page, "pages": max(1, -(-int(total) // per_page))}


def from_page(page: Any, model: type[BaseModel]) -> dict[str, Any]:
    """A service :class:`~fibernode.services.paging.Page` as :class:`PageOut` fields."""
    return page_out(page.items, total=page.total, page=page.page, per_page=page.per_page,
                    convert=model.model_validate)
