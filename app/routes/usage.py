"""A client's own usage and limits: what billing reads, per hour."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from app.dependencies import CallerDep, Svc, access
from app.problems import AuthError, problem_responses
from app.schemas import UsageOut
from app.schemas.models import UsageHour

router = APIRouter(
    prefix="/v1",
    tags=["usage"],
    dependencies=[Depends(access(None))],
    responses=problem_responses(401, 403, 429),
)


@router.get("/usage", response_model=UsageOut, summary="Your key's usage per hour, and its limits")
async def get_usage(
    svc: Svc,
    caller: CallerDep,
    since: Annotated[datetime | None, Query(description="From this UTC time (ISO 8601).")] = None,
) -> UsageOut:
    client = caller.client
    if client is None:  # access() demands a key here; this keeps type checkers content
        raise AuthError(401, "Send your key in the X-API-Key header to see its usage.")

    def read() -> UsageOut:
        svc.meter.flush()
        left = {w.name: w.left for w in svc.meter.remaining(client)}
        hours = svc.keys.usage(client.name, since.replace(tzinfo=None) if since else None)
        return UsageOut(
            key=client.name,
            scopes=sorted(client.scopes),
            stones_per_day=client.stones_per_day,
            requests_per_minute=client.requests_per_minute,
            hours=[UsageHour(**row) for row in hours.to_dict("records")],
            stones_left_today=left.get("day"),
            requests_left_this_minute=left.get("minute"),
        )

    return await run_in_threadpool(read)
