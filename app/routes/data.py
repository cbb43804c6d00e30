"""Appraisal data: uploads (previewed, stored, retrained through the core's one path), batches,
withdrawals and stored appraisals. Writing needs a key with `data:write`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app.dependencies import MAX_ID, CallerDep, Id, Svc, access
from app.problems import problem_responses
from app.schemas import (
    AppraisalOut,
    AppraisalPage,
    BatchDetail,
    BatchInfo,
    Clarity,
    Color,
    CorrectionIn,
    CorrectionOut,
    Cut,
    IngestOut,
    PreviewOut,
    RejectionOut,
    SuspectOut,
    WithdrawIn,
)
from app.services import Services
from diamond_model.enums import Scope
from diamond_model.learning.outcomes import Retraining
from diamond_model.learning.preview import BatchPreview
from diamond_model.learning.review import correct, held_appraisals

router = APIRouter(
    prefix="/v1",
    tags=["data"],
    dependencies=[Depends(access(Scope.DATA_WRITE, Scope.DATA_READ))],
    responses=problem_responses(401, 403, 429, 503, 507),
)


def _rejections(frame: object) -> list[RejectionOut]:
    return [
        RejectionOut(
            line=int(r.line), column=str(r.column), value=str(r.value), reason=str(r.reason)
        )
        for r in frame.itertuples(index=False)  # type: ignore[attr-defined]
    ]


def _preview_out(preview: BatchPreview) -> PreviewOut:
    live = preview.live
    return PreviewOut(
        sentences=preview.sentences(),
        read_as=list(preview.result.read_as),
        rows_total=preview.result.total_rows,
        rows_accepted=preview.result.n_accepted,
        rows_rejected=preview.result.n_rejected,
        rows_duplicate=preview.n_duplicates,
        rejections=_rejections(preview.result.rejections),
        set_aside=_rejections(preview.result.notes),
        duplicates=preview.duplicates_table().to_dict("records"),
        level_percent=None if live is None else round(live.level_pct, 3),
        level_se_percent=None if live is None else round(live.level_se_pct, 3),
        verdict=None if live is None else live.verdict,
        suspects=[] if live is None else [SuspectOut(**item) for item in live.suspects],
        drift=[] if preview.drift is None else preview.drift.to_dict("records"),
    )


def _retraining(request: Request, retraining: Retraining | None) -> tuple[str | None, str | None]:
    if retraining is None:
        return None, None
    url = (
        str(request.url_for("get_training_run", run_id=retraining.run_id))
        if retraining.run_id is not None
        else None
    )
    return url, retraining.note


@router.post(
    "/appraisals",
    response_model=IngestOut,
    status_code=201,
    summary="Upload a CSV of appraisals: previewed, stored, and retrained",
    responses=problem_responses(409, 413, 422),
)
async def upload_appraisals(
    request: Request,
    svc: Svc,
    caller: CallerDep,
    file: Annotated[
        UploadFile,
        File(
            description="CSV, or an .xlsx / .ods workbook, with carat,cut,color,clarity,price "
            "(+ depth,table,x,y,z,appraised_on)."
        ),
    ],
    retrain: Annotated[
        bool | None, Query(description="Retrain after storing (default: the server's setting).")
    ] = None,
    dry_run: Annotated[bool, Query(description="Only preview: store nothing.")] = False,
    keep_duplicates: Annotated[
        bool, Query(description="Store rows identical to stored appraisals as further stones.")
    ] = False,
    uploaded_by: Annotated[str, Query(max_length=120)] = "api",
    sheet: Annotated[
        str | None,
        Query(max_length=120, description="The workbook's sheet to read (default: the first)."),
    ] = None,
) -> IngestOut:
    data = await file.read()
    name = file.filename or "upload.csv"

    def ingest() -> IngestOut:
        preview = svc.pipeline.preview(data, name, champion=svc.cache.current, sheet=sheet)
        if dry_run:
            return IngestOut(preview=_preview_out(preview), stored=False)
        submission = svc.pipeline.submit(
            preview,
            f"{uploaded_by} ({caller.client.name})" if caller.client else uploaded_by,
            retrain,
            keep_duplicates,
            start=lambda trigger: svc.start_retrain(trigger),
        )
        url, note = _retraining(request, submission.retraining)
        batch = svc.store.batch(submission.batch_id) if submission.batch_id else None
        return IngestOut(
            preview=_preview_out(preview),
            stored=not submission.already_stored,
            batch=None if batch is None else BatchInfo.model_validate(batch),
            batch_url=None
            if batch is None
            else str(request.url_for("get_batch", batch_id=batch.id)),
            training_run_url=url,
            training_note=note if not submission.already_stored else submission.sentences()[0],
        )

    return await run_in_threadpool(ingest)


@router.get("/batches", response_model=list[BatchInfo], summary="Every uploaded batch")
async def list_batches(svc: Svc) -> list[BatchInfo]:
    rows = await run_in_threadpool(svc.store.batches)
    return [BatchInfo.model_validate(row) for row in rows.to_dict("records")]


@router.get(
    "/batches/{batch_id}",
    response_model=BatchDetail,
    summary="One batch with its rejected rows and set-aside measurements",
    responses=problem_responses(404),
)
async def get_batch(batch_id: Id, svc: Svc) -> BatchDetail:
    def read() -> BatchDetail:
        batch = svc.store.batch(batch_id)
        if batch is None:
            raise HTTPException(404, f"There is no batch {batch_id}; GET /v1/batches lists them.")
        return BatchDetail(
            **BatchInfo.model_validate(batch).model_dump(),
            rejections=_rejections(svc.store.rejected_rows(batch_id)),
            set_aside=_rejections(svc.store.set_aside_rows(batch_id)),
        )

    return await run_in_threadpool(read)


async def _set_withdrawn(
    request: Request,
    svc: Services,
    batch_id: int,
    withdrawn: bool,
    note: str,
    retrain: bool | None,
) -> BatchInfo:
    def change() -> BatchInfo:
        batch, retraining = svc.pipeline.set_withdrawn(
            batch_id,
            withdrawn,
            note,
            retrain,
            start=lambda trigger: svc.start_retrain(trigger),
            by=request.state.caller.who,
        )
        return BatchInfo.model_validate(svc.store.batch(batch.id))

    return await run_in_threadpool(change)


@router.post(
    "/batches/{batch_id}/withdraw",
    response_model=BatchInfo,
    summary="Withdraw a batch: kept for audit, no longer used; a retrain follows",
    responses=problem_responses(404, 409),
)
async def withdraw_batch(
    batch_id: Id,
    request: Request,
    svc: Svc,
    body: WithdrawIn | None = None,
    retrain: Annotated[
        bool | None, Query(description="Retrain afterwards (default: setting).")
    ] = None,
) -> BatchInfo:
    return await _set_withdrawn(request, svc, batch_id, True, body.note if body else "", retrain)


@router.post(
    "/batches/{batch_id}/restore",
    response_model=BatchInfo,
    summary="Use a withdrawn batch again; a retrain follows",
    responses=problem_responses(404, 409),
)
async def restore_batch(
    batch_id: Id,
    request: Request,
    svc: Svc,
    retrain: Annotated[
        bool | None, Query(description="Retrain afterwards (default: setting).")
    ] = None,
) -> BatchInfo:
    return await _set_withdrawn(request, svc, batch_id, False, "", retrain)


@router.get(
    "/appraisals",
    response_model=AppraisalPage,
    summary="Stored appraisals, paginated, filterable by batch and grades",
)
async def list_appraisals(
    svc: Svc,
    batch_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cut: Cut | None = None,
    color: Color | None = None,
    clarity: Clarity | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AppraisalPage:
    grades = {k: v.value for k, v in (("cut", cut), ("color", color), ("clarity", clarity)) if v}

    def read() -> AppraisalPage:
        total = svc.store.count_appraisals(batch_id, grades)
        page = svc.store.appraisals(batch_id=batch_id, grades=grades, limit=limit, offset=offset)
        page = page.assign(appraised_on=page["appraised_on"].dt.strftime("%Y-%m-%d"))
        items = page.astype({"cut": str, "color": str, "clarity": str}).astype(object)
        items = items.where(items.notna(), None).to_dict("records")
        return AppraisalPage(
            total=total, limit=limit, offset=offset, items=[AppraisalOut(**item) for item in items]
        )

    return await run_in_threadpool(read)


def _appraisal_items(page: object) -> list[AppraisalOut]:
    frame = page.assign(  # type: ignore[attr-defined]
        appraised_on=page["appraised_on"].dt.strftime("%Y-%m-%d")  # type: ignore[index]
    )
    items = frame.astype({"cut": str, "color": str, "clarity": str}).astype(object)
    return [AppraisalOut(**item) for item in items.where(items.notna(), None).to_dict("records")]


@router.get(
    "/appraisals/held",
    response_model=list[AppraisalOut],
    summary="Suspect prices held for review (stored, not used until confirmed or corrected)",
)
async def list_held_appraisals(svc: Svc) -> list[AppraisalOut]:
    return await run_in_threadpool(lambda: _appraisal_items(held_appraisals(svc.pipeline)))


@router.patch(
    "/appraisals/{appraisal_id}",
    response_model=CorrectionOut,
    summary="Correct a stored appraisal (or confirm a held one), with a reason; a retrain follows",
    responses=problem_responses(404, 422),
)
async def correct_appraisal(
    appraisal_id: Id, body: CorrectionIn, request: Request, caller: CallerDep, svc: Svc
) -> CorrectionOut:
    changes = {
        name: value.value if hasattr(value, "value") else value
        for name, value in body.model_dump(exclude={"reason", "confirm"}).items()
        if value is not None
    }

    def change() -> CorrectionOut:
        done = correct(
            svc.pipeline,
            appraisal_id,
            changes,
            by=caller.who,
            reason=body.reason,
            confirm=body.confirm,
            start=lambda trigger: svc.start_retrain(trigger),
        )
        url, _ = _retraining(request, done.retraining)
        return CorrectionOut(
            appraisal_id=done.appraisal_id,
            before=done.before,
            after=done.after,
            held=done.held,
            sentences=done.sentences(),
            training_run_url=url,
        )

    return await run_in_threadpool(change)
