"""How a route is retired (CHANGELOG.md, "Deprecation policy"): announced, then answered with
`Deprecation`, `Sunset` and `Link` headers for at least 90 days, then 410 Gone.

A route declares it with one dependency::

    @router.get("/v1/old", deprecated=True,
                dependencies=[retiring(date(2027, 1, 4), date(2027, 4, 5), "/v1/new")])

`deprecated=True` marks it in the OpenAPI document; the dependency adds the headers (RFC 9745's
`Deprecation: @<epoch seconds>`, RFC 8594's `Sunset: <HTTP date>`, a `successor-version` link
and a `deprecation` link to the changelog) and, from the sunset date on, answers 410.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIN_NOTICE = timedelta(days=90)
STATE_KEY = "retirement_headers"


class RouteRetired(Exception):
    """410: the route's sunset date has passed."""

    def __init__(self, detail: str) -> None:
        self.detail = detail


def retirement_headers(deprecated_on: date, sunset_on: date, successor: str) -> dict[str, str]:
    start = calendar.timegm(deprecated_on.timetuple())
    sunset = datetime(sunset_on.year, sunset_on.month, sunset_on.day, tzinfo=UTC)
    return {
        "Deprecation": f"@{start}",
        "Sunset": format_datetime(sunset, usegmt=True),
        "Link": f'<{successor}>; rel="successor-version", </changelog>; rel="deprecation"',
    }


def retiring(
    deprecated_on: date,
    sunset_on: date,
    successor: str,
    today: Callable[[], date] = lambda: datetime.now(UTC).date(),
) -> Any:
    """The dependency that retires a route (see the module's docstring)."""
    if sunset_on - deprecated_on < MIN_NOTICE:
        raise ValueError(
            f"A route is announced at least {MIN_NOTICE.days} days before its sunset "
            f"({deprecated_on} to {sunset_on} is {(sunset_on - deprecated_on).days})."
        )
    headers = retirement_headers(deprecated_on, sunset_on, successor)

    async def check(request: Request) -> None:
        request.state.retirement_headers = headers
        if today() >= sunset_on:
            raise RouteRetired(
                f"{request.method} {request.url.path} was retired on {sunset_on:%Y-%m-%d} "
                f"(announced {deprecated_on:%Y-%m-%d}). Use {successor} instead; CHANGELOG.md "
                "(/changelog) says what changed."
            )

    return Depends(check)


class RetirementHeaders:
    """ASGI middleware: the headers a retiring route's dependency left, on its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = (scope.get("state") or {}).get(STATE_KEY)
                if headers:
                    message["headers"] = [
                        *message.get("headers", []),
                        *((k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
