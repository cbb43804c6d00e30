"""The /v1 routes. A route body reads the request, makes one or two calls into `diamond_model`,
and shapes the answer with the models of `app.schemas`."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import FastAPI, File, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from app.dependencies import MAX_ID, READ, WRITE, Id, Svc
from app.problems import problem_responses
from app.schemas import (
    AppraisalOut,
    AppraisalPage,
    BatchDetail,
    BatchIn,
    BatchInfo,
    BatchItem,
    BatchOut,
    Clarity,
    Color,
    ComparableOut,
    Cut,
    FieldError,
    Health,
    IngestOut,
    ModelOut,
    QuoteOut,
    RejectionOut,
    Stone,
    TrainingRunIn,
    TrainingRunOut,
)
from diamond_model.comparables import closest
from diamond_model.metrics import plain_words
from diamond_model.pipeline import RetrainInProgressError
from diamond_model.quote import QuoteBatch, quote_frame
from diamond_model.registry import VersionInfo
from diamond_model.store import FileTooLargeError
from diamond_model.tables import Batch, TrainingRun
from diamond_model.validation import read_csv


def _batch_info(batch: Batch) -> BatchInfo:
    return BatchInfo(
        id=batch.id,
        filename=batch.filename,
        sha256=batch.sha256,
        uploaded_by=batch.uploaded_by,
        uploaded_at=batch.uploaded_at,
        rows_total=batch.rows_total,
        rows_accepted=batch.rows_accepted,
        rows_rejected=batch.rows_rejected,
        ignored_columns=[c for c in batch.ignored_columns.split(",") if c],
    )


def _rejections(frame: pd.DataFrame) -> list[RejectionOut]:
    return [
        RejectionOut(
            line=int(r.line), column=str(r.column), value=str(r.value), reason=str(r.reason)
        )
        for r in frame.itertuples(index=False)
    ]


def _model_out(info: VersionInfo) -> ModelOut:
    return ModelOut(
        version=info.version,
        created_at=info.created_at,
        status=info.status,
        is_champion=info.is_champion,
        algorithm=info.algorithm,
        train_rows=info.train_rows,
        holdout_rows=info.holdout_rows,
        metrics=info.metrics,
        summary=plain_words(info.metrics),
    )


def _run_out(run: TrainingRun, request: Request) -> TrainingRunOut:
    return TrainingRunOut(
        id=run.id,
        status=run.status,
        trigger=run.trigger,
        started_at=run.started_at,
        finished_at=run.finished_at,
        promoted=run.promoted,
        message=run.message,
        candidate_version=run.candidate_version,
        champion_version=run.champion_version,
        candidate_metrics=run.candidate_metrics,
        champion_metrics=run.champion_metrics,
        url=str(request.url_for("get_training_run", run_id=run.id)),
    )


def _batch_out(batch: QuoteBatch, version: int, lines: list[int]) -> BatchOut:
    """Results in input order; `index` is the 0-based position, or the file line for a CSV."""
    results = [BatchItem(index=line) for line in lines]
    for position, quote in batch:
        results[position].quote = QuoteOut.of(quote, version)
    position_of = {line: k for k, line in enumerate(lines)}
    for row in batch.rejections.itertuples(index=False):
        results[position_of[int(row.line)]].errors.append(
            FieldError(field=str(row.column) or "row", value=str(row.value), reason=str(row.reason))
        )
    return BatchOut(
        model_version=version,
        priced=len(batch.quotes),
        failed=len(results) - len(batch.quotes),
        results=results,
    )


# ---- routes ------------------------------------------------------------------------------------


def install_routes(app: FastAPI) -> None:  # noqa: C901 - one place that lists every route
    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness and readiness")
    def health(svc: Svc) -> Health:
        try:
            database = svc.store.ping()
            version = svc.registry.champion_version()
            loaded = svc.cache.get() is not None
        except Exception:  # a health check reports failure, it does not raise it
            database, version, loaded = False, None, False
        return Health(
            status="ok" if database and loaded else "degraded",
            database=database,
            champion_version=version,
            model_loaded=loaded,
        )

    @app.get(
        "/v1/model",
        response_model=ModelOut,
        tags=["models"],
        dependencies=READ,
        summary="The serving model and its accuracy in plain words",
        responses=problem_responses(401, 403, 503),
    )
    def model(svc: Svc) -> ModelOut:
        version, _ = svc.champion()
        return _model_out(svc.registry.info(version))

    @app.post(
        "/v1/quotes",
        response_model=QuoteOut,
        tags=["quotes"],
        dependencies=READ,
        summary="Price one stone, with its range and explanation",
        responses=problem_responses(401, 403, 503),
    )
    async def quote(stone: Stone, svc: Svc) -> Response:
        # The hot path: ~1.5 ms of CPU, so it runs on the event loop (no thread hop) and returns
        # ready JSON (the model is already validated; FastAPI would encode it a second time).
        version, result = svc.quote(stone.as_row(), explain=True)
        return Response(
            QuoteOut.of(result, version).model_dump_json(), media_type="application/json"
        )

    @app.post(
        "/v1/quotes/batch",
        response_model=BatchOut,
        tags=["quotes"],
        dependencies=READ,
        summary="Price up to 10,000 stones given as JSON; bad stones get errors in place",
        responses=problem_responses(401, 403, 503),
    )
    def quote_batch(body: BatchIn, svc: Svc) -> BatchOut:
        limit = svc.settings.max_batch_stones
        if len(body.stones) > limit:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "stones"),
                        "msg": f"at most {limit:,} stones per request; got {len(body.stones):,}",
                        "type": "too_long",
                        "input": None,
                    }
                ]
            )
        version, model = svc.champion()
        frame = pd.DataFrame([s.model_dump() for s in body.stones])
        positions = list(range(len(frame)))
        batch = quote_frame(model, frame, svc.settings.interval_level, body.explain, positions)
        return _batch_out(batch, version, positions)

    @app.post(
        "/v1/quotes/batch/csv",
        response_model=BatchOut,
        tags=["quotes"],
        dependencies=READ,
        summary="Price every row of a CSV file (carat, cut, color, clarity, ...)",
        responses=problem_responses(401, 403, 503),
    )
    async def quote_csv(
        svc: Svc,
        file: Annotated[UploadFile, File(description="CSV with a header row; UTF-8, `,` or `;`.")],
        explain: Annotated[bool, Query(description="Include explanations.")] = False,
    ) -> BatchOut:
        raw = read_csv(await file.read())
        if len(raw.frame) > svc.settings.max_batch_stones:
            raise FileTooLargeError(
                f"The file has {len(raw.frame):,} stones; at most "
                f"{svc.settings.max_batch_stones:,} per request."
            )
        version, model = svc.champion()
        batch = quote_frame(
            model, raw.frame, svc.settings.interval_level, explain, raw.lines, raw.separator == ";"
        )
        out = _batch_out(batch, version, raw.lines.tolist())
        for line, reason in zip(raw.malformed["line"], raw.malformed["reason"], strict=True):
            out.results.append(
                BatchItem(index=int(line), errors=[FieldError(field="row", reason=reason)])
            )
            out.failed += 1
        out.results.sort(key=lambda item: item.index)
        return out

    @app.get(
        "/v1/comparables",
        response_model=list[ComparableOut],
        tags=["quotes"],
        dependencies=READ,
        summary="Stored appraisals closest to a stone",
        responses=problem_responses(401, 403),
    )
    def comparables(
        svc: Svc,
        carat: Annotated[float, Query(gt=0, le=30, description="Weight (ct).")],
        cut: Annotated[Cut, Query(description="Cut grade.")],
        color: Annotated[Color, Query(description="Color grade.")],
        clarity: Annotated[Clarity, Query(description="Clarity grade.")],
        limit: Annotated[int, Query(ge=1, le=50)] = 8,
    ) -> list[ComparableOut]:
        stone = {"carat": carat, "cut": cut.value, "color": color.value, "clarity": clarity.value}
        nearby = closest(svc.store.appraisals_near(carat), stone, limit)
        return [
            ComparableOut(**{k: v for k, v in row.items() if k in ComparableOut.model_fields})
            for row in nearby.astype({"cut": str, "color": str, "clarity": str}).to_dict("records")
        ]

    @app.post(
        "/v1/appraisals",
        response_model=IngestOut,
        status_code=201,
        tags=["data"],
        dependencies=WRITE,
        summary="Upload a CSV of appraisals (validated, stored, retrained)",
        responses=problem_responses(401, 403, 409),
    )
    async def upload(
        request: Request,
        svc: Svc,
        file: Annotated[
            UploadFile,
            File(
                description="CSV with carat,cut,color,clarity,depth,table,price,x,y,z (any order)."
            ),
        ],
        retrain: Annotated[
            bool | None, Query(description="Retrain after storing (default: the server's setting).")
        ] = None,
        uploaded_by: Annotated[str, Query(max_length=120)] = "api",
    ) -> IngestOut:
        data = await file.read()
        report = svc.store.ingest(data, file.filename or "upload.csv", uploaded_by)
        run_url, note = None, None
        should = svc.settings.auto_retrain if retrain is None else retrain
        if should and report.rows_accepted:
            try:
                run_id = svc.start_retrain(f"batch {report.batch_id}")
                run_url = str(request.url_for("get_training_run", run_id=run_id))
            except RetrainInProgressError as error:
                note = f"stored; no retrain started: {error}"
        return IngestOut(
            batch=_batch_info(svc.store.batch(report.batch_id)),
            rejections=_rejections(report.rejections),
            batch_url=str(request.url_for("get_batch", batch_id=report.batch_id)),
            training_run_url=run_url,
            training_note=note,
        )

    @app.get(
        "/v1/batches",
        response_model=list[BatchInfo],
        tags=["data"],
        dependencies=READ,
        responses=problem_responses(401, 403),
    )
    def batches(svc: Svc) -> list[BatchInfo]:
        frame = svc.store.batches()
        return [_batch_info(Batch(**row)) for row in frame.to_dict("records")]

    @app.get(
        "/v1/batches/{batch_id}",
        response_model=BatchDetail,
        tags=["data"],
        dependencies=READ,
        responses=problem_responses(401, 403, 404),
    )
    def get_batch(batch_id: Id, svc: Svc) -> BatchDetail:
        batch = svc.store.batch(batch_id)
        if batch is None:
            raise HTTPException(404, f"There is no batch {batch_id}; GET /v1/batches lists them.")
        rejected = svc.store.rejected_rows(batch_id)
        return BatchDetail(**_batch_info(batch).model_dump(), rejections=_rejections(rejected))

    @app.get(
        "/v1/appraisals",
        response_model=AppraisalPage,
        tags=["data"],
        dependencies=READ,
        summary="Stored appraisals, paginated, filterable by batch and grades",
        responses=problem_responses(401, 403),
    )
    def appraisals(
        svc: Svc,
        batch_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        cut: Cut | None = None,
        color: Color | None = None,
        clarity: Clarity | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> AppraisalPage:
        grades = {
            k: v.value for k, v in (("cut", cut), ("color", color), ("clarity", clarity)) if v
        }
        total = svc.store.count_appraisals(batch_id, grades)
        page = svc.store.appraisals(batch_id=batch_id, grades=grades, limit=limit, offset=offset)
        items = page.astype({"cut": str, "color": str, "clarity": str}).to_dict("records")
        return AppraisalPage(
            total=total, limit=limit, offset=offset, items=[AppraisalOut(**item) for item in items]
        )

    @app.post(
        "/v1/training-runs",
        response_model=TrainingRunOut,
        status_code=202,
        tags=["models"],
        dependencies=WRITE,
        summary="Start a retrain in the background",
        responses=problem_responses(401, 403, 409),
    )
    def start_training(
        request: Request, response: Response, svc: Svc, body: TrainingRunIn | None = None
    ) -> TrainingRunOut:
        run_id = svc.start_retrain("api", force=bool(body and body.force))
        run = svc.pipeline.run(run_id)
        response.headers["Location"] = str(request.url_for("get_training_run", run_id=run_id))
        return _run_out(run, request)

    @app.get(
        "/v1/training-runs",
        response_model=list[TrainingRunOut],
        tags=["models"],
        dependencies=READ,
        responses=problem_responses(401, 403),
    )
    def training_runs(request: Request, svc: Svc) -> list[TrainingRunOut]:
        return [_run_out(run, request) for run in svc.pipeline.runs()]

    @app.get(
        "/v1/training-runs/{run_id}",
        response_model=TrainingRunOut,
        tags=["models"],
        dependencies=READ,
        responses=problem_responses(401, 403, 404),
    )
    def get_training_run(run_id: Id, request: Request, svc: Svc) -> TrainingRunOut:
        run = svc.pipeline.run(run_id)
        if run is None:
            raise HTTPException(404, f"There is no training run {run_id}.")
        return _run_out(run, request)

    @app.get(
        "/v1/models",
        response_model=list[ModelOut],
        tags=["models"],
        dependencies=READ,
        responses=problem_responses(401, 403),
    )
    def models(svc: Svc) -> list[ModelOut]:
        return [_model_out(info) for info in svc.registry.versions()]

    @app.post(
        "/v1/models/{version}/promote",
        response_model=ModelOut,
        tags=["models"],
        dependencies=WRITE,
        summary="Make a version the champion (rollback = an older one)",
        responses=problem_responses(401, 403, 404),
    )
    def promote(version: Id, svc: Svc) -> ModelOut:
        svc.registry.promote(version, note="promoted through the API")
        return _model_out(svc.registry.info(version))
