"""The bare FastAPI app the product's API is measured against: it validates the same stone
body with the same pydantic model and answers at once, and has a health route.

`uvicorn benchmarks.bare_api:app`
"""

from __future__ import annotations

from fastapi import FastAPI, Response

from app.schemas import Stone

app = FastAPI()
ANSWER = b'{"price": 4576.44, "currency": "USD"}'


@app.post("/v1/quotes")
async def quote(stone: Stone) -> Response:
    return Response(ANSWER, media_type="application/json")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
