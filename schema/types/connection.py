"""Relay connections: XConnection { edges { cursor node } pageInfo totalCount }."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Items in the whole list, not just this page.")
    async def total_count(self) -> int:
        return await self.counter()

    @classmethod
    def of(
        cls,
        edges: list[Edge[T]],
        *,
        has_next: bool,
        has_previous: bool,
        counter: Callable[[], Awaitable[int]],
    ) -> Connection[T]:
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            counter=counter,
        )
