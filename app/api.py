"""REST API: `uvicorn app.api:app`. Quotes, explanations, comparables, data and models under /v1.

Route bodies read the request, make one or two calls into `diamond_model`, and shape the answer;
every error leaves as an RFC 9457 problem document.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import install_error_handlers, problem_response, problem_responses
from app.routes import install_routes
from app.services import Services
from diamond_model.settings import Settings, get_settings

MULTIPART_SLACK = 64_000  # multipart framing around an upload of the maximum size

DESCRIPTION = """
Prices for round diamonds from their 4Cs and measurements, with a likely range and an exact
explanation in dollars. Writes (uploading appraisals, retraining, promoting a model) need the
expert's key in the `X-API-Key` header. Every error is a JSON
[problem document](https://www.rfc-editor.org/rfc/rfc9457) naming the field, what was wrong and
what is accepted.
"""


class BodyLimit:
    """Refuse request bodies over the limit with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = problem_response(
            413,
            "Request too large",
            f"The request body is over the limit of {limit:,} bytes; split the file or batch.",
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_big(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await too_big(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; services (database, model cache) are created at startup, not import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services.create(settings or get_settings())
        yield
        app.state.services.close()

    app = FastAPI(
        title="Diamond Price API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=problem_responses(400, 413, 422, 500),
    )
    app.add_middleware(
        BodyLimit, limit=lambda: (settings or get_settings()).max_upload_bytes + MULTIPART_SLACK
    )
    install_error_handlers(app)
    install_routes(app)

    app.add_middleware(WorkerHeader)
    return app


class WorkerHeader:
    """Add `X-Worker: <pid>`: which worker answered (for operations, and the multi-worker test).

    A plain ASGI middleware: Starlette's `@app.middleware("http")` costs about a millisecond a call.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)


# ---- dependencies ------------------------------------------------------------------------------


app = create_app()
