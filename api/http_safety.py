"""What every response and every log line of the service gets: security headers, an access
log (method, path, status, milliseconds, user id; resident IDs masked), and logging set up
so that nothing written to stderr, tracebacks included, shows a resident ID."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api.masking import IdMaskingFilter

__all__ = ["API_CSP", "CONSOLE_CSP", "DOCS_CSP", "SafetyMiddleware", "access_log", "configure_logging"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("jiuzhu.access")
error_log = logging.getLogger("jiuzhu.errors")
_listener: logging.handlers.QueueListener | None = None
_INTERNAL = b'{"detail":"internal error; the service log has the details","errors":[]}'

# JSON and files: nothing may run or be framed. The docs page: its own scripts and styles
# (Swagger UI's page starts it with an inline script), still never framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# the web console: its own scripts, styles and forms only; nothing inline, never framed
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SafetyMiddleware:
    """Plain ASGI (no per-request task or body copy): adds the headers, logs the request."""

    def __init__(self, app: ASGIApp, docs_prefixes: tuple[str, ...] = ("/docs",)) -> None:
        self.app = app
        self.docs_prefixes = docs_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(self.docs_prefixes) else API_CSP
        if path.startswith("/console"):
            csp = CONSOLE_CSP
        state = scope.setdefault("state", {})
        status = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [*_COMMON, (b"content-security-policy", csp.encode())]
                if not path.startswith(self.docs_prefixes):
                    extra.append((b"cache-control", b"no-store"))  # decisions hold personal data
                headers += [(k, v) for k, v in extra if k not in present]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # an unexpected error: the traceback to the log (IDs masked by the handler's
            # filter), a bare 500 with the same headers to the client, nothing of the server
            error_log.exception("unexpected error answering %s %s", scope.get("method", ""), path)
            if started:
                raise
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_INTERNAL))],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": _INTERNAL})
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            access_log.info(
                "%s %s %d %.1fms user=%s",
                scope.get("method", ""),
                path + ("?" + query if query else ""),
                status,
                (time.perf_counter() - start) * 1000,
                state.get("user_id", "-"),
            )


@atexit.register
def _stop_listener() -> None:
    """Write what is queued (at exit, or before logging is set up again)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def configure_logging(level: int = logging.WARNING) -> None:
    """One stderr handler for everything (uvicorn's loggers included), with resident IDs
    masked in messages, arguments and tracebacks; the access log at INFO."""
    global _listener
    stream = logging.StreamHandler(sys.stderr)
    stream.addFilter(IdMaskingFilter())
    stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # the event loop only queues a line (masked first); a thread writes it, so the loop never
    # blocks on stderr nor gives the GIL away to a busy thread on every request's log line
    handler = logging.handlers.QueueHandler(queue.SimpleQueue())
    handler.addFilter(IdMaskingFilter())
    _stop_listener()
    _listener = logging.handlers.QueueListener(handler.queue, stream)
    _listener.start()
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    access_log.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
