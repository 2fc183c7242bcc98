"""One page of a list, as every paged use case returns it (20 rows a page, paged in SQL)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from fibernode.services.errors import ValidationFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """The rows of one page plus what a pager needs."""

    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))


MAX_PER_PAGE = 100
PER_PAGE_MESSAGE = f"Jumlah baris per halaman harus antara 1 dan {MAX_PER_PAGE}."


def check_per_page(per_page: int | None, default: int = 20) -> int:
    """Rows a page: ``default`` when not given, else 1 to :data:`MAX_PER_PAGE`.

    Raises:
        ValidationFailed: ``{"per_page": …}`` outside that range or not a whole number.
    """
    if per_page is None:
        return default
    if isinstance(per_page, bool) or not isinstance(per_page, int) \
            or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationFailed({"per_page": PER_PAGE_MESSAGE})
    return per_page
