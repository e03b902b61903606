"""The digest's chart: views per day over the last 14 days, one line per account, as PNG.

Rendered with matplotlib's object-oriented API on the Agg canvas (no pyplot, no global
figure state, safe in a worker running several digests), imported on first use so a
process that never renders a digest never loads it. The output depends on the data
only: a fixed size and resolution, the font matplotlib ships (DejaVu Sans), and no
timestamp or version in the PNG's metadata.

Deliveries render through `chart_png`, on one thread of its own: a chart is about 70 ms
of CPU (more with its first import), which on the event loop would hold up every other
delivery's calls, long enough for the limiter to time out and count Redis as down. One
thread, so renders never overlap: `rc_context` sets matplotlib's global settings.
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from agent.digest_content import ChartLine

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100  # 800 x 400 pixels
# Okabe & Ito's colour-blind-safe palette (black last: it reads as an axis).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLES = ("-", "--", "-.", ":")
ALT_TEXT = "Views per day over the last 14 days, one line per account"


def chart_figure(lines: Sequence[ChartLine], days: tuple[date, date]) -> Figure:
    """The chart as a matplotlib Figure (tests read its plotted data back from it)."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, DayLocator, date2num
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    first, last = days
    span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    xs = [float(date2num(_midnight(d))) for d in span]  # type: ignore[no-untyped-call]
    with rc_context({"font.family": "DejaVu Sans", "font.size": 11}):
        # Fixed margins rather than layout="constrained": its solver measures every tick
        # label on each draw (a four-line chart: 110 ms of CPU with it, 72 ms without),
        # and a digest sweep draws one chart per channel (bench/digests.py). The left
        # margin holds "999,999,999".
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        fig.subplots_adjust(left=0.12, right=0.98, top=0.9, bottom=0.2 if lines else 0.1)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for i, line in enumerate(lines):
            by_day = dict(line.points)
            # A missing day is a gap in the line, never a made-up value.
            values = [by_day.get(d, math.nan) for d in span]
            ax.plot(
                xs,
                values,
                label=line.label,
                color=PALETTE[i % len(PALETTE)],
                linestyle=STYLES[(i // len(PALETTE)) % len(STYLES)],
                marker=MARKERS[i % len(MARKERS)],
                markersize=5,
                linewidth=2.2,
            )
        # y given: matplotlib then skips placing the title clear of top tick labels (there
        # are none), which measures the axis on every draw: the same pixels, ~7 % less CPU.
        ax.set_title("Views per day", loc="left", fontsize=14, fontweight="bold", y=1.0)
        ax.set_xlim(xs[0] - 0.5, xs[-1] + 0.5)
        ax.xaxis_date()
        ax.xaxis.set_major_locator(DayLocator(interval=2))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(DateFormatter("%b %d"))  # type: ignore[no-untyped-call]
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
        ax.set_ylim(bottom=0)
        ax.grid(True, axis="y", color="#dddddd", linewidth=0.8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=10)
        if lines:
            fig.legend(loc="lower center", ncols=min(len(lines), 3), fontsize=10, frameon=False)
    return fig


_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-chart")


async def chart_png(lines: Sequence[ChartLine], days: tuple[date, date]) -> bytes:
    """`render_png`, off the event loop (on the renderer's one thread)."""
    return await asyncio.get_running_loop().run_in_executor(_RENDERER, render_png, lines, days)


def render_png(lines: Sequence[ChartLine], days: tuple[date, date]) -> bytes:
    """The chart as PNG bytes, the same bytes for the same data."""
    fig = chart_figure(lines, days)
    out = io.BytesIO()
    # No "Software" (matplotlib's version) or time in the file: data in, same bytes out.
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)
