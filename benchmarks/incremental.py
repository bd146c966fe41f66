"""Full recount against the steady-state incremental refresh, for periods of 1 h, 24 h and 7 d.

    python -m benchmarks incremental [--sizes 100000,1000000,10000000] [--periods 1h,24h,7d]

Per period and size, one database is written with the events spread over the period, then,
on one keep-alive session against the real influxd:

* **full**: the integration's first refresh (`InfluxQLBackend` with an empty `WindowStore`,
  i.e. the full recount), median of `--runs`;
* **floor**: the same request (the full plan's statements) posted raw, its body read but not
  decoded: what influxd itself needs, the least any client could pay;
* **steady**: `--steady` incremental refreshes, each `--interval` seconds of the data's clock
  after the previous one, with that interval's share of new events written before each (10 %
  of them stamped up to a minute late): median and p95;
* **identical**: after the last steady refresh, a full recount by the plain backend (no
  store, the refresh every version before this one sent) at the same moment must give the
  same figures, every one;
* **memory**: what the store and its backend keep after a full and three steady refreshes
  (tracemalloc: allocated and still referenced), in KiB.

Results go to `--output` (results.json, `{"runs": [...], "skipped": [...]}`) after every
size, and the plot (`benchmarks/plot.py`) to `--plot` at the end when matplotlib is there.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import math
import statistics
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from custom_components.ha_ingestor.api.core.models import Period, TrendWindow
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend, build_window_query
from custom_components.ha_ingestor.api.influx.windows import PREFETCH, WindowStore
from tests.support.events import PRECISION, EventGenerator, Schema, event_line
from tests.support.influxdb_server import running_influxdb

from .approaches import Target, query_body
from .measure import Traffic
from .report import machine_facts
from .run import influxdb_version, parse_sizes
from .seed import MARGIN, NOW, SEED, SeedBudgetExceededError, seed_database

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from custom_components.ha_ingestor.api.influx.backend import InfluxResult
    from tests.support.influxdb_server import InfluxDBServer

_LOGGER = logging.getLogger("benchmarks")
DEFAULT_SIZES: Final = (100_000, 1_000_000, 10_000_000)
DEFAULT_PERIODS: Final = (Period.HOUR_1, Period.HOURS_24, Period.DAYS_7)
# The finest trend window each period allows (at most 288 windows per period).
WINDOWS: Final = {
    Period.MINUTES_15: TrendWindow.MINUTES_1,
    Period.HOUR_1: TrendWindow.MINUTES_5,
    Period.HOURS_6: TrendWindow.MINUTES_5,
    Period.HOURS_24: TrendWindow.MINUTES_5,
    Period.DAYS_7: TrendWindow.HOUR_1,
}
HERE: Final = Path(__file__).resolve().parent
DEFAULT_OUTPUT: Final = HERE / "results.json"
DEFAULT_PLOT: Final = HERE / "results.png"
# How late the late share of new events is stamped (inside the store's 2-minute overlap).
_LATE: Final = timedelta(seconds=60)
_LATE_SHARE: Final = 10
# Seconds a benchmark refresh may take (the integration's own request timeout is shorter: a
# full recount of millions of events must still be measured, see benchmarks/scale.py).
TIMEOUT: Final = 300.0
_MS: Final = 1000.0


@dataclass(frozen=True, slots=True)
class Run:
    """One period at one size (the shape of results.json's `runs`)."""

    events: int
    period: str
    full_ms: float
    steady_ms: float
    steady_p95_ms: float
    floor_ms: float
    identical: bool
    memory_kib: float
    window: str = ""
    steady_floor_ms: float = 0.0
    new_events_per_refresh: int = 0
    steady_refreshes: int = 0
    seed_s: float = 0.0
    # What the full recount counted, and per refresh what was asked (aiohttp trace hooks:
    # requests, decoded answer bytes); steady: the most requests and the median bytes.
    events_counted: int | None = None
    full_requests: int = 0
    full_body_kib: float = 0.0
    steady_requests: int = 0
    steady_body_kib: float = 0.0
    # The steady refresh that read the prefetch (the first after the recount; 24 h and 7 d),
    # and how many times the store keeps from it.
    prefetch_ms: float = 0.0
    prefetched: int = 0


@dataclass
class Results:
    """Everything measured so far, and what was skipped and why."""

    runs: list[Run] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The results.json document."""
        return {
            "runs": [asdict(run) for run in self.runs],
            "skipped": self.skipped,
            "settings": self.settings,
        }


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of `values`."""
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


async def _timed[T](call: Callable[[], Any]) -> tuple[float, T]:
    started = time.perf_counter()
    value: T = await call()
    return (time.perf_counter() - started) * _MS, value


async def _retained(session: aiohttp.ClientSession, target: Target) -> float:
    """KiB the store and its backend keep after a full and three steady refreshes."""
    period, window = target.period, target.window
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        store = WindowStore(period, window)
        backend = InfluxQLBackend(
            session, target.url, target.database, windows=store, timeout=TIMEOUT
        )
        for step in range(4):
            await backend.async_fetch(period, window, target.now + step * timedelta(seconds=60))
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if not store.ready:
        msg = "the store took no refresh"
        raise RuntimeError(msg)
    return (after - before) / 1024


type FreshLines = Callable[[int, datetime, datetime], list[str]]


def generated_lines(seed: int) -> FreshLines:
    """New events as `EventGenerator` makes them, schema A and B alternating."""
    generator = EventGenerator(seed)

    def lines(count: int, start: datetime, stop: datetime) -> list[str]:
        fresh = generator.events_between(count, start, stop)
        return [event_line(e, (Schema.A, Schema.B)[i % 2]) for i, e in enumerate(fresh)]

    return lines


async def measure_period(  # noqa: PLR0913
    server: InfluxDBServer,
    target: Target,
    events: int,
    *,
    runs: int,
    steady: int,
    interval: timedelta,
    fresh: FreshLines | None = None,
) -> Run:
    """Full, floor, steady, identical and memory for one seeded database (module docstring).

    `fresh` makes the new events written before each steady refresh (`count`, in
    `[start, stop)`); by default `generated_lines`.
    """
    period, window = target.period, target.window
    traffic = Traffic()
    new_lines = fresh or generated_lines(SEED + 1)
    async with aiohttp.ClientSession(trace_configs=[traffic.config()]) as session:

        async def full() -> InfluxResult:
            backend = InfluxQLBackend(
                session,
                target.url,
                target.database,
                windows=WindowStore(period, window),
                timeout=TIMEOUT,
            )
            return await backend.async_fetch(period, window, target.now)

        full_query, _names = build_window_query(
            WindowStore(period, window).plan(target.now), period
        )

        async def raw(query: str) -> bytes:
            return await query_body(session, target, query, chunked="true")

        traffic.reset()
        counted = (await full()).events.events_in_period  # warm-up
        full_traffic = (traffic.requests, traffic.body_bytes)
        full_ms = [(await _timed(full))[0] for _ in range(max(runs, 1))]
        floor_ms = [(await _timed(lambda: raw(full_query)))[0] for _ in range(max(runs, 1))]
        memory_kib = await _retained(session, target)

        store = WindowStore(period, window)
        backend = InfluxQLBackend(
            session, target.url, target.database, windows=store, timeout=TIMEOUT
        )
        await backend.async_fetch(period, window, target.now)
        per_refresh = max(1, round(events * (interval / period.duration)))
        now = target.now
        steady_ms: list[float] = []
        steady_floor: list[float] = []
        steady_traffic: list[tuple[int, int]] = []
        prefetch_ms = 0.0
        result: InfluxResult | None = None
        for _ in range(steady):
            later = now + interval
            late = per_refresh // _LATE_SHARE
            lines = new_lines(per_refresh - late, now, later) + new_lines(late, now - _LATE, now)
            await asyncio.to_thread(server.write, target.database, lines, PRECISION)
            plan = store.plan(later)
            query, _names = build_window_query(plan, period)
            traffic.reset()
            elapsed, result = await _timed(lambda at=later: backend.async_fetch(period, window, at))
            steady_traffic.append((traffic.requests, traffic.body_bytes))
            if store.recounted:
                msg = "a steady refresh recounted: the benchmark would measure the wrong thing"
                raise RuntimeError(msg)
            steady_ms.append(elapsed)
            if any(part.name == PREFETCH for part in plan.parts):
                prefetch_ms = elapsed
            steady_floor.append((await _timed(lambda q=query: raw(q)))[0])
            now = later
        plain = InfluxQLBackend(session, target.url, target.database, timeout=TIMEOUT)
        recount = await plain.async_fetch(period, window, now)
    return Run(
        events=events,
        period=period.value,
        window=window.value,
        full_ms=round(statistics.median(full_ms), 2),
        floor_ms=round(statistics.median(floor_ms), 2),
        steady_ms=round(statistics.median(steady_ms), 2) if steady_ms else 0.0,
        steady_p95_ms=round(percentile(steady_ms, 0.95), 2) if steady_ms else 0.0,
        steady_floor_ms=round(statistics.median(steady_floor), 2) if steady_floor else 0.0,
        identical=result is not None and result.events == recount.events,
        memory_kib=round(memory_kib, 1),
        new_events_per_refresh=per_refresh,
        steady_refreshes=len(steady_ms),
        events_counted=counted,
        full_requests=full_traffic[0],
        full_body_kib=round(full_traffic[1] / 1024, 1),
        steady_requests=max((r for r, _b in steady_traffic), default=0),
        steady_body_kib=round(statistics.median(b for _r, b in steady_traffic) / 1024, 1)
        if steady_traffic
        else 0.0,
        prefetch_ms=round(prefetch_ms, 2),
        prefetched=store.prefetched,
    )


def run_all(  # noqa: PLR0913
    server: InfluxDBServer,
    *,
    sizes: Sequence[int],
    periods: Sequence[Period],
    runs: int,
    steady: int,
    interval: timedelta,
    seed_budget: float,
    batch_size: int = 5_000,
    on_result: Callable[[Results], None] | None = None,
) -> Results:
    """Every period at every size, smallest first.

    A size that does not fit the seed budget is skipped with every larger one of its period.
    """
    results = Results()
    for period in periods:
        too_big = False
        for size in sorted(sizes):
            if too_big:
                results.skipped.append(
                    {"events": size, "period": period.value, "reason": "a smaller size did not fit"}
                )
                continue
            fits = (period.duration - 2 * MARGIN) // timedelta(milliseconds=1)
            if size > fits:
                # Every event has its own millisecond (seed.py): no overwritten points.
                results.skipped.append(
                    {
                        "events": size,
                        "period": period.value,
                        "reason": f"more events than the period's {fits:,} milliseconds",
                    }
                )
                too_big = True
                continue
            database = f"bench_incr_{period.value}_{size}"
            _LOGGER.info("%s events in %s: writing", f"{size:,}", period.value)
            try:
                seeded = seed_database(
                    server, database, size, period=period, budget=seed_budget, batch_size=batch_size
                )
            except SeedBudgetExceededError as err:
                server.query(f'DROP DATABASE "{database}"')
                results.skipped.append({"events": size, "period": period.value, "reason": str(err)})
                too_big = True
                continue
            target = Target(server.url, database, NOW, period, WINDOWS[period])
            run = asyncio.run(
                measure_period(server, target, size, runs=runs, steady=steady, interval=interval)
            )
            run = Run(**{**asdict(run), "seed_s": round(seeded.seconds, 1)})
            _LOGGER.info(
                "%s events in %s: full %.1f ms (floor %.1f), steady %.1f ms (p95 %.1f), %s",
                f"{size:,}",
                period.value,
                run.full_ms,
                run.floor_ms,
                run.steady_ms,
                run.steady_p95_ms,
                "identical" if run.identical else "DIFFERENT",
            )
            results.runs.append(run)
            server.query(f'DROP DATABASE "{database}"')
            if on_result is not None:
                on_result(results)
    return results


def _periods(text: str) -> list[Period]:
    try:
        return [Period(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def add_measure_arguments(
    parser: argparse.ArgumentParser, *, runs: int, seed_budget: float
) -> None:
    """The options of `measure_period` and of writing its data set (also `scale`'s)."""
    parser.add_argument("--runs", type=int, default=runs, help="timed full refreshes (and floors)")
    parser.add_argument("--steady", type=int, default=20, help="timed incremental refreshes")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between refreshes")
    parser.add_argument(
        "--seed-budget", type=float, default=seed_budget, help="seconds to write one data set"
    )


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see `--help`)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks incremental",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES))
    parser.add_argument("--periods", type=_periods, default=list(DEFAULT_PERIODS))
    add_measure_arguments(parser, runs=5, seed_budget=180.0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, write results.json and (with matplotlib) the plot."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def save(results: Results) -> None:
        arguments.output.write_text(
            json.dumps(results.as_json(), indent=2) + "\n", encoding="utf-8"
        )

    with running_influxdb() as server:
        settings = {
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": dict(machine_facts(influxdb_version(server.url))),
            "interval_s": arguments.interval,
            "late_share": f"1 in {_LATE_SHARE} new events stamped {_LATE.seconds} s late",
            "trend_windows": {p.value: WINDOWS[p].value for p in arguments.periods},
        }

        def progress(partial: Results) -> None:
            partial.settings = settings
            save(partial)

        results = run_all(
            server,
            sizes=arguments.sizes,
            periods=arguments.periods,
            runs=arguments.runs,
            steady=arguments.steady,
            interval=timedelta(seconds=arguments.interval),
            seed_budget=arguments.seed_budget,
            on_result=progress,
        )
        results.settings = settings
        save(results)
    _LOGGER.info("wrote %s", arguments.output)
    try:
        from .plot import plot  # noqa: PLC0415 - matplotlib only where the plot is drawn
    except ImportError:
        _LOGGER.warning("matplotlib is not installed: no plot (scripts/bench installs it)")
        return 0
    plot(arguments.output, arguments.plot)
    _LOGGER.info("wrote %s", arguments.plot)
    return 0
