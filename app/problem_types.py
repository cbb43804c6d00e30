"""What each problem document's `type` names: one page per kind of problem, served at
`/problems/{slug}` (and an index at `/problems`), so the URI in a problem document leads to words
an integrator can act on.

The `type` is absolute (RFC 9457 recommends it): this server's own address, as the request that
got the problem reached it, then `/problems/{slug}`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from app import request_id


@dataclass(frozen=True)
class ProblemType:
    title: str
    statuses: tuple[int, ...]
    means: str
    to_do: str

    @property
    def slug(self) -> str:
        return self.title.lower().replace(" ", "-")


TYPES = [
    ProblemType(
        "Invalid input",
        (422,),
        "The request was read, but a field is missing, has the wrong type or is outside what a "
        "stone can be (a grade not on its scale, a carat outside 0.2–5.01, a header of the "
        "wrong shape, an Idempotency-Key reused with another body).",
        "Read `errors`: each names the `field`, the `value` sent and the `reason`, with what is "
        "accepted. Correct those fields and send again.",
    ),
    ProblemType(
        "Unusable file",
        (422,),
        "An uploaded file cannot be read as a table of stones: not text, no header row, or none "
        "of the columns this API needs.",
        "Save the sheet as CSV (comma or semicolon separated) with a header row naming carat, "
        "cut, color, clarity (and price for appraisals); the detail says what was found.",
    ),
    ProblemType(
        "Already ingested",
        (409,),
        "This exact file was stored before, as the batch the detail names; storing it again "
        "would count its stones twice.",
        "Nothing to do if it was meant once. To replace that batch, withdraw it first.",
    ),
    ProblemType(
        "Request too large",
        (413,),
        "The body is larger than this route accepts, or a batch has more stones than allowed.",
        "Split the work into smaller requests; the detail gives the limit.",
    ),
    ProblemType(
        "Retrain in progress",
        (409,),
        "A retrain is already running; only one runs at a time.",
        "Wait for it (`GET /v1/training-runs`) and start another only if still needed.",
    ),
    ProblemType(
        "Request in progress",
        (409,),
        "The first request with this Idempotency-Key is still being answered.",
        "Retry later with the same key: you will get the first request's answer.",
    ),
    ProblemType(
        "Not found",
        (404,),
        "No such record, endpoint or method — or a record that belongs to another key (quote "
        "records are read only by the key that asked for them).",
        "Check the id and the path (see /docs), and that you use the key that made the quote.",
    ),
    ProblemType(
        "Method not allowed",
        (405,),
        "The path exists but not with this method.",
        "See /docs for the methods each path takes.",
    ),
    ProblemType(
        "Model refused",
        (409,),
        "A model version's stored artefact failed its integrity check and will not be loaded.",
        "Ask the operator: the version has to be retrained or restored from a good backup.",
    ),
    ProblemType(
        "Refused by the gate",
        (409,),
        "The version did not beat the serving model on the same evaluation, so it is not "
        "promoted without a reason.",
        'Promote it with `{"override": "why"}` if you mean to; the reason is kept in the audit.',
    ),
    ProblemType(
        "No model",
        (503,),
        "No model has been trained yet, so nothing can be priced.",
        "Ask the operator to run `python -m diamond_model init` (or upload appraisals).",
    ),
    ProblemType(
        "Missing or unknown key",
        (401,),
        "The call carried no X-API-Key, or one this server does not know.",
        "Send your key in the X-API-Key header. The operator creates keys with `python -m "
        "diamond_model keys create NAME --scopes quote`. Repeated wrong keys from one address "
        "are answered 429 for a growing while.",
    ),
    ProblemType(
        "Not allowed",
        (403,),
        "The key is valid but revoked, or lacks the scope this call needs.",
        "The detail names the scope needed; ask the operator for a key with it.",
    ),
    ProblemType(
        "Too many requests",
        (429,),
        "A limit of the key was reached (requests per minute, stones per day), or this address "
        "sent too many wrong keys in a row.",
        "Wait the seconds in `Retry-After`. The `RateLimit` header on every answer shows what is "
        "left, and `GET /v1/usage` the day's stones.",
    ),
    ProblemType(
        "Database unavailable",
        (503,),
        "The database cannot be reached just now. Quotes still work.",
        "Retry after the seconds in `Retry-After`, with the same Idempotency-Key for a POST.",
    ),
    ProblemType(
        "Storage full",
        (507,),
        "The server's disk is full, so nothing new can be stored.",
        "Retry later; the operator has been told by the health check.",
    ),
    ProblemType(
        "Storage read-only",
        (503,),
        "The database is read-only (maintenance or a disk fault), so nothing can be written.",
        "Retry later; reads and quotes still work.",
    ),
    ProblemType(
        "Retired",
        (410,),
        "The route was retired on its Sunset date, after answering with `Deprecation` and "
        "`Sunset` headers for at least 90 days.",
        "Use the route in the `Link: rel=successor-version` header; CHANGELOG.md says what "
        "changed.",
    ),
    ProblemType(
        "Server error",
        (500,),
        "Something failed on the server's side; it was logged with the `error_id`.",
        "Retry (with the same Idempotency-Key for a POST). If it persists, report the "
        "`error_id` and the `request_id`.",
    ),
    ProblemType(
        "Error",
        (400,),
        "The request could not be understood (for example a malformed header).",
        "Check the request against /docs.",
    ),
]
BY_TITLE = {problem.title: problem for problem in TYPES}
BY_SLUG = {problem.slug: problem for problem in TYPES}


def type_uri(title: str) -> str:
    """The absolute URI of the page describing the problem with this title."""
    problem = BY_TITLE.get(title, BY_TITLE["Error"])
    return f"{request_id.base_url()}/problems/{problem.slug}"


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .2em}} dt{{font-weight:600;margin-top:1rem}}</style></head>
<body>{body}<p><a href="/problems">Every problem</a> · <a href="/docs">API docs</a></p></body>
</html>"""


def _words(text: str) -> str:
    """Escaped text with `code` spans."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))


def _page(problem: ProblemType) -> str:
    statuses = ", ".join(str(s) for s in problem.statuses)
    body = (
        f"<h1>{html.escape(problem.title)}</h1><p>HTTP status {statuses}.</p>"
        f"<h2>What it means</h2><p>{_words(problem.means)}</p>"
        f"<h2>What to do</h2><p>{_words(problem.to_do)}</p>"
        "<p>Every problem document also carries a <code>request_id</code>; quote it to support.</p>"
    )
    return PAGE.format(title=html.escape(problem.title), body=body)


router = APIRouter(include_in_schema=False)


@router.get("/problems", response_class=HTMLResponse)
async def list_problem_types() -> HTMLResponse:
    items = "".join(
        f'<dt><a href="/problems/{p.slug}">{html.escape(p.title)}</a> ({p.statuses[0]})</dt>'
        f"<dd>{_words(p.means)}</dd>"
        for p in TYPES
    )
    body = f"<h1>Problems this API reports</h1><dl>{items}</dl>"
    return HTMLResponse(PAGE.format(title="Problems", body=body))


@router.get("/problems/{slug}", response_class=HTMLResponse)
async def get_problem_type(slug: str) -> HTMLResponse:
    problem = BY_SLUG.get(slug)
    if problem is None:
        raise HTTPException(404, f"No problem type '{slug[:60]}'. Every type: /problems.")
    return HTMLResponse(_page(problem))
