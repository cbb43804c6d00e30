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
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.constants import REF_TEMPLATE
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import problem_types
from app.asgi_body import read_body, replay
from app.idempotency import Idempotency
from app.problems import install_error_handlers, problem_response, problem_responses
from app.ratelimit import RateLimitFields
from app.request_id import RequestId
from app.retirement import RetirementHeaders
from app.routes import ROUTERS
from app.schemas import BatchIn
from app.services import Services
from diamond_model.settings import Settings, get_settings

MULTIPART_SLACK = 64_000  # multipart framing around an upload of the maximum size
DOCS_ASSETS = "/docs-assets"
CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"
# The API's version follows its path: 1.x is /v1, the minor grows with each additive release
# (CHANGELOG.md); a change that breaks /v1 clients would come as /v2.
API_VERSION = "1.5.0"

DESCRIPTION = """
Prices for round diamonds from their 4Cs and measurements, with a likely range for this stone,
a confidence level with its reasons, the market level the price is set at, and an exact
explanation in dollars. Every quote has an id (`GET /v1/quotes/{quote_id}`) and can be
reproduced with the model version it names (`?model_version=`).

**Keys.** Every call sends a client key in the `X-API-Key` header (the server's operator creates
it: `python -m diamond_model keys create NAME --scopes quote`). Scopes: `quote` (prices,
comparables, market level, your own quote records), `data:read` (stored appraisals and batches),
`data:write` (uploads, corrections, withdrawals, the audit list), `models:write` (retrain,
promote, roll back), `admin` (the operator). A quote record is read only by the key that asked
for it.
Keys may carry limits in requests per minute and stones per day; over a limit the answer is 429
with `Retry-After`. Your usage per hour: `GET /v1/usage`.

**Errors** are JSON [problem documents](https://www.rfc-editor.org/rfc/rfc9457) naming the
field, what was wrong and what is accepted; each `type` is the address of a page saying what the
problem means and what to do (every kind: [/problems](/problems)).

**Changes** are listed in [the changelog](/changelog). A route to be retired is marked
`deprecated` here and answers with `Deprecation`, `Sunset` and `Link: rel="successor-version"`
headers for at least 90 days before it answers 410.
"""


# What each route may be sent, in bytes, before anything is parsed (README, "Limits on
# requests"). A stone written out in full is ~130 bytes of JSON (~260 with 17-digit floats and
# indentation); 400 leaves room for a client's own extra fields, which are ignored.
SMALL_BYTES = 16_384  # one stone (a few hundred bytes), a withdrawal note, a retrain request
BYTES_PER_STONE = 400


def body_cap(settings: Settings, method: str, path: str) -> int:
    """The largest body `method path` accepts: every route is bounded, unknown ones too."""
    if method == "POST":
        stones = settings.max_batch_stones * BYTES_PER_STONE
        if path == "/v1/quotes/batch":
            return stones + SMALL_BYTES
        if path in ("/v1/quotes/batch/csv", "/v1/appraisals"):
            # A file: a client's CSV may carry its own columns (stock numbers, notes) beside the
            # stones, so the cap is the file limit; the stone count is checked once it is read.
            return settings.max_upload_bytes + MULTIPART_SLACK
    return SMALL_BYTES


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes its route's cap; FastAPI re-raises an
    HTTPException met while reading a body, so the problem handler answers it (413)."""

    def __init__(self, cap: int, method: str, path: str) -> None:
        super().__init__(
            413,
            f"The request body is over the limit of {cap:,} bytes for {method} {path[:100]}; "
            "split the file or batch.",
            headers={"Connection": "close"},
        )


class BodyLimit:
    """Refuse a request body over its route's cap with 413 and stop reading it.

    A declared Content-Length over the cap is refused before any byte is read; one within it is
    all the server's HTTP parser delivers (a body that says it is small and keeps sending is cut
    at the declared length, and what follows is not a request), and it is counted all the same.
    A chunked body is read here up to the cap before the app sees it (so a route that would not
    read it cannot leave the server draining it); one byte more and the answer is 413 with
    `Connection: close`, so the server drops the connection instead of reading the rest.
    """

    def __init__(self, app: ASGIApp, cap: Callable[[str, str], int]) -> None:
        self.app = app
        self.cap = cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
        cap = self.cap(method, path)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        try:
            if declared is not None:
                if declared.isdigit() and int(declared) > cap:
                    raise BodyTooLarge(cap, method, path)
                await self.app(scope, _counted(receive, cap, method, path), send)
            elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                body = await _read_up_to(receive, cap, method, path)
                await self.app(scope, replay(body, receive), send)
            else:
                await self.app(scope, receive, send)
        except BodyTooLarge as error:  # before the app, or read outside FastAPI's body handling
            await _too_big(error)(scope, receive, send)


def _counted(receive: Receive, cap: int, method: str, path: str) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise BodyTooLarge(cap, method, path)
        return message

    return counted


async def _read_up_to(receive: Receive, cap: int, method: str, path: str) -> bytes:
    def within(size: int) -> None:
        if size > cap:
            raise BodyTooLarge(cap, method, path)

    return await read_body(receive, within)


def _too_big(error: BodyTooLarge) -> ASGIApp:
    return problem_response(413, "Request too large", str(error.detail), headers=error.headers)


class WorkerHeader:
    """`X-Worker: <pid>` on every answer when `DIAMOND_EXPOSE_WORKER` is set (tests that need to
    know which of two workers answered; off by default: in production the header would tell a
    stranger which process to aim at).

    A plain ASGI middleware: Starlette's `@app.middleware("http")` costs about a millisecond a call.
    """

    def __init__(self, app: ASGIApp, enabled: Callable[[], bool]) -> None:
        self.app = app
        self.enabled = enabled
        self.header = (b"x-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled():
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
    app.include_router(problem_types.router)  # the pages problem documents' `type` leads to

    @app.get("/changelog", include_in_schema=False)
    async def changelog() -> PlainTextResponse:
        """CHANGELOG.md, which a retiring route's `Link: rel=deprecation` points to."""
        if not CHANGELOG.is_file():
            raise HTTPException(404, "The changelog is not installed with this server.")
        return PlainTextResponse(CHANGELOG.read_text("utf-8"), media_type="text/markdown")

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
    """The generated document, with uploaded files also marked `format: binary`, and the
    bodies that routes read themselves (a batch is counted before it is validated) described.

    FastAPI describes a file part the OpenAPI 3.1 way (`contentMediaType`) only; client
    generators that read the 3.0 way (`format: binary`) would send the file as text.
    """
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            _, read_by_routes = models_json_schema(
                [(BatchIn, "validation")], ref_template=REF_TEMPLATE
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                read_by_routes["$defs"]
            )
            for component in schema.get("components", {}).get("schemas", {}).values():
                for field in component.get("properties", {}).values():
                    if field.get("contentMediaType") == "application/octet-stream":
                        field["format"] = "binary"
            _declare_headers(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


HEADERS = {
    "X-Request-ID": "The request's id (yours when you sent a valid one); quote it to support.",
    "RateLimit-Policy": 'The key\'s limits, e.g. `"minute";q=40;w=60, "day";q=10000;w=86400` '
    "(IETF RateLimit fields; absent for a key without limits).",
    "RateLimit": 'What is left, e.g. `"minute";r=37;t=12` (r: left, t: seconds to reset).',
}


def _declare_headers(schema: dict) -> None:
    """Every answer's headers in the document: the request id, the RateLimit fields on /v1,
    and `Retry-After` on a 429."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                declared = {
                    name: {"description": words, "schema": {"type": "string"}}
                    for name, words in HEADERS.items()
                    if name == "X-Request-ID" or path.startswith("/v1")
                }
                if status == "429":
                    declared["Retry-After"] = {
                        "description": "Seconds until the limit resets.",
                        "schema": {"type": "integer"},
                    }
                response.setdefault("headers", {}).update(declared)


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
        version=API_VERSION,
        servers=[{"url": "/", "description": "This server: the address this document came from."}],
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=problem_responses(400, 413, 422, 500),
        docs_url=None,
        redoc_url=None,
        # Operation ids are the route functions' names (`create_quote`, `list_batches`), so a
        # client generated from the document reads well.
        generate_unique_id_function=lambda route: route.name,
    )
    app.add_middleware(RetirementHeaders)
    app.add_middleware(RateLimitFields)  # inside Idempotency: a replay is not a new admission
    app.add_middleware(Idempotency)  # inside BodyLimit: the body it buffers is bounded
    app.add_middleware(
        BodyLimit, cap=lambda method, path: body_cap(settings or get_settings(), method, path)
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _docs(app)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(WorkerHeader, enabled=lambda: (settings or get_settings()).expose_worker)
    app.add_middleware(RequestId)  # outermost: every answer, 413s and 500s too, has an id
    return app


app = create_app()
