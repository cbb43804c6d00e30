"""Quotes (one stone, a JSON list, a CSV file), recorded quotes, comparables, the market index and
the serving model: everything a client with the `quote` scope may ask."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from app.dependencies import QUOTING, Caller, Svc, access, admit
from app.problems import problem_responses
from app.schemas import (
    BatchIn,
    BatchItem,
    BatchOut,
    Clarity,
    Color,
    ComparableOut,
    Cut,
    FieldError,
    MarketIndexOut,
    QuoteOut,
    QuoteRecordOut,
    ServingModelOut,
    Stone,
)
from app.schemas.quotes import BatchLiveOut, MarketPeriodOut
from app.services import Services
from diamond_model.comparables import CARAT_WINDOW, closest
from diamond_model.csvfile import read_csv
from diamond_model.kinds import Scope
from diamond_model.metrics import plain_words
from diamond_model.model import PricingModel
from diamond_model.quote import QuoteBatch, quote_frame, quote_stone
from diamond_model.schema import RANGES
from diamond_model.store import FileTooLargeError

# The router's access check, also taken as a parameter by routes that need the caller: FastAPI
# solves a dependency once per request, so the route receives the caller the check produced.
quoting = access(Scope.QUOTE, QUOTING)
QuoteCaller = Annotated[Caller, Depends(quoting)]

router = APIRouter(
    prefix="/v1",
    tags=["quotes"],
    dependencies=[Depends(quoting)],
    # 404: a pinned model_version that does not exist; 503: no model trained yet.
    responses=problem_responses(401, 403, 404, 429, 503),
)

PinnedVersion = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31 - 1,
        description="Price with this model version instead of the champion (to reproduce an "
        "earlier quote; see its model_version).",
    ),
]


async def _model(svc: Services, version: int | None) -> tuple[int, PricingModel]:
    if version is None:
        return svc.champion()
    return version, await run_in_threadpool(svc.cache.version, version)


def _record(
    svc: Services, caller: QuoteCaller, version: int, market: str, stone: dict, out: QuoteOut
) -> str | None:
    if not svc.settings.record_quotes:
        return None
    [quote_id] = svc.record(
        caller.client, version, market, [(stone, out.model_dump(exclude={"quote_id"}))]
    )
    return quote_id


@router.post(
    "/quotes",
    response_model=QuoteOut,
    summary="Price one stone, with its range, confidence and explanation",
)
async def quote(
    stone: Stone, svc: Svc, caller: QuoteCaller, model_version: PinnedVersion = None
) -> Response:
    # The hot path: memory only (the champion, the key and its allowance are in this process),
    # about a millisecond of CPU, so it runs on the event loop without a thread hop.
    await admit(svc, caller, 1)
    version, model = await _model(svc, model_version)
    row = stone.as_row()
    result = quote_stone(model, row, svc.settings.interval_level, explain_prices=True)
    out = QuoteOut.of(result, version)
    out.quote_id = _record(svc, caller, version, result.market.period, row, out)
    return Response(out.model_dump_json(), media_type="application/json")


@router.get(
    "/quotes/{quote_id}",
    response_model=QuoteRecordOut,
    summary="A quote given earlier, as it was given",
    responses=problem_responses(404),
)
async def get_quote(quote_id: str, svc: Svc) -> QuoteRecordOut:
    record = await run_in_threadpool(svc.quotes.get, quote_id)
    if record is None:
        raise HTTPException(
            404,
            f"There is no quote {quote_id[:40]} (quotes are kept for "
            f"{svc.settings.quote_retention_days} days).",
        )
    return QuoteRecordOut(
        quote_id=str(record["id"]),
        created_at=record["created_at"],
        model_version=int(record["model_version"]),
        market_period=str(record["market_period"]),
        stone=record["stone"],
        quote=QuoteOut(quote_id=str(record["id"]), **record["answer"]),
    )


def _batch_out(batch: QuoteBatch, version: int, lines: list[int] | None) -> BatchOut:
    """Results in input order: `position` is 0-based, `line` the file line for a CSV."""
    results = [
        BatchItem(position=k, line=None if lines is None else lines[k]) for k in range(batch.n_rows)
    ]
    for position, quote in batch:
        results[position].quote = QuoteOut.of(quote, version)
    line_to_position = {
        line: k for k, line in enumerate(lines if lines is not None else range(1, batch.n_rows + 1))
    }
    for row in batch.rejections.itertuples(index=False):
        results[line_to_position[int(row.line)]].errors.append(
            FieldError(field=str(row.column) or "row", value=str(row.value), reason=str(row.reason))
        )
    return BatchOut(
        model_version=version,
        priced=len(batch.quotes),
        failed=batch.n_rows - len(batch.quotes),
        results=results,
    )


def _record_batch(
    svc: Services, caller: QuoteCaller, out: BatchOut, stones: list[dict], market: str
) -> None:
    priced = [item for item in out.results if item.quote is not None]
    ids = svc.record(
        caller.client,
        out.model_version,
        market,
        [(stones[item.position], item.quote.model_dump(exclude={"quote_id"})) for item in priced],
    )
    for item, quote_id in zip(priced, ids, strict=True):
        item.quote.quote_id = quote_id


@router.post(
    "/quotes/batch",
    response_model=BatchOut,
    summary="Price many stones given as JSON; a bad stone gets its errors in place",
)
async def quote_batch(
    body: BatchIn, svc: Svc, caller: QuoteCaller, model_version: PinnedVersion = None
) -> BatchOut:
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
    await admit(svc, caller, len(body.stones))
    version, model = await _model(svc, model_version)
    stones = [s.model_dump() for s in body.stones]

    def price() -> BatchOut:
        frame = pd.DataFrame(stones)
        batch = quote_frame(model, frame, svc.settings.interval_level, body.explain)
        out = _batch_out(batch, version, None)
        _record_batch(svc, caller, out, stones, model.market.latest_label)
        return out

    return await run_in_threadpool(price)


@router.post(
    "/quotes/batch/csv",
    response_model=BatchOut,
    summary="Price every row of a CSV file (carat, cut, color, clarity, ...)",
    responses=problem_responses(413, 422),
)
async def quote_csv(
    svc: Svc,
    caller: QuoteCaller,
    file: Annotated[UploadFile, File(description="CSV with a header row; UTF-8, `,` or `;`.")],
    explain: Annotated[bool, Query(description="Include explanations.")] = False,
    model_version: PinnedVersion = None,
) -> BatchOut:
    limit = svc.settings.max_batch_stones
    data = await file.read()
    # Bound the work before parsing: a line per stone, at most the batch limit (plus the header).
    if data.count(b"\n") > limit + 1 + data.count(b"\n\n"):
        raise FileTooLargeError(
            f"The file has more than {limit:,} rows; at most {limit:,} stones per request."
        )
    raw = await run_in_threadpool(read_csv, data)
    if len(raw.frame) > limit:
        raise FileTooLargeError(
            f"The file has {len(raw.frame):,} stones; at most {limit:,} per request."
        )
    await admit(svc, caller, len(raw.frame))  # charged before the work is done
    version, model = await _model(svc, model_version)

    def price() -> BatchOut:
        batch = quote_frame(
            model, raw.frame, svc.settings.interval_level, explain, raw.lines, raw.decimal_comma
        )
        out = _batch_out(batch, version, raw.lines.tolist())
        stones = raw.frame.to_dict("records")
        _record_batch(svc, caller, out, stones, model.market.latest_label)
        for line, reason in zip(raw.malformed["line"], raw.malformed["reason"], strict=True):
            out.results.append(
                BatchItem(
                    position=-1, line=int(line), errors=[FieldError(field="row", reason=reason)]
                )
            )
            out.failed += 1
        out.results.sort(key=lambda item: item.line or 0)
        for k, item in enumerate(out.results):
            item.position = k
        return out

    return await run_in_threadpool(price)


@router.get(
    "/comparables",
    response_model=list[ComparableOut],
    summary="Stored appraisals closest to a stone",
)
async def comparables(
    svc: Svc,
    carat: Annotated[
        float, Query(ge=RANGES["carat"].low, le=RANGES["carat"].high, description="Weight (ct).")
    ],
    cut: Annotated[Cut, Query(description="Cut grade.")],
    color: Annotated[Color, Query(description="Colour grade.")],
    clarity: Annotated[Clarity, Query(description="Clarity grade.")],
    limit: Annotated[int, Query(ge=1, le=50)] = 8,
) -> list[ComparableOut]:
    stone = {"carat": carat, "cut": cut.value, "color": color.value, "clarity": clarity.value}

    def find() -> pd.DataFrame:
        return closest(svc.store.comparables(stone, CARAT_WINDOW, limit), stone, limit)

    nearby = await run_in_threadpool(find)
    nearby = nearby.assign(appraised_on=nearby["appraised_on"].dt.strftime("%Y-%m-%d"))
    records = nearby.astype({"cut": str, "color": str, "clarity": str}).replace({np.nan: None})
    return [ComparableOut.model_validate(row) for row in records.to_dict("records")]


@router.get(
    "/market-index",
    response_model=MarketIndexOut,
    summary="The market level over time, and the one quotes use",
)
async def market_index(svc: Svc) -> MarketIndexOut:
    version, model = svc.champion()
    frame = model.market.frame()
    return MarketIndexOut(
        model_version=version,
        quotes_use=model.market.latest_label,
        periods=[
            MarketPeriodOut(
                period=r.period,
                level_percent=round(r.level_pct, 3),
                low_percent=round(r.low_pct, 3),
                high_percent=round(r.high_pct, 3),
                appraisals=int(r.appraisals),
            )
            for r in frame.itertuples(index=False)
        ],
    )


@router.get(
    "/model",
    response_model=ServingModelOut,
    summary="The serving model, its accuracy in words, and its reading of the latest batches",
)
async def serving_model(svc: Svc, request: Request) -> ServingModelOut:
    version, model = svc.champion()

    def read() -> ServingModelOut:
        info = svc.registry.info(version)
        live = svc.latest_readings(5)
        return ServingModelOut(
            version=version,
            created_at=info.created_at,
            train_rows=info.train_rows,
            metrics=info.metrics,
            summary=plain_words(info.metrics),
            market_period=model.market.latest_label,
            latest_batches=[
                BatchLiveOut(
                    batch_id=int(b.id),
                    uploaded_at=b.uploaded_at,
                    appraisals=int(b.live["n"]),
                    mape=round(b.live["mape"], 3),
                    coverage=round(b.live["coverage"], 3),
                    level_percent=round(b.live["level_pct"], 3),
                    verdict=str(b.live["verdict"]),
                )
                for b in live.itertuples(index=False)
            ],
        )

    return await run_in_threadpool(read)
