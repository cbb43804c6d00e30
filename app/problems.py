"""Every error as an RFC 9457 problem document: one JSON shape naming the field, what was wrong
and what is accepted, sent as application/problem+json and declared so in the OpenAPI document."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from app import problem_types, request_id
from app.retirement import RouteRetired
from app.schemas import FieldError, Problem
from app.schemas.common import printable
from app.services import NoModelError
from diamond_model.data.reading import UnusableFileError
from diamond_model.learning.outcomes import RetrainInProgressError
from diamond_model.learning.review import CorrectionError, UnknownAppraisalError
from diamond_model.learning.versions import ArtefactRefusedError, GateOverrideError, RegistryError
from diamond_model.pricing.quote import InvalidStoneError
from diamond_model.serving.keys import ClientKeyError
from diamond_model.storage.backup import BackupError
from diamond_model.storage.engine import FAULT_WORDS, StorageFault, storage_fault
from diamond_model.storage.store import AlreadyIngestedError, FileTooLargeError, UnknownBatchError

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {
            "model": Problem,
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


def problem_response(
    status: int,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    error_id: str | None = None,
) -> JSONResponse:
    """A problem document response (media type application/problem+json)."""
    body = Problem(
        type=problem_types.type_uri(title),
        title=title,
        status=status,
        detail=detail,
        errors=errors or [],
        error_id=error_id,
        request_id=request_id.current(),
    )
    content = body.model_dump(exclude=None if error_id else {"error_id"})
    return JSONResponse(content, status_code=status, media_type=PROBLEM, headers=headers)


class AuthError(Exception):
    """401 (no or unknown key) or 403 (revoked, or without the scope)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


class RateLimited(Exception):
    """429 with Retry-After."""

    def __init__(self, detail: str, retry_after: int) -> None:
        self.detail, self.retry_after = detail, retry_after


def _field_errors(error: RequestValidationError) -> list[FieldError]:
    errors = []
    for item in error.errors():
        kind = item.get("type", "")
        location = [
            str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")
        ]
        raw = item.get("input")
        value = None if isinstance(raw, bytes | bytearray) else printable(raw)
        reason = printable(item.get("msg", "invalid"), 500) or "invalid"
        if kind == "value_error":  # our own validators' words, without pydantic's prefix
            reason = reason.removeprefix("Value error, ")
        if kind == "enum" and item.get("ctx", {}).get("expected"):
            reason = f"not an accepted value: use one of {item['ctx']['expected']}"
        elif kind in ("float_type", "int_type") and isinstance(raw, bool | str):
            reason = "must be a number (true/false and text are not numbers)"
        if kind in ("json_invalid", "model_attributes_type", "dict_type", "missing") and (
            not location or location[0].isdigit()
        ):
            location = []
            reason = (
                "the body must be a JSON object: send Content-Type: application/json and, for "
                'example, {"carat": 1.1, "cut": "Ideal", "color": "H", "clarity": "SI2"}'
            )
            value = None
        errors.append(FieldError(field=".".join(location) or "body", value=value, reason=reason))
    return errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = _field_errors(error)
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
        return problem_response(422, "Invalid input", detail, errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}
        detail = str(error.detail)
        if detail in ("Not Found", "Method Not Allowed"):
            detail = f"No such endpoint or method: {request.method} {request.url.path}. See /docs."
        return problem_response(
            error.status_code, titles.get(error.status_code, "Error"), detail, headers=error.headers
        )

    mapping: list[tuple[type[Exception], int, str]] = [
        (NoModelError, 503, "No model"),
        (UnusableFileError, 422, "Unusable file"),
        (ClientKeyError, 422, "Invalid input"),
        (BackupError, 422, "Invalid input"),
        (AlreadyIngestedError, 409, "Already ingested"),
        (FileTooLargeError, 413, "Request too large"),
        (RetrainInProgressError, 409, "Retrain in progress"),
        (UnknownBatchError, 404, "Not found"),
        (UnknownAppraisalError, 404, "Not found"),
        (CorrectionError, 422, "Invalid input"),
        (ArtefactRefusedError, 409, "Model refused"),
        (GateOverrideError, 409, "Refused by the gate"),
        (RegistryError, 404, "Not found"),
    ]
    for kind, status, title in mapping:

        async def handler(_: Request, error: Exception, status: int = status, title: str = title):
            return problem_response(status, title, str(error))

        app.add_exception_handler(kind, handler)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, error: AuthError) -> JSONResponse:
        title = "Missing or unknown key" if error.status == 401 else "Not allowed"
        headers = {"WWW-Authenticate": "APIKey"} if error.status == 401 else None
        return problem_response(error.status, title, error.detail, headers=headers)

    @app.exception_handler(RateLimited)
    async def rate_limited(_: Request, error: RateLimited) -> JSONResponse:
        return problem_response(
            429, "Too many requests", error.detail, headers={"Retry-After": str(error.retry_after)}
        )

    @app.exception_handler(RouteRetired)
    async def retired(_: Request, error: RouteRetired) -> JSONResponse:
        return problem_response(410, "Retired", error.detail)

    @app.exception_handler(InvalidStoneError)
    async def invalid_stone(_: Request, error: InvalidStoneError) -> JSONResponse:
        errors = [
            FieldError(field=f or "stone", value=printable(v), reason=r)
            for f, v, r in error.problems
        ]
        return problem_response(422, "Invalid input", str(error), errors)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, error: SQLAlchemyError) -> JSONResponse:
        if (fault := storage_fault(error)) is not None:
            return _storage_problem(fault)
        return problem_response(
            503,
            "Database unavailable",
            "The database cannot be reached just now; quotes still work. Try again shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(OSError)
    async def os_error(request: Request, error: OSError) -> JSONResponse:
        if (fault := storage_fault(error)) is not None:
            return _storage_problem(fault)
        return server_error(request, error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return server_error(request, error)


def _storage_problem(fault: StorageFault) -> JSONResponse:
    """Full storage is 507 (the request may work once space is freed); read-only is 503."""
    if fault is StorageFault.FULL:
        return problem_response(507, "Storage full", FAULT_WORDS[fault])
    return problem_response(503, "Storage read-only", FAULT_WORDS[fault])


def server_error(request: Request, error: BaseException) -> JSONResponse:
    """500 with an id to find the log line (which has the traceback); nothing of the code."""
    error_id = uuid.uuid4().hex[:16]
    log.error("error %s: %s %s failed", error_id, request.method, request.url.path, exc_info=error)
    return problem_response(
        500,
        "Server error",
        f"Something went wrong on our side; it was logged as error {error_id}. Quote it if you "
        "report this.",
        error_id=error_id,
        # A 500 is sent by Starlette's outermost layer, past the request-id middleware's header.
        headers={"X-Request-ID": request_id.current() or ""},
    )
