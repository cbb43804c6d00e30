"""Who did what: the audit list. Reading it needs a key with `data:write` (it names people)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from app.dependencies import Svc, access
from app.problems import problem_responses
from app.schemas import AuditOut
from diamond_model.enums import Scope
from diamond_model.storage import audit

router = APIRouter(
    prefix="/v1",
    tags=["data"],
    dependencies=[Depends(access(Scope.DATA_WRITE, Scope.DATA_WRITE))],
    responses=problem_responses(401, 403, 429, 503),
)


@router.get(
    "/audit",
    response_model=list[AuditOut],
    summary="Who uploaded, corrected, withdrew, promoted or rolled back what, newest first",
)
async def list_audit_entries(
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[AuditOut]:
    def read() -> list[AuditOut]:
        frame = audit.entries(svc.store.engine, limit, offset)
        return [AuditOut(**row) for row in frame.to_dict("records")]

    return await run_in_threadpool(read)
