"""benchmarks/results.png: refresh time against events, per period, full vs incremental.

Drawn from results.json by `python -m benchmarks incremental` (scripts/bench installs
matplotlib for it; nothing else needs matplotlib).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from pathlib import Path

_COLOURS: Final = {"1h": "tab:blue", "24h": "tab:orange", "7d": "tab:green"}


def plot(results: Path, output: Path) -> None:
    """Log-log lines: full recount (solid), its floor (dotted), steady refresh (dashed)."""
    runs = json.loads(results.read_text(encoding="utf-8"))["runs"]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for period in dict.fromkeys(run["period"] for run in runs):
        mine = sorted((r for r in runs if r["period"] == period), key=lambda r: r["events"])
        events = [r["events"] for r in mine]
        colour = _COLOURS.get(period, "tab:gray")
        axes.plot(events, [r["full_ms"] for r in mine], "o-", color=colour, label=f"{period} full")
        axes.plot(events, [r["floor_ms"] for r in mine], ":", color=colour, label=f"{period} floor")
        axes.plot(
            events,
            [r["steady_ms"] for r in mine],
            "s--",
            color=colour,
            label=f"{period} incremental (median)",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("events in the period")
    axes.set_ylabel("refresh time (ms)")
    axes.set_title("InfluxQL refresh against influxd 1.6.7: full recount vs incremental")
    axes.grid(visible=True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncols=3)
    figure.tight_layout()
    figure.savefig(output)
    plt.close(figure)
