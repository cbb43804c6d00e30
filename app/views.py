"""Tables the dashboard shows, shaped for people: headings in words, dollars formatted, blanks
instead of None, the rows that need attention first. Pages only lay these out."""

from __future__ import annotations

import math
import re

import pandas as pd

from diamond_model.enums import RunStatus
from diamond_model.learning import outcomes
from diamond_model.learning.gate import NOISE_FACTOR
from diamond_model.learning.suspects import Suspect
from diamond_model.learning.versions import VersionInfo
from diamond_model.storage.tables import TrainingRun

LOWER_IS_BETTER = {"mape": True, "median_ape": True, "mae": True, "rmse": True, "r2": False}
FIGURES = {
    "mape": ("Average error (%)", "%"),
    "median_ape": ("Typical error (median)", "%"),
    "mae": ("Average error in dollars", "$"),
    "rmse": ("Root-mean-square error", "$"),
    "r2": ("Share of price variation explained (R²)", ""),
    "coverage": ("Real prices inside the range", "%"),
}


def accuracy(info: VersionInfo) -> tuple[dict[str, float | None], str]:
    """The figures Home, Performance and the desk show for a version, and where they were
    measured: the fixed reference set (every version on the same appraisals), or its own
    held-out appraisals when it has no reference figures."""
    if info.reference_metrics:
        n = int(info.reference_metrics.get("n") or 0)
        return info.reference_metrics, (
            f"Measured on the reference set: {n:,} appraisals held out from the first batch, "
            "the same for every version, each priced by its recipe fitted without them"
        )
    return dict(info.metrics), f"Measured on its {info.holdout_rows:,} held-out appraisals"


def suspects(found: list[Suspect]) -> pd.DataFrame:
    """Suspect prices of a preview, one row each, as the expert reads them."""
    return pd.DataFrame(
        [
            {
                "Line": s.line,
                "Price": f"${s.price:,.0f}",
                "The model's price": f"${s.model_price:,.0f}",
                "Likely cause": s.cause or "no usual slip explains it: check the row",
                "Price without that slip": ""
                if s.likely_price is None
                else f"${s.likely_price:,.0f}",
            }
            for s in found
        ]
    )


def audit(entries: pd.DataFrame) -> pd.DataFrame:
    """The audit list as the owner reads it."""
    return pd.DataFrame(
        {
            "When (UTC)": [at.strftime("%d %b %Y %H:%M") for at in entries["at"]],
            "Who": entries["who"],
            "Did": entries["action"],
            "To": entries["subject"],
            "Details": entries["detail"],
        }
    )


def held(rows: pd.DataFrame, batches: pd.DataFrame) -> pd.DataFrame:
    """Held appraisals beside what the upload's preview said of each (the model's price, the
    likely slip), so the expert can decide without opening the file."""
    said: dict[tuple[int, int], dict[str, object]] = {}
    for batch_id, live in zip(batches["id"], batches["live"], strict=True):
        for suspect in (live or {}).get("suspects", []):
            said[(int(batch_id), int(suspect["line"]))] = suspect
    out = []
    for row in rows.itertuples(index=False):
        found = said.get((int(row.batch_id), int(row.line)), {})
        likely = found.get("likely_price")
        out.append(
            {
                "Appraisal": row.id,
                "Batch": row.batch_id,
                "Line": row.line,
                "Stone": f"{row.carat:.2f} ct {row.cut} {row.color} {row.clarity}",
                "Price": f"${row.price:,.0f}",
                "The model's price": f"${found['model_price']:,.0f}" if found else "",
                "Likely cause": str(found.get("cause") or "") if found else "",
                "Price without that slip": f"${likely:,.0f}" if likely else "",
            }
        )
    return pd.DataFrame(out)


def held_label(row: pd.Series) -> str:
    """One held appraisal in a picker: where it came from, the stone and its price."""
    return (
        f"#{row.name} — batch {row['batch_id']} line {row['line']}: {row['carat']:.2f} ct "
        f"{row['cut']} {row['color']} {row['clarity']}, ${row['price']:,.0f}"
    )


def _figure(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if unit == "$":
        return f"${value:,.0f}"
    if unit == "%":
        return f"{value:.2f}%"
    return f"{value:.3f}"


def comparison(run: TrainingRun, promised: float) -> pd.DataFrame:
    """The new model against the serving one on all held-out appraisals: one row per figure,
    the difference, and whether the new one is better."""
    new_figures, old_figures = run.candidate_metrics or {}, run.champion_metrics or {}
    if not old_figures:
        rows = [
            {
                "Figure": name,
                f"New model v{run.candidate_version}": _figure(new_figures.get(key), unit),
            }
            for key, (name, unit) in FIGURES.items()
            if key in new_figures
        ]
        return pd.DataFrame(rows)
    rows = []
    for key, (name, unit) in FIGURES.items():
        new, old = new_figures.get(key), old_figures.get(key)
        if new is None or old is None:
            continue
        if key == "coverage":  # nearest the promised level is best, above or below
            better = abs(new - promised) <= abs(old - promised)
        else:
            better = new <= old if LOWER_IS_BETTER[key] else new >= old
        noise = old_figures.get(f"{key}_noise")
        difference = _figure(new - old, unit).replace("$-", "−$").replace("-", "−")
        if noise is not None and abs(new - old) <= NOISE_FACTOR * noise:
            verdict = "the same, within noise"
        elif difference.strip("−$%0.,") == "":
            verdict = "the same"
        else:
            verdict = "better" if better else "worse"
        rows.append(
            {
                "Figure": name,
                f"New model v{run.candidate_version}": _figure(new, unit),
                f"Serving then, v{run.champion_version}": _figure(old, unit),
                "Difference": difference,
                "": verdict,
            }
        )
    return pd.DataFrame(rows)


def _version_state(v: VersionInfo) -> str:
    refused = " (the gate refused it)" if v.gate_refused else ""
    if v.is_champion:
        return "serving" + refused
    if v.withdrawn_from:
        return f"not servable: learned from withdrawn batch {_id_ranges(v.withdrawn_from)}"
    if v.metrics.get("monotone_violations", 0) > 0:
        return "not servable: prices a better grade or a heavier stone lower"
    if not v.servable:
        return "earlier release"
    return "refused by the gate" if v.gate_refused else str(v.status)


def _id_ranges(ids: list[int]) -> str:
    """'1–3, 5' for [1, 2, 3, 5]."""
    parts: list[str] = []
    for value in sorted(ids):
        if parts and parts[-1].split("–")[-1] == str(value - 1):
            parts[-1] = parts[-1].split("–")[0] + f"–{value}"
        else:
            parts.append(str(value))
    return ", ".join(parts)


def versions(infos: list[VersionInfo]) -> pd.DataFrame:
    """Every model version with its date, data and errors, in words."""
    rows = [
        {
            "Version": f"v{v.version}",
            "Trained": v.created_at.strftime("%d %b %Y %H:%M"),
            "State": _version_state(v),
            "Learned from batches": _id_ranges(v.learned_from),
            "Appraisals learned from": v.train_rows,
            "Average error on the reference set": _figure(
                (v.reference_metrics or {}).get("mape"), "%"
            ),
            "Average error on its held-out appraisals": _figure(v.metrics.get("mape"), "%"),
            "Average error in dollars": _figure(v.metrics.get("mae"), "$"),
            "Prices inside the range": _figure(v.metrics.get("coverage"), "%"),
        }
        for v in reversed(infos)
    ]
    return pd.DataFrame(rows)


def history_frame(infos: list[VersionInfo], happened: dict[int, str] | None = None) -> pd.DataFrame:
    """version, created_at, champion, train_rows, reference_mape and what happened to it
    (`owner.history_events`): what the history chart reads."""
    return pd.DataFrame(
        [
            {
                "version": v.version,
                "created_at": v.created_at,
                "champion": v.is_champion,
                "train_rows": v.train_rows,
                "reference_mape": (v.reference_metrics or {}).get("mape"),
                "happened": (happened or {}).get(v.version, ""),
            }
            for v in infos
        ]
    )


def headline(run: TrainingRun) -> str:
    """What a run did (or is doing), in one sentence."""
    return outcomes.headline(
        RunStatus(run.status),
        bool(run.promoted),
        run.candidate_version,
        run.champion_version,
        run.message or "",
        run_id=run.id,
        trigger=run.trigger,
    )


def lines_in(findings: pd.DataFrame) -> int:
    """How many rows of a file a table of findings (rejections, set-aside notes) is about."""
    return int(findings["line"].nunique()) if len(findings) else 0


def others_to_serve(infos: list[VersionInfo]) -> list[VersionInfo]:
    """Versions that could serve instead of the champion, newest first."""
    return [info for info in reversed(infos) if info.servable and not info.is_champion]


def run_to_show(runs: list[TrainingRun], mine: int | None) -> TrainingRun | None:
    """The run this session started, else the latest one."""
    return next((run for run in runs if run.id == mine), runs[0] if runs else None)


def version_label(info: VersionInfo) -> str:
    error = (info.reference_metrics or info.metrics or {}).get("mape")
    shown = f", error {error:.2f}%" if error is not None else ""
    return f"v{info.version} — trained {info.created_at:%d %b %Y %H:%M}{shown}"


WORDS = {
    "batch_id": "Batch",
    "line": "Line",
    "column": "Column",
    "value": "Value as uploaded",
    "reason": "Why",
    "carat": "Carat",
    "cut": "Cut",
    "color": "Colour",
    "clarity": "Clarity",
    "depth": "Depth %",
    "table": "Table %",
    "price": "Price ($)",
    "x": "Length x (mm)",
    "y": "Width y (mm)",
    "z": "Total depth z (mm)",
    "appraised_on": "Appraised on",
    "repeats": "Repeats",
    "raw": "Row as uploaded",
}


def in_words(frame: pd.DataFrame) -> pd.DataFrame:
    """Column headings a person reads, and every cell as text, blank where nothing is known."""
    renamed = frame.rename(columns=WORDS)
    return renamed.apply(
        lambda column: column.map(
            lambda v: "" if v is None or v != v else f"{v:g}" if isinstance(v, float) else str(v)
        )
    )


def filter_appraisals(
    frame: pd.DataFrame, batch_id: int | None, grades: dict[str, list[str]]
) -> pd.DataFrame:
    """The stored appraisals of one batch with the chosen grades, for browsing."""
    rows = frame if batch_id is None else frame[frame["batch_id"] == batch_id]
    for grade, picked in grades.items():
        if picked:
            rows = rows[rows[grade].isin(picked)]
    shown = rows.drop(columns=["id", "stone_key"], errors="ignore").copy()
    shown["appraised_on"] = shown["appraised_on"].dt.strftime("%Y-%m-%d")
    return in_words(shown)


def runs(items: list[TrainingRun]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Run": r.id,
                "Started": r.started_at.strftime("%d %b %Y %H:%M"),
                "Started by": r.trigger,
                "Outcome": r.status,
                "New version": "" if r.candidate_version is None else f"v{r.candidate_version}",
                "What happened": r.message,
            }
            for r in items
        ]
    )


# What Streamlit's markdown reads inside a line: emphasis, code, links, HTML, LaTeX, tables,
# strike-through. Line-start marks (#, -, 1.) cannot start a line once newlines are spaces.
MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>|~$])")


def literal(text: str) -> str:
    """Text shown as written inside Streamlit markdown (an uploaded `$5`, `**` or `[a](b)`
    stays as is), on one line."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", " ".join(text.splitlines()))


def batches(frame: pd.DataFrame) -> pd.DataFrame:
    """Stored batches in words, newest first."""
    if frame.empty:
        return frame
    rows = []
    for b in frame.sort_values("id", ascending=False).itertuples(index=False):
        live = b.live or {}
        rows.append(
            {
                "Batch": b.id,
                "File": b.filename,
                "Uploaded": b.uploaded_at.strftime("%d %b %Y %H:%M"),
                "By": b.uploaded_by,
                "Appraisals stored": b.rows_accepted,
                "Rows rejected": b.rows_rejected,
                "Already stored": b.rows_duplicate,
                "Measurements set aside": b.rows_set_aside,
                "Model's error on it": "" if not live else f"{live['mape']:.1f}%",
                "Its level vs the model": "" if not live else f"{live['level_pct']:+.1f}%",
                "State": "withdrawn" if b.withdrawn else "in use",
            }
        )
    return pd.DataFrame(rows)
