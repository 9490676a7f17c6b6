"""Full-text search results: `searchMessages` and its hits."""

from __future__ import annotations

import strawberry

from db.services import search
from db.services.pagination import MAX_PAGE_NUM, MAX_PAGE_SIZE, Slice
from schema.context import Info
from schema.cursors import offset_cursor, parse_offset_cursor
from schema.types.connection import Connection, Edge
from schema.types.message import Message

# Search results are cut by position (their order is a rank, not a column), so a cursor
# holds the position of its hit; no deeper than REST's pages reach.
CURSOR_KIND = "h"
DEEPEST = MAX_PAGE_NUM * MAX_PAGE_SIZE


@strawberry.type(description="A message matching a search, and where it matches.")
class MessageSearchHit:
    message: Message
    snippet: str = strawberry.field(
        description=(
            "An excerpt of the message as HTML: its text escaped, each match in "
            "<mark>...</mark>, an ellipsis (…) where the message goes on."
        )
    )
    rank: float = strawberry.field(
        description="How well it matches: higher is better; comparable within one search."
    )

    @classmethod
    def from_model(cls, hit: search.SearchHit) -> MessageSearchHit:
        return cls(message=Message.from_model(hit.message), snippet=hit.snippet, rank=hit.rank)


async def search_messages(
    info: Info,
    query: str,
    session_id: strawberry.ID | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Connection[MessageSearchHit]:
    caller = await info.context.caller()
    page = Slice.of(first=first, last=None)
    position = parse_offset_cursor(after, CURSOR_KIND, "after", below=DEEPEST)
    offset = 0 if position is None else position + 1
    found = await search.search(
        caller=caller, query=query, session_id=session_id, offset=offset, limit=page.size
    )

    async def counter() -> int:
        return found.total

    return Connection.of(
        [
            Edge(cursor=offset_cursor(CURSOR_KIND, offset + n), node=MessageSearchHit.from_model(h))
            for n, h in enumerate(found.hits)
        ],
        has_next=offset + len(found.hits) < found.total,
        has_previous=offset > 0,
        counter=counter,
    )
