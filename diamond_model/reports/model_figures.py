"""Figure builders for how good the model is and whether it is getting better: held-out
diagnostics, ranges by group, what it relies on, its history on the reference set, the market
index and the learning curve. Data in, plotly Figure out (dashboard and notebook alike)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from diamond_model.data.schema import LABELS
from diamond_model.reports.figures import DOWN, FONT, GRADE_ORDERS, INK, MUTED, TOTAL, UP, finish

DOWN_LINE = "#b4412f"  # target lines: a red that reads on white and in grey print

STEP_NAMES = {
    "size": "Size (carat and millimetres)",
    "cut": "Cut",
    "color": "Colour",
    "clarity": "Clarity",
    "depth": "Depth %",
    "table": "Table %",
}


def history(
    versions: pd.DataFrame,
    title: str = "Is the model getting better? Error on the same reference appraisals",
) -> go.Figure:
    """Error of every version on the same reference appraisals, dated; lower is better."""
    frame = versions.dropna(subset=["reference_mape"])
    happened = frame["happened"] if "happened" in frame else [""] * len(frame)
    labels = [
        f"v{v}<br>{d:%d %b %Y}" + (f"<br><i>{h}</i>" if h else "")
        for v, d, h in zip(frame["version"], frame["created_at"], happened, strict=True)
    ]
    colours = [UP if champion else TOTAL for champion in frame["champion"]]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=frame["reference_mape"],
            marker_color=colours,
            text=[f"{m:.2f}%" for m in frame["reference_mape"]],
            textposition="outside",
            textfont={"size": 13, "color": INK},
            hovertext=[f"trained on {n:,} appraisals" for n in frame["train_rows"]],
        )
    )
    figure.update_yaxes(
        title="Average error (%) — lower is better", rangemode="tozero", tickfont=FONT
    )
    figure.update_xaxes(title="Model version and date (green: serving now)", tickfont=FONT)
    return finish(figure, title)


MONTH_BAR_MS = 26 * 86_400_000  # a month's bar, in the time axis' milliseconds


def market_index(
    frame: pd.DataFrame, title: str = "The market level over time (quotes use the latest month)"
) -> go.Figure:
    """The market level by month with its 90 % band, and how many appraisals each month has.

    Months are placed on a time axis (a month without appraisals leaves a gap), the count bars
    sit behind the level line (bars on the first axis, drawn first)."""
    months = pd.to_datetime(frame["period"] + "-01")
    figure = go.Figure(
        [
            go.Bar(
                x=months,
                y=frame["appraisals"],
                name="appraisals that month (right axis)",
                marker_color="#dbe3ec",
                xperiod="M1",
                xperiodalignment="middle",
                width=[MONTH_BAR_MS] * len(months),  # one month wide, however many months
            ),
            go.Scatter(
                x=months,
                y=frame["level_pct"],
                mode="lines+markers",
                name="market level, with its 90 % band (left axis)",
                yaxis="y2",
                line={"color": TOTAL, "width": 3},
                marker={"size": 9},
                xperiod="M1",
                xperiodalignment="middle",
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": frame["high_pct"] - frame["level_pct"],
                    "arrayminus": frame["level_pct"] - frame["low_pct"],
                    "color": INK,
                    "thickness": 2,
                },
            ),
        ]
    )
    low = min(0.0, float(frame["low_pct"].min()))
    high = max(0.0, float(frame["high_pct"].max()))
    pad = max(2.0, 0.15 * (high - low))
    # True months: the axis ends with the latest month and shows at least six, so one month of
    # appraisals is a month-wide bar (not a block filling the chart, as autorange drew it).
    end = months.max() + pd.offsets.MonthBegin(1)
    start = min(months.min(), end - pd.DateOffset(months=6))
    figure.update_layout(
        xaxis={
            "title": "Month",
            "dtick": "M1",
            "tickformat": "%b %Y",
            "ticklabelmode": "period",
            "range": [start, end],
        },
        yaxis={
            "title": "Appraisals",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
            "tickformat": ",",
        },
        yaxis2={
            "title": "Level against the average appraisal (%)",
            "overlaying": "y",
            "side": "left",
            "range": [low - pad, high + pad],
            "tickmode": "auto",
            "nticks": 7,
            "ticksuffix": " %",
            "zeroline": True,
            "zerolinecolor": MUTED,
        },
        legend={"orientation": "h", "y": -0.25},
    )
    return finish(figure, title)


def reliance(table: pd.DataFrame) -> go.Figure:
    """Mean absolute move of each waterfall step, in % of the price."""
    ordered = table.sort_values("mean_abs_percent")
    figure = go.Figure(
        go.Bar(
            x=ordered["mean_abs_percent"],
            y=[STEP_NAMES.get(s, s) for s in ordered["step"]],
            orientation="h",
            marker_color=TOTAL,
            text=[f"{v:.1f}%" for v in ordered["mean_abs_percent"]],
            textposition="outside",
            textfont={"size": 13, "color": INK},
            cliponaxis=False,
        )
    )
    figure.update_xaxes(title="Average move of the price against the typical stone (%)")
    figure.update_layout(margin={"l": 10, "r": 60, "t": 60, "b": 50})
    top = table.sort_values("mean_abs_percent").iloc[-1]
    name = STEP_NAMES.get(top["step"], top["step"])
    return finish(figure, f"{name} moves a price most: {top['mean_abs_percent']:.0f} % on average")


def coverage(table: pd.DataFrame, column: str, level: float, title: str) -> go.Figure:
    """Share of real prices inside the quoted range per group, against the target level.

    Dots, not bars: what matters is 88 against 92 %, which a bar from zero would flatten. The
    shaded band is the acceptable zone (the level ± 2 points), the dashed line the level."""
    target = 100 * level
    labels = [
        f"{group}<br><b>{c:.1f}%</b> of {n:,}"
        for group, c, n in zip(
            table[column].astype(str), table["coverage"], table["n"], strict=True
        )
    ]
    figure = go.Figure(
        go.Scatter(
            x=labels,
            y=table["coverage"],
            mode="markers",
            marker={"size": 16, "color": TOTAL},
            showlegend=False,
            hovertemplate="%{x}<extra></extra>",
        )
    )
    figure.add_hrect(y0=target - 2, y1=target + 2, fillcolor=UP, opacity=0.12, line_width=0)
    figure.add_hline(
        y=target,
        line_dash="dash",
        line_color=DOWN_LINE,
        annotation_text=f"target {target:.0f}% (shaded: ±2 points)",
        annotation_position="bottom right",
        annotation_font={"size": 13, "color": INK},
    )
    low = min(target - 10, float(table["coverage"].min()) - 6)
    figure.update_yaxes(title="Real prices inside the range (%)", range=[low, 101], tickfont=FONT)
    figure.update_xaxes(tickfont=FONT, type="category")
    return finish(figure, title)


def predicted_vs_actual(predictions: pd.DataFrame) -> go.Figure:
    """Held-out predictions against the expert's prices, with the perfect line."""
    top = float(max(predictions["price"].max(), predictions["predicted"].max()))
    figure = go.Figure(
        [
            go.Scattergl(
                x=predictions["price"],
                y=predictions["predicted"],
                mode="markers",
                marker={"size": 4, "opacity": 0.5, "color": TOTAL},
                name="appraisal it never saw",
            ),
            go.Scatter(
                x=[0, top],
                y=[0, top],
                mode="lines",
                line={"dash": "dash", "color": MUTED},
                name="perfect",
            ),
        ]
    )
    figure.update_xaxes(title="Expert's price ($)", tickprefix="$", separatethousands=True)
    figure.update_yaxes(title="Model's estimate ($)", tickprefix="$", separatethousands=True)
    typical = float(predictions["error_pct"].abs().median())
    return finish(
        figure,
        f"Half the estimates are within {typical:.1f} % of the expert's price (stones it never "
        "saw)",
        460,
    )


def signed_error(table: pd.DataFrame) -> go.Figure:
    """Median signed error by band of the predicted price."""
    figure = go.Figure(
        go.Bar(
            x=table["predicted_band"].astype(str),
            y=table["median_signed_error"],
            marker_color=TOTAL,
            text=[f"{v:+.1f}%" for v in table["median_signed_error"]],
            textposition="outside",
            textfont={"size": 13, "color": INK},
        )
    )
    figure.add_hline(y=0, line_color=MUTED)
    figure.update_yaxes(title="Median error (% of the expert's price)", tickfont=FONT)
    figure.update_xaxes(title="Estimated price band", tickfont=FONT)
    lean = float(table["median_signed_error"].abs().max()) if len(table) else 0.0
    return finish(figure, f"It leans at most {lean:.1f} % high or low, at any price it quoted")


def errors_by_grade(predictions: pd.DataFrame, grade: str) -> go.Figure:
    """Percentage errors by grade (held out)."""
    figure = px.box(
        predictions.astype({grade: str}),
        x=grade,
        y="error_pct",
        category_orders={grade: GRADE_ORDERS[grade]},
        points=False,
        labels={
            "error_pct": "Error (% of the expert's price)",
            grade: f"{LABELS[grade]} (worst → best)",
        },
    )
    figure.add_hline(y=0, line_dash="dot", line_color=MUTED)
    middle = predictions.astype({grade: str}).groupby(grade)["error_pct"].median()
    worst = float(middle.abs().max()) if len(middle) else 0.0
    return finish(
        figure,
        f"No {LABELS[grade].lower()} is priced more than {worst:.1f} % high or low, in the middle",
    )


def learning_curve(curve: pd.DataFrame) -> go.Figure:
    """Held-out MAPE against training size (mean and spread over folds)."""
    summary = curve.groupby("train_size")["mape"].agg(["mean", "std"]).reset_index()
    figure = go.Figure(
        go.Scatter(
            x=summary["train_size"],
            y=summary["mean"],
            error_y={"type": "data", "array": summary["std"], "color": MUTED},
            mode="lines+markers",
            line={"color": TOTAL},
        )
    )
    figure.update_xaxes(title="Appraisals learned from")
    figure.update_yaxes(title="Average error on others (%) — lower is better", rangemode="tozero")
    return finish(figure, "More appraisals, smaller errors (still falling at 4,000)")


def model_comparison(summary: pd.DataFrame) -> go.Figure:
    """Cross-validated MAPE of each candidate model with its spread across folds."""
    ordered = summary.sort_values("mape_mean", ascending=False)
    figure = go.Figure(
        go.Bar(
            x=ordered["mape_mean"],
            y=ordered.index,
            orientation="h",
            error_x={"type": "data", "array": ordered["mape_std"]},
            marker_color=[UP if s else TOTAL for s in ordered["shipped"]],
        )
    )
    figure.update_xaxes(title="Cross-validated MAPE (%), mean ± sd over folds", rangemode="tozero")
    return finish(figure, "Model comparison (shipped model in green)")


def paired_differences(table: pd.DataFrame, first: str, second: str) -> go.Figure:
    """Fold-by-fold MAPE difference between two models (below zero: `first` was better)."""
    figure = go.Figure(go.Bar(x=table.index.astype(str), y=table["difference"], marker_color=TOTAL))
    figure.add_hline(y=0, line_color=MUTED)
    figure.update_xaxes(title="Fold", type="category")
    figure.update_yaxes(title=f"MAPE of {first} minus {second} (points)")
    return finish(figure, f"{first} against {second}, fold by fold")


def price_steps(table: pd.DataFrame) -> go.Figure:
    """Jump in price per carat at each popular size: in the data and in the model's prices."""
    frame = table.dropna(subset=["data_step_pct"])
    figure = go.Figure(
        [
            go.Bar(
                x=[f"{s:g} ct" for s in frame["size"]],
                y=frame["data_step_pct"],
                name="appraisals",
                marker_color=TOTAL,
            ),
            go.Bar(
                x=[f"{s:g} ct" for s in frame["size"]],
                y=frame["model_step_pct"],
                name="model",
                marker_color=UP,
            ),
        ]
    )
    figure.update_layout(barmode="group")
    figure.update_yaxes(title="Price per carat just above vs just below (%)", rangemode="tozero")
    return finish(figure, "Does the model reproduce the price steps at popular sizes?")


def against_target(mape: float, target: float) -> go.Figure:
    """The average error as one bar beside the target line: short of the line is good."""
    met = mape <= target
    figure = go.Figure(
        go.Bar(
            x=[mape],
            y=["Average error"],
            orientation="h",
            marker_color=UP if met else DOWN,
            text=[f"{mape:.1f}%"],
            textposition="outside",
            textfont={"size": 14, "color": INK},
            hoverinfo="skip",
        )
    )
    figure.add_vline(x=target, line={"color": INK, "dash": "dash", "width": 2})
    figure.add_annotation(
        x=target, y=1, yref="paper", text=f"target {target:g}%", showarrow=False, yanchor="bottom"
    )
    figure.update_xaxes(range=[0, max(target, mape) * 1.35], title="Average error (%)")
    figure.update_yaxes(showticklabels=False)
    figure.update_layout(margin={"l": 20, "r": 20, "t": 60, "b": 50})
    title = "Within the target" if met else "Above the target"
    return finish(figure, title, height=200)
