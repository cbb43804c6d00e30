"""Model versions and training runs. Retraining, promoting and rolling back need a key with
`models:write`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app.dependencies import READS, CallerDep, Id, Svc, access
from app.problems import problem_responses
from app.schemas import ModelOut, PromoteIn, TrainingRunIn, TrainingRunOut
from diamond_model.enums import Scope
from diamond_model.storage.tables import TrainingRun

router = APIRouter(
    prefix="/v1",
    tags=["models"],
    dependencies=[Depends(access(Scope.MODELS_WRITE, None, READS))],
    responses=problem_responses(401, 403, 429, 503, 507),
)


NO_OVERRIDE = PromoteIn()


def _run_out(run: TrainingRun, request: Request) -> TrainingRunOut:
    out = TrainingRunOut.model_validate(run)
    out.url = str(request.url_for("get_training_run", run_id=run.id))
    return out


@router.post(
    "/training-runs",
    response_model=TrainingRunOut,
    status_code=202,
    summary="Start a retrain in the background; poll the run it returns",
    responses=problem_responses(409),
)
async def start_training(
    request: Request, response: Response, svc: Svc, body: TrainingRunIn | None = None
) -> TrainingRunOut:
    def start() -> TrainingRun:
        run_id = svc.start_retrain("api", force=bool(body and body.force))
        return svc.pipeline.run(run_id)

    run = await run_in_threadpool(start)
    response.headers["Location"] = str(request.url_for("get_training_run", run_id=run.id))
    return _run_out(run, request)


@router.get(
    "/training-runs", response_model=list[TrainingRunOut], summary="Every retrain, newest first"
)
async def list_training_runs(request: Request, svc: Svc) -> list[TrainingRunOut]:
    runs = await run_in_threadpool(svc.pipeline.runs)
    return [_run_out(run, request) for run in runs]


@router.get(
    "/training-runs/{run_id}",
    response_model=TrainingRunOut,
    summary="One retrain: running, or what became of it and why",
    responses=problem_responses(404),
)
async def get_training_run(run_id: Id, request: Request, svc: Svc) -> TrainingRunOut:
    run = await run_in_threadpool(svc.pipeline.run, run_id)
    if run is None:
        raise HTTPException(404, f"There is no training run {run_id}.")
    return _run_out(run, request)


@router.get(
    "/models", response_model=list[ModelOut], summary="Every model version and its accuracy"
)
async def list_models(svc: Svc) -> list[ModelOut]:
    versions = await run_in_threadpool(svc.registry.versions)
    return [ModelOut.model_validate(info) for info in versions]


@router.post(
    "/models/{version}/promote",
    response_model=ModelOut,
    summary="Serve a version (any stored one: an older one rolls back)",
    responses=problem_responses(404, 409),
)
async def promote_model(
    version: Id, svc: Svc, caller: CallerDep, body: Annotated[PromoteIn, Body()] = NO_OVERRIDE
) -> ModelOut:
    override = body.override
    info = await run_in_threadpool(
        svc.registry.promote, version, "promoted through the API", override, caller.who
    )
    return ModelOut.model_validate(info)


@router.post(
    "/models/rollback",
    response_model=ModelOut,
    summary="Return to the champion before the current one",
    responses=problem_responses(404),
)
async def roll_back_model(svc: Svc, caller: CallerDep) -> ModelOut:
    def back() -> ModelOut:
        version = svc.registry.rollback(by=caller.who)
        return ModelOut.model_validate(svc.registry.info(version))

    return await run_in_threadpool(back)
