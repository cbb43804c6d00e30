"""REST API: `uvicorn app.api:app`. Quotes, explanations, comparables, data and models under /v1.

Route bodies read the request, make one or two calls into `diamond_model`, and shape the answer;
every error leaves as an RFC 9457 problem document. The docs pages are served with their own
scripts (no CDN), so they work on a network without internet.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import install_error_handlers, problem_response, problem_responses
from app.routes import ROUTERS
from app.services import Services
from diamond_model.settings import Settings, get_settings

MULTIPART_SLACK = 64_000  # multipart framing around an upload of the maximum size
DOCS_ASSETS = "/docs-assets"

DESCRIPTION = """
Prices for round diamonds from their 4Cs and measurements, with a likely range for this stone,
a confidence level with its reasons, the market level the price is set at, and an exact
explanation in dollars. Every quote has an id (`GET /v1/quotes/{quote_id}`) and can be
reproduced with the model version it names (`?model_version=`).

**Keys.** Send a client key in the `X-API-Key` header (the server's operator creates it:
`python -m diamond_model keys create NAME --scopes quote`). Scopes: `quote` (prices, comparables,
market level), `data:write` (uploads, withdrawals), `models:write` (retrain, promote, roll back).
Keys may carry limits in requests per minute and stones per day; over a limit the answer is 429
with `Retry-After`. Your usage per hour: `GET /v1/usage`.

**Errors** are JSON [problem documents](https://www.rfc-editor.org/rfc/rfc9457) naming the
field, what was wrong and what is accepted.
"""


class BodyLimit:
    """Refuse request bodies over the limit with 413 and stop reading them.

    A declared Content-Length over the limit is refused before any byte is read. A body without
    one (chunked) is read up to the limit before the app sees it; one byte more and the answer is
    413 with `Connection: close`, so the server drops the connection instead of draining the rest.
    """

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > limit:
                await _too_big(limit)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            await self.app(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_big(limit)(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_big(limit: int) -> ASGIApp:
    return problem_response(
        413,
        "Request too large",
        f"The request body is over the limit of {limit:,} bytes; split the file or batch.",
        headers={"Connection": "close"},
    )


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


def _docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc with their scripts served by this server (fastapi-offline's copies)."""
    assets = resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _openapi(app: FastAPI) -> Callable[[], dict]:
    """The generated document, with uploaded files also marked `format: binary`.

    FastAPI describes a file part the OpenAPI 3.1 way (`contentMediaType`) only; client
    generators that read the 3.0 way (`format: binary`) would send the file as text.
    """
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            for component in schema.get("components", {}).get("schemas", {}).values():
                for field in component.get("properties", {}).values():
                    if field.get("contentMediaType") == "application/octet-stream":
                        field["format"] = "binary"
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; services (database, model cache) are created at startup, not import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.create(settings or get_settings())
        services.start()
        app.state.services = services
        yield
        services.close()

    app = FastAPI(
        title="Diamond Price API",
        version="2.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=problem_responses(400, 413, 422, 500),
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        BodyLimit, limit=lambda: (settings or get_settings()).max_upload_bytes + MULTIPART_SLACK
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _docs(app)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(WorkerHeader)
    return app


app = create_app()
