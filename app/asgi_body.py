"""Reading a request body once in an ASGI middleware and handing it on to the app."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message, Receive


async def read_body(receive: Receive, check: Callable[[int], None] | None = None) -> bytes:
    """The whole body; `check` sees the size so far after each chunk (and may raise)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if check is not None:
            check(size)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the connection's own messages (its disconnect)."""
    delivered = False

    async def again() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
