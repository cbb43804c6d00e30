"""Request dependencies: the process's services, who is calling (client key, scopes, limits), and
path ids that fit every database.

A router declares one `access(scope, read_scope, open_methods)` dependency: every call needs a
valid, unrevoked key of this server with the scope its method needs (`admin` grants all). Only
when the operator sets `DIAMOND_API_OPEN_READS=true` are the open methods (quotes, the model, the
market index) served without a key; stored appraisals and writes never are. A keyed caller is
held to its requests-per-minute limit here and to its stones-per-day limit by the route (which
knows how many stones); usage is counted on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as FastApiPath
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader

from app.problems import AuthError, RateLimited
from app.services import Services
from diamond_model.enums import Scope
from diamond_model.serving.keys import ClientKey

MAX_ID = 2**31 - 1  # ids are 32-bit integers in every supported database
Id = Annotated[int, FastApiPath(ge=1, le=MAX_ID)]

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="A client key (`python -m diamond_model keys create NAME --scopes ...`).",
)


async def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


@dataclass
class Caller:
    """Who is calling: their key (None without one) and address; stones priced so far."""

    client: ClientKey | None
    address: str
    stones: int = 0

    @property
    def who(self) -> str:
        """How changes made through this call are recorded in the audit list."""
        return f"API key {self.client.name}" if self.client else "API (no key)"


TOO_MANY_WRONG_KEYS = (
    "Too many wrong keys from this address: the next is checked in {wait} s, and each further "
    "wrong key doubles the wait. Valid keys are not affected."
)
READS = frozenset({"GET", "HEAD"})
QUOTING = frozenset({"GET", "HEAD", "POST"})

SCOPE_WORDS = {
    Scope.QUOTE: "prices, comparables and the market level",
    Scope.DATA_WRITE: "uploads and withdrawals",
    Scope.MODELS_WRITE: "retraining, promotion and rollback",
    Scope.ADMIN: "every client's quote records (the operator)",
    Scope.DATA_READ: "stored appraisals and batches",
}


def _needs_a_key(scope: Scope | None) -> str:
    with_scope = f" with the '{scope}' scope ({SCOPE_WORDS[scope]})" if scope else ""
    return (
        f"This needs a client key{with_scope} in the X-API-Key header. The operator creates one "
        f"with `python -m diamond_model keys create NAME --scopes {scope or Scope.QUOTE}` (the key "
        "is shown once)."
    )


async def _identify(request: Request, svc: Services, key: str | None) -> ClientKey:
    """The key's record, or an AuthError (429 once a client keeps sending wrong keys)."""
    client = svc.ring.check(key) if key else None
    address = request.client.host if request.client else "unknown"
    if client is None and key:
        # An address that keeps sending wrong keys waits, growing, before another is checked;
        # a valid key (known to the ring) is never slowed, whoever shares its address.
        if (wait := await run_in_threadpool(svc.attempts.waiting, address)) is not None:
            raise RateLimited(TOO_MANY_WRONG_KEYS.format(wait=wait), wait)
        client = await run_in_threadpool(svc.keys.verify, key)  # created after the last refresh
    if client is None:
        wait = await run_in_threadpool(svc.attempts.failed, address)
        if wait is not None:
            raise RateLimited(TOO_MANY_WRONG_KEYS.format(wait=wait), wait)
        raise AuthError(401, "The X-API-Key is not a key of this server. Check it, or ask for one.")
    if not client.active:
        raise AuthError(
            403,
            f"The key '{client.name}' was revoked on {client.revoked_at:%Y-%m-%d}; "
            "ask for a new one.",
        )
    return client


async def admit(svc: Services, caller: Caller, stones: int, requests: int = 0) -> None:
    """Hold a keyed caller to its limits for this request and its stones (429 when over)."""
    client = caller.client
    if client is None:
        caller.stones += stones
        return
    refusal = (
        svc.meter.admit(client, requests, stones)
        if svc.meter.covered(client, requests, stones)
        else await run_in_threadpool(svc.meter.admit, client, requests, stones)
    )
    if refusal is not None:
        raise RateLimited(refusal.detail, refusal.retry_after)
    caller.stones += stones


IMPLIED = {Scope.DATA_READ: {Scope.DATA_WRITE}}  # a scope that also grants another


def _grants(scopes: frozenset[Scope], needed: Scope) -> bool:
    return needed in scopes or Scope.ADMIN in scopes or bool(IMPLIED.get(needed, set()) & scopes)


def access(
    scope: Scope | None,
    read_scope: Scope | None = None,
    open_methods: frozenset[str] = frozenset(),
) -> Callable[..., AsyncIterator[Caller]]:
    """The dependency a router declares: authentication, scope, the per-minute limit, and usage
    counted on the way out. `scope` is what writes need, `read_scope` what GET and HEAD need
    (None: any valid key); `admin` grants every scope. Every call needs a key, except
    `open_methods` when the operator has switched `api_open_reads` on."""

    async def check(
        request: Request, key: Annotated[str | None, Depends(api_key_header)]
    ) -> AsyncIterator[Caller]:
        svc: Services = request.app.state.services  # not a dependency: one less per request
        address = request.client.host if request.client else "unknown"
        needed = read_scope if request.method in READS else scope
        if not key:
            if request.method in open_methods and svc.settings.api_open_reads:
                caller = Caller(None, address)
                request.state.caller = caller
                yield caller
                return
            raise AuthError(401, _needs_a_key(needed))
        client = await _identify(request, svc, key)
        if needed is not None and not _grants(client.scopes, needed):
            raise AuthError(
                403,
                f"The key '{client.name}' may do: {', '.join(sorted(client.scopes))}. This needs "
                f"'{needed}' ({SCOPE_WORDS[needed]}).",
            )
        caller = Caller(client, address)
        request.state.caller = caller
        try:
            await admit(svc, caller, 0, requests=1)
        except RateLimited:
            svc.meter.record(client, refused=True)
            raise
        try:
            yield caller
        except RateLimited:  # its stones were over the day's limit: refused, not an error
            svc.meter.record(client, refused=True)
            raise
        except Exception:  # no stone was priced for it: none is charged
            svc.meter.record(client, error=True)
            raise
        svc.meter.record(client, caller.stones)

    return check


async def current_caller(request: Request) -> Caller:
    """The caller the router's `access` dependency identified."""
    return request.state.caller


CallerDep = Annotated[Caller, Depends(current_caller)]
