"""Every answer carries an `X-Request-ID`: the caller's own (when it is a sensible id) or a new
one. It is in every problem document and in the one JSON access-log line written per request
(time, request id, key name — never the key —, method, route, status, duration, stones), so a
client quoting it in a support ticket leads straight to the line.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
VALID_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
CURRENT: ContextVar[str | None] = ContextVar("request_id", default=None)
BASE: ContextVar[str] = ContextVar("base_url", default="")
log = logging.getLogger("app.access")


def current() -> str | None:
    """The id of the request being answered (None outside one)."""
    return CURRENT.get()


def base_url() -> str:
    """This server's address as the request being answered reached it ('' outside one): the
    scheme and host it was sent to (through a configured proxy, the proxy's), and any root path."""
    return BASE.get()


def _base(scope: Scope) -> str:
    host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
    if not VALID_HOST.fullmatch(host):
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}".rstrip("/")


class RequestId:
    """Outermost ASGI middleware: the id first, the log line last."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope.get("headers") or []).get(HEADER, b"").decode("latin-1")
        request_id = offered if VALID.fullmatch(offered) else uuid.uuid4().hex
        BASE.set(_base(scope))
        CURRENT.set(request_id)  # left set: each request runs in its own task (and a 500 is
        # built by Starlette's outer layer after this middleware returns)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message["headers"] = [*headers, (HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            caller = (scope.get("state") or {}).get("caller")
            client = getattr(caller, "client", None)
            log.info(
                json.dumps(
                    {
                        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "request_id": request_id,
                        "key": client.name if client is not None else None,
                        "method": scope["method"],
                        "route": scope["path"],
                        "status": status,
                        "ms": round(1000 * (time.perf_counter() - started), 1),
                        "stones": getattr(caller, "stones", 0),
                    }
                )
            )
