"""Liveness (never touches the database), readiness (does, at most once a second), and a
summary from memory. A champion whose artefact was refused makes both readiness and the summary
say degraded, with the reason, while the last good model serves."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.dependencies import Svc
from app.schemas import Health, Liveness, Readiness

router = APIRouter(tags=["service"])


@router.get("/health/live", response_model=Liveness, summary="Is the process up")
async def get_liveness() -> Liveness:
    return Liveness(status="alive")


@router.get("/health/ready", response_model=Readiness, summary="Can it reach its database")
async def get_readiness(svc: Svc) -> Readiness:
    ok, detail = await run_in_threadpool(svc.readiness.check)
    refused = svc.cache.refused
    if refused is not None:  # still ready: the last good model serves; the operator must know
        detail = f"degraded: {refused} ({detail})"
    return Readiness(ready=ok, detail=detail)


@router.get("/health", response_model=Health, summary="Serving model and database, from memory")
async def get_health(svc: Svc) -> Health:
    current = svc.cache.current
    database = svc.readiness.ok if svc.cache.healthy else False
    loaded = current is not None
    if not loaded:
        detail = "no model loaded: train one (`python -m diamond_model init`)"
    elif svc.cache.refused is not None:
        detail = svc.cache.refused
    elif not svc.cache.healthy:
        detail = f"serving the loaded model v{current.version}; the database is unreachable"
    else:
        detail = f"serving v{current.version}"
    return Health(
        status="ok" if loaded and svc.cache.healthy else "degraded",
        champion_version=current.version if current else None,
        model_loaded=loaded,
        database=database,
        detail=detail,
    )
