"""Full-text search over the messages the caller may see."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request

from db.identity import Caller
from db.services import search
from db.services.pagination import PageRequest
from gateway.rest.requests import query, renamed
from gateway.rest.routing import Endpoint
from gateway.rest.schemas import PageQuery, text_schema


class SearchQuery(PageQuery):
    q: str = Field(
        description=(
            'Words (all must match), "phrases in quotes", -excluded words or phrases, and '
            "`or` between two terms; common words (the, and...) are left out."
        ),
        json_schema_extra=text_schema(search.MAX_QUERY_CHARS, not_blank=True),
    )
    session_id: str | None = Field(None, description="Only this session's messages.")


class SearchHitOut(BaseModel):
    message_id: str
    session_id: str
    snippet: str = Field(
        description=(
            "An excerpt of the message as HTML: its text escaped, each match in "
            "<mark>...</mark>, an ellipsis (…) where the message goes on."
        )
    )
    rank: float = Field(description="Higher is better; comparable within one search.")


class SearchResults(BaseModel):
    hits: list[SearchHitOut]
    total: int


async def search_messages(request: Request, caller: Caller) -> dict[str, Any]:
    params = query(request, SearchQuery)
    with renamed({"query": "q"}):
        found = await search.search(
            caller=caller,
            query=params.q,
            session_id=params.session_id,
            offset=PageRequest(page_size=params.page_size, page_num=params.page_num).offset,
            limit=params.page_size,
        )
    return {
        "hits": [
            {
                "message_id": str(hit.message.id),
                "session_id": str(hit.message.session_id),
                "snippet": hit.snippet,
                "rank": hit.rank,
            }
            for hit in found.hits
        ],
        "total": found.total,
    }


ENDPOINTS = [
    Endpoint(
        "GET",
        "/search",
        search_messages,
        summary="Full-text search over the messages the caller may see, best match first",
        query=SearchQuery,
        response=SearchResults,
    ),
]
