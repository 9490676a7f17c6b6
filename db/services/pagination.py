"""Page-number pagination of the REST layer, and the one cap every list shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

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


DEFAULT_SLICE_SIZE = 20
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Slice:
    """A Relay-style request for `size` items after a cursor, or before one (`backward`)."""

    size: int = DEFAULT_SLICE_SIZE
    backward: bool = False

    @classmethod
    def of(cls, *, first: int | None, last: int | None) -> Slice:
        """Check `first`/`last` as GitHub's API does: one of them, 0 to 100, never more."""
        if first is not None and last is not None:
            raise Invalid("pass first or last, not both", field="last")
        for name, value in (("first", first), ("last", last)):
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise Invalid(f"must be between 0 and {MAX_PAGE_SIZE}", field=name)
        if last is not None:
            return cls(size=last, backward=True)
        return cls(size=DEFAULT_SLICE_SIZE if first is None else first)


@dataclass(frozen=True, slots=True)
class Window(Generic[T]):
    """One slice of an ordered list, with whether more items lie on either side."""

    items: list[T]
    has_next: bool
    has_previous: bool
