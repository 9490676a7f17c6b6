"""Page-number pagination of the REST layer, and the one cap every list shares."""

from __future__ import annotations

from dataclasses import dataclass

from db.errors import Invalid

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# Keeps OFFSET inside a 32-bit integer on every database.
MAX_PAGE_NUM = 10_000_000


@dataclass(frozen=True, slots=True)
class PageRequest:
    page_size: int = DEFAULT_PAGE_SIZE
    page_num: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise Invalid(f"must be between 1 and {MAX_PAGE_SIZE}", field="page_size")
        if not 1 <= self.page_num <= MAX_PAGE_NUM:
            raise Invalid(f"must be between 1 and {MAX_PAGE_NUM}", field="page_num")

    @property
    def offset(self) -> int:
        return (self.page_num - 1) * self.page_size
