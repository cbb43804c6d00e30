"""Quotes (one stone, a JSON list, a CSV file), recorded quotes, comparables, the market index and
the serving model: everything a client with the `quote` scope may ask.

About 420 lines because every route carries its OpenAPI examples and problem answers beside it;
the work itself is in `diamond_model`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from app.dependencies import QUOTING, Caller, Svc, access, admit
from app.problems import AuthError, problem_responses
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
from diamond_model.data.reading import read_table
from diamond_model.data.schema import RANGES
from diamond_model.enums import Scope
from diamond_model.learning.metrics import plain_words
from diamond_model.learning.versions import Champion
from diamond_model.pricing.comparables import CARAT_WINDOW, closest
from diamond_model.pricing.model import PricingModel
from diamond_model.pricing.quote import QuoteBatch, quote_frame, quote_stone
from diamond_model.storage.store import FileTooLargeError

# The router's access check, also taken as a parameter by routes that need the caller: FastAPI
# solves a dependency once per request, so the route receives the caller the check produced.
quoting = access(Scope.QUOTE, Scope.QUOTE, QUOTING)
QuoteCaller = Annotated[Caller, Depends(quoting)]

router = APIRouter(
    prefix="/v1",
    tags=["quotes"],
    dependencies=[Depends(quoting)],
    # 404: a pinned model_version that does not exist; 409: its artefact is refused; 503: no
    # model trained yet.
    responses=problem_responses(401, 403, 404, 409, 429, 503),
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


async def _model(svc: Services, version: int | None) -> Champion:
    if version is None:
        return svc.champion()
    return Champion(version, await run_in_threadpool(svc.cache.version, version))


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
async def create_quote(
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
async def get_quote(quote_id: str, svc: Svc, caller: QuoteCaller) -> QuoteRecordOut:
    record = await run_in_threadpool(svc.quotes.get, quote_id)
    if record is not None and not _may_read(caller, record):
        record = None  # another client's quote: answered exactly as one that does not exist
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


def _may_read(caller: Caller, record: dict[str, object]) -> bool:
    """A quote record belongs to the key that asked for it; the operator's `admin` key reads
    all; a call without a key reads none."""
    if caller.client is None:
        return False
    return Scope.ADMIN in caller.client.scopes or record["key_id"] == caller.client.id


# Stones priced per thread hop. A chunk's longest call into LightGBM or shap holds the GIL for a
# tenth of what a 10,000-stone batch would (measured: 1,000 explained stones in ~0.3 s), so the
# event loop, liveness and uvicorn's health ping get the interpreter between chunks.
CHUNK_STONES = 1_000


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


@dataclass(frozen=True)
class _Work:
    """What a batch is priced with: the same for every chunk."""

    svc: Services
    caller: Caller
    version: int
    model: PricingModel
    explain: bool
    decimal_comma: bool = False


def _price_chunk(
    work: _Work, frame: pd.DataFrame, stones: list[dict], lines: np.ndarray | None
) -> list[BatchItem]:
    """Price and record one chunk (in a worker thread); positions are within the chunk."""
    settings = work.svc.settings
    batch = quote_frame(
        work.model, frame, settings.interval_level, work.explain, lines, work.decimal_comma
    )
    out = _batch_out(batch, work.version, None if lines is None else lines.tolist())
    _record_batch(work.svc, work.caller, out, stones, work.model.market.latest_label)
    return out.results


async def _price_in_chunks(
    work: _Work, frame: pd.DataFrame, stones: list[dict], lines: np.ndarray | None = None
) -> BatchOut:
    """Every stone priced off the event loop, `CHUNK_STONES` at a time; the answer is the one
    a single call would give (tested)."""
    results: list[BatchItem] = []
    for start in range(0, len(frame), CHUNK_STONES):
        end = start + CHUNK_STONES
        items = await run_in_threadpool(
            _price_chunk,
            work,
            frame.iloc[start:end],
            stones[start:end],
            None if lines is None else lines[start:end],
        )
        for item in items:
            item.position += start
        results += items
    priced = sum(item.quote is not None for item in results)
    return BatchOut(
        model_version=work.version, priced=priced, failed=len(results) - priced, results=results
    )


def _json(out: BatchOut) -> Response:
    return Response(out.model_dump_json(), media_type="application/json")


def _invalid(kind: str, message: str, location: tuple[str | int, ...] = ()) -> Exception:
    return RequestValidationError(
        [{"loc": ("body", *location), "msg": message, "type": kind, "input": None}]
    )


def read_batch(body: bytes, content_type: str | None, limit: int) -> BatchIn:
    """The batch in `body`, its stones counted before any of them is validated.

    pydantic validating 2,000,000 `{}` stones took 11 s holding the GIL (uvicorn's supervisor
    then killed the worker); the JSON parser reads a body of the largest accepted size (its cap,
    ~4 MB) in under 0.1 s, and counting its list is free. Blocking: run it in a thread.
    """
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise _invalid("model_attributes_type", "the body must be JSON")
    try:
        parsed = json.loads(body)
    except ValueError as error:  # JSONDecodeError, and bytes that are not UTF-8/16/32
        raise _invalid("json_invalid", "JSON decode error") from error
    if not isinstance(parsed, dict):
        raise _invalid("model_attributes_type", "the body must be a JSON object")
    stones = parsed.get("stones")
    if isinstance(stones, list) and len(stones) > limit:
        raise _invalid(
            "too_long", f"at most {limit:,} stones per request; got {len(stones):,}", ("stones",)
        )
    try:
        return BatchIn.model_validate(parsed)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from error


@router.post(
    "/quotes/batch",
    response_model=BatchOut,
    summary="Price many stones given as JSON; a bad stone gets its errors in place",
    # The body is read and counted by the route itself (read_batch), so it is declared here.
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchIn"}}},
            "required": True,
        }
    },
)
async def create_quote_batch(
    request: Request, svc: Svc, caller: QuoteCaller, model_version: PinnedVersion = None
) -> Response:
    raw = await request.body()  # at most the route's cap (app.api.body_cap)
    body = await run_in_threadpool(
        read_batch, raw, request.headers.get("content-type"), svc.settings.max_batch_stones
    )
    del raw
    await admit(svc, caller, len(body.stones))
    version, model = await _model(svc, model_version)
    stones = await run_in_threadpool(lambda: [s.model_dump() for s in body.stones])
    frame = await run_in_threadpool(pd.DataFrame, stones)
    out = await _price_in_chunks(_Work(svc, caller, version, model, body.explain), frame, stones)
    return await run_in_threadpool(_json, out)


@router.post(
    "/quotes/batch/csv",
    response_model=BatchOut,
    summary="Price every row of a CSV file (carat, cut, color, clarity, ...)",
    responses=problem_responses(413, 422),
)
async def create_quote_batch_from_csv(
    svc: Svc,
    caller: QuoteCaller,
    file: Annotated[
        UploadFile,
        File(
            description="CSV with a header row (`,` `;` or tab; UTF-8, UTF-16 or Windows-1252), "
            "or an .xlsx / .ods workbook."
        ),
    ],
    explain: Annotated[bool, Query(description="Include explanations.")] = False,
    model_version: PinnedVersion = None,
    sheet: Annotated[
        str | None,
        Query(max_length=120, description="The workbook's sheet to read (default: the first)."),
    ] = None,
) -> Response:
    limit = svc.settings.max_batch_stones
    data = await file.read()
    # Bound the work before parsing: a line per stone, at most the batch limit (plus the header).
    if data.count(b"\n") > limit + 1 + data.count(b"\n\n"):
        raise FileTooLargeError(
            f"The file has more than {limit:,} rows; at most {limit:,} stones per request."
        )
    raw = await run_in_threadpool(read_table, data, sheet)
    if len(raw.frame) > limit:
        raise FileTooLargeError(
            f"The file has {len(raw.frame):,} stones; at most {limit:,} per request."
        )
    await admit(svc, caller, len(raw.frame))  # charged before the work is done
    version, model = await _model(svc, model_version)
    work = _Work(svc, caller, version, model, explain, raw.decimal_comma)
    stones = await run_in_threadpool(raw.frame.to_dict, "records")
    out = await _price_in_chunks(work, raw.frame, stones, raw.lines)

    def finish() -> Response:
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
        return _json(out)

    return await run_in_threadpool(finish)


@router.get(
    "/comparables",
    response_model=list[ComparableOut],
    summary="Stored appraisals closest to a stone",
    description="Up to `limit` stored appraisals nearest the stone, with their prices. Always "
    "needs a key (stored prices are never open), and each one asked for counts as a stone "
    "against the key's daily limit.",
)
async def list_comparables(
    svc: Svc,
    caller: QuoteCaller,
    carat: Annotated[
        float, Query(ge=RANGES["carat"].low, le=RANGES["carat"].high, description="Weight (ct).")
    ],
    cut: Annotated[Cut, Query(description="Cut grade.")],
    color: Annotated[Color, Query(description="Colour grade.")],
    clarity: Annotated[Clarity, Query(description="Clarity grade.")],
    limit: Annotated[int, Query(ge=1, le=50)] = 8,
) -> list[ComparableOut]:
    if caller.client is None:  # stored prices: never open, even with open reads
        raise AuthError(
            401,
            "Comparables are stored appraisals with their prices, so they need a client key "
            "even where quotes are open: send one in the X-API-Key header (`python -m "
            "diamond_model keys create NAME --scopes quote`).",
        )
    await admit(svc, caller, limit)  # each comparable returned counts as a stone of the day
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
async def get_market_index(svc: Svc) -> MarketIndexOut:
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
async def get_serving_model(svc: Svc, request: Request) -> ServingModelOut:
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
