"""The loopback Chat Completions upstream of bench/send_path.py, as a process of its own.

    .venv/bin/python bench/loopback_upstream.py PORT DELAY_MS

It answers `POST /v1/chat/completions` after DELAY_MS, whole or streamed (SSE), like
bench/provider_overhead.py's `Upstream`, and records how long it took (request arrival to
last byte written) under the marker its question ends with. `POST /_took` with a JSON
list of markers answers (and forgets) those times, in seconds. The replies carry every
field of OpenAI's objects (id, object, created, model), so strict clients such as
LiteLLM (which parses them with the openai SDK's types) accept them.

A process of its own, so the client under measurement and the upstream do not share
one event loop (and one core).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from aiohttp import web

WORDS = 30


class Upstream:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.took: dict[str, float] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        body = await request.json()
        content = body["messages"][-1]["content"]
        if isinstance(content, list):  # the parts form some clients send
            content = " ".join(part.get("text", "") for part in content)
        marker = content.split()[-1]
        await asyncio.sleep(self.delay)
        text = f"reply to {marker} " + "word " * WORDS
        usage = {"prompt_tokens": 12, "completion_tokens": WORDS + 3, "total_tokens": WORDS + 15}
        base = {"id": f"chatcmpl-{marker[:12]}", "created": int(time.time())}
        base["model"] = body["model"]
        if not body.get("stream"):
            response = web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
            await response.prepare(request)
            await response.write_eof()
        else:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            chunk_base = {**base, "object": "chat.completion.chunk"}
            for number, word in enumerate(text.split(" ")):
                delta = {"content": word + " "}
                if number == 0:
                    delta["role"] = "assistant"
                chunk = {
                    **chunk_base,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            final = {
                **chunk_base,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": usage,
            }
            await response.write(b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n")
            await response.write_eof()
        self.took[marker] = time.perf_counter() - started
        return response

    async def took_of(self, request: web.Request) -> web.Response:
        markers = await request.json()
        return web.json_response({m: self.took.pop(m) for m in markers if m in self.took})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})


def main() -> None:
    try:
        import uvloop  # what uvicorn runs on too (uvicorn[standard])

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    port, delay_ms = int(sys.argv[1]), float(sys.argv[2])
    upstream = Upstream(delay_ms / 1000)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", upstream.handle)
    app.router.add_post("/chat/completions", upstream.handle)
    app.router.add_post("/_took", upstream.took_of)
    app.router.add_get("/healthz", upstream.healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
