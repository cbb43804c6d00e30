"""The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) on every keyed answer:

    RateLimit-Policy: "minute";q=40;w=60, "day";q=10000;w=86400
    RateLimit: "minute";r=37;t=12, "day";r=9420;t=40110

`q` is the quota and `w` the window in seconds; `r` what is left and `t` the seconds until the
window resets. A key without limits gets neither field. What is left is what this worker knows
(never more than is really left), so it falls with every answer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from diamond_model.serving.metering import Window

POLICY = b"ratelimit-policy"
FIELD = b"ratelimit"


def fields(windows: list[Window]) -> list[tuple[bytes, bytes]]:
    if not windows:
        return []
    policy = ", ".join(f'"{w.name}";q={w.limit};w={w.length}' for w in windows)
    left = ", ".join(f'"{w.name}";r={w.left};t={w.reset}' for w in windows)
    return [(POLICY, policy.encode()), (FIELD, left.encode())]


class RateLimitFields:
    """ASGI middleware: adds the fields once the route has admitted the call (its stones too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                caller = (scope.get("state") or {}).get("caller")
                client = getattr(caller, "client", None)
                if client is not None:
                    meter = scope["app"].state.services.meter
                    message["headers"] = [
                        *message.get("headers", []),
                        *fields(meter.remaining(client)),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_fields)
