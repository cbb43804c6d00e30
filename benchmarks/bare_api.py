"""The bare FastAPI app the product's API is measured against: it validates the same stone
body with the same pydantic model and answers at once, and has a health route.

Its answer is a real quote recorded from the product (`quote_answer.json`, same size and shape),
so both apps send and the client reads the same bytes: what the ratio measures is the product's
own work, not the length of its answer.

`uvicorn benchmarks.bare_api:app`
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Response

from app.schemas import Stone

app = FastAPI()
ANSWER = (Path(__file__).with_name("quote_answer.json")).read_bytes()


@app.post("/v1/quotes")
async def quote(stone: Stone) -> Response:
    return Response(ANSWER, media_type="application/json")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
