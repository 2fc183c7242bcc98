"""Plotly figures of the finance figures, and the component that shows them.

The builders are pure functions from :mod:`fibernode.services.finance` rows to a
``plotly.graph_objects.Figure``: Indonesian month labels, Rupiah hover text and axis
ticks written by us (plotly's own number formats are English), a transparent
background so the card colour shows through. The figures carry no template of their
own: :func:`chart` lets ``rx.plotly`` pick ``plotly`` or ``plotly_dark`` from the
colour mode, which sets readable fonts and axis lines in both modes.

Only the basic plotly.js bundle (scatter, bar) is used, and Reflex imports it
lazily on the pages that show a chart, so the login page never downloads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import reflex as rx

from fibernode.formatting import number, rupiah, short_month_year
from fibernode.services.finance import MonthRow, SeriesPoint

PRIMARY = "#3B82F6"
ACCENT = "#16A34A"
WARNING = "#F59E0B"
MUTED = "#94A3B8"
# Readable on the light card and on the dark one.
GRID = "rgba(148, 163, 184, 0.25)"
FONT = "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
HEIGHT = 300
CONFIG = {"displayModeBar": False, "responsive": True}


def _short_amount(value: float) -> str:
    """``Rp 1,5 jt`` / ``Rp 500 rb``: a compact Rupiah for axis ticks."""
    value = int(value)
    if value == 0:
        return "Rp 0"
    for size, unit in ((1_000_000_000, "M"), (1_000_000, "jt"), (1_000, "rb")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".").replace(".", ",")
            return f"Rp {text} {unit}"
    return rupiah(value)


def _nice_ticks(top: float, count: int = 5) -> list[int]:
    """Whole tick values from 0 to at least ``top`` (1, 2, 2.5 or 5 × 10ⁿ steps, ≥ 1)."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))
    if step != int(step):  # 2.5 on a count axis
        step = math.ceil(step)
    return [int(step * i) for i in range(math.ceil(top / step) + 1)]


def _count_axis(values: Sequence[int], **extra) -> dict:
    """A y axis of whole numbers with Indonesian digit grouping."""
    ticks = _nice_ticks(max([0, *values]))
    return {"tickvals": ticks, "ticktext": [number(t) for t in ticks],
            "range": [0, ticks[-1] * 1.05], "zerolinecolor": GRID, **extra}


def _month_axis(labels: Sequence[str]) -> dict:
    """Categories ``Mar 2026`` drawn on two lines, so twelve fit without tilting."""
    return {"type": "category", "showgrid": False, "tickangle": 0, "tickvals": list(labels),
            "ticktext": [label.replace(" ", "<br>", 1) for label in labels]}


def _money_axis(values: Sequence[int]) -> dict:
    """A y axis in Rupiah with our own tick labels (never negative-only ranges)."""
    # An empty year still gets a sensible Rupiah scale rather than "Rp 0 … Rp 1".
    ticks = _nice_ticks(max([0, *values]) or 1_000_000)
    low = min([0, *values])
    axis = {"tickvals": ticks, "ticktext": [_short_amount(t) for t in ticks],
            "range": [0, ticks[-1] * 1.05], "gridcolor": GRID, "zerolinecolor": GRID}
    if low < 0:  # a month of reversals only: let plotly pick the range and labels
        axis = {"gridcolor": GRID, "zerolinecolor": GRID, "tickprefix": "Rp "}
    return axis


def _layout(**extra) -> dict:
    return {
        "height": HEIGHT,
        "autosize": True,
        "margin": {"l": 64, "r": 16, "t": 36, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": FONT, "size": 12},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 0, "y": 1.12, "bgcolor": "rgba(0,0,0,0)"},
        "xaxis": {"type": "category", "showgrid": False},
        # No template in the figure: the chart component supplies the colour mode's.
        "template": "none",
        **extra,
    }


def revenue_figure(points: Sequence[SeriesPoint]) -> go.Figure:
    """Twelve months of revenue (cash basis: ledger payments less reversals) as a line."""
    months = [short_month_year(p.period) for p in points]
    values = [p.revenue for p in points]
    fig = go.Figure(
        go.Scatter(x=months, y=values, name="Pendapatan", mode="lines+markers",
                   line={"color": PRIMARY, "width": 3},
                   marker={"size": 7}, fill="tozeroy", fillcolor="rgba(59, 130, 246, 0.12)",
                   customdata=[rupiah(v) for v in values],
                   hovertemplate="Pendapatan: %{customdata}<extra></extra>"),
        layout=_layout(xaxis=_month_axis(months), yaxis=_money_axis(values),
                       showlegend=False),
    )
    return fig


def growth_figure(points: Sequence[SeriesPoint]) -> go.Figure:
    """New subscribers per month as bars, the running total as a line on a right axis."""
    months = [short_month_year(p.period) for p in points]
    new = [p.new_customers for p in points]
    total = [p.customers_total for p in points]
    return go.Figure(
        [go.Bar(x=months, y=new, name="Pelanggan baru", marker={"color": ACCENT},
                customdata=[number(v) for v in new],
                hovertemplate="Pelanggan baru: %{customdata}<extra></extra>"),
         go.Scatter(x=months, y=total, name="Total pelanggan", mode="lines+markers",
                    yaxis="y2", line={"color": PRIMARY, "width": 2}, marker={"size": 6},
                    customdata=[number(v) for v in total],
                    hovertemplate="Total pelanggan: %{customdata}<extra></extra>")],
        layout=_layout(
            margin={"l": 52, "r": 60, "t": 36, "b": 48},
            xaxis=_month_axis(months),
            yaxis=_count_axis(new, title={"text": "Baru"}, gridcolor=GRID),
            yaxis2=_count_axis(total, title={"text": "Total"}, overlaying="y", side="right",
                               showgrid=False),
        ),
    )


def year_figure(months: Sequence[MonthRow]) -> go.Figure:
    """A year by month: billed vs paid (billed basis) as bars, revenue (cash) as a line."""
    labels = [short_month_year(m.period) for m in months]
    billed = [m.totals.billed for m in months]
    paid = [m.totals.paid for m in months]
    revenue = [m.revenue for m in months]
    return go.Figure(
        [go.Bar(x=labels, y=billed, name="Tagihan", marker={"color": MUTED},
                customdata=[rupiah(v) for v in billed],
                hovertemplate="Tagihan: %{customdata}<extra></extra>"),
         go.Bar(x=labels, y=paid, name="Terbayar", marker={"color": ACCENT},
                customdata=[rupiah(v) for v in paid],
                hovertemplate="Terbayar: %{customdata}<extra></extra>"),
         go.Scatter(x=labels, y=revenue, name="Pendapatan", mode="lines+markers",
                    line={"color": PRIMARY, "width": 3}, marker={"size": 7},
                    customdata=[rupiah(v) for v in revenue],
                    hovertemplate="Pendapatan: %{customdata}<extra></extra>")],
        layout=_layout(barmode="group", xaxis=_month_axis(labels),
                       yaxis=_money_axis([*billed, *paid, *revenue])),
    )


def empty_figure() -> go.Figure:
    """A blank chart (the state's default before the data arrives)."""
    return go.Figure(layout=_layout())


def chart(figure: rx.Var, test_id: str) -> rx.Component:
    """A figure in a horizontally scrollable box (phones scroll, desktops fit).

    ``rx.plotly.basic`` loads the small plotly.js bundle on demand and applies the
    light or dark template from the colour mode.
    """
    return rx.el.div(
        rx.el.div(
            rx.plotly.basic(data=figure, config=CONFIG, use_resize_handler=True,
                            style={"width": "100%", "height": f"{HEIGHT}px"}),
            class_name="fn-chart",
        ),
        class_name="fn-chart-scroll",
        data_testid=test_id,
    )


def info_tip(text: str) -> rx.Component:
    """An ⓘ with an explanation on hover / focus (the note under the figures says it too)."""
    return rx.tooltip(
        rx.el.button(rx.icon("info", size=16), type="button", class_name="fn-info-btn",
                     aria_label=text),
        content=text,
    )


def chart_card(title: str, subtitle: str, figure: rx.Var, test_id: str,
               tip: str = "") -> rx.Component:
    """A card with a heading, an optional ⓘ and the chart."""
    return rx.el.div(
        rx.el.div(
            rx.el.div(rx.el.h3(title, class_name="fn-section-title"),
                      rx.el.p(subtitle, class_name="fn-muted")),
            info_tip(tip) if tip else rx.fragment(),
            class_name="fn-card-row",
        ),
        chart(figure, test_id),
        class_name="fn-card fn-chart-card",
    )
