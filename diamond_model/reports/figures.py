"""Figure builders shared by the dashboard and the notebook: data in, plotly Figure out."""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from diamond_model.data.schema import GRADES, LABELS, UNITS
from diamond_model.pricing.contributions import Explanation

TEMPLATE = "plotly_white"
GRADE_ORDERS = {grade: list(scale) for grade, scale in GRADES.items()}


def finish(figure: go.Figure, title: str, height: int = 420) -> go.Figure:
    figure.update_layout(title=title, template=TEMPLATE, height=height, font={"size": 13})
    if not figure.layout.margin.l:
        figure.update_layout(margin={"l": 60, "r": 20, "t": 60, "b": 50})
    # Axis words in colours that read on white (≥ 4.5:1) wherever the figure did not choose one:
    # the dashboard's theme otherwise greys axis titles to 3.8:1.
    for axis in (*figure.select_xaxes(), *figure.select_yaxes()):
        if axis.title.font.color is None:
            axis.title.font.color = MUTED
        if axis.tickfont.color is None:
            axis.tickfont.color = MUTED
    if figure.layout.legend.font.color is None:
        figure.layout.legend.font.color = INK
    return figure


def axis_title(column: str) -> str:
    unit = UNITS.get(column)
    return f"{LABELS.get(column, column)} ({unit})" if unit else LABELS.get(column, column)


INK = "#1f2933"  # body text: 15:1 on white
MUTED = "#4b5563"  # secondary text: 7.6:1 on white (the old grey #999 was 2.8:1)
UP, DOWN, TOTAL = "#1b7f5a", "#b4412f", "#1f3b57"
FONT = {"size": 13, "color": INK}
NO_TOOLBAR = {"displayModeBar": False, "displaylogo": False}


def wrapped(label: str, width: int = 18) -> str:
    """A chart label broken into lines of at most `width` characters."""
    return "<br>".join(textwrap.wrap(label, width, break_long_words=False)) or label


def waterfall(explanation: Explanation) -> go.Figure:
    """From the typical stone's price to this stone's, one horizontal bar per step, in dollars,
    in the fixed order (size, cut, colour, clarity, then the rest)."""
    labels = [  # wrapped: one long label squeezed the bars into a sliver
        wrapped(f"Typical stone: {explanation.base_stone}"),
        *[wrapped(f"{s.label}: {s.value}") for s in explanation.steps],
        "This stone",
    ]
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
            orientation="h",
            measure=["absolute", *["relative"] * len(explanation.steps), "total"],
            y=labels,
            x=values,
            text=texts,
            textposition="outside",
            textfont={"size": 13, "color": INK},
            cliponaxis=False,
            connector={"line": {"color": MUTED}},
            increasing={"marker": {"color": UP}},
            decreasing={"marker": {"color": DOWN}},
            totals={"marker": {"color": TOTAL}},
        )
    )
    figure.update_yaxes(autorange="reversed", tickfont=FONT)
    figure.update_xaxes(
        title="Price ($)", tickprefix="$", separatethousands=True, tickfont=FONT, rangemode="tozero"
    )
    figure.update_layout(font=FONT, margin={"l": 10, "r": 90, "t": 60, "b": 50})
    return finish(figure, "Why this price: from a typical stone to this one", height=420)


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
    return finish(figure, "Price over carat for these grades (note the steps at popular sizes)")


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
    return finish(figure, f"Distribution of {LABELS.get(column, column).lower()}", height=320)


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
    carats = [0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 4, 5]
    prices = [300, 500, 1_000, 2_000, 5_000, 10_000, 20_000]
    # Explicit ticks: plotly's log axes label 0.3 ct as "3" and $20k as "2" between decades.
    figure.update_xaxes(tickvals=carats, ticktext=[f"{c:g}" for c in carats])
    figure.update_yaxes(tickvals=prices, ticktext=[f"${p:,}" for p in prices])
    return finish(figure, f"Price against carat (log scales), by {colour}", height=480)


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
    return finish(figure, f"Price per carat by {grade} (all sizes mixed)")


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
    return finish(figure, f"Effect of {grade} with carat held similar")


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
    return finish(figure, "Data volume over batches")


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
    figure.update_xaxes(title="Carat (ct), 0.05 ct bins; gaps: fewer than 5 stones")
    figure.update_yaxes(
        title="Median price per carat ($/ct)", tickprefix="$", separatethousands=True
    )
    return finish(figure, "Price per carat by weight, with the popular sizes marked")


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
    return finish(figure, "Correlations: carat, x, y and z measure the same thing", height=460)
