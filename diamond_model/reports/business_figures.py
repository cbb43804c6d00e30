"""The owner's business in pictures: stones priced for each API client, day by day."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import plotly.graph_objects as go

from diamond_model.reports.figures import finish

PALETTE = ("#1f3b57", "#2a9d8f", "#e9c46a", "#b4412f", "#6d597a", "#4b5563")


def stones_by_day(daily: pd.DataFrame, today: date, days: int = 31) -> go.Figure:
    """Stones priced per client on each of the last `days` UTC days, stacked; the title says the
    period's total (`daily`: client, day as 2026-11-28, stones)."""
    first = today - timedelta(days=days - 1)
    axis = [first + timedelta(days=n) for n in range(days)]
    recent = daily.assign(day=pd.to_datetime(daily["day"]).dt.date)
    recent = recent.loc[recent["day"] >= first]
    figure = go.Figure()
    for position, (client, rows) in enumerate(recent.groupby("client", sort=True)):
        per_day = rows.groupby("day")["stones"].sum().reindex(axis, fill_value=0)
        figure.add_bar(
            x=axis,
            y=per_day.to_numpy(),
            name=str(client),
            marker_color=PALETTE[position % len(PALETTE)],
            hovertemplate=f"{client}<br>%{{x|%d %b}}: %{{y:,}} stones<extra></extra>",
        )
    total = int(recent["stones"].sum())
    figure.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.2})
    figure.update_xaxes(
        title="Day (UTC)",
        type="date",
        range=[first - timedelta(hours=12), today + timedelta(hours=12)],
        tickformat="%d %b",
    )
    figure.update_yaxes(title="Stones priced", rangemode="tozero")
    title = (
        f"{total:,} stones priced for clients in the last {days} days"
        if total
        else f"No stones priced for clients in the last {days} days"
    )
    return finish(figure, title, height=380)
