"""Security headers on every HTTP answer, as one pure-ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware) so streamed answers pass through untouched; the work
per request is appending a prepared list of headers to the start message. A document that
sets its own Content-Security-Policy (the GraphiQL page, the console's pages) keeps it;
every other answer gets one that lets it load and run nothing, should a browser ever
render it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from html.parser import HTMLParser
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = b"content-security-policy"
# JSON, event streams, errors: nothing in them may load, run, or be framed.
API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Add `HEADERS` to every HTTP answer, and `API_CSP` to those without a CSP of their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secured(message.get("headers", ()))}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secured(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An answer's headers with `HEADERS`, and `API_CSP` unless it has a CSP of its own
    (also used by the compiled reads' lane, gateway.fast_reads, which runs before this)."""
    found = list(headers)
    if not any(name.lower() == CSP for name, _ in found):
        found.append((CSP, API_CSP))
    found.extend(HEADERS)
    return found


class _PageSources(HTMLParser):
    """What an HTML page loads: external script and style hosts, inline script and style text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.hosts: dict[str, set[str]] = {"script": set(), "style": set()}
        self.inline: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and named.get("src"):
            self.hosts["script"].add(_origin(named["src"] or ""))
        elif tag == "link" and (named.get("rel") or "").lower() == "stylesheet":
            self.hosts["style"].add(_origin(named.get("href") or ""))
        elif tag in ("script", "style"):
            self._open, self._text = tag, []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self.inline[tag].append("".join(self._text))
            self._open = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'self'"


def inline_hash(text: str) -> str:
    """The CSP source expression that allows exactly this inline script or style."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def page_csp(html: str) -> str:
    """A Content-Security-Policy allowing exactly what `html` loads: the hosts of its
    external scripts and stylesheets ('self' for this origin's), its inline scripts and
    styles by hash, images and fonts from its origin or data: URLs, requests to its own
    origin (HTTP and WebSocket: 'self' covers ws:// and wss:// to it), and nothing else."""
    sources = _PageSources()
    sources.feed(html)
    sources.close()

    def allowed(kind: str) -> str:
        hosts = sorted(sources.hosts[kind])
        hashes = sorted({inline_hash(text) for text in sources.inline[kind]})
        return " ".join([*hosts, *hashes]) or "'none'"

    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {allowed('script')}",
            f"style-src {allowed('style')}",
            "img-src 'self' data:",
            # Stylesheets may embed their fonts (GraphiQL's do, as data: URLs).
            "font-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
