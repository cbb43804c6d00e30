"""Streamlit glue: per-process services, reads cached by data and model version, the expert's
access gate, background retrains the pages poll, and the small formatting every page shares."""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import replace
from datetime import date

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError
from streamlit.runtime.pages_manager import PagesManager

from app.services import Services
from app.views import literal
from diamond_model.data.reading import UnusableFileError, sheet_names
from diamond_model.learning.evaluation import learning_curve
from diamond_model.learning.outcomes import RetrainInProgressError
from diamond_model.learning.versions import Champion
from diamond_model.reports.analysis import holdout_predictions, reliance
from diamond_model.reports.figures import NO_TOOLBAR
from diamond_model.reports.monthly_report import monthly_report, report_pdf
from diamond_model.reports.owner import ThreeAnswers, three_answers
from diamond_model.reports.quote_sheet import CustomerQuote, Shop, customer_quote, quote_pdf
from diamond_model.reports.stone_page import StonePage, stone_page
from diamond_model.serving.access import check_access_code, current_access_code
from diamond_model.serving.people import People, Role
from diamond_model.settings import Settings
from diamond_model.storage import counter_quotes
from diamond_model.storage.tables import utcnow

EXPERT_KEY = "expert_unlocked"
SESSION_SOURCE_KEY = "sign_in_source"
RUN_KEY = "retrain_run"
NOTICE_KEY = "notice"
WHO_KEY = "signed_in_as"
ROLE_KEY = "signed_in_role"
REPORT_SECONDS = 10
EXPERT_STATE = (
    "previews",
    "done_files",
    "confirm",
    "confirm_batch",
    RUN_KEY,
    WHO_KEY,
    ROLE_KEY,
    "new_key",
)


def through_navigation() -> None:
    """Run this page inside the entry point's navigation, whatever address it was opened at.

    Streamlit starts a server in its older `pages/`-folder mode and leaves it only when the entry
    point calls `st.navigation`; until someone opens the home page, a page opened by its own
    address (a bookmark, after a restart) would run alone: its menu says "streamlit app" and the
    entry point's settings are skipped. Leaving that mode and rerunning runs the entry point,
    which resolves the same address to the same page.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False)
def _services(database_url: str, instance_dir: str) -> Services:
    """One Services per database per server process (model cache, engine pool, retrains)."""
    code = _secret_code()
    overrides = {} if code is None else {"access_code": code}
    svc = Services.create(
        Settings(database_url=database_url, instance_dir=instance_dir, **overrides)
    )
    svc.keeper.start()  # a retrain left undone by a dead process is redone from here too
    return svc


def _secret_code() -> str | None:
    """The access code from Streamlit secrets (`DIAMOND_ACCESS_CODE` in secrets.toml), if any."""
    if "DIAMOND_ACCESS_CODE" in os.environ:
        return None  # the environment wins; Settings reads it
    try:
        value = st.secrets.get("DIAMOND_ACCESS_CODE")
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return None
    return str(value) if value else None


def services() -> Services:
    """Services for the configured database; settings are re-read so tests can point elsewhere."""
    settings = Settings()
    return _services(settings.resolved_database_url, str(settings.instance_dir))


def _key(svc: Services) -> tuple[str, str]:
    return svc.settings.resolved_database_url, str(svc.settings.instance_dir)


def data_version(svc: Services) -> tuple[int, int]:
    return svc.store.data_version()


@st.cache_data(show_spinner=False, max_entries=4)
def _appraisals(url: str, folder: str, version: tuple[int, int]) -> pd.DataFrame:
    return _services(url, folder).store.appraisals()


def appraisals(svc: Services) -> pd.DataFrame:
    """Active appraisals, read once per data version (not on every rerun)."""
    return _appraisals(*_key(svc), data_version(svc))


@st.cache_data(show_spinner="Pricing the appraisals the model never saw…", max_entries=4)
def _holdout(url: str, folder: str, version: int, data: tuple[int, int]) -> pd.DataFrame:
    svc = _services(url, folder)
    return holdout_predictions(
        svc.registry.exam(version),
        svc.store.appraisals(),
        svc.settings.holdout_fraction,
        svc.settings.interval_level,
    )


@st.cache_data(show_spinner="Comparing the model with the earlier ones…", max_entries=4)
def _answers(
    url: str, folder: str, version: int, data: tuple[int, int], changed: str
) -> ThreeAnswers | None:
    svc = _services(url, folder)
    return three_answers(
        svc.registry, svc.store, svc.settings.interval_level, utcnow(), version=version
    )


def answers(svc: Services, version: int) -> ThreeAnswers | None:
    """The owner's three answers for the serving version (once per data and champion change)."""
    return _answers(*_key(svc), version, data_version(svc), str(svc.registry.champion_stamp()[1]))


@st.cache_data(show_spinner=False, max_entries=8)
def _monthly_report_pdf(
    url: str, folder: str, month: str, data: tuple[int, int], champion: str, moment: int
) -> bytes:
    svc = _services(url, folder)
    report = monthly_report(
        svc.registry,
        svc.store,
        svc.settings.interval_level,
        svc.settings.price_per_1000_stones,
        month,
    )
    return report_pdf(report, shop(svc))


def monthly_report_pdf(svc: Services, month: str) -> bytes:
    """The owner's month as a one-page PDF (the same figures as Home and Business), made again
    when the data or the champion change and at most every 10 seconds (0.6 s each)."""
    stamp = str(svc.registry.champion_stamp()[1])
    return _monthly_report_pdf(
        *_key(svc), month, data_version(svc), stamp, int(time.time() // REPORT_SECONDS)
    )


def holdout(svc: Services, version: int) -> pd.DataFrame:
    return _holdout(*_key(svc), version, data_version(svc))


@st.cache_data(show_spinner="Measuring what the model relies on…", max_entries=4)
def _reliance(url: str, folder: str, version: int, data: tuple[int, int]) -> pd.DataFrame:
    svc = _services(url, folder)
    return reliance(svc.registry.load(version), svc.store.appraisals())


def relies_on(svc: Services, version: int) -> pd.DataFrame:
    return _reliance(*_key(svc), version, data_version(svc))


@st.cache_data(show_spinner="Training on growing shares of the data (once per data version)…")
def _learning(url: str, folder: str, data: tuple[int, int]) -> pd.DataFrame:
    stored = _services(url, folder).store.appraisals()
    sizes = tuple(s for s in (250, 500, 1000, 2000, 3000, 6000, 12000) if s < 0.8 * len(stored))
    return learning_curve(stored, sizes=sizes, n_splits=3)


def learning(svc: Services) -> pd.DataFrame:
    return _learning(*_key(svc), data_version(svc))


# ---- the expert's gate ------------------------------------------------------------------------


def _session_source() -> str:
    """This browser session, as the code form's failures are counted (one bucket per session,
    not one per address: every user on the shop's machine shares 'local')."""
    source = st.session_state.setdefault(SESSION_SOURCE_KEY, uuid.uuid4().hex)
    return f"dashboard:session:{source}"


def _person_source(by_name: bool, name: str) -> str:
    """The person a code is tried for (by name), or the installation's shared code."""
    return f"dashboard:person:{name.strip().casefold()[:80]}" if by_name else "dashboard:shared"


def _wait_words(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def expert_gate(svc: Services) -> bool:
    """True when this browser session has signed in to expert mode (a person's name and code;
    the installation's shared code while nobody has been added by name). Locking clears every
    expert widget and pending preview, so nothing written stays reachable."""
    if st.session_state.get(EXPERT_KEY):
        with st.sidebar:
            st.success(
                f"Expert mode, signed in as {st.session_state.get(WHO_KEY, 'expert')}: uploads, "
                "retraining and promotions are enabled."
            )
            if st.button("Lock expert mode", key="lock"):
                st.session_state[EXPERT_KEY] = False
                for key in EXPERT_STATE:
                    st.session_state.pop(key, None)
                st.session_state["uploads"] = st.session_state.get("uploads", 0) + 1
                st.rerun()
        return True
    people = People(svc.store)
    by_name = people.count() > 0
    if not by_name and current_access_code(svc.settings) is None:
        st.info(
            "Expert mode is not set up on this installation yet: ask whoever installed it for "
            "the access code."
        )
        return False
    session = _session_source()
    if (wait := svc.session_attempts.waiting(session)) is not None:
        st.error(
            f"Too many wrong codes in this window: try again in {_wait_words(wait)} (each "
            "further wrong code doubles the wait)."
        )
        return False
    with st.form("expert_code", clear_on_submit=True):
        name = st.text_input("Your name", key="who", max_chars=80)
        code = st.text_input(
            "Your personal code" if by_name else "Expert access code", type="password", key="code"
        )
        if st.form_submit_button("Unlock expert mode"):
            person = _person_source(by_name, name)
            if (wait := svc.person_attempts.waiting(person)) is not None:
                target = "this name" if by_name else "the access code"
                st.error(
                    f"Too many wrong codes were tried for {target} lately: try again in "
                    f"{_wait_words(wait)}. The code was not checked."
                )
                return False
            signed = _sign_in(svc, people, by_name, name, code)
            if signed is not None:
                st.session_state[EXPERT_KEY] = True
                st.session_state[WHO_KEY], st.session_state[ROLE_KEY] = signed
                st.rerun()
            waits = [svc.session_attempts.failed(session), svc.person_attempts.failed(person)]
            wait = max((w for w in waits if w is not None), default=None)
            if wait is not None:
                st.error(
                    f"Too many wrong codes: try again in {_wait_words(wait)} (each further "
                    "wrong code doubles the wait)."
                )
            else:
                st.error(
                    "That name and code do not match. Staff can still view the history below."
                    if by_name
                    else "That access code is not right. Staff can still view the history below."
                )
    return False


def _sign_in(
    svc: Services, people: People, by_name: bool, name: str, code: str
) -> tuple[str, Role] | None:
    """The name changes are recorded under and the role, or None when the sign-in fails. The
    installation's shared code (while nobody is added by name) is the owner's: whoever installed
    the shop's copy holds it."""
    if by_name:
        person = people.sign_in(name, code)
        return None if person is None else (f"{person.name} ({person.role})", person.role)
    if not check_access_code(svc.settings, code):
        return None
    return f"{name.strip()[:60] or 'expert'} (shared code)", Role.OWNER


def is_owner() -> bool:
    """Whether this session signed in as the owner (who may change client keys)."""
    return bool(st.session_state.get(EXPERT_KEY)) and st.session_state.get(ROLE_KEY) == Role.OWNER


def signed_in_name() -> str:
    """Who is signed in to expert mode in this browser session, or '' for nobody."""
    return str(st.session_state.get(WHO_KEY, ""))


def who() -> str:
    """Who is signed in to expert mode in this browser session (recorded with every change)."""
    return str(st.session_state.get(WHO_KEY, "dashboard"))


# ---- background retrains ----------------------------------------------------------------------


def start_retrain(svc: Services, trigger: str, force: bool = False) -> int | None:
    """Start a retrain in the server process (it survives this page) and remember its run."""
    try:
        run_id = svc.start_retrain(trigger, force)
    except RetrainInProgressError as error:
        st.session_state[NOTICE_KEY] = ("warning", str(error))
        return None
    st.session_state[RUN_KEY] = run_id
    return run_id


def notice(kind: str, text: str) -> None:
    """A message that stays on screen after the rerun that follows an action."""
    st.session_state[NOTICE_KEY] = (kind, text)


def show_notice() -> None:
    kind, text = st.session_state.get(NOTICE_KEY, (None, None))
    if kind:
        getattr(st, kind)(text)


def stone_page_of(svc: Services, champion: Champion, stone: dict[str, object]) -> StonePage:
    """The counter's view of one stone, computed once per stone, model version and level in
    this session (a rerun that only opens an expander or downloads the PDF reuses it)."""
    key = (champion.version, svc.settings.interval_level, tuple(sorted(stone.items())))
    pages = st.session_state.setdefault("_stone_pages", {})
    if key not in pages:
        if len(pages) >= 16:
            pages.pop(next(iter(pages)))
        pages[key] = stone_page(champion, stone, svc.settings.interval_level, svc.store)
    return pages[key]


def shop(svc: Services) -> Shop:
    return Shop.of(svc.settings)


def customer_sheet(
    svc: Services, page: StonePage, on: date, customer: str = "", reference: str = ""
) -> CustomerQuote:
    """What a customer would be handed for this stone (not yet given: no number)."""
    return customer_quote(
        shop(svc),
        page.quote,
        page.stone,
        page.version,
        on,
        svc.settings.quote_valid_days,
        customer=customer,
        customer_reference=reference,
    )


def give_quote(
    svc: Services, page: StonePage, given_by: str, customer: str, reference: str
) -> tuple[int, bytes]:
    """Record a counter quote and return its number and the PDF printed with that number."""
    sheet = customer_sheet(svc, page, date.today(), customer, reference)
    number = counter_quotes.give(
        svc.store,
        given_by,
        sheet.customer,
        sheet.customer_reference,
        page.version,
        page.quote.market.period,
        page.stone,
        sheet.to_record(),
    )
    return number, quote_pdf(replace(sheet, number=number))


def quotes_given(
    svc: Services, number: int | None, customer: str, since: date | None, until: date | None
) -> pd.DataFrame:
    """Counter quotes matching the search, newest first (see `counter_quotes.find`)."""
    return counter_quotes.find(svc.store, number, customer, since, until)


def reprint(svc: Services, number: int) -> bytes | None:
    """The PDF of a quote given earlier, exactly as it was printed; None if there is none."""
    row = counter_quotes.get(svc.store, number)
    return None if row is None else quote_pdf(CustomerQuote.from_record(row.printed))


def reprint_of(svc: Services, number: int) -> bytes:
    """The reprint of a quote given earlier, made once per chosen quote in this session (not on
    every rerun of the page); empty if there is none."""
    kept = st.session_state.get("_reprinted")
    if kept is None or kept[0] != number:
        kept = st.session_state["_reprinted"] = (number, reprint(svc, number) or b"")
    return bytes(kept[1])


# ---- shared formatting ------------------------------------------------------------------------


def chosen_sheet(name: str, data: bytes, key: str) -> str | None:
    """For a workbook of several sheets, a choice of the sheet to read (None: the first, or a
    CSV file; a file that cannot be read is answered where it is read)."""
    try:
        names = sheet_names(data)
    except UnusableFileError:
        return None
    if len(names) <= 1:
        return None
    chosen = st.selectbox(f"Sheet of {literal(name)} to read", names, key=key)
    return None if chosen == names[0] else str(chosen)


def chart(figure: go.Figure, key: str | None = None) -> None:
    """A figure at full width, without Plotly's toolbar (it covered titles, and on phones)."""
    st.plotly_chart(figure, width="stretch", config=NO_TOOLBAR, key=key)
