"""10 million events over 7 days from 1,000 entities: bulk seed, recount, steady refresh, HA.

    python -m benchmarks scale [--events 10000000] [--entities 1000] [--batch-lines 50000]

One database on a real influxd, then:

1. **seed**: `--events` events over the 7-day period ending at the run's start (the real
   clock, so the Home Assistant part reads the same data), from `--entities` entities, schema
   A and B alternating, every point on its own millisecond. Written in bulk: `--batch-lines`
   lines per `/write` request, generated batch by batch while the previous one is written
   (`seed.write_batches`: at most three batches in memory). Each entity behaves like one of
   `tests/support/events.py`'s entities (its schema A and B points are built by that module);
   to generate millions of lines quickly, every entity has a few complete points made once,
   re-stamped per event (`BulkLines`): the field values repeat, the schema does not change.
2. **recount and steady refresh**: `incremental.measure_period` on that database (full
   recount median of `--runs`, its floor, `--steady` incremental refreshes `--interval`
   seconds of the data's clock apart with that interval's share of new events written
   before each, kept memory), plus requests and answer bytes per refresh. The full recount
   must count every seeded event and the last incremental figures must equal a plain full
   recount at the same moment: otherwise the run fails (exit status 1) after saving. The
   first steady refresh reads the prefetch: its time is reported apart, and the mean of an
   hour's refreshes (59 steady, 1 with the prefetch) beside the median.
3. **where the steady time goes**: one more steady refresh's plan, each statement timed
   alone, and each counting statement once per field (`state`, `state_value`), then the
   prefetch's statement (read by the first steady refresh after each recount) and the
   leaving slice it saves reading (what a store without the prefetch sends); the TSM files
   of the database after seeding and after measuring (with `--settle`, influxd first gets up
   to that many seconds to finish compacting the bulk write, as an old database would be).
4. **Home Assistant**: a real Home Assistant core in this process
   (pytest-homeassistant-custom-component's `async_test_home_assistant`; on the
   integration's path only zeroconf's DNS resolver is replaced, by aiohttp's, as in the
   tests) with the integration's entry on that database (period 7 d, trend window 1 h): time
   from the entry's set-up to its first `events_in_period` state, then `--ha-refreshes`
   coordinator refreshes a second apart (the data set's rate of new events written before
   each, on the real clock). **Loop CPU** is `time.thread_time()` of the event-loop thread
   from the refresh's start to its end: everything the loop ran in that span (the
   integration's code, aiohttp's reads, JSON decoding, HA's state writes), nothing of other
   threads or of influxd; background tasks are drained before each span, so that is what
   the refresh costs the loop. If the entry gets no first state or no incremental refresh with
   the product's InfluxDB request timeout, a second pass runs with `--what-if-timeout`
   (patched into the entry's statistics backend, and labelled so in the results).

Results go to `--output` (results-10m.json) and `--markdown` (results-10m.md).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import random
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from unittest.mock import patch

import aiohttp

from custom_components.ha_ingestor.api.core.models import Period
from custom_components.ha_ingestor.api.influx.influxql import (
    InfluxQLBackend,
    _event_counts,  # the counting of both schemas' fields, for the per-field diagnostic
    build_window_query,
)
from custom_components.ha_ingestor.api.influx.windows import LEAVE, PREFETCH, WindowStore
from tests.support.events import (
    DEFAULT_ENTITIES,
    EventGenerator,
    Schema,
    event_line,
    to_ns,
)
from tests.support.influxdb_server import running_influxdb

from .approaches import Target
from .incremental import TIMEOUT, WINDOWS, add_measure_arguments, measure_period, percentile
from .report import machine_facts
from .run import influxdb_version
from .seed import SEED, SeedBudgetExceededError, slice_bounds, write_batches
from .statements import statement_costs

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

    from homeassistant.core import HomeAssistant

    from custom_components.ha_ingestor.api.influx.windows import Plan
    from tests.support.events import EntitySpec
    from tests.support.influxdb_server import InfluxDBServer

    from .incremental import Run
    from .seed import Written

_LOGGER = logging.getLogger("benchmarks")
DEFAULT_EVENTS: Final = 10_000_000
DEFAULT_ENTITY_COUNT: Final = 1_000
BATCH_LINES: Final = 50_000
PERIOD: Final = Period.DAYS_7
# A batch of 50,000 mixed lines is about 30 MB (schema B carries two state reprs); influxd's
# default limit is 25 MB.
MAX_BODY: Final = 256 * 2**20
HERE: Final = Path(__file__).resolve().parent
DEFAULT_OUTPUT: Final = HERE / "results-10m.json"
DEFAULT_MARKDOWN: Final = HERE / "results-10m.md"
# Complete points per entity and schema that the bulk lines re-stamp.
_VARIANTS: Final = 4
_NS_PER_MS: Final = 1_000_000
_MS: Final = 1000.0
# The goals: steady refresh at most 1 % of the full recount, recount within 1.2x floor.
STEADY_GOAL: Final = 0.01
FLOOR_GOAL: Final = 1.2


def bench_entities(count: int) -> tuple[EntitySpec, ...]:
    """`count` entities, each behaving like one of `DEFAULT_ENTITIES` in turn, numbered."""
    return tuple(
        replace(spec, entity_id=f"{spec.entity_id}_{index:04d}")
        for index, spec in zip(range(count), itertools.cycle(DEFAULT_ENTITIES), strict=False)
    )


class BulkLines:
    """Line protocol for millions of events: complete points per entity, re-stamped.

    Each entity gets `_VARIANTS` consecutive events from `EventGenerator`, turned into schema
    A and schema B points by `event_line`; a bulk point is one of them with a new timestamp
    (schema A keeps a sub-millisecond part, schema B is cut to the millisecond, as the
    writers do). Entities are drawn by their weights; the order of the points alternates
    schema A and B.
    """

    def __init__(self, entities: int, seed: int = SEED) -> None:
        """Build the points of `entities` entities."""
        if entities < 1:
            msg = "need at least one entity"
            raise ValueError(msg)
        specs = bench_entities(entities)
        start = datetime(2025, 11, 1, tzinfo=UTC)
        self._heads: dict[Schema, list[tuple[str, ...]]] = {schema: [] for schema in Schema}
        for index, spec in enumerate(specs):
            events = EventGenerator(seed + index, (spec,)).events_between(
                _VARIANTS, start, start + timedelta(seconds=1)
            )
            for schema in Schema:
                self._heads[schema].append(
                    tuple(event_line(e, schema).rsplit(" ", 1)[0] + " " for e in events)
                )
        self._cumulative = list(itertools.accumulate(spec.weight for spec in specs))
        self._rng = random.Random(seed)  # noqa: S311
        self._written = 0
        self.entities = entities

    def between(self, count: int, start: datetime, stop: datetime) -> list[str]:
        """`count` points in `[start, stop)`, oldest first, each on its own millisecond."""
        first_ms = -(-to_ns(start) // _NS_PER_MS)
        span_ms = to_ns(stop) // _NS_PER_MS - first_ms
        if count < 0 or count > span_ms:
            msg = f"cannot place {count} points on distinct milliseconds in {span_ms} ms"
            raise ValueError(msg)
        rng = self._rng
        offsets = sorted(rng.sample(range(span_ms), count))
        picks = rng.choices(range(self.entities), cum_weights=self._cumulative, k=count)
        variants = rng.choices(range(_VARIANTS), k=count)
        heads_a, heads_b = self._heads[Schema.A], self._heads[Schema.B]
        parity = self._written % 2
        lines: list[str] = []
        for index, (offset, entity, variant) in enumerate(
            zip(offsets, picks, variants, strict=True)
        ):
            ns = (first_ms + offset) * _NS_PER_MS
            if (index + parity) % 2 == 0:
                lines.append(f"{heads_a[entity][variant]}{ns + rng.randrange(1000) * 1000}")
            else:
                lines.append(f"{heads_b[entity][variant]}{ns}")
        self._written += count
        return lines


def seed_bulk(  # noqa: PLR0913
    server: InfluxDBServer,
    database: str,
    count: int,
    lines: BulkLines,
    *,
    now: datetime,
    period: Period = PERIOD,
    batch_lines: int = BATCH_LINES,
    budget: float,
) -> Written:
    """Write `count` events into `[now - period, now)`, `batch_lines` lines a request."""
    if count < 1 or batch_lines < 1:
        msg = "count and batch_lines must be positive"
        raise ValueError(msg)
    batches = -(-count // batch_lines)

    def generate() -> Iterator[list[str]]:
        for batch, (low, high) in enumerate(slice_bounds(now, period, batches)):
            yield lines.between(min(batch_lines, count - batch * batch_lines), low, high)

    return write_batches(server, database, generate(), total=batches, count=count, budget=budget)


@dataclass(frozen=True, slots=True)
class HomeAssistantSide:
    """The integration in a real Home Assistant on the seeded database."""

    # The InfluxDB request timeout the entry's backend had (the product's: REQUEST_TIMEOUT).
    request_timeout_s: float
    setup_ok: bool
    setup_ms: float
    setup_loop_cpu_ms: float
    # From the entry's set-up to its first `events_in_period` state (None: none came).
    first_state_ms: float | None = None
    first_state: str | None = None
    setup_error: str | None = None
    refreshes: int = 0
    refresh_ms: float = 0.0
    refresh_p95_ms: float = 0.0
    refresh_loop_cpu_ms: float = 0.0
    refresh_loop_cpu_p95_ms: float = 0.0
    refresh_loop_cpu_max_ms: float = 0.0
    refresh_loop_cpu_all_ms: tuple[float, ...] = ()
    # Every timed refresh was incremental (the store was ready and did not recount).
    steady: bool = False


async def measure_home_assistant(  # noqa: PLR0913
    hass: HomeAssistant,
    server: InfluxDBServer,
    database: str,
    *,
    refreshes: int,
    write: Callable[[datetime, datetime], Awaitable[None]],
    pause: float = 1.0,
    request_timeout: timedelta | None = None,
) -> HomeAssistantSide:
    """Set the entry up on `database`, then time `refreshes` coordinator refreshes.

    `write(start, stop)` adds the new events of `[start, stop)` before each refresh. With
    `request_timeout`, the entry's InfluxDB backend gets that instead of the product's
    `REQUEST_TIMEOUT` (a what-if: the results say so). A set-up that fails is reported, not
    raised.
    """
    from custom_components.ha_ingestor import clients  # noqa: PLC0415
    from custom_components.ha_ingestor.const import (  # noqa: PLC0415
        CONF_PERIOD,
        CONF_TREND_WINDOW,
        REQUEST_TIMEOUT,
    )
    from tests.ha.live import entity_of, influx_data, live_entry  # noqa: PLC0415

    entry = live_entry(
        hass,
        influx_data(server, database),
        {CONF_PERIOD: PERIOD.value, CONF_TREND_WINDOW: WINDOWS[PERIOD].value},
    )
    timeout = request_timeout or REQUEST_TIMEOUT
    create = clients.create_influx_backend

    def statistics_backend(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - passed on
        # Only the statistics backend (the one keeping `windows`), not the storage one.
        if "windows" in kwargs:
            kwargs["request_timeout"] = timeout
        return create(*args, **kwargs)

    wall, started, cpu = time.time(), time.perf_counter(), time.thread_time()
    with patch.object(clients, "create_influx_backend", statistics_backend):
        set_up = await hass.config_entries.async_setup(entry.entry_id)
    setup_cpu = time.thread_time() - cpu
    setup_ms = (time.perf_counter() - started) * _MS
    if not set_up:
        await hass.config_entries.async_unload(entry.entry_id)
        return HomeAssistantSide(
            request_timeout_s=timeout.total_seconds(),
            setup_ok=False,
            setup_ms=round(setup_ms, 1),
            setup_loop_cpu_ms=round(setup_cpu * _MS, 1),
            setup_error=f"{entry.state.value}: {entry.reason}",
        )
    state = entity_of(hass, entry, "sensor", "events_in_period")
    numeric = state.state.isdigit()
    first_state_ms = (state.last_updated_timestamp - wall) * _MS
    coordinator = entry.runtime_data.coordinator
    influx = entry.runtime_data.client.influx
    store = None if influx is None else influx.windows
    walls: list[float] = []
    loop_cpu: list[float] = []
    steady = True
    previous = datetime.now(UTC)
    for _ in range(max(refreshes, 0)):
        await asyncio.sleep(pause)
        now = datetime.now(UTC)
        await write(previous, now)
        previous = now
        # Whatever else the set-up or the last refresh left to do runs outside the span.
        await hass.async_block_till_done(wait_background_tasks=True)
        started, cpu = time.perf_counter(), time.thread_time()
        await coordinator.async_refresh()
        loop_cpu.append((time.thread_time() - cpu) * _MS)
        walls.append((time.perf_counter() - started) * _MS)
        if not coordinator.last_update_success:
            msg = f"a refresh in Home Assistant failed: {coordinator.last_exception!r}"
            raise RuntimeError(msg)
        steady = steady and store is not None and store.ready and not store.recounted
    await hass.config_entries.async_unload(entry.entry_id)
    return HomeAssistantSide(
        request_timeout_s=timeout.total_seconds(),
        setup_ok=True,
        setup_ms=round(setup_ms, 1),
        first_state_ms=round(first_state_ms, 1) if numeric else None,
        first_state=state.state,
        setup_loop_cpu_ms=round(setup_cpu * _MS, 1),
        refreshes=len(walls),
        refresh_ms=round(statistics.median(walls), 2) if walls else 0.0,
        refresh_p95_ms=round(percentile(walls, 0.95), 2) if walls else 0.0,
        refresh_loop_cpu_ms=round(statistics.median(loop_cpu), 2) if loop_cpu else 0.0,
        refresh_loop_cpu_p95_ms=round(percentile(loop_cpu, 0.95), 2) if loop_cpu else 0.0,
        refresh_loop_cpu_max_ms=round(max(loop_cpu, default=0.0), 2),
        refresh_loop_cpu_all_ms=tuple(round(value, 2) for value in loop_cpu),
        steady=steady and bool(walls),
    )


async def _in_home_assistant(  # noqa: PLR0913
    server: InfluxDBServer,
    database: str,
    lines: BulkLines,
    *,
    refreshes: int,
    rate: float,
    request_timeout: timedelta | None = None,
) -> HomeAssistantSide:
    """`measure_home_assistant` in a fresh test instance of Home Assistant, stopped after."""
    from aiohttp.resolver import AsyncResolver  # noqa: PLC0415
    from homeassistant import loader  # noqa: PLC0415
    from pytest_homeassistant_custom_component.common import (  # noqa: PLC0415
        async_test_home_assistant,
    )

    async def write(start: datetime, stop: datetime) -> None:
        span_ms = (stop - start) // timedelta(milliseconds=1) - 1
        count = min(round((stop - start).total_seconds() * rate), span_ms)
        if count > 0:
            await asyncio.to_thread(server.write, database, lines.between(count, start, stop))

    # As the test plugin's `mock_zeroconf_resolver` does: aiohttp's resolver, not zeroconf's
    # (which needs the network integration); only 127.0.0.1 is ever asked for.
    dns = AsyncResolver()
    dns.real_close = dns.close  # type: ignore[attr-defined]  # what HA's test shutdown calls
    resolver = patch("homeassistant.helpers.aiohttp_client._async_make_resolver", return_value=dns)
    async with async_test_home_assistant() as hass:
        # What the `enable_custom_integrations` fixture does: load custom_components/.
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        try:
            with resolver:
                return await measure_home_assistant(
                    hass,
                    server,
                    database,
                    refreshes=refreshes,
                    write=write,
                    request_timeout=request_timeout,
                )
        finally:
            await hass.async_stop(force=True)


@dataclass
class ScaleResult:
    """Everything one scale run measured (results-10m.json)."""

    events: int
    entities: int
    seed: dict[str, Any]
    run: Run | None = None
    # The product's request timeout first; a what-if pass with a longer one if that failed.
    home_assistant: list[HomeAssistantSide] = field(default_factory=list)
    settings: dict[str, Any] | None = None
    failure: str | None = None
    # TSM files of the database after seeding, and (with a settle wait) when measured.
    tsm: dict[str, dict[str, float]] = field(default_factory=dict)
    # A steady refresh's statements, each timed alone.
    steady_statements: list[dict[str, Any]] = field(default_factory=list)

    def goals(self) -> dict[str, Any]:
        """The issue's goals against what was measured."""
        if self.run is None or not self.run.full_ms:
            return {}
        steady_share = self.run.steady_ms / self.run.full_ms
        floor_ratio = self.run.full_ms / self.run.floor_ms if self.run.floor_ms else None
        # A refresh a minute: per hour, 59 steady ones and the one that reads the prefetch.
        prefetch = self.run.prefetch_ms or self.run.steady_ms
        hour_mean = (59 * self.run.steady_ms + prefetch) / 60
        return {
            "steady_share": round(steady_share, 4),
            "hour_mean_ms": round(hour_mean, 1),
            "hour_mean_share": round(hour_mean / self.run.full_ms, 4),
            "steady_goal_met": steady_share <= STEADY_GOAL and self.run.identical,
            "full_over_floor": None if floor_ratio is None else round(floor_ratio, 3),
            "floor_goal_met": floor_ratio is not None and floor_ratio <= FLOOR_GOAL,
            "identical": self.run.identical,
        }

    def as_json(self) -> dict[str, Any]:
        """The results-10m.json document."""
        return {
            "events": self.events,
            "entities": self.entities,
            "seed": self.seed,
            "tsm": self.tsm,
            "steady_statements": self.steady_statements,
            "run": None if self.run is None else asdict(self.run),
            "home_assistant": [asdict(side) for side in self.home_assistant],
            "goals": self.goals(),
            "failure": self.failure,
            "settings": self.settings or {},
        }


def _home_assistant_rows(side: dict[str, Any]) -> list[tuple[str, str]]:
    label = f"HA, InfluxDB request timeout {side['request_timeout_s']:g} s"
    if not side["setup_ok"]:
        return [
            (
                f"{label}: entry set-up",
                (
                    f"**failed** after {side['setup_ms']:,.0f} ms ({side['setup_error']}): "
                    "no first state"
                ),
            )
        ]
    first = side["first_state"]
    if side["first_state_ms"] is None:
        reached = f"**no numeric state** ({first!r})"
    else:
        reached = f"{side['first_state_ms']:,.0f} ms (first state {int(first):,})"
    every = ", ".join(f"{value:g}" for value in side["refresh_loop_cpu_all_ms"])
    return [
        (
            f"{label}: entry set-up to first state",
            (
                f"{reached}; set-up returned after {side['setup_ms']:,.0f} ms, loop CPU "
                f"{side['setup_loop_cpu_ms']:,.0f} ms"
            ),
        ),
        (
            (
                f"{label}: refresh ({side['refreshes']}, all incremental: "
                f"{'yes' if side['steady'] else 'NO'})"
            ),
            (
                f"median {side['refresh_ms']:,.1f} ms (p95 {side['refresh_p95_ms']:,.1f}), "
                f"loop CPU median **{side['refresh_loop_cpu_ms']:,.2f} ms** (each: {every})"
            ),
        ),
    ]


def render(result: ScaleResult) -> str:
    """results-10m.md: the figures of one run, goals first."""
    document = result.as_json()
    seed, run, goals, settings = (document[k] for k in ("seed", "run", "goals", "settings"))
    rows: list[tuple[str, str]] = [
        (
            "Seed",
            (
                f"{seed['seconds']:,.0f} s, {seed['rate']:,} events/s, {seed['requests']} `/write` "
                f"requests of {seed['batch_lines']:,} lines, {seed['body_bytes'] / 2**20:,.0f} MiB "
                "of line protocol"
            ),
        ),
    ]
    for moment, files in document["tsm"].items():
        rows.append((f"TSM files {moment}", f"{files['files']} files, {files['mib']:,.0f} MiB"))
    if run:
        rows += [
            (
                f"Full recount (median of {settings.get('runs', '?')})",
                (
                    f"{run['full_ms']:,.0f} ms, {run['full_requests']} request, "
                    f"{run['full_body_kib']:,.1f} KiB answer; counted {run['events_counted']:,}"
                ),
            ),
            (
                "Its floor (same statements, raw)",
                (
                    f"{run['floor_ms']:,.0f} ms: full / floor **{goals['full_over_floor']}** "
                    f"(goal <= {FLOOR_GOAL})"
                ),
            ),
            (
                (
                    f"Steady refresh ({run['steady_refreshes']}, "
                    f"{run['new_events_per_refresh']:,} new events each)"
                ),
                (
                    f"median {run['steady_ms']:,.1f} ms, p95 {run['steady_p95_ms']:,.1f} ms (floor "
                    f"{run['steady_floor_ms']:,.1f} ms), {run['steady_requests']} request, "
                    f"{run['steady_body_kib']:,.1f} KiB answer"
                ),
            ),
            ("Steady / full", f"**{goals['steady_share']:.2%}** (goal <= {STEADY_GOAL:.0%})"),
            (
                "Prefetch (read by the first steady refresh after each recount)",
                (
                    f"that refresh {run['prefetch_ms']:,.1f} ms; {run['prefetched']:,} times kept "
                    f"({run['prefetched'] * 8 / 1024:,.0f} KiB of arrays)"
                ),
            ),
            (
                "Steady refreshes of an hour, mean (59 steady, 1 with the prefetch) / full",
                f"{goals['hour_mean_ms']:,.1f} ms, {goals['hour_mean_share']:.2%}",
            ),
            ("Identical to a plain full recount", "yes" if run["identical"] else "**NO**"),
            ("Kept memory (store and backend)", f"{run['memory_kib']:,.0f} KiB"),
        ]
    rows += [
        (
            f"Steady statement alone: `{cost['statement']}`",
            f"{cost['ms']:,.1f} ms, {cost['kib']:,.1f} KiB",
        )
        for cost in document["steady_statements"]
    ]
    for side in document["home_assistant"]:
        rows += _home_assistant_rows(side)
    machine = settings.get("machine", {})
    out = [
        f"# {result.events:,} events over 7 days, {result.entities:,} entities",
        "",
        "Generated by `scripts/bench scale` (benchmarks/scale.py); raw figures in",
        "results-10m.json; method in the module docstring of benchmarks/scale.py.",
        "",
        *([f"**FAILED: {result.failure}**", ""] if result.failure else []),
        "| What | Measured |",
        "|---|---|",
        *(f"| {what} | {measured} |" for what, measured in rows),
        "",
        "| Setting | Value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine.items()),
        *(f"| {k} | {v} |" for k, v in settings.items() if k != "machine"),
    ]
    return "\n".join(out) + "\n"


async def steady_statements(target: Target, *, runs: int = 3) -> list[dict[str, Any]]:
    """Each statement of a steady refresh's query, timed alone (where its time goes).

    A store on `target` takes a full recount and one steady refresh (the one that reads the
    prefetch), a minute apart (of the data's clock); the next refresh's plan is what is
    timed, then the prefetch's statement alone and, for comparison, the leaving slice that
    the prefetch saves reading (what a refresh without a prefetch sends).
    """
    period, window = target.period, target.window
    async with aiohttp.ClientSession() as session:
        store = WindowStore(period, window)
        backend = InfluxQLBackend(
            session, target.url, target.database, windows=store, timeout=TIMEOUT
        )
        minute = timedelta(minutes=1)
        await backend.async_fetch(period, window, target.now)
        extra = _statements_of(store.plan(target.now + minute), period, PREFETCH)
        await backend.async_fetch(period, window, target.now + minute)
        plan = store.plan(target.now + 2 * minute)
        query, _names = build_window_query(plan, period)
        extra += _statements_of(replace(plan, parts=plan.kept), period, LEAVE)
        # Diagnostic: each counting statement once per field (schema A's short `state`,
        # schema B's long `state_value`), to see what decoding which field costs.
        both = _event_counts()
        singles = [
            statement.replace(both, one)
            for statement in query.split("; ")
            if both in statement
            for one in both.split(", ")
        ]
        costs = await statement_costs(
            session, target, runs=runs, query="; ".join([query, *singles, *extra])
        )
    return [
        {
            "statement": cost.label,
            "ms": round(cost.median * _MS, 1),
            "kib": round(cost.body_bytes / 1024, 1),
        }
        for cost in costs
    ]


def _statements_of(plan: Plan, period: Period, name: str) -> list[str]:
    """The InfluxQL statements of `plan`'s part `name` (none if it has no such part)."""
    query, names = build_window_query(plan, period)
    return [s for s, n in zip(query.split("; "), names, strict=False) if n == name]


def tsm_files(server: InfluxDBServer, database: str) -> dict[str, float]:
    """How many TSM files hold `database`, and their size (influxd's compaction state)."""
    files = list((server.data_dir / "data" / database).rglob("*.tsm"))
    size = sum(path.stat().st_size for path in files if path.exists())
    return {"files": len(files), "mib": round(size / 2**20, 1)}


def settle(
    server: InfluxDBServer,
    database: str,
    budget: float,
    *,
    every: float = 10.0,
    stable: float = 90.0,
) -> None:
    """Wait (at most `budget` seconds) until influxd's compactions stop changing the TSM files.

    A database that grew over days holds few, compacted files; one bulk-written a minute ago
    holds many. Stable = the same file count for `stable` seconds (influxd compacts level by
    level, with pauses between).
    """
    deadline = time.monotonic() + budget
    checks = max(round(stable / every), 1) + 1
    seen: list[float] = []
    while time.monotonic() < deadline:
        seen.append(tsm_files(server, database)["files"])
        if len(seen) >= checks and len(set(seen[-checks:])) == 1:
            return
        time.sleep(every)


def run_scale(  # noqa: PLR0913
    server: InfluxDBServer,
    *,
    events: int,
    entities: int,
    batch_lines: int,
    runs: int,
    steady: int,
    interval: timedelta,
    seed_budget: float,
    ha_refreshes: int,
    what_if_timeout: timedelta = timedelta(seconds=120),
    settle_budget: float = 0.0,
    now: datetime | None = None,
    save: Callable[[ScaleResult], None] | None = None,
) -> ScaleResult:
    """Seed, measure, check and (with `ha_refreshes` >= 0) set Home Assistant up; drop the data.

    With `settle_budget`, influxd gets that long at most to finish compacting the bulk write
    before anything is measured (`settle`). Home Assistant runs with the product's InfluxDB
    request timeout; if that gives no first
    state or no incremental refresh, once more with `what_if_timeout` (labelled as such).

    Raises:
        SeedBudgetExceededError: writing would pass `seed_budget` (nothing measured).
        AssertionError: the recount missed seeded events or incremental and full differ
            (after `save` got the result).

    """
    now = now or datetime.now(UTC).replace(microsecond=0)
    database = f"bench_scale_{events}"
    lines = BulkLines(entities)
    _LOGGER.info("%s events, %s entities: writing", f"{events:,}", f"{entities:,}")
    try:
        written = seed_bulk(
            server, database, events, lines, now=now, batch_lines=batch_lines, budget=seed_budget
        )
        rate = events / written.seconds
        result = ScaleResult(
            events,
            entities,
            {
                "seconds": round(written.seconds, 1),
                "rate": round(rate),
                "requests": written.requests,
                "batch_lines": batch_lines,
                "body_bytes": written.body_bytes,
            },
        )
        _LOGGER.info(
            "written in %.1f s (%.0f events/s, %d requests, %.0f MiB)",
            written.seconds,
            rate,
            written.requests,
            written.body_bytes / 2**20,
        )
        result.tsm["after seeding"] = tsm_files(server, database)
        if settle_budget > 0:
            started = time.monotonic()
            settle(server, database, settle_budget)
            result.tsm[f"after {time.monotonic() - started:.0f} s of compaction"] = tsm_files(
                server, database
            )
        target = Target(server.url, database, now, PERIOD, WINDOWS[PERIOD])
        result.run = asyncio.run(
            measure_period(
                server,
                target,
                events,
                runs=runs,
                steady=steady,
                interval=interval,
                fresh=lines.between,
            )
        )
        _LOGGER.info("recount and steady: %s", result.run)
        problems = []
        if result.run.events_counted != events:
            problems.append(f"the full recount counted {result.run.events_counted} of {events}")
        if not result.run.identical:
            problems.append("incremental figures differ from a plain full recount")
        later = Target(server.url, database, now + steady * interval, PERIOD, WINDOWS[PERIOD])
        result.steady_statements = asyncio.run(steady_statements(later))
        result.tsm["after measuring"] = tsm_files(server, database)
        if problems:
            result.failure = "; ".join(problems)
            if save is not None:
                save(result)
            raise AssertionError(result.failure)
        if save is not None:
            save(result)
        for timeout in (None, what_if_timeout) if ha_refreshes >= 0 else ():
            side = asyncio.run(
                _in_home_assistant(
                    server,
                    database,
                    lines,
                    refreshes=ha_refreshes,
                    rate=events / PERIOD.duration.total_seconds(),
                    request_timeout=timeout,
                )
            )
            result.home_assistant.append(side)
            _LOGGER.info("Home Assistant: %s", side)
            if save is not None:
                save(result)
            if side.setup_ok and side.first_state_ms is not None and side.steady:
                break
    finally:
        server.query(f'DROP DATABASE "{database}"')
    return result


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see `--help`)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks scale",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--entities", type=int, default=DEFAULT_ENTITY_COUNT)
    parser.add_argument("--batch-lines", type=int, default=BATCH_LINES, help="lines per /write")
    add_measure_arguments(parser, runs=3, seed_budget=1800.0)
    parser.add_argument(
        "--ha-refreshes", type=int, default=10, help="refreshes in Home Assistant (-1: no HA)"
    )
    parser.add_argument(
        "--what-if-timeout",
        type=float,
        default=120.0,
        help="InfluxDB request timeout (s) of a second HA pass if the product's one fails",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait at most for influxd's compactions before measuring",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run it, write results-10m.json and results-10m.md; 1 if a check failed."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    with running_influxdb(max_body_size=MAX_BODY) as server:
        settings = {
            "machine": dict(machine_facts(influxdb_version(server.url))),
            "runs": arguments.runs,
            "interval_s": arguments.interval,
            "period": f"{PERIOD.value}, trend window {WINDOWS[PERIOD].value}",
        }

        def save(result: ScaleResult) -> None:
            # The load average when written, beside the rest of the machine.
            machine = dict(machine_facts(None))
            result.settings = {**settings, "machine": {**settings["machine"], **machine}}
            result.settings["machine"]["InfluxDB"] = settings["machine"]["InfluxDB"]
            arguments.output.write_text(
                json.dumps(result.as_json(), indent=2) + "\n", encoding="utf-8"
            )
            arguments.markdown.write_text(render(result), encoding="utf-8")

        try:
            run_scale(
                server,
                events=arguments.events,
                entities=arguments.entities,
                batch_lines=arguments.batch_lines,
                runs=arguments.runs,
                steady=arguments.steady,
                interval=timedelta(seconds=arguments.interval),
                seed_budget=arguments.seed_budget,
                ha_refreshes=arguments.ha_refreshes,
                what_if_timeout=timedelta(seconds=arguments.what_if_timeout),
                settle_budget=arguments.settle,
                save=save,
            )
        except (AssertionError, SeedBudgetExceededError) as err:
            _LOGGER.error("FAILED: %s", err)  # noqa: TRY400 - the message is the report
            return 1
    _LOGGER.info("wrote %s and %s", arguments.output, arguments.markdown)
    return 0
