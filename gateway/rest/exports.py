"""GET /sessions/{session_id}/export: the whole session as a download, JSON or Markdown.

A download is not an envelope: the success body is the document itself, streamed as the
service writes it (chunked, no Content-Length). Errors found before it starts (bad
`format`, an unknown or another user's session, authentication) are ordinary envelope
answers. Once the first bytes are out the status cannot change: an export that fails
after that (the database went away) ends with the connection closed before the body's
end, so a client sees a broken transfer (curl exits with an error, an HTTP library
raises) rather than a shorter file that looks whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Send

from db.identity import Caller
from db.services import exports
from gateway.rest.requests import path_param, query
from gateway.rest.routing import Endpoint
from gateway.rest.schemas import MessageOut

MEDIA_TYPES = {
    exports.Format.JSON: "application/json",
    exports.Format.MARKDOWN: "text/markdown; charset=utf-8",
}


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Checked by the service (exports.parse_format); the enum states it in the document.
    format: str = Field(
        exports.Format.JSON.value,
        json_schema_extra={"enum": [kind.value for kind in exports.Format]},
    )


class ExportedSession(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    session_id: str
    user_id: str
    model_config_id: str
    title: str | None
    archived: bool
    forked_from_message_id: str | None
    created_time: datetime
    updated_time: datetime
    message_count: int = Field(description="How many messages the export holds.")


class SessionExport(BaseModel):
    """The JSON export: the session, then its history oldest first, as REST's history
    shows each message (the current reply of each turn; replaced replies are left out)."""

    session: ExportedSession
    messages: list[MessageOut]


class Download(StreamingResponse):
    """A streamed document that ends without its last chunk when the export is
    interrupted: the server then closes the connection (see the module's docstring)."""

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except exports.ExportInterrupted:
            return  # logged by the service; the body stays unfinished on purpose
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def export_session(request: Request, caller: Caller) -> Response:
    params = query(request, ExportQuery)
    export = await exports.get(
        caller=caller, session_id=path_param(request, "session_id"), format=params.format
    )
    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename}"',
        "Cache-Control": "no-store",
    }
    if request.method == "HEAD":  # the headers a GET would send, without reading anything
        await export.chunks.aclose()
        head = Response(headers=headers, media_type=MEDIA_TYPES[export.format])
        del head.headers["content-length"]  # unknown: the body is made as it is sent
        return head
    return Download(export.chunks, headers=headers, media_type=MEDIA_TYPES[export.format])


def _inlined(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema with its nested models written in place (an inline schema of
    the OpenAPI document cannot carry `$defs` of its own: `#` is the document)."""
    schema = model.model_json_schema(mode="serialization")
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_DOWNLOADS = {
    "application/json": {"schema": _inlined(SessionExport)},
    "text/markdown": {
        "schema": {
            "type": "string",
            "description": (
                "A title heading, then each message as a section (`## **User** · <time>` "
                "or `## **Assistant** · <time>`) with its text in a fenced code block "
                "longer than any run of backticks in it, so any text comes back exactly."
            ),
        }
    },
}

ENDPOINTS = [
    Endpoint(
        "GET",
        "/sessions/{session_id}/export",
        export_session,
        summary="The whole session as a download (JSON or Markdown), streamed",
        query=ExportQuery,
        response=None,
        errors=(400, 401, 404, 500),
        alternative_content=_DOWNLOADS,
    ),
]
