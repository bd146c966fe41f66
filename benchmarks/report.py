"""benchmarks/results.md: the measured figures, the machine they came from, the checks."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .measure import Measurement
    from .seed import Seeded
    from .statements import StatementCost

LABELS: Final = {
    "ours": "ours: `InfluxQLBackend.async_fetch` (one multi-statement request)",
    "count_every_field": "naive A: `SELECT COUNT(*)` (the Admin API's count)",
    "raw_points": "naive B: `SELECT *`, counted in Python",
}
_KIB: Final = 1024.0


@dataclass
class SizeResult:
    """Everything measured at one volume."""

    size: int
    seeded: Seeded | None = None
    skipped: str | None = None
    measurements: dict[str, Measurement] = field(default_factory=dict)
    statements: list[StatementCost] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def answer(self, name: str) -> object:
        """The checked (warm-up) answer of approach `name`, None when it was not measured."""
        measured = self.measurements.get(name)
        return None if measured is None else measured.answer

    @property
    def ours_events(self) -> int | None:
        """Events in period as our refresh counted them."""
        return getattr(self.answer("ours"), "events_in_period", None)

    @property
    def raw_events(self) -> int | None:
        """Events in period as the raw-points refresh counted them."""
        return getattr(self.answer("raw_points"), "events_in_period", None)

    @property
    def ours_equals_raw(self) -> bool | None:
        """Every figure of ours equals the raw-points figures (None: not compared)."""
        if "ours" not in self.measurements or "raw_points" not in self.measurements:
            return None
        return self.answer("ours") == self.answer("raw_points")

    @property
    def field_count(self) -> int | None:
        """The inflated `COUNT(*)` total."""
        value = self.answer("count_every_field")
        return value if isinstance(value, int) else None

    @property
    def inflation(self) -> float | None:
        """`COUNT(*)` total over the real number of events."""
        if self.field_count is None or self.seeded is None or not self.seeded.events:
            return None
        return self.field_count / self.seeded.events


def machine_facts(influxdb_version: str | None) -> list[tuple[str, str]]:
    """What the numbers depend on, as (name, value) rows."""
    model = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / _KIB / _KIB:.1f} GiB"
                break
    except OSError:
        pass
    return [
        ("Date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("CPU", f"{model}, {os.cpu_count()} cores (influxd and the client share them)"),
        ("Memory", memory),
        ("OS", platform.platform()),
        ("Python", sys.version.split()[0]),
        ("aiohttp", metadata.version("aiohttp")),
        ("InfluxDB", f"influxd {influxdb_version or 'unknown'} on 127.0.0.1 (loopback)"),
        (
            "Load average when written",
            " / ".join(f"{value:.2f}" for value in os.getloadavg())
            + " (1 / 5 / 15 min; other work on the machine shows here)",
        ),
    ]


def size_text(count: float) -> str:
    """Bytes for people (binary units)."""
    for unit in ("B", "KiB", "MiB"):
        if abs(count) < _KIB:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= _KIB
    return f"{count:.2f} GiB"


def duration_text(seconds: float) -> str:
    """Seconds for people."""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def _optional_size(count: int | None) -> str:
    return "n/a" if count is None else size_text(count)


def _answer_text(result: SizeResult, name: str) -> str:
    if name == "count_every_field":
        return f'{result.field_count:,} "events" (x{result.inflation:.2f})'
    counted = result.ours_events if name == "ours" else result.raw_events
    return f"{counted:,} events" if counted is not None else "n/a"


def _cost_rows(results: list[SizeResult]) -> list[str]:
    rows = [
        (
            "| events | approach | median | fastest - slowest (timed runs) | client CPU "
            "| requests | body (decoded) | on the wire | Python peak (tracemalloc) "
            "| RSS growth (peak RSS) | answer |"
        ),
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for name, measured in result.measurements.items():
            fastest, slowest = measured.spread
            probe = measured.probe
            rss = "n/a"
            wire = "n/a"
            if probe is not None:
                wire = size_text(probe.wire_bytes)
                rss = f"{_optional_size(probe.rss_growth)} ({_optional_size(probe.rss_peak)})"
                if not probe.peak_reset:
                    rss += " (peak not reset)"
            rows.append(
                f"| {result.size:,} | {LABELS[name]} | {duration_text(measured.median)} "
                f"| {duration_text(fastest)} - {duration_text(slowest)} ({len(measured.times)}) "
                f"| {duration_text(measured.cpu_median)} | {measured.requests} "
                f"| {size_text(measured.body_bytes)} | {wire} "
                f"| {size_text(measured.traced_peak)} | {rss} | {_answer_text(result, name)} |"
            )
    return rows


def _statement_rows(results: list[SizeResult]) -> list[str]:
    rows = [
        "| events | statement (sent alone) | median | body (decoded) |",
        "|---:|---|---:|---:|",
    ]
    for result in results:
        if not result.statements:
            continue
        rows.extend(
            f"| {result.size:,} | `{cost.label}` | {duration_text(cost.median)} "
            f"| {size_text(cost.body_bytes)} |"
            for cost in result.statements
        )
        parts = sum(cost.median for cost in result.statements)
        whole = result.measurements.get("ours")
        rows.append(
            f"| {result.size:,} | **sum of the parts** (the whole request: "
            f"{'n/a' if whole is None else duration_text(whole.median)}) "
            f"| {duration_text(parts)} | |"
        )
    return rows


def _ratio(result: SizeResult, key: str) -> str:
    ours = result.measurements.get("ours")
    raw = result.measurements.get("raw_points")
    if ours is None or raw is None:
        return "n/a"
    if key == "time":
        return f"x{raw.median / ours.median:,.0f}"
    return f"x{raw.body_bytes / ours.body_bytes:,.0f}"


def _check(value: bool | None) -> str:  # noqa: FBT001
    return {True: "yes", False: "**NO**", None: "not compared"}[value]


def render(
    results: list[SizeResult],
    *,
    influxdb_version: str | None,
    settings: list[tuple[str, str]],
) -> str:
    """The whole results.md."""
    lines = [
        "# Refresh cost against data volume (generated)",
        "",
        (
            "Written by `scripts/bench` (`python -m benchmarks`); do not edit by hand, run it "
            "again. How to read it: `benchmarks/README.md`."
        ),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in machine_facts(influxdb_version)),
        "",
        "## Settings",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in settings),
        "",
        "## Data sets",
        "",
        (
            "| events in the period | schema A / B points | fields per point | field values "
            "| generate + write | points/s |"
        ),
        "|---:|---|---:|---:|---:|---:|",
    ]
    for result in results:
        seeded = result.seeded
        if seeded is None:
            lines.append(f"| {result.size:,} | skipped: {result.skipped} | | | | |")
            continue
        lines.append(
            f"| {seeded.events:,} | {seeded.schema_a:,} / {seeded.schema_b:,} "
            f"| {seeded.fields_per_point:.2f} | {seeded.fields:,} "
            f"| {duration_text(seeded.seconds)} | {seeded.events / seeded.seconds:,.0f} |"
        )
    lines += ["", "## Refresh cost", "", *_cost_rows(results), ""]
    lines += [
        "## Correctness",
        "",
        (
            "| events written | ours counted | naive B counted | ours == naive B (every figure) "
            "| naive A total | naive A / events | naive A == field values written "
            "| naive B / ours, time | naive B / ours, body bytes |"
        ),
        "|---:|---:|---:|---|---:|---:|---|---:|---:|",
    ]
    for result in results:
        if result.seeded is None:
            continue
        seeded = result.seeded
        fields_match = None if result.field_count is None else result.field_count == seeded.fields
        lines.append(
            f"| {seeded.events:,} | {result.ours_events} | {result.raw_events} "
            f"| {_check(result.ours_equals_raw)} | {result.field_count} "
            f"| {'n/a' if result.inflation is None else f'{result.inflation:.2f}'} "
            f"| {_check(fields_match)} "
            f"| {_ratio(result, 'time')} | {_ratio(result, 'bytes')} |"
        )
    if any(result.statements for result in results):
        lines += ["", "## Our refresh, statement by statement", "", *_statement_rows(results)]
    notes = [
        f"- {result.size:,} events: {note}"
        for result in results
        for note in ([f"skipped ({result.skipped})"] if result.skipped else []) + result.notes
    ]
    if notes:
        lines += ["", "## Skipped or cut short", "", *notes]
    return "\n".join(lines) + "\n"
