"""`Idempotency-Key` on every POST: a retried request gets the first answer (the same quote id,
the same status) and is neither run nor charged again.

Per client key, for 24 hours: the same Idempotency-Key with the same request replays the stored
answer (`Idempotent-Replayed: true`); with another request it is a 422 problem; while the first is
still being answered, a duplicate waits for it (up to `WAIT_SECONDS`, then 409). Only answers the
server finished are kept: a 5xx, or a refusal before the route ran (401, 403, 429), is not, so a
retry runs again. The claim is a primary-key insert, exact across workers on both databases.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time

from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi_body import read_body, replay
from app.problems import problem_response
from diamond_model.storage import idempotency
from diamond_model.storage.store import Store

HEADER = b"idempotency-key"
VALID = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces
WAIT_SECONDS = 60.0
NOT_KEPT = {401, 403, 429}


class Idempotency:
    """ASGI middleware; inside `BodyLimit`, so the body it reads is already bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        if scope["type"] != "http" or scope["method"] != "POST" or HEADER not in headers:
            await self.app(scope, receive, send)
            return
        key = headers[HEADER].decode("latin-1")
        if not VALID.fullmatch(key):
            await problem_response(
                422,
                "Invalid input",
                "The Idempotency-Key header must be 1 to 255 printable ASCII characters without "
                "spaces (a UUID is a good choice).",
            )(scope, receive, send)
            return
        api_key = headers.get(b"x-api-key", b"").decode("latin-1")
        if not api_key:  # refused by the route's key check anyway; nothing to remember it by
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        request = hashlib.sha256(
            b"\n".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        store = scope["app"].state.services.store
        owner = idempotency.key_hash(api_key)
        earlier = await run_in_threadpool(idempotency.claim, store, owner, key, request)
        if earlier is None:
            await self._answer_and_remember(scope, replay(body, receive), send, store, owner, key)
            return
        deadline = time.monotonic() + WAIT_SECONDS
        while earlier is not None and earlier.status is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            earlier = await run_in_threadpool(idempotency.recall, store, owner, key)
        if earlier is None:  # the first attempt failed on our side and let go: run this one
            await self.__call__(scope, replay(body, receive), send)
            return
        if earlier.request_hash != request:
            await problem_response(
                422,
                "Invalid input",
                "This Idempotency-Key was already used with a different request in the last 24 "
                "hours. Send a new key for a new request; resend the same request to get its "
                "first answer.",
            )(scope, replay(body, receive), send)
            return
        if earlier.status is None:
            await problem_response(
                409,
                "Request in progress",
                f"The first request with this Idempotency-Key is still being answered after "
                f"{WAIT_SECONDS:.0f} s; retry later with the same key.",
            )(scope, replay(body, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": earlier.status,
                "headers": [
                    (b"content-type", earlier.content_type.encode("latin-1")),
                    (b"content-length", str(len(earlier.body)).encode()),
                    (b"idempotent-replayed", b"true"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": earlier.body})

    async def _answer_and_remember(
        self, scope: Scope, receive: Receive, send: Send, store: Store, owner: str, key: str
    ) -> None:
        status, content_type, parts = 500, "", []

        async def keep(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, keep)
        finally:
            if status >= 500 or status in NOT_KEPT:
                await run_in_threadpool(idempotency.forget, store, owner, key)
            else:
                await run_in_threadpool(
                    idempotency.remember, store, owner, key, status, b"".join(parts), content_type
                )
