"""The delivery check's costs: the bus callback, its memory, its InfluxDB work per refresh.

    python -m benchmarks.delivery [--events 100000] [--query-runs 7]
    python -m benchmarks.delivery --mode funnel [--query-runs 7]

Run inside the `current` environment (scripts/bench's root has Home Assistant and influxd):

    scripts/bench-delivery

1. **Callback**: a real Home Assistant core fires `--events` `state_changed` events (real
   `State` objects, 1,000 entities) without and with the check's listener; the difference per
   event is the listener's cost (target < 2 us).
2. **Memory**: 1,000 entities at 20 events/s for 24 h with InfluxDB down all day (nothing is
   ever compared, the worst case), measured with tracemalloc (target < 10 MB).
3. **InfluxDB per refresh**: a real influxd holding 60 s of that load (1,200 points, schema
   B); the query of one newly settled minute, timed, with its rows and answer size.

`--mode funnel` measures what the funnel (api/core/funnel.py) adds to each refresh and
writes `benchmarks/funnel.json` and `benchmarks/funnel.md`:

1. **Requests and bytes per refresh**: one settled span of 60 s (1,200 events of 1,000
   entities between two readings) compared on a real influxd, every HTTP request counted
   (aiohttp's trace hooks) and each answer's size read raw, beside the delivery check's own
   query of the same minute. The ingestor's totals come from the statistics snapshot: no
   request of its own.
2. **Bus callback**: `Funnel.count` per event, alone.
3. **Memory**: 1,000 entities at 20 events/s for 24 h with InfluxDB down all day and a
   reading every minute (1,440 steps, merged to 64), tracemalloc.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import aiohttp
    from homeassistant.core import Event

    from custom_components.ha_ingestor.api.core.delivery import Window

ENTITIES = [f"sensor.bench_{i:04d}" for i in range(1000)]
# Seconds between compactions, as a refresh once a minute would.
_COMPACT_EVERY = 60


def _callback_costs(events: int) -> dict[str, float]:
    from homeassistant.config_entries import ConfigEntry  # noqa: PLC0415
    from homeassistant.const import EVENT_STATE_CHANGED  # noqa: PLC0415
    from homeassistant.core import Event, HomeAssistant, State, callback  # noqa: PLC0415

    from custom_components.ha_ingestor.const import CONF_DELIVERY_CHECK, DOMAIN  # noqa: PLC0415
    from custom_components.ha_ingestor.coordinators.delivery import (  # noqa: PLC0415
        DeliveryCoordinator,
    )

    async def run() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as config_dir:
            hass = HomeAssistant(config_dir)
            entry = ConfigEntry(
                data={"url": "http://127.0.0.1:1"},
                discovery_keys={},
                domain=DOMAIN,
                minor_version=1,
                options={CONF_DELIVERY_CHECK: True},
                source="user",
                subentries_data=None,
                title="bench",
                unique_id="bench",
                version=1,
            )
            states = [State(e, "on") for e in ENTITIES]
            payloads = [{"entity_id": s.entity_id, "old_state": s, "new_state": s} for s in states]

            def fire() -> float:
                bus = hass.bus
                start = time.perf_counter()
                for i in range(events):
                    bus.async_fire_internal(EVENT_STATE_CHANGED, payloads[i % 1000])
                return time.perf_counter() - start

            def measure(listener: Callable[[Event], None]) -> float:
                stop = hass.bus.async_listen(EVENT_STATE_CHANGED, listener)
                fire()  # warm-up
                best = min(fire() for _ in range(5))
                stop()
                return best / events * 1e6

            # In a real Home Assistant `state_changed` always has listeners (recorder,
            # websocket, automations), so the Event object is built anyway: the cost added by
            # the check is ours beside a listener that does nothing.
            @callback
            def nothing(_event: Event) -> None:
                return

            # No statistics yet: nothing read from the ingestor (the funnel waits for a reading).
            no_statistics = SimpleNamespace(data=None)
            delivery = DeliveryCoordinator(hass, entry, statistics=no_statistics, backend=object())  # type: ignore[arg-type]
            fire()
            bare = min(fire() for _ in range(5)) / events * 1e6
            # Alternated, best of each: the two cores are shared, single runs are noisy.
            noop = min(measure(nothing) for _ in range(3))
            ours = min(measure(delivery._on_state_changed) for _ in range(3))  # noqa: SLF001
            # The callback alone, on real Event objects 50 ms apart (20 events/s).
            fired = time.time()
            prebuilt = [
                Event(
                    EVENT_STATE_CHANGED,
                    payloads[i % 1000],
                    time_fired_timestamp=fired + i * 0.05,
                )
                for i in range(events)
            ]
            callback_fn = delivery._on_state_changed  # noqa: SLF001

            def direct(fn: Callable[[Event], None]) -> float:
                start = time.perf_counter()
                for event in prebuilt:
                    fn(event)
                return (time.perf_counter() - start) / events * 1e6

            direct_noop = min(direct(nothing) for _ in range(5))
            direct_ours = min(direct(callback_fn) for _ in range(5))
            await hass.async_stop(force=True)
            return {
                "bare_us": bare,
                "noop_us": noop,
                "ours_us": ours,
                "added_us": ours - noop,
                "callback_us": direct_ours - direct_noop,
            }

    return asyncio.run(run())


def _memory() -> float:
    from custom_components.ha_ingestor.api.core.delivery import DeliveryCounter  # noqa: PLC0415

    start = 1_790_000_000.0
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    counter = DeliveryCounter(start, timedelta(hours=24))
    index = 0
    for second in range(24 * 3600):
        base = start + second
        for k in range(20):
            counter.count(ENTITIES[index % 1000], base + k / 20)
            index += 1
        if second % _COMPACT_EVERY == _COMPACT_EVERY - 1:
            counter.compact(base)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / 2**20


async def _raw_answer_size(
    session: aiohttp.ClientSession, url: str, window: Window, bucket: int
) -> int:
    """Bytes of InfluxDB's uncompressed answer to the delivery query of `window`."""
    from custom_components.ha_ingestor.api.influx.delivery import (  # noqa: PLC0415
        build_influxql_delivery_query,
    )

    async with session.post(
        f"{url}/query",
        data={"q": build_influxql_delivery_query(window, bucket)},
        params={"db": "bench", "epoch": "ns"},
        headers={"Accept-Encoding": "identity"},
    ) as response:
        return len(await response.read())


_STOP = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_MINUTE_POINTS = 1200


def _minute_of_points() -> list[str]:
    """The minute before `_STOP` at 20 events/s over 1,000 entities, as schema-B lines."""
    from tests.support.events import Event, Schema, event_line  # noqa: PLC0415

    return [
        event_line(
            Event(
                entity_id=ENTITIES[i % 1000],
                time=_STOP - timedelta(seconds=60) + timedelta(milliseconds=50 * i),
                state="on",
                old_state="off",
                context_id=f"ctx{i}",
            ),
            Schema.B,
        )
        for i in range(_MINUTE_POINTS)
    ]


def _influx_work(runs: int) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415

    from custom_components.ha_ingestor.api.core.delivery import (  # noqa: PLC0415
        Window,
        bucket_seconds,
    )
    from custom_components.ha_ingestor.api.influx.delivery import (  # noqa: PLC0415
        async_stored_counts,
    )
    from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend  # noqa: PLC0415
    from tests.support.influxdb_server import running_influxdb  # noqa: PLC0415

    stop = _STOP
    lines = _minute_of_points()
    bucket = bucket_seconds(timedelta(hours=1))
    window = Window(stop - timedelta(seconds=60), stop)

    async def run(url: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            backend = InfluxQLBackend(session, url, "bench")
            await async_stored_counts(backend, None, window, bucket)  # warm-up
            times = []
            counts: dict[tuple[int, str], int] = {}
            for _ in range(runs):
                start = time.perf_counter()
                counts = await async_stored_counts(backend, None, window, bucket)
                times.append(time.perf_counter() - start)
            size = await _raw_answer_size(session, url, window, bucket)
        return {
            "median_ms": statistics.median(times) * 1e3,
            "rows": len(counts),
            "points": sum(counts.values()),
            "body_kib": size / 1024,
        }

    with running_influxdb() as server:
        server.create_database("bench")
        server.write("bench", lines)
        return asyncio.run(run(server.url))


# --------------------------------------------------------------------------------------
# --mode funnel: what the funnel adds to each refresh
# --------------------------------------------------------------------------------------

_RESULTS = Path(__file__).parent


def _funnel_requests(runs: int) -> dict[str, Any]:  # noqa: PLR0915  (one scenario, its hooks)
    """One settled minute compared by the funnel, beside the delivery check's own query."""
    import aiohttp  # noqa: PLC0415

    from custom_components.ha_ingestor.api.core.delivery import (  # noqa: PLC0415
        STORED_EARLY,
        Window,
        bucket_seconds,
    )
    from custom_components.ha_ingestor.api.core.funnel import Funnel, StageTotals  # noqa: PLC0415
    from custom_components.ha_ingestor.api.influx.delivery import (  # noqa: PLC0415
        async_stored_counts,
    )
    from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend  # noqa: PLC0415
    from tests.support.influxdb_server import running_influxdb  # noqa: PLC0415

    bucket = bucket_seconds(timedelta(hours=24))
    start = (_STOP - timedelta(seconds=60)).timestamp()
    end = _STOP.timestamp()
    traffic = {"requests": 0, "bytes": 0}
    # The answers' sizes, one per query asked (the backends read bodies in bounded chunks,
    # which aiohttp's chunk hook does not see): the same query asked raw, uncompressed.
    asked: list[tuple[Window, int]] = []

    async def on_request(*_args: object) -> None:
        traffic["requests"] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request)

    async def answer_bytes(session: aiohttp.ClientSession, url: str) -> int:
        total = 0
        for window, size in asked:
            total += await _raw_answer_size(session, url, window, size)
        asked.clear()
        return total

    async def one_refresh(backend: InfluxQLBackend) -> tuple[float, int]:
        """The funnel's part of a refresh: a reading, the settled span, its query, compare."""
        funnel = Funnel()
        funnel.observe(start, StageTotals(received=0, filtered=0, processed=0, failed=0))
        for i in range(_MINUTE_POINTS):
            funnel.count(ENTITIES[i % 1000])
        totals = StageTotals(received=1190, filtered=0, processed=1180, failed=0)
        funnel.observe(end, totals)
        began = time.perf_counter()
        settled = funnel.settled(end) or (start, end)
        window = Window(*(datetime.fromtimestamp(t, UTC) - STORED_EARLY for t in settled))
        span_bucket = max(bucket, math.ceil(settled[1] - settled[0]))  # as the coordinator
        counts = await async_stored_counts(backend, None, window, span_bucket)
        asked.append((window, span_bucket))
        stored: dict[str, int] = {}
        for (_bucket, entity_id), n in counts.items():
            stored[entity_id] = stored.get(entity_id, 0) + n
        span = funnel.compare(end, stored, end, 86400.0)
        return time.perf_counter() - began, span.stored

    async def run(url: str) -> dict[str, Any]:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            backend = InfluxQLBackend(session, url, "bench")
            await one_refresh(backend)  # warm-up
            traffic.update(requests=0, bytes=0)
            times, stored = [], 0
            for _ in range(runs):
                elapsed, stored = await one_refresh(backend)
                times.append(elapsed)
            funnel_traffic = dict(traffic)
            asked[:] = asked[-runs:]
            funnel_traffic["bytes"] = await answer_bytes(session, url)
            traffic.update(requests=0, bytes=0)
            window = Window(_STOP - timedelta(seconds=60), _STOP)
            for _ in range(runs):
                await async_stored_counts(backend, None, window, bucket)
                asked.append((window, bucket))
            check_traffic = dict(traffic)
            check_traffic["bytes"] = await answer_bytes(session, url)
        return {
            "refreshes": runs,
            "funnel_influxdb_requests_per_refresh": funnel_traffic["requests"] / runs,
            "funnel_influxdb_answer_bytes_per_refresh": funnel_traffic["bytes"] / runs,
            "funnel_ingestor_requests_per_refresh": 0,
            "funnel_median_ms": statistics.median(times) * 1e3,
            "span_points_matched": stored,
            "check_influxdb_requests_per_refresh": check_traffic["requests"] / runs,
            "check_influxdb_answer_bytes_per_refresh": check_traffic["bytes"] / runs,
        }

    with running_influxdb() as server:
        server.create_database("bench")
        server.write("bench", _minute_of_points())
        return asyncio.run(run(server.url))


def _funnel_callback(events: int) -> float:
    """`Funnel.count` per event (us), on an open step, 1,000 entities."""
    from custom_components.ha_ingestor.api.core.funnel import Funnel, StageTotals  # noqa: PLC0415

    funnel = Funnel()
    funnel.observe(0.0, StageTotals())
    count = funnel.count
    best = math.inf
    for _ in range(5):
        began = time.perf_counter()
        for i in range(events):
            count(ENTITIES[i % 1000])
        best = min(best, time.perf_counter() - began)
    return best / events * 1e6


def _funnel_memory() -> float:
    """MiB the funnel holds after 24 h at 20 events/s with InfluxDB down (nothing compared)."""
    from custom_components.ha_ingestor.api.core.funnel import Funnel, StageTotals  # noqa: PLC0415

    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    funnel = Funnel()
    funnel.observe(0.0, StageTotals(received=0, filtered=0, processed=0, failed=0))
    index = 0
    for minute in range(1, 24 * 60 + 1):
        for _ in range(20 * 60):
            funnel.count(ENTITIES[index % 1000])
            index += 1
        n = index
        funnel.observe(minute * 60.0, StageTotals(received=n, filtered=0, processed=n, failed=0))
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / 2**20


def run_funnel(runs: int, events: int) -> dict[str, Any]:
    """Every funnel figure, also written to benchmarks/funnel.json and funnel.md."""
    result = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        **_funnel_requests(runs),
        "callback_us": _funnel_callback(events),
        "memory_mib_24h_outage": _funnel_memory(),
    }
    (_RESULTS / "funnel.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (_RESULTS / "funnel.md").write_text(_funnel_markdown(result), encoding="utf-8")
    return result


def _funnel_markdown(r: dict[str, Any]) -> str:
    requests = r["funnel_influxdb_requests_per_refresh"]
    answer = r["funnel_influxdb_answer_bytes_per_refresh"]
    check_requests = r["check_influxdb_requests_per_refresh"]
    check_answer = r["check_influxdb_answer_bytes_per_refresh"]
    lines = [
        "# The delivery funnel's added cost per refresh",
        "",
        (
            f"Generated {r['generated']} by `scripts/bench-delivery --mode funnel` "
            "(benchmarks/delivery.py); raw figures in [`funnel.json`](funnel.json)."
        ),
        "",
        (
            "One settled minute at 20 events/s over 1,000 entities (1,200 schema-B points on "
            f"a real influxd), {r['refreshes']} refreshes, every HTTP request counted with "
            "aiohttp's trace hooks and each answer's size read raw (uncompressed):"
        ),
        "",
        "| Per refresh | The funnel adds | The delivery check's own query |",
        "|---|---|---|",
        f"| InfluxDB requests | {requests:g} | {check_requests:g} |",
        f"| InfluxDB answer bytes | {answer:,.0f} | {check_answer:,.0f} |",
        (
            f"| Requests to the ingestor | {r['funnel_ingestor_requests_per_refresh']} "
            "(its totals come from the statistics refresh) | - |"
        ),
        f"| Time (median, query and arithmetic) | {r['funnel_median_ms']:.1f} ms | - |",
        "",
        f"- Points matched in the span: {r['span_points_matched']} of {_MINUTE_POINTS}.",
        (
            f"- Bus callback: `Funnel.count` {r['callback_us']:.2f} us per event, beside the "
            "check's own counting."
        ),
        (
            "- Memory after 24 h with InfluxDB down (a reading a minute, steps merged to 64): "
            f"{r['memory_mib_24h_outage']:.2f} MiB."
        ),
        (
            "- One query per compared span: normally one per refresh (a reading per "
            "statistics refresh); after an outage the whole span since the last comparison "
            "is one query."
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Print the three measurements (`backfill ...`: the backfill's, benchmarks/backfill.py)."""
    if sys.argv[1:2] == ["backfill"]:
        from benchmarks.backfill import main as backfill  # noqa: PLC0415

        return backfill(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--query-runs", type=int, default=7)
    parser.add_argument("--mode", choices=("check", "funnel"), default="check")
    args = parser.parse_args()
    if args.mode == "funnel":
        result = run_funnel(args.query_runs, args.events)
        print(json.dumps(result, indent=2))  # noqa: T201
        return 0
    costs = _callback_costs(args.events)
    print(  # noqa: T201
        f"callback: {args.events} state_changed fired; no listener {costs['bare_us']:.2f} "
        f"us/event, a listener doing nothing {costs['noop_us']:.2f}, the check's listener "
        f"{costs['ours_us']:.2f}: added {costs['added_us']:.2f} us/event; the callback "
        f"alone on prebuilt events {costs['callback_us']:.2f} us/event (target < 2)"
    )
    print(f"memory: 1,000 entities x 20 events/s x 24 h: {_memory():.2f} MiB (target < 10)")  # noqa: T201
    work = _influx_work(args.query_runs)
    print(  # noqa: T201
        f"influxdb per refresh (60 s settled, 1,200 points, 1,000 entities): "
        f"{work['median_ms']:.1f} ms median, {work['rows']} rows, {work['points']} points, "
        f"{work['body_kib']:.1f} KiB answer"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
