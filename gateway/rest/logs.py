"""4.1 System logs (admin), newest first."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from db.identity import Caller
from db.models import LogLevel
from db.services import logs
from db.services.pagination import PageRequest
from gateway.rest.requests import query
from gateway.rest.routing import Endpoint
from gateway.rest.schemas import LogList, LogsQuery
from gateway.rest.shapes import log_out


async def list_logs(request: Request, caller: Caller) -> dict[str, Any]:
    logs.authorize_read(caller=caller)  # a user learns nothing of the admin filters
    params = query(request, LogsQuery)
    page = await logs.list_page(
        caller=caller,
        page=PageRequest(page_size=params.page_size, page_num=params.page_num),
        level=LogLevel(params.level) if params.level else None,
        start_time=params.start_time,
        end_time=params.end_time,
    )
    return {"logs": [log_out(entry) for entry in page.entries], "total": page.total}


ENDPOINTS = [
    Endpoint(
        "GET",
        "/logs",
        list_logs,
        summary="System operation logs, newest first, filtered by level and time",
        query=LogsQuery,
        response=LogList,
        admin_only=True,
    ),
]
