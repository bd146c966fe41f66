"""The delivery check's arithmetic and its queries, against a real influxd and the 2.x double."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from custom_components.ha_ingestor.api.core.delivery import (
    FINE_SECONDS,
    MAX_WAITING,
    SAMPLE_TIMEOUT_SECONDS,
    SETTLE_SECONDS,
    DeliveryCounter,
    LatencySampler,
    Window,
    delivery_alert,
)
from custom_components.ha_ingestor.api.core.models import Severity
from custom_components.ha_ingestor.api.influx.delivery import (
    async_samples_found,
    async_stored_counts,
    build_flux_delivery_query,
    build_influxql_delivery_query,
)
from custom_components.ha_ingestor.api.influx.flux import FluxBackend
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from tests.support.events import Event, Schema, event_line
from tests.support.influx2_double import Influx2Double

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    import aiohttp

    from tests.support.influxdb_server import InfluxDBServer

HOUR = timedelta(hours=1)
T0 = 1_790_000_000.0  # a fine-window boundary (divisible by 10)
ORG, BUCKET, TOKEN = "ha-ingestor", "home_assistant_events", "delivery-token"


def _events(counter: DeliveryCounter, entity: str, times: list[float]) -> None:
    for t in times:
        counter.count(entity, t)


def _stored(counter: DeliveryCounter, points: dict[str, list[float]]) -> dict[tuple[int, str], int]:
    """What InfluxDB would answer: points per (bucket, entity)."""
    result: dict[tuple[int, str], int] = {}
    for entity, times in points.items():
        for t in times:
            key = (int(t // counter.bucket) * counter.bucket, entity)
            result[key] = result.get(key, 0) + 1
    return result


def test_loss_is_counted_per_entity_and_never_negative() -> None:
    counter = DeliveryCounter(T0, HOUR)
    light = [T0 + 1 + i for i in range(40)]
    switch = [T0 + 2 + i for i in range(40)]
    _events(counter, "light.a", light)
    _events(counter, "switch.b", switch)
    now = T0 + 100
    window = counter.settled_window(now)
    assert window is not None
    assert window.stop.timestamp() == now - SETTLE_SECONDS  # settled up to a fine boundary
    # Every 4th event of light.a is lost; switch.b has two points from elsewhere as well.
    kept = {"light.a": light[1::4] + light[2::4] + light[3::4], "switch.b": [*switch, T0, T0 + 3]}
    counter.settle(window, _stored(counter, kept))
    report = counter.report(now)
    assert (report.fired, report.lost, report.extra) == (80, 10, 2)
    assert report.top_lost == (("light.a", 10),)
    assert report.completeness == pytest.approx(100 * 70 / 80)
    assert not report.not_source
    # Nothing new settled: no query.
    assert counter.settled_window(now) is None


def test_nothing_before_counting_began_and_boundary_rounding_is_no_loss() -> None:
    counter = DeliveryCounter(T0 - 3.5, HOUR)  # starts counting at T0
    counter.count("light.a", T0 - 1)  # before: not claimed
    counter.count("light.a", T0 + 0.0005)  # stored 1 ms early by R3, before the origin
    window = counter.settled_window(T0 + 60)
    assert window is not None
    assert window.start < datetime.fromtimestamp(T0, UTC)  # takes the early point in
    counter.settle(window, {(int(T0 - 1) // counter.bucket * counter.bucket, "light.a"): 1})
    report = counter.report(T0 + 60)
    assert (report.fired, report.lost, report.extra) == (1, 0, 0)


def test_window_boundaries_cancel_out_over_the_span() -> None:
    """A point landing in the next bucket (ingestion time) is late, not lost plus extra."""
    counter = DeliveryCounter(T0, timedelta(minutes=15))  # 60 s buckets
    counter.count("sensor.t", T0 + 59.9)
    counter.count("sensor.t", T0 + 61)
    window = counter.settled_window(T0 + 200)
    assert window is not None
    counter.settle(window, {(int(T0) + 60, "sensor.t"): 2})
    report = counter.report(T0 + 200)
    assert (report.lost, report.extra, report.completeness) == (0, 0, 100.0)


def test_not_this_home_assistant() -> None:
    counter = DeliveryCounter(T0, HOUR)
    _events(counter, "light.mine", [T0 + 1, T0 + 2])
    window = counter.settled_window(T0 + 60)
    assert window is not None
    counter.settle(window, {(int(T0) // counter.bucket * counter.bucket, "light.theirs"): 5})
    report = counter.report(T0 + 60)
    assert report.not_source
    assert report.completeness is None


def test_outage_counting_goes_on_and_the_comparison_resumes() -> None:
    counter = DeliveryCounter(T0, HOUR)
    for minute in range(30):  # InfluxDB answers nothing for 30 minutes
        _events(counter, "light.a", [T0 + 60 * minute + 5])
        counter.compact(T0 + 60 * minute + 10)
    now = T0 + 1800 + SETTLE_SECONDS + FINE_SECONDS
    window = counter.settled_window(now)
    assert window is not None
    assert window.start.timestamp() < T0  # the whole outage in one query
    stored = _stored(counter, {"light.a": [T0 + 60 * m + 5 for m in range(30) if m != 7]})
    counter.settle(window, stored)
    report = counter.report(now)
    assert (report.fired, report.lost) == (30, 1)
    assert report.until == window.stop


def test_what_the_ingestors_filter_dropped_is_no_made_up_loss() -> None:
    counter = DeliveryCounter(T0, HOUR)
    counter.observe_filter(T0, 1000)  # filtered before counting began: not ours
    _events(counter, "light.a", [T0 + 1 + i for i in range(10)])
    _events(counter, "sensor.noisy", [T0 + 2 + i for i in range(5)])  # the filter drops these
    counter.observe_filter(T0 + 20, 1005)
    window = counter.settled_window(T0 + 60)
    assert window is not None
    counter.settle(window, _stored(counter, {"light.a": [T0 + 1 + i for i in range(10)]}))
    report = counter.report(T0 + 60)
    # The filter's totals name no entities: the 5 cannot be told from real loss.
    assert (report.fired, report.lost, report.filtered) == (15, 5, 5)
    assert report.completeness is None
    # A drop of the total: the ingestor restarted, what it filtered meanwhile is unknown.
    counter.observe_filter(T0 + 70, 3)
    report = counter.report(T0 + 70)
    assert (report.filtered, report.completeness) == (None, None)


def test_filtering_outside_the_compared_span_leaves_completeness_known() -> None:
    counter = DeliveryCounter(T0, HOUR)
    counter.observe_filter(T0, 1000)
    _events(counter, "light.a", [T0 + 1, T0 + 2])
    counter.observe_filter(T0 + 20, 1000)  # enabled, dropped nothing meanwhile
    window = counter.settled_window(T0 + 50)
    assert window is not None
    counter.settle(window, _stored(counter, {"light.a": [T0 + 1]}))
    counter.observe_filter(T0 + 20, 1003)  # the same reading again: ignored
    counter.observe_filter(T0 + 50, 1004)  # read after the compared span (until T0 + 20)
    report = counter.report(T0 + 50)
    assert (report.lost, report.filtered, report.completeness) == (1, 0, 50.0)


def test_no_events_no_claim() -> None:
    counter = DeliveryCounter(T0, HOUR)
    report = counter.report(T0 + 100)
    assert report.completeness is None
    assert report.since is None


def test_memory_bound() -> None:
    """1,000 entities, 20 events/s, 24 h with InfluxDB down all day: under 10 MB.

    The worst case for memory: nothing is ever compared, so every pending window is kept
    (merged per bucket) and no event is dropped. Measured with tracemalloc; it fails if the
    windows were kept fine-grained (about 1.7 million counters).
    """
    entities = [f"sensor.entity_{i:04d}" for i in range(1000)]
    day = 24 * 3600
    tracemalloc.start()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    counter = DeliveryCounter(T0, timedelta(hours=24))
    step = 1 / 20
    # 1,728,000 events; compaction once a minute, as the refresh would.
    t = T0
    index = 0
    for second in range(day):
        base = T0 + second
        for k in range(20):
            counter.count(entities[index % 1000], base + k * step)
            index += 1
        if second % 60 == 59:
            counter.compact(base)
        t = base
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert counter.settled_window(t) is not None
    assert used < 10 * 1024 * 1024, used


# --- queries on real servers -----------------------------------------------------------------


def _point(entity: str, moment: datetime) -> Event:
    return Event(entity_id=entity, time=moment, state="on", old_state="off")


@pytest.fixture
def database(influxdb_server: InfluxDBServer, socket_enabled: None) -> Iterator[str]:
    with influxdb_server.scratch_database("delivery") as name:
        yield name


def _seed(origin: datetime) -> tuple[list[str], dict[tuple[int, str], int]]:
    """Points of both schemas in two buckets (and one outside the window), and the counts."""
    lines: list[str] = []
    expected: dict[tuple[int, str], int] = {}
    bucket = 60
    for i in range(12):
        moment = origin + timedelta(seconds=11 * i + 0.25)
        entity = "light.kitchen" if i % 3 else "sensor.outside"
        lines.append(event_line(_point(entity, moment), Schema.B if i % 2 else Schema.A))
        key = (int(moment.timestamp()) // bucket * bucket, entity)
        expected[key] = expected.get(key, 0) + 1
    lines.append(event_line(_point("light.kitchen", origin + timedelta(seconds=200)), Schema.B))
    return lines, expected


async def test_influxql_counts_per_bucket_and_entity(
    influxdb_server: InfluxDBServer, database: str, session: aiohttp.ClientSession
) -> None:
    origin = datetime.fromtimestamp(T0, UTC)
    lines, expected = _seed(origin)
    influxdb_server.write(database, lines)
    backend = InfluxQLBackend(session, influxdb_server.url, database)
    window = Window(origin, origin + timedelta(seconds=150))
    assert await async_stored_counts(backend, None, window, 60) == expected


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    server = Influx2Double(tokens={TOKEN}, org=ORG)
    await server.start()
    yield server
    await server.stop()


async def test_flux_counts_per_bucket_and_entity(
    double: Influx2Double, session: aiohttp.ClientSession
) -> None:
    origin = datetime.fromtimestamp(T0, UTC)
    lines, expected = _seed(origin)
    double.write(ORG, BUCKET, lines)
    backend = FluxBackend(session, double.url, TOKEN, ORG, BUCKET)
    window = Window(origin, origin + timedelta(seconds=150))
    assert await async_stored_counts(backend, None, window, 60) == expected
    assert len(double.query_requests()) == 1


def test_query_texts_name_the_window() -> None:
    origin = datetime.fromtimestamp(T0, UTC)
    window = Window(origin, origin + timedelta(seconds=30))
    assert "time(60s)" in build_influxql_delivery_query(window, 60)
    assert "every: 60s" in build_flux_delivery_query(BUCKET, window, 60)


async def _sample_backends(
    influxdb_server: InfluxDBServer,
    database: str,
    double: Influx2Double,
    session: aiohttp.ClientSession,
    lines: list[str],
) -> list[InfluxQLBackend | FluxBackend]:
    influxdb_server.write(database, lines)
    double.write(ORG, BUCKET, lines)
    return [
        InfluxQLBackend(session, influxdb_server.url, database),
        FluxBackend(session, double.url, TOKEN, ORG, BUCKET),
    ]


async def test_a_sampled_event_is_found_by_entity_context_and_time(
    influxdb_server: InfluxDBServer,
    database: str,
    double: Influx2Double,
    session: aiohttp.ClientSession,
) -> None:
    fired = datetime.fromtimestamp(T0 + 0.1237, UTC)
    context = "01JDELIVERYCONTEXT0000000001"
    event = Event(
        entity_id="light.kitchen", time=fired, state="on", old_state="off", context_id=context
    )
    line = event_line(event, Schema.B)
    backends = await _sample_backends(influxdb_server, database, double, session, [line])
    samples = [
        ("light.kitchen", fired, context),  # stored (truncated to the ms)
        ("light.kitchen", fired, "another-context"),
        ("light.hall", fired, context),
        ("light.kitchen", fired + timedelta(milliseconds=5), context),
        ("it's\\", fired, "x'y"),  # quoting holds
    ]
    for backend in backends:
        assert await async_samples_found(backend, samples) == [True, False, False, False, False]


def test_alert_thresholds_are_strict_and_unknown_is_off() -> None:
    assert delivery_alert(None, 99.9, 99.0).severity is Severity.UNKNOWN
    assert not delivery_alert(None, 99.9, 99.0).active
    assert delivery_alert(99.9, 99.9, 99.0).severity is None
    assert delivery_alert(99.5, 99.9, 99.0).severity is Severity.WARNING
    assert delivery_alert(98.0, 99.9, 99.0).severity is Severity.ERROR
    assert delivery_alert(98.0, 99.9, 99.0).active


def test_latency_samples_one_event_a_minute_and_bounds_the_waiting() -> None:
    sampler = LatencySampler(3600, next_sample=T0)
    sampler.offer("light.a", T0 - 1, "before counting began")
    for i in range(600):  # ten minutes at one event a second
        sampler.offer("light.a", T0 + i, f"c{i}")
    assert len(sampler.waiting) == MAX_WAITING
    assert [s[2] for s, _ in sampler.waiting] == ["c0", "c60", "c120"]
    sampler.resolve([True, False, True], T0 + 130)
    assert [s[2] for s, _ in sampler.waiting] == ["c60"]
    sampler.resolve([False], T0 + 60 + SAMPLE_TIMEOUT_SECONDS + 1)
    assert sampler.waiting == []
    median, p95, samples, late = sampler.figures()
    assert (median, p95, samples, late) == (70.0, 130.0, 2, 1)
