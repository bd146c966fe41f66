"""The soak's verdict: a summary of the driver's results, and benchmarks/soak.{json,md,png}.

`summarize` is pure (tests/test_soak.py reads the same numbers the report prints); `plot`
needs matplotlib, which scripts/soak installs on demand like scripts/bench.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from tests.support.soak.measure import pooled_slope_per_hour

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

# The first minutes of each Home Assistant process are its warm-up: caches, the first full
# recount, the recorder's first commits.
WARMUP_S: Final = 300.0
SHORT_WARMUP_S: Final = 30.0
RSS_GOAL_MIB_PER_HOUR: Final = 2.0


def _warm(
    samples: Sequence[Mapping[str, Any]], warmup: float
) -> dict[int, list[tuple[float, float]]]:
    groups: dict[int, list[tuple[float, float]]] = {}
    for sample in samples:
        if sample["rss_mib"] is None or sample["since_start"] < warmup:
            continue
        groups.setdefault(sample["incarnation"], []).append((sample["t"], sample["rss_mib"]))
    return groups


def rss_growth(results: Mapping[str, Any]) -> dict[str, Any]:
    """RSS growth after warm-up in MiB/hour: pooled over the processes, and each alone."""
    warmup = WARMUP_S if results["minutes"] >= 30 else SHORT_WARMUP_S
    groups = _warm(results["samples"], warmup)
    pooled = pooled_slope_per_hour(list(groups.values()))
    each = {
        str(n): {
            "samples": len(points),
            "minutes": round((points[-1][0] - points[0][0]) / 60, 1) if points else 0.0,
            "first_mib": points[0][1] if points else None,
            "last_mib": points[-1][1] if points else None,
            "mib_per_hour": pooled_slope_per_hour([points]),
        }
        for n, points in groups.items()
    }
    return {"warmup_s": warmup, "mib_per_hour": pooled, "per_process": each}


def _spread(samples: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
    values = [s[key] for s in samples if s.get(key) is not None]
    if not values:
        return {"min": None, "max": None, "last": None}
    return {"min": min(values), "max": max(values), "last": values[-1]}


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers issue 18 asks for, from the driver's results."""
    checkpoints = results["checkpoints"]
    episodes = results["episodes"]
    recorder = results.get("recorder")
    hours = max(results["ran_s"], 1.0) / 3600
    rows_per_day = None if recorder is None else round(recorder["total"] / hours * 24)
    attribute_rows = None if recorder is None else recorder["attribute_only"]
    refreshes = results["ran_s"] / results["update_interval_s"]
    # An attribute that changes at every refresh would write about one row per refresh.
    every_refresh = (
        []
        if recorder is None
        else sorted(
            entity
            for entity, count in recorder["attribute_only_by_entity"].items()
            if count >= refreshes / 2
        )
    )
    samples = results["samples"]
    per_minute = sorted((recorder or {}).get("per_minute") or [])
    median_minute = per_minute[len(per_minute) // 2] if per_minute else None
    return {
        "rss": rss_growth(results),
        "tracebacks": results["log"]["tracebacks"],
        "our_tracebacks": results["log"]["our_tracebacks"],
        "log_levels": results["log"]["levels"],
        "our_log_levels": results["log"]["ours"],
        "checkpoints": len(checkpoints),
        "checkpoints_right": sum(c["right"] for c in checkpoints),
        "figures_checked": sum(c["checked"] for c in checkpoints),
        "episodes": len(episodes),
        "episodes_logged_once_each_way": sum(e["logged_once_each_way"] for e in episodes),
        # Faults the integration logged nothing about (a service's status or a repair tells).
        "episodes_silent": sorted({e["kind"] for e in episodes if not e["down"] and not e["up"]}),
        "recorder_rows": None if recorder is None else recorder["total"],
        "recorder_rows_per_day": rows_per_day,
        # The median minute of the run, as a day: the footprint between faults.
        "recorder_rows_per_day_median_minute": (
            None if median_minute is None else median_minute * 1440
        ),
        "recorder_attribute_only_rows": attribute_rows,
        "recorder_changed_attributes": None if recorder is None else recorder["changed_attributes"],
        "entities_with_a_row_every_refresh": every_refresh,
        "fds": _spread(samples, "fds"),
        "tasks": _spread(samples, "tasks"),
        "timers": _spread(samples, "timers"),
        "timers_ours": _spread(samples, "timers_ours"),
        "errors": results["errors"],
    }


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(results: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """benchmarks/soak.md."""
    rss = summary["rss"]
    lines = [
        "# Soak",
        "",
        (
            f"`scripts/soak --minutes {results['minutes']:g} --revision {results['revision']}`:"
            f" {results['ran_s'] / 60:.1f} minutes, refresh every {results['update_interval_s']} s,"
            f" delivery check on, {results['incarnations']} Home Assistant processes"
            " (restarts are part of the schedule)."
        ),
        "",
        "| Goal | Result |",
        "|---|---|",
        (
            f"| RSS growth after {rss['warmup_s'] / 60:g} min warm-up < {RSS_GOAL_MIB_PER_HOUR:g}"
            f" MiB/h | {_fmt(rss['mib_per_hour'])} MiB/h (pooled over the processes) |"
        ),
        (
            f"| No traceback | {summary['tracebacks']} in the log"
            f" ({summary['our_tracebacks']} after a line of ours) |"
        ),
        (
            f"| Each outage logged once each way | {summary['episodes_logged_once_each_way']}"
            f" of {summary['episodes']} faults (nothing logged, either way:"
            f" {', '.join(summary['episodes_silent']) or 'none'}) |"
        ),
        (
            f"| Every checkpoint right | {summary['checkpoints_right']} of"
            f" {summary['checkpoints']} ({summary['figures_checked']} figures) |"
        ),
        (
            f"| Recorder rows of our entities | {summary['recorder_rows']} in the run,"
            f" {summary['recorder_rows_per_day']} per day"
            f" ({summary['recorder_rows_per_day_median_minute']} per day at the median minute) |"
        ),
        (
            f"| No row from an attribute that changes every refresh |"
            f" {summary['recorder_attribute_only_rows']} attribute-only rows; entities with one"
            f" every refresh: {', '.join(summary['entities_with_a_row_every_refresh']) or 'none'} |"
        ),
        "",
        "## Per Home Assistant process (after warm-up)",
        "",
        "| Process | Samples | Minutes | RSS first (MiB) | RSS last (MiB) | MiB/h |",
        "|---|---|---|---|---|---|",
    ]
    for n, each in rss["per_process"].items():
        lines.append(
            f"| {n} | {each['samples']} | {each['minutes']} | {_fmt(each['first_mib'], 1)}"
            f" | {_fmt(each['last_mib'], 1)} | {_fmt(each['mib_per_hour'])} |"
        )
    lines += [
        "",
        (
            f"Open fds {summary['fds']['min']}..{summary['fds']['max']}, asyncio tasks"
            f" {summary['tasks']['min']}..{summary['tasks']['max']}, timers"
            f" {summary['timers']['min']}..{summary['timers']['max']} (of ha_ingestor:"
            f" {summary['timers_ours']['min']}..{summary['timers_ours']['max']})."
        ),
        (
            f"Log lines by level: {summary['log_levels']};"
            f" of ha_ingestor: {summary['our_log_levels']}."
        ),
        "",
        "## Faults",
        "",
        "| At (s) | Fault | Logged going down | Logged coming back | Once each way |",
        "|---|---|---|---|---|",
    ]
    for episode in results["episodes"]:
        down = "<br>".join(episode["down"]) or "nothing"
        up = "<br>".join(episode["up"]) or "nothing"
        lines.append(
            f"| {episode['started']:.0f} | {episode['kind']} | {down} | {up}"
            f" | {'yes' if episode['logged_once_each_way'] else 'NO'} |"
        )
    wrong = [c for c in results["checkpoints"] if not c["right"]]
    lines += ["", "## Checkpoints that were wrong", ""]
    lines += [f"- {c['t']:.0f} s after {c['after']}: {'; '.join(c['mismatches'])}" for c in wrong]
    if not wrong:
        lines.append("None.")
    if summary["errors"]:
        lines += ["", "## Driver errors", "", *(f"- {e}" for e in summary["errors"])]
    return "\n".join(lines) + "\n"


def plot(results: Mapping[str, Any], output: Path) -> None:
    """RSS, tasks and timers over the run; faults shaded."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    samples = results["samples"]
    minutes = [s["t"] / 60 for s in samples]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), dpi=110, sharex=True)
    top.plot(minutes, [s["rss_mib"] for s in samples], ".-", color="tab:blue", label="RSS (MiB)")
    top.set_ylabel("RSS (MiB)")
    bottom.plot(minutes, [s["tasks"] for s in samples], ".-", color="tab:orange", label="tasks")
    bottom.plot(minutes, [s["timers"] for s in samples], ".-", color="tab:green", label="timers")
    bottom.plot(minutes, [s["fds"] for s in samples], ".-", color="tab:purple", label="open fds")
    bottom.set_ylabel("count")
    bottom.set_xlabel("minutes")
    for episode in results["episodes"]:
        for axes in (top, bottom):
            axes.axvspan(
                episode["started"] / 60,
                max(episode["ended"], episode["started"] + 5) / 60,
                color="tab:red",
                alpha=0.12,
            )
    top.set_title("Home Assistant under the soak's faults (shaded)")
    for axes in (top, bottom):
        axes.grid(visible=True, alpha=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output)
    plt.close(figure)


def write(results: Mapping[str, Any], out: Path, *, with_plot: bool = True) -> dict[str, Any]:
    """soak.json (results and summary), soak.md, and soak.png beside it; the summary."""
    summary = summarize(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"summary": summary, **results}, indent=1, default=str) + "\n",
        encoding="utf-8",
    )
    out.with_suffix(".md").write_text(markdown(results, summary), encoding="utf-8")
    if with_plot:
        plot(results, out.with_suffix(".png"))
    return summary
