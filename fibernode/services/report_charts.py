"""Chart images for the PDF and XLSX finance reports (matplotlib, Agg backend, PNG bytes).

The app draws its interactive charts with plotly in the browser; plotly's static
export needs a headless Chrome, which a Celery worker does not have. These are
the same charts drawn by matplotlib without a display. matplotlib is imported
inside each function: it is heavy, and only the report worker needs it.

Every function takes the finance dataclasses as they come from
:mod:`fibernode.services.finance` and returns a PNG image as bytes. Labels are
Indonesian (month names through :mod:`fibernode.formatting`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from fibernode.formatting import month_year, number

# Brand colours (spec "Color Palette"): primary blue, accent green, warning, destructive.
BLUE = "#3B82F6"
GREEN = "#16A34A"
AMBER = "#F59E0B"
RED = "#EF4444"
SLATE = "#64748B"
GRID = "#E2E8F0"
# Stacked aging bars: one colour per owner, the rest grouped as "Lainnya".
OWNER_COLOURS = ("#3B82F6", "#16A34A", "#F59E0B", "#EF4444", "#8B5CF6", "#06B6D4",
                 "#EC4899", "#84CC16")
OTHERS_COLOUR = "#94A3B8"
MAX_OWNER_STACKS = len(OWNER_COLOURS)
MAX_BARS = 25  # horizontal bar charts show the first 25 rows (the tables list them all)
DPI = 150


def short_month(period: str) -> str:
    """``Mar`` / ``Agu`` / ``Des``: the first three letters of the Indonesian month name."""
    return month_year(period)[:3]


def compact_rupiah(value: float) -> str:
    """An axis label for an amount: ``Rp 1,5 jt``, ``Rp 750 rb``, ``Rp 0``."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1_000_000_000:
        text = f"{value / 1_000_000_000:.1f} M"
    elif value >= 1_000_000:
        text = f"{value / 1_000_000:.1f} jt"
    elif value >= 1_000:
        text = f"{value / 1_000:.0f} rb"
    else:
        text = f"{value:.0f}"
    return f"{sign}Rp {text.replace('.0 ', ' ').replace('.', ',')}"


def _figure(width: float, height: float):
    """A pyplot-free figure on the Agg canvas (safe in worker threads, no global state)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color(GRID)
    ax.tick_params(colors=SLATE, labelsize=8)
    ax.set_axisbelow(True)


def _money_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: compact_rupiah(v)))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _empty(ax, message: str = "Belum ada data") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", color=SLATE, fontsize=11,
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def monthly_sales_chart(summary) -> bytes:
    """Billed bars and the revenue line over the twelve months of a :class:`YearSummary`."""
    fig = _figure(10, 4.2)
    ax = fig.add_subplot()
    _style(ax)
    labels = [short_month(m.period) for m in summary.months]
    xs = list(range(len(labels)))
    billed = [m.totals.billed for m in summary.months]
    revenue = [m.revenue for m in summary.months]
    ax.bar(xs, billed, color=BLUE, alpha=0.35, width=0.6, label="Tagihan (periode)")
    ax.plot(xs, revenue, color=GREEN, marker="o", linewidth=2,
            label="Pendapatan (buku pembayaran)")
    ax.set_xticks(xs, labels)
    _money_axis(ax.yaxis)
    ax.grid(axis="y", color=GRID)
    ax.set_title(f"Penjualan bulanan {summary.year}", fontsize=11, loc="left")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return _png(fig)


def package_popularity_chart(rows: Sequence) -> bytes:
    """Horizontal bars: active subscribers per package (most popular on top)."""
    rows = list(rows)[:MAX_BARS]
    fig = _figure(10, max(2.6, 0.9 + 0.38 * len(rows)))
    ax = fig.add_subplot()
    _style(ax)
    if not rows:
        _empty(ax)
        return _png(fig)
    labels = [f"{r.name} ({r.speed})" for r in rows][::-1]
    values = [r.active_customers for r in rows][::-1]
    bars = ax.barh(labels, values, color=BLUE, height=0.6)
    ax.bar_label(bars, labels=[number(v) for v in values], padding=3, fontsize=8,
                 color=SLATE)
    ax.set_xlabel("Pelanggan aktif", fontsize=8, color=SLATE)
    ax.grid(axis="x", color=GRID)
    ax.set_title("Popularitas paket", fontsize=11, loc="left")
    ax.margins(x=0.12)
    return _png(fig)


def mitra_performance_chart(rows: Sequence) -> bytes:
    """Bars: share of the period's billed amount collected, per owner (0–100 %)."""
    rows = list(rows)[:MAX_BARS]
    fig = _figure(10, 4.2)
    ax = fig.add_subplot()
    _style(ax)
    if not rows:
        _empty(ax)
        return _png(fig)
    labels = [r.business_name for r in rows]
    values = [r.totals.collected_percent for r in rows]
    colours = [GREEN if v >= 80 else AMBER if v >= 50 else RED for v in values]
    bars = ax.bar(range(len(rows)), values, color=colours, width=0.6)
    ax.bar_label(bars, labels=[f"{v:.1f}%".replace(".", ",") for v in values], padding=2,
                 fontsize=8, color=SLATE)
    ax.set_xticks(range(len(rows)), labels, rotation=30 if len(rows) > 4 else 0,
                  ha="right" if len(rows) > 4 else "center")
    ax.set_ylim(0, 110)
    ax.set_ylabel("Terkumpul (%)", fontsize=8, color=SLATE)
    ax.grid(axis="y", color=GRID)
    ax.set_title("Tingkat penagihan per mitra", fontsize=11, loc="left")
    return _png(fig)


def aging_chart(report, buckets: Sequence[str]) -> bytes:
    """Stacked bars: what is still owed in each aging bucket, one stack per owner.

    The owners owing most get their own colour; the others are stacked as ``Lainnya``.
    """
    fig = _figure(10, 4.2)
    ax = fig.add_subplot()
    _style(ax)
    xs = list(range(len(buckets)))
    if not report.rows or not any(report.amounts):
        _empty(ax, "Tidak ada piutang terbuka")
        return _png(fig)
    ranked = sorted(report.rows, key=lambda r: r.total_amount, reverse=True)
    shown = ranked[:MAX_OWNER_STACKS] if len(ranked) <= MAX_OWNER_STACKS \
        else ranked[:MAX_OWNER_STACKS - 1]
    bottoms = [0] * len(buckets)
    for row, colour in zip(shown, OWNER_COLOURS, strict=False):
        ax.bar(xs, row.amounts, bottom=bottoms, color=colour, width=0.6,
               label=row.business_name)
        bottoms = [b + a for b, a in zip(bottoms, row.amounts, strict=True)]
    if len(shown) < len(ranked):
        # The chart's "others" stack: the bucket sums less the owners drawn above.
        rest = [total - drawn for total, drawn in zip(report.amounts, bottoms, strict=True)]
        ax.bar(xs, rest, bottom=bottoms, color=OTHERS_COLOUR, width=0.6, label="Lainnya")
    ax.set_xticks(xs, list(buckets))
    _money_axis(ax.yaxis)
    ax.grid(axis="y", color=GRID)
    ax.set_title("Umur piutang (sisa tagihan)", fontsize=11, loc="left")
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    return _png(fig)
