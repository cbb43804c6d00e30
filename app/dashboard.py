"""Streamlit glue: per-process cached services, cached data reads, the expert's access gate."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from app.services import Services
from diamond_model.access import check_access_code, current_access_code
from diamond_model.analysis import holdout_predictions
from diamond_model.settings import Settings

EXPERT_KEY = "expert_unlocked"
ROUNDING = {"mape": 2, "mae": 0, "rmse": 0, "r2": 4, "coverage": 1}


@st.cache_resource(show_spinner=False)
def _services(database_url: str, instance_dir: str) -> Services:
    """One Services per database per server process (model cache, engine pool)."""
    code = _secret_code()
    overrides = {} if code is None else {"access_code": code}
    return Services.create(
        Settings(database_url=database_url, instance_dir=instance_dir, **overrides)
    )


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


def data_version(svc: Services) -> tuple[int, int]:
    """Changes whenever appraisals are added: (latest batch id, stored appraisals)."""
    return svc.store.max_batch_id(), svc.store.count_appraisals()


@st.cache_data(show_spinner=False, max_entries=4)
def _appraisals(database_url: str, instance_dir: str, version: tuple[int, int]) -> pd.DataFrame:
    return _services(database_url, instance_dir).store.appraisals()


def appraisals(svc: Services) -> pd.DataFrame:
    """All stored appraisals, read once per data version (not on every rerun)."""
    return _appraisals(
        svc.settings.resolved_database_url, str(svc.settings.instance_dir), data_version(svc)
    )


def money(value: float) -> str:
    return f"${value:,.0f}"


def expert_gate(svc: Services) -> bool:
    """True when this browser session has entered the expert's access code."""
    if st.session_state.get(EXPERT_KEY):
        with st.sidebar:
            st.success("Expert mode: uploads, retraining and promotions are enabled.")
            if st.button("Lock expert mode"):
                st.session_state[EXPERT_KEY] = False
                st.rerun()
        return True
    if current_access_code(svc.settings) is None:
        st.info(
            "No expert access code is set yet. Run `make run` (or `python -m diamond_model init`) "
            "once, or set DIAMOND_ACCESS_CODE, to enable uploads and retraining."
        )
        return False
    with st.form("expert_code", clear_on_submit=True):
        code = st.text_input(
            "Expert access code",
            type="password",
            help="Printed by `make run` the first time; also in instance/access_code.",
        )
        if st.form_submit_button("Unlock expert mode"):
            if check_access_code(svc.settings, code):
                st.session_state[EXPERT_KEY] = True
                st.rerun()
            st.error("That access code is not right. Staff can still view the history below.")
    return False


@st.cache_data(show_spinner="Scoring the held-out appraisals…", max_entries=4)
def _holdout(
    database_url: str, instance_dir: str, version: int, data: tuple[int, int]
) -> pd.DataFrame:
    svc = _services(database_url, instance_dir)
    model = svc.registry.load(version)
    return holdout_predictions(
        model, svc.store.appraisals(), svc.settings.holdout_fraction, svc.settings.interval_level
    )


def holdout(svc: Services, version: int) -> pd.DataFrame:
    """The champion's held-out predictions, computed once per (model version, data version)."""
    settings = svc.settings
    return _holdout(
        settings.resolved_database_url, str(settings.instance_dir), version, data_version(svc)
    )
