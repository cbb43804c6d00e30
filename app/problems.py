"""Every error as an RFC 9457 problem document: one JSON shape naming the field, what was wrong
and what is accepted."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.schemas import FieldError, Problem
from app.services import NoModelError
from diamond_model.pipeline import RetrainInProgressError
from diamond_model.quote import InvalidStoneError
from diamond_model.registry import RegistryError
from diamond_model.store import AlreadyIngestedError, FileTooLargeError
from diamond_model.validation import UnusableFileError

PROBLEM = "application/problem+json"


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "content": {PROBLEM: {}}} for code in codes}


def problem_response(
    status: int, title: str, detail: str, errors: list[FieldError] | None = None
) -> JSONResponse:
    """A problem document response (media type application/problem+json)."""
    body = Problem(
        type=f"/problems/{title.lower().replace(' ', '-')}",
        title=title,
        status=status,
        detail=detail,
        errors=errors or [],
    )
    return JSONResponse(body.model_dump(), status_code=status, media_type=PROBLEM)


class AuthError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = []
        for item in error.errors():
            location = [
                str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")
            ]
            raw = item.get("input")
            value = None if raw is None or isinstance(raw, dict | list) else str(raw)[:200]
            reason = item.get("msg", "invalid")
            if item.get("type") == "enum" and item.get("ctx", {}).get("expected"):
                reason = f"not an accepted value; use one of {item['ctx']['expected']}"
            errors.append(
                FieldError(field=".".join(location) or "body", value=value, reason=reason)
            )
        detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
        return problem_response(422, "Invalid input", detail, errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed"}
        detail = str(error.detail)
        if detail in ("Not Found", "Method Not Allowed"):
            detail = f"No such endpoint or method: {request.method} {request.url.path}. See /docs."
        return problem_response(error.status_code, titles.get(error.status_code, "Error"), detail)

    mapping: list[tuple[type[Exception], int, str]] = [
        (NoModelError, 503, "No model"),
        (UnusableFileError, 422, "Unusable file"),
        (AlreadyIngestedError, 409, "Already ingested"),
        (FileTooLargeError, 413, "Request too large"),
        (RetrainInProgressError, 409, "Retrain in progress"),
    ]
    for kind, status, title in mapping:

        async def handler(_: Request, error: Exception, status: int = status, title: str = title):
            return problem_response(status, title, str(error))

        app.add_exception_handler(kind, handler)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, error: AuthError) -> JSONResponse:
        title = "Missing API key" if error.status == 401 else "Invalid API key"
        response = problem_response(error.status, title, error.detail)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "APIKey"
        return response

    @app.exception_handler(InvalidStoneError)
    async def invalid_stone(_: Request, error: InvalidStoneError) -> JSONResponse:
        errors = [FieldError(field=f or "stone", value=v, reason=r) for f, v, r in error.problems]
        return problem_response(422, "Invalid input", str(error), errors)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        return problem_response(
            500, "Server error", f"Unexpected {type(error).__name__}; it was logged."
        )

    @app.exception_handler(RegistryError)
    async def registry_error(_: Request, error: RegistryError) -> JSONResponse:
        return problem_response(404, "Not found", str(error))
