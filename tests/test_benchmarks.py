"""The benchmark code (benchmarks/) at a tiny size against the real influxd, so it cannot rot.

Nothing here looks at a timing: speed is what benchmarks/results.md reports.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from benchmarks import scale
from benchmarks.approaches import APPROACHES
from benchmarks.incremental import parse_arguments as parse_incremental
from benchmarks.incremental import percentile, run_all
from benchmarks.report import render as render_sizes
from benchmarks.run import SaveResults, measure_size, parse_arguments, run_sizes
from benchmarks.scale import BulkLines, measure_home_assistant, render, run_scale, seed_bulk
from benchmarks.scale import parse_arguments as parse_scale
from benchmarks.seed import SeedBudgetExceededError, seed_database
from custom_components.ha_ingestor.api.core.models import Period

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from homeassistant.core import HomeAssistant

    from benchmarks.incremental import Run
    from benchmarks.seed import Seeded
    from tests.support.influxdb_server import InfluxDBServer

SIZE = 300


@pytest.fixture
def seeded(influxdb_server: InfluxDBServer, socket_enabled: None) -> Iterator[Seeded]:
    database = f"bench_test_{uuid.uuid4().hex[:10]}"
    yield seed_database(influxdb_server, database, SIZE, batch_size=70, budget=60)
    influxdb_server.query(f'DROP DATABASE "{database}"')


async def test_every_approach_answers_and_is_checked(
    influxdb_server: InfluxDBServer, seeded: Seeded, socket_enabled: None
) -> None:
    assert (seeded.events, seeded.schema_a, seeded.schema_b) == (SIZE, SIZE // 2, SIZE // 2)

    result = await measure_size(influxdb_server.url, seeded, runs=2, budget=5)
    measured = result.measurements

    assert list(measured) == list(APPROACHES)
    # Ours and the client-side count agree on every figure, and on the truth.
    assert result.ours_events == SIZE
    assert result.raw_events == SIZE
    assert result.ours_equals_raw is True
    # COUNT(*) counts every field value written: inflated by the fields per point.
    assert result.field_count == seeded.fields
    assert result.inflation == pytest.approx(seeded.fields_per_point)
    assert result.inflation is not None
    assert result.inflation > 2
    for name, measurement in measured.items():
        assert measurement.requests == 1, name
        assert 1 <= len(measurement.times) <= 2
        assert len(measurement.cpu_times) == len(measurement.times)
        assert measurement.body_bytes > 0
        assert measurement.traced_peak > 0
        probe = measurement.probe
        assert probe is not None
        assert probe.wire_bytes > 0
        assert probe.rss_before is not None
        assert probe.rss_peak is not None
        assert probe.rss_peak >= probe.rss_before
    # Every raw point crosses the wire; ours carries counts only.
    assert measured["raw_points"].body_bytes > 10 * measured["ours"].body_bytes

    # Our query's statements, each timed alone: four read the period, two the last 7 days.
    labels = [cost.label for cost in result.statements]
    assert len(labels) == 6
    assert sum("time in <1:00:00>" in label for label in labels) == 4
    assert sum("time in <7 days, 0:00:00>" in label for label in labels) == 2
    assert all(cost.body_bytes > 0 for cost in result.statements)

    text = render_sizes([result], influxdb_version="1.6.7", settings=[("Period", "1h")])
    assert f"| {SIZE} | {SIZE} | {SIZE} | yes | {seeded.fields} |" in text
    assert "InfluxDB | influxd 1.6.7" in text
    assert "**sum of the parts**" in text


def test_driver_skips_what_would_pass_its_budgets(
    influxdb_server: InfluxDBServer, socket_enabled: None, tmp_path: Path
) -> None:
    output = tmp_path / "results.md"
    save = SaveResults(output, "1.6.7", [])
    results = run_sizes(
        influxdb_server,
        [40, 80],
        runs=1,
        budget=1,
        seed_budget=60,
        raw_budget=0,  # any projection passes it: naive B runs at the first size only
        batch_size=20,
        probe=False,
        on_result=save,
    )

    assert [r.size for r in results] == [40, 80]
    assert list(results[0].measurements) == list(APPROACHES)
    assert "raw_points" not in results[1].measurements
    assert "naive B not run" in results[1].notes[0]
    assert results[1].ours_events == 80
    assert results[1].ours_equals_raw is None
    assert "| 80 | 80 | None | not compared |" in output.read_text(encoding="utf-8")
    databases = str(influxdb_server.query("SHOW DATABASES"))
    assert "bench_40" not in databases
    assert "bench_80" not in databases


def test_seeding_stops_at_its_budget(influxdb_server: InfluxDBServer, socket_enabled: None) -> None:
    database = f"bench_test_{uuid.uuid4().hex[:10]}"
    try:
        with pytest.raises(SeedBudgetExceededError, match="budget 0 s"):
            seed_database(influxdb_server, database, 100, batch_size=10, budget=0)
    finally:
        influxdb_server.query(f'DROP DATABASE "{database}"')


def test_command_line() -> None:
    arguments = parse_arguments(["--sizes", "1_000,20", "--runs", "3", "--no-probe"])
    assert arguments.sizes == [1000, 20]
    assert arguments.runs == 3
    assert arguments.no_probe is True
    with pytest.raises(SystemExit):
        parse_arguments(["--sizes", "0"])


REQUIRED_KEYS = {
    "events",
    "period",
    "full_ms",
    "steady_ms",
    "steady_p95_ms",
    "floor_ms",
    "identical",
    "memory_kib",
}


def test_incremental_benchmark_measures_every_period_and_checks_identity(
    influxdb_server: InfluxDBServer, socket_enabled: None, tmp_path: Path
) -> None:
    saved: list[dict[str, object]] = []
    results = run_all(
        influxdb_server,
        sizes=[120, 60],
        periods=[Period.HOUR_1, Period.DAYS_7],
        runs=1,
        steady=3,
        interval=timedelta(seconds=60),
        seed_budget=60,
        batch_size=40,
        on_result=lambda partial: saved.append(partial.as_json()),
    )

    assert [(r.period, r.events) for r in results.runs] == [
        ("1h", 60),
        ("1h", 120),
        ("7d", 60),
        ("7d", 120),
    ]
    for run in results.runs:
        # Every steady refresh was incremental (measure_period raises otherwise), and equal
        # to a plain full recount at the same moment.
        assert run.identical is True
        assert run.steady_refreshes == 3
        assert run.new_events_per_refresh >= 1
        assert min(run.full_ms, run.floor_ms, run.steady_ms, run.steady_p95_ms) > 0
        assert run.steady_p95_ms >= run.steady_ms
        assert run.memory_kib > 0
    document = results.as_json()
    runs = document["runs"]
    assert isinstance(runs, list)
    assert all(set(run) >= REQUIRED_KEYS for run in runs)
    assert len(saved) == 4
    databases = str(influxdb_server.query("SHOW DATABASES"))
    assert "bench_incr" not in databases

    matplotlib = pytest.importorskip("matplotlib")
    assert matplotlib
    from benchmarks.plot import plot  # noqa: PLC0415 - needs matplotlib

    source = tmp_path / "results.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    plot(source, tmp_path / "results.png")
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_incremental_benchmark_skips_what_does_not_fit_the_seed_budget(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    results = run_all(
        influxdb_server,
        sizes=[50, 100],
        periods=[Period.HOUR_1],
        runs=1,
        steady=1,
        interval=timedelta(seconds=60),
        seed_budget=0,
        batch_size=10,
    )
    assert results.runs == []
    assert [s["events"] for s in results.skipped] == [50, 100]
    assert "budget 0 s" in str(results.skipped[0]["reason"])


def test_incremental_command_line_and_percentile() -> None:
    arguments = parse_incremental(["--sizes", "1_000", "--periods", "24h,7d", "--steady", "4"])
    assert arguments.sizes == [1000]
    assert arguments.periods == [Period.HOURS_24, Period.DAYS_7]
    assert arguments.steady == 4
    with pytest.raises(SystemExit):
        parse_incremental(["--periods", "2h"])
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.95) == 5.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0


def test_delivery_benchmark_runs_at_a_tiny_size() -> None:
    """The delivery check's callback benchmark runs (its numbers are for benchmarks/README.md)."""
    from benchmarks.delivery import _callback_costs  # noqa: PLC0415

    costs = _callback_costs(200)
    assert set(costs) == {"bare_us", "noop_us", "ours_us", "added_us", "callback_us"}
    assert all(math.isfinite(value) for value in costs.values())


SCALE_EVENTS = 20_000


def test_scale_benchmark_writes_in_bulk_and_incremental_equals_the_recount(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    """`scripts/bench scale` at 20k events: few large writes, identical figures, goals judged."""
    saved: list[dict[str, object]] = []
    result = run_scale(
        influxdb_server,
        events=SCALE_EVENTS,
        entities=200,
        batch_lines=5_000,
        runs=1,
        steady=3,
        interval=timedelta(seconds=60),
        seed_budget=120,
        ha_refreshes=-1,
        save=lambda partial: saved.append(partial.as_json()),
    )

    # Bulk: one request per 5,000 lines, never one per point.
    assert result.seed["requests"] == SCALE_EVENTS // 5_000
    assert int(result.seed["body_bytes"]) > SCALE_EVENTS * 100
    run = result.run
    assert run is not None
    # The recount counted every seeded event; every steady refresh was incremental
    # (measure_period raises otherwise) and ended equal to a plain full recount.
    assert run.events_counted == SCALE_EVENTS
    assert run.identical is True
    assert run.steady_refreshes == 3
    assert run.full_requests == run.steady_requests == 1
    # 7 d: the first steady refresh read the prefetch, the store keeps its times.
    assert run.prefetch_ms > 0
    assert run.prefetched > 0
    assert 0 < run.steady_body_kib < run.full_body_kib
    goals = result.goals()
    assert goals["identical"] is True
    assert set(goals) >= {"steady_share", "full_over_floor", "steady_goal_met", "floor_goal_met"}
    assert saved
    assert saved[-1]["failure"] is None
    assert "counted 20,000" in render(result)
    assert "bench_scale" not in str(influxdb_server.query("SHOW DATABASES"))


def test_scale_benchmark_fails_loudly_when_the_figures_differ(
    influxdb_server: InfluxDBServer, socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = scale.measure_period

    async def differing(*args: Any, **kwargs: Any) -> Run:
        return dataclasses.replace(await real(*args, **kwargs), identical=False)

    monkeypatch.setattr(scale, "measure_period", differing)
    saved: list[dict[str, object]] = []
    with pytest.raises(AssertionError, match="differ from a plain full recount"):
        run_scale(
            influxdb_server,
            events=2_000,
            entities=20,
            batch_lines=1_000,
            runs=1,
            steady=1,
            interval=timedelta(seconds=60),
            seed_budget=60,
            ha_refreshes=-1,
            save=lambda partial: saved.append(partial.as_json()),
        )
    assert saved[-1]["failure"] == "incremental figures differ from a plain full recount"
    assert "bench_scale" not in str(influxdb_server.query("SHOW DATABASES"))


def test_bulk_lines_are_the_ingestor_schemas_on_distinct_milliseconds() -> None:
    lines = BulkLines(30)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    points = lines.between(1_000, start, start + timedelta(seconds=2))
    assert len(points) == 1_000
    stamps = [int(point.rsplit(" ", 1)[1]) for point in points]
    assert stamps == sorted(stamps)
    assert len({stamp // 1_000_000 for stamp in stamps}) == 1_000
    # Schema A (entity_id and event_type tags, `state`) and B (`domain` tag, `state_value`)
    # alternate.
    assert all("domain=" not in p and ",state=" in p for p in points[::2])
    assert all("domain=" in p and "state_value=" in p for p in points[1::2])
    assert len({p.split(" ", 1)[0] for p in points}) > 30
    with pytest.raises(ValueError, match="distinct milliseconds"):
        lines.between(3_000, start, start + timedelta(seconds=2))


async def test_scale_benchmark_home_assistant_side(
    hass: HomeAssistant, influxdb_server: InfluxDBServer, database: str
) -> None:
    """The Home Assistant part: first state from the set-up, then steady refreshes timed."""
    lines = BulkLines(50)
    now = datetime.now(UTC).replace(microsecond=0)
    written = seed_bulk(
        influxdb_server, database, 2_000, lines, now=now, batch_lines=1_000, budget=60
    )
    assert written.requests == 2
    writes: list[tuple[datetime, datetime]] = []

    async def write(start: datetime, stop: datetime) -> None:
        writes.append((start, stop))

    side = await measure_home_assistant(
        hass, influxdb_server, database, refreshes=2, write=write, pause=0.01
    )
    assert side.setup_ok is True
    assert side.request_timeout_s == 10
    assert side.first_state is not None
    assert 1_900 <= int(side.first_state) <= 2_000
    assert side.first_state_ms is not None
    assert 0 <= side.first_state_ms <= side.setup_ms + 1
    assert side.refreshes == len(writes) == 2
    assert side.steady is True
    assert len(side.refresh_loop_cpu_all_ms) == 2
    assert 0 < side.refresh_loop_cpu_ms <= side.refresh_ms


def test_scale_command_line() -> None:
    arguments = parse_scale(["--events", "20000", "--ha-refreshes", "-1"])
    assert arguments.events == 20_000
    assert arguments.entities == 1_000
    assert arguments.batch_lines == 50_000
    assert arguments.ha_refreshes == -1


def test_funnel_benchmark_parts_run_at_a_tiny_size() -> None:
    """The funnel's callback figure is finite and its report names every figure."""
    from benchmarks.delivery import _funnel_callback, _funnel_markdown  # noqa: PLC0415

    assert math.isfinite(_funnel_callback(200))
    figures = {
        "generated": "now",
        "refreshes": 1,
        "funnel_influxdb_requests_per_refresh": 1.0,
        "funnel_influxdb_answer_bytes_per_refresh": 10.0,
        "funnel_ingestor_requests_per_refresh": 0,
        "funnel_median_ms": 1.0,
        "span_points_matched": 1200,
        "check_influxdb_requests_per_refresh": 1.0,
        "check_influxdb_answer_bytes_per_refresh": 10.0,
        "callback_us": 0.25,
        "memory_mib_24h_outage": 1.0,
    }
    assert "| InfluxDB requests | 1 | 1 |" in _funnel_markdown(figures)
