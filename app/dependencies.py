"""Request dependencies: the process's services, the expert's key for writes (and reads when
configured), and path ids that fit every database."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as FastApiPath
from fastapi.security import APIKeyHeader

from app.problems import AuthError
from app.services import Services
from diamond_model.access import check_access_code

MAX_ID = 2**31 - 1  # ids are 32-bit integers in every supported database
Id = Annotated[int, FastApiPath(ge=1, le=MAX_ID)]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The expert's key.")


async def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


async def require_key(svc: Svc, key: Annotated[str | None, Depends(api_key_header)]) -> None:
    """Writes need the expert's key: 401 when absent, 403 when wrong (constant-time compare)."""
    if not key:
        raise AuthError(401, "This operation needs the expert's key in the X-API-Key header.")
    if not check_access_code(svc.settings, key):
        raise AuthError(403, "The X-API-Key is not valid for this server.")


async def read_access(svc: Svc, key: Annotated[str | None, Depends(api_key_header)]) -> None:
    """Reads and quotes are open unless DIAMOND_API_REQUIRE_KEY_FOR_READS is set."""
    if svc.settings.api_require_key_for_reads:
        await require_key(svc, key)


WRITE = [Depends(require_key)]
READ = [Depends(read_access)]
