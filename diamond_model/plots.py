"""Figure builders shared by the dashboard and the notebook: data in, plotly Figure out."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from diamond_model.explain import Explanation
from diamond_model.schema import GRADES, LABELS, UNITS

TEMPLATE = "plotly_white"
GRADE_ORDERS = {grade: list(scale) for grade, scale in GRADES.items()}


def _finish(figure: go.Figure, title: str, height: int = 420) -> go.Figure:
    figure.update_layout(
        title=title, template=TEMPLATE, height=height, margin={"l": 60, "r": 20, "t": 60, "b": 50}
    )
    return figure


def axis_title(column: str) -> str:
    unit = UNITS.get(column)
    return f"{LABELS.get(column, column)} ({unit})" if unit else LABELS.get(column, column)


def waterfall(explanation: Explanation) -> go.Figure:
    """From a typical stone's price to this stone's, one bar per feature, in dollars."""
    labels = ["Typical stone", *[f"{s.label} {s.value}" for s in explanation.steps], "This stone"]
    values = [explanation.base_price, *[s.dollars for s in explanation.steps], explanation.price]
    texts = [
        f"${explanation.base_price:,.0f}",
        *[
            f"{'+' if s.dollars >= 0 else '−'}${abs(s.dollars):,.0f} ({s.percent:+.1f}%)"
            for s in explanation.steps
        ],
        f"${explanation.price:,.0f}",
    ]
    figure = go.Figure(
        go.Waterfall(
            orientation="v",
            measure=["absolute", *["relative"] * len(explanation.steps), "total"],
            x=labels,
            y=values,
            text=texts,
            textposition="outside",
            connector={"line": {"color": "#999"}},
            increasing={"marker": {"color": "#2a9d8f"}},
            decreasing={"marker": {"color": "#e76f51"}},
            totals={"marker": {"color": "#264653"}},
        )
    )
    figure.update_yaxes(title="Price ($)", tickprefix="$", separatethousands=True)
    return _finish(figure, "Why this price: each feature's effect in dollars", height=460)


def carat_curve(curve: pd.DataFrame, current_carat: float | None = None) -> go.Figure:
    """Estimated price and range across carat weights for fixed grades."""
    figure = go.Figure(
        [
            go.Scatter(
                x=curve["carat"],
                y=curve["high"],
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            ),
            go.Scatter(
                x=curve["carat"],
                y=curve["low"],
                fill="tonexty",
                line={"width": 0},
                fillcolor="rgba(42,157,143,0.2)",
                name="likely range",
            ),
            go.Scatter(
                x=curve["carat"], y=curve["price"], line={"color": "#264653"}, name="estimate"
            ),
        ]
    )
    if current_carat is not None:
        figure.add_vline(x=current_carat, line_dash="dot", annotation_text="this stone")
    figure.update_xaxes(title="Carat (ct)")
    figure.update_yaxes(title="Price ($)", tickprefix="$", separatethousands=True)
    return _finish(figure, "Price over carat for these grades (note the steps at popular sizes)")


def histogram(appraisals: pd.DataFrame, column: str) -> go.Figure:
    """Distribution of one feature (bars in grade order for grades)."""
    if column in GRADES:
        counts = appraisals[column].value_counts().reindex(GRADE_ORDERS[column], fill_value=0)
        figure = go.Figure(
            go.Bar(x=counts.index.astype(str), y=counts.values, marker_color="#2a9d8f")
        )
        figure.update_xaxes(title=f"{LABELS[column]} (worst → best)")
    else:
        figure = go.Figure(go.Histogram(x=appraisals[column], nbinsx=50, marker_color="#2a9d8f"))
        figure.update_xaxes(title=axis_title(column))
    figure.update_yaxes(title="Appraisals")
    return _finish(figure, f"Distribution of {LABELS.get(column, column).lower()}", height=320)


def price_vs_carat(appraisals: pd.DataFrame, colour: str = "clarity") -> go.Figure:
    """Price against carat on log scales, coloured by a grade."""
    figure = px.scatter(
        appraisals.astype({colour: str}),
        x="carat",
        y="price",
        color=colour,
        category_orders={colour: GRADE_ORDERS[colour]},
        log_x=True,
        log_y=True,
        opacity=0.6,
        render_mode="webgl",  # thousands of points: WebGL draws them far faster than SVG
        labels={"carat": "Carat (ct)", "price": "Price ($)", colour: LABELS[colour]},
    )
    figure.update_traces(marker={"size": 4})
    return _finish(figure, f"Price against carat (log scales), by {colour}", height=480)


def price_per_carat(appraisals: pd.DataFrame, grade: str) -> go.Figure:
    """Price per carat by grade: the raw view (size not held equal)."""
    frame = appraisals.assign(price_per_carat=appraisals["price"] / appraisals["carat"]).astype(
        {grade: str}
    )
    figure = px.box(
        frame,
        x=grade,
        y="price_per_carat",
        category_orders={grade: GRADE_ORDERS[grade]},
        labels={
            grade: f"{LABELS[grade]} (worst → best)",
            "price_per_carat": "Price per carat ($/ct)",
        },
        points=False,
    )
    return _finish(figure, f"Price per carat by {grade} (all sizes mixed)")


def grade_effect(table: pd.DataFrame, grade: str) -> go.Figure:
    """Median price per carat by grade within carat bands: the effect with size held similar."""
    figure = px.line(
        table.astype({grade: str}),
        x=grade,
        y="median",
        color="carat_band",
        markers=True,
        category_orders={grade: GRADE_ORDERS[grade]},
        labels={
            grade: f"{LABELS[grade]} (worst → best)",
            "median": "Median price per carat ($/ct)",
            "carat_band": "Weight",
        },
    )
    return _finish(figure, f"Effect of {grade} with carat held similar")


def data_volume(batches: pd.DataFrame) -> go.Figure:
    """Accepted appraisals per batch and the running total."""
    frame = batches.sort_values("id").assign(total=lambda b: b["rows_accepted"].cumsum())
    labels = [f"#{i}" for i in frame["id"]]
    figure = go.Figure(
        [
            go.Bar(
                x=labels, y=frame["rows_accepted"], name="accepted in batch", marker_color="#2a9d8f"
            ),
            go.Scatter(
                x=labels, y=frame["total"], name="stored in total", line={"color": "#264653"}
            ),
        ]
    )
    figure.update_xaxes(title="Batch")
    figure.update_yaxes(title="Appraisals")
    return _finish(figure, "Data volume over batches")


def predicted_vs_actual(predictions: pd.DataFrame) -> go.Figure:
    """Held-out predictions against the expert's prices, with the perfect line."""
    top = float(max(predictions["price"].max(), predictions["predicted"].max()))
    figure = go.Figure(
        [
            go.Scatter(
                x=predictions["price"],
                y=predictions["predicted"],
                mode="markers",
                marker={"size": 4, "opacity": 0.5, "color": "#2a9d8f"},
                name="held-out stone",
            ),
            go.Scatter(
                x=[0, top],
                y=[0, top],
                mode="lines",
                line={"dash": "dash", "color": "#999"},
                name="perfect",
            ),
        ]
    )
    figure.update_xaxes(title="Expert's price ($)", tickprefix="$", separatethousands=True)
    figure.update_yaxes(title="Model's estimate ($)", tickprefix="$", separatethousands=True)
    return _finish(figure, "Predicted vs actual on appraisals the model never saw", height=480)


def residuals_by(predictions: pd.DataFrame, column: str) -> go.Figure:
    """Percentage errors by price band or by grade."""
    orders = (
        {"price_band": list(predictions["price_band"].cat.categories)}
        if column == "price_band"
        else {column: GRADE_ORDERS[column]}
    )
    figure = px.box(
        predictions.astype({column: str}),
        x=column,
        y="error_pct",
        category_orders=orders,
        points=False,
        labels={
            "error_pct": "Error (% of the expert's price)",
            "price_band": "Price band",
            **({column: LABELS[column]} if column in LABELS else {}),
        },
    )
    figure.add_hline(y=0, line_dash="dot", line_color="#999")
    name = "price band" if column == "price_band" else column
    return _finish(figure, f"Errors by {name} (held out)")


def coverage_by_band(table: pd.DataFrame, level: float) -> go.Figure:
    """Share of real prices inside the quoted range, per price band, against the target level."""
    figure = go.Figure(
        go.Bar(
            x=table["price_band"].astype(str),
            y=table["coverage"],
            text=[f"{c:.0f}% (n={n})" for c, n in zip(table["coverage"], table["n"], strict=True)],
            marker_color="#2a9d8f",
        )
    )
    figure.add_hline(y=100 * level, line_dash="dash", annotation_text=f"target {100 * level:.0f}%")
    figure.update_xaxes(title="Price band")
    figure.update_yaxes(title="Prices inside the range (%)", range=[0, 105])
    return _finish(figure, "Range coverage by price band (held out)")


def feature_importance(importance: pd.Series) -> go.Figure:
    """Share of the model's total split gain per feature."""
    ordered = importance.sort_values()
    figure = go.Figure(
        go.Bar(
            x=100 * ordered.values,
            y=[LABELS.get(i, i) for i in ordered.index],
            orientation="h",
            marker_color="#264653",
        )
    )
    figure.update_xaxes(title="Share of total gain (%)")
    return _finish(figure, "What the model relies on")


def metrics_history(versions: pd.DataFrame) -> go.Figure:
    """Held-out MAPE and training rows of every model version: does more data help?"""
    figure = go.Figure(
        [
            go.Scatter(
                x=versions["version"],
                y=versions["mape"],
                mode="lines+markers",
                name="held-out MAPE (%)",
                line={"color": "#e76f51"},
            ),
            go.Bar(
                x=versions["version"],
                y=versions["train_rows"],
                name="training rows",
                yaxis="y2",
                opacity=0.3,
                marker_color="#264653",
            ),
        ]
    )
    figure.update_layout(
        xaxis={"title": "Model version", "dtick": 1},
        yaxis={"title": "MAPE (%)"},
        yaxis2={"title": "Training rows", "overlaying": "y", "side": "right", "showgrid": False},
    )
    return _finish(figure, "Accuracy of every model version")


def learning_curve(curve: pd.DataFrame) -> go.Figure:
    """Held-out MAPE against training size (mean and spread over folds)."""
    summary = curve.groupby("train_size")["mape"].agg(["mean", "std"]).reset_index()
    figure = go.Figure(
        go.Scatter(
            x=summary["train_size"],
            y=summary["mean"],
            error_y={"type": "data", "array": summary["std"]},
            mode="lines+markers",
            line={"color": "#e76f51"},
        )
    )
    figure.update_xaxes(title="Training appraisals")
    figure.update_yaxes(title="Held-out MAPE (%)")
    return _finish(figure, "More appraisals, smaller errors")


def model_comparison(summary: pd.DataFrame) -> go.Figure:
    """Cross-validated MAPE of each candidate model with its spread across folds."""
    ordered = summary.sort_values("mape_mean", ascending=False)
    figure = go.Figure(
        go.Bar(
            x=ordered["mape_mean"],
            y=ordered.index,
            orientation="h",
            error_x={"type": "data", "array": ordered["mape_std"]},
            marker_color=["#e76f51" if s else "#2a9d8f" for s in ordered["shipped"]],
        )
    )
    figure.update_xaxes(title="Cross-validated MAPE (%), mean ± sd over folds")
    return _finish(figure, "Model comparison (shipped model highlighted)")


def interval_calibration(table: pd.DataFrame) -> go.Figure:
    """Nominal vs measured coverage of the ranges."""
    figure = go.Figure(
        [
            go.Scatter(
                x=table["level"], y=table["coverage"], mode="lines+markers", name="measured"
            ),
            go.Scatter(
                x=[45, 100],
                y=[45, 100],
                mode="lines",
                line={"dash": "dash", "color": "#999"},
                name="perfect calibration",
            ),
        ]
    )
    figure.update_xaxes(title="Requested level (%)")
    figure.update_yaxes(title="Measured coverage (%)")
    return _finish(figure, "Are the ranges honest?")


def price_per_carat_curve(table: pd.DataFrame) -> go.Figure:
    """Median price per carat across weight bins, with the popular sizes marked."""
    figure = go.Figure(
        go.Scatter(
            x=table["weight"], y=table["median"], mode="lines+markers", line={"color": "#264653"}
        )
    )
    for size in (0.5, 1.0, 1.5, 2.0):
        figure.add_vline(
            x=size, line_dash="dot", line_color="#e76f51", annotation_text=f"{size:g} ct"
        )
    figure.update_xaxes(title="Carat (ct), 0.05 ct bins")
    figure.update_yaxes(
        title="Median price per carat ($/ct)", tickprefix="$", separatethousands=True
    )
    return _finish(figure, "Price per carat jumps at the popular sizes")


def correlation_heatmap(correlations: pd.DataFrame) -> go.Figure:
    """Correlation matrix as a labelled heatmap."""
    figure = go.Figure(
        go.Heatmap(
            z=correlations.values,
            x=correlations.columns,
            y=correlations.index,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            text=correlations.round(2).values,
            texttemplate="%{text}",
        )
    )
    return _finish(figure, "Correlations: carat, x, y and z measure the same thing", height=460)
