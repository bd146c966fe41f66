"""Flux (InfluxDB 2.x double) and InfluxQL (real influxd) report the same statistics.

The same data set goes into the real influxd (database = bucket name) and into the InfluxDB 2.x
protocol double; each backend reads its server, and both must equal the expectation computed
independently in plain Python from the seeded events.
"""

from __future__ import annotations

import itertools
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from custom_components.ha_ingestor.api.core.errors import IngestorNotFoundError
from custom_components.ha_ingestor.api.core.models import Period, ProcessingMetrics, TrendWindow
from custom_components.ha_ingestor.api.influx.flux import FluxBackend
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from custom_components.ha_ingestor.api.influx.windows import (
    MAX_PREFETCH,
    OVERLAP,
    PREFETCH_FROM,
    RECENT_TIMES,
    RECOUNT_EVERY,
    WindowStore,
)
from tests.support.dataset import (
    MARGIN,
    SEED,
    Dataset,
    build_dataset,
    expected_event_statistics,
    expected_processing_metrics,
)
from tests.support.events import EventGenerator, Schema, event_line
from tests.support.influx2_double import Influx2Double

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import aiohttp

    from custom_components.ha_ingestor.api.influx.backend import InfluxResult
    from tests.support.influxdb_server import InfluxDBServer

TOKEN = "parity-token"
ORG = "ha-ingestor"
_NAMES = itertools.count()
# The real clock: the data sits where a live ingestor would have written it.
NOW = datetime.now(UTC).replace(microsecond=345678) - timedelta(minutes=1)
DATA = build_dataset(NOW)


def _unique(name: str) -> str:
    return f"{name}_{next(_NAMES)}"


def _write_influxd(server: InfluxDBServer, database: str, data: Dataset) -> None:
    """Create the database and write the lines (plain HTTP, as an ingestor would)."""
    server.create_database(database)
    _write_influxd_lines(server, database, data.lines, data.precision)


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    """The InfluxDB 2.x double, its clock at NOW."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    now_ns = (NOW - epoch) // timedelta(microseconds=1) * 1000
    server = Influx2Double(tokens={TOKEN}, org=ORG, buckets=(), clock=lambda: now_ns)
    await server.start()
    yield server
    await server.stop()


async def _both(  # noqa: PLR0913, PLR0917
    influxd: InfluxDBServer,
    double: Influx2Double,
    session: aiohttp.ClientSession,
    name: str,
    period: Period,
    window: TrendWindow,
) -> tuple[InfluxResult, InfluxResult]:
    influxql = InfluxQLBackend(session, influxd.url, name)
    flux = FluxBackend(session, double.url, TOKEN, ORG, name)
    try:
        from_influxql = await influxql.async_fetch(period, window, NOW)
        from_flux = await flux.async_fetch(period, window, NOW)
    finally:
        await influxql.async_close()
        await flux.async_close()
    return from_influxql, from_flux


@pytest.mark.parametrize(
    ("period", "window"),
    [
        (Period.HOUR_1, TrendWindow.MINUTES_5),
        (Period.MINUTES_15, TrendWindow.MINUTES_1),
        (Period.HOURS_6, TrendWindow.MINUTES_15),
        (Period.HOURS_24, TrendWindow.HOUR_1),
        (Period.DAYS_7, TrendWindow.HOUR_1),
    ],
)
# InfluxDB 1.x refuses `/` and `\\` in database names; quotes, commas and spaces it keeps.
@pytest.mark.parametrize("base_name", ["home_assistant_events", 'ha "events", odd name'])
async def test_backends_agree_with_each_other_and_the_expectation(  # noqa: PLR0913, PLR0917
    influxdb_server: InfluxDBServer,
    double: Influx2Double,
    session: aiohttp.ClientSession,
    base_name: str,
    period: Period,
    window: TrendWindow,
) -> None:
    name = _unique(base_name)
    _write_influxd(influxdb_server, name, DATA)
    double.create_bucket(ORG, name)
    double.write(ORG, name, DATA.lines, DATA.precision)
    wanted = replace(DATA, period=period, window=window)

    from_influxql, from_flux = await _both(influxdb_server, double, session, name, period, window)

    assert from_flux.events == from_influxql.events
    assert from_flux.metrics == from_influxql.metrics
    assert from_flux.events == expected_event_statistics(wanted)
    assert from_flux.metrics == expected_processing_metrics(wanted)


async def test_backends_agree_on_an_empty_database(
    influxdb_server: InfluxDBServer, double: Influx2Double, session: aiohttp.ClientSession
) -> None:
    name = _unique("empty")
    influxdb_server.create_database(name)
    double.create_bucket(ORG, name)

    from_influxql, from_flux = await _both(
        influxdb_server, double, session, name, Period.HOUR_1, TrendWindow.MINUTES_5
    )

    assert from_flux.events == from_influxql.events
    assert from_flux.metrics == from_influxql.metrics == ProcessingMetrics()
    assert from_flux.events.events_in_period == 0
    assert from_flux.events.last_event is None


def _write_both(
    influxd: InfluxDBServer, double: Influx2Double, name: str, lines: list[str]
) -> None:
    _write_influxd_lines(influxd, name, lines, DATA.precision)
    double.write(ORG, name, lines, DATA.precision)


def _write_influxd_lines(
    server: InfluxDBServer, database: str, lines: list[str], precision: str
) -> None:
    params = urllib.parse.urlencode({"db": database, "precision": precision})
    request = urllib.request.Request(  # noqa: S310
        f"{server.url}/write?{params}", data="\n".join(lines).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 204


@pytest.mark.parametrize(
    ("period", "window", "prefetch_limit", "recent_times"),
    [
        (Period.MINUTES_15, TrendWindow.MINUTES_1, MAX_PREFETCH, RECENT_TIMES),
        (Period.HOUR_1, TrendWindow.MINUTES_5, MAX_PREFETCH, RECENT_TIMES),
        (Period.HOURS_24, TrendWindow.HOUR_1, MAX_PREFETCH, RECENT_TIMES),
        (Period.DAYS_7, TrendWindow.HOUR_1, MAX_PREFETCH, RECENT_TIMES),
        # The prefetch read but more than kept: the later leaving slices are read; the
        # recent part per minute, the newest event from its own statements.
        (Period.DAYS_7, TrendWindow.HOUR_1, 1, -1),
        (Period.HOUR_1, TrendWindow.MINUTES_5, MAX_PREFETCH, -1),
    ],
)
async def test_incremental_refreshes_equal_full_recounts_on_both_servers(  # noqa: PLR0913, PLR0917
    influxdb_server: InfluxDBServer,
    double: Influx2Double,
    session: aiohttp.ClientSession,
    period: Period,
    window: TrendWindow,
    prefetch_limit: int,
    recent_times: int,
) -> None:
    """Incremental figures equal a full recount of the same moment, on both servers.

    Refresh after refresh, while events keep arriving (some late, inside the overlap). The
    24 h and 7 d periods take their leaving slices from the prefetch (read by the first
    refresh after the recount), or, over its limit, from the server.
    """
    name = _unique("incremental")
    refreshes = [NOW + timedelta(seconds=47 * k, microseconds=1013 * k) for k in range(6)]
    # Points exactly at each refresh's period start (inclusive) and 1 us before it: the
    # leaving slices must cut them right. Schema A keeps the microsecond.
    generator = EventGenerator(SEED + 7)
    edge_lines = [
        event_line(replace(event, time=at - period.duration - delta), Schema.A)
        for at in refreshes
        for event, delta in zip(
            generator.events_between(2, at - period.duration - MARGIN, at - period.duration),
            (timedelta(0), timedelta(microseconds=1)),
            strict=True,
        )
    ]
    _write_influxd(influxdb_server, name, replace(DATA, lines=[*DATA.lines, *edge_lines]))
    double.create_bucket(ORG, name)
    double.write(ORG, name, [*DATA.lines, *edge_lines], DATA.precision)
    store_ql, store_flux = (
        WindowStore(period, window, prefetch_limit=prefetch_limit, recent_times=recent_times)
        for _ in range(2)
    )
    prefetched = period.duration >= PREFETCH_FROM * RECOUNT_EVERY
    incremental = (
        InfluxQLBackend(session, influxdb_server.url, name, windows=store_ql),
        FluxBackend(session, double.url, TOKEN, ORG, name, windows=store_flux),
    )
    full = (
        InfluxQLBackend(session, influxdb_server.url, name),
        FluxBackend(session, double.url, TOKEN, ORG, name),
    )
    for k, at in enumerate(refreshes):
        if k:
            before = refreshes[k - 1]
            on_time = generator.events_between(9, before, at)
            # Late: stamped up to the overlap before this refresh, written only now.
            late = generator.events_between(5, at - OVERLAP + timedelta(seconds=1), before)
            schemas = itertools.cycle((Schema.A, Schema.B))
            _write_both(
                influxdb_server,
                double,
                name,
                [event_line(e, s) for e, s in zip([*on_time, *late], schemas, strict=False)],
            )
        got = [await backend.async_fetch(period, window, at) for backend in incremental]
        wanted = [await backend.async_fetch(period, window, at) for backend in full]
        assert got[0].events == wanted[0].events, k
        assert got[1].events == wanted[1].events, k
        assert got[0].events == got[1].events, k
        assert got[0].metrics == wanted[0].metrics
        assert got[1].metrics == wanted[1].metrics
        # The first refresh recounts; every later one is incremental.
        assert store_ql.recounted is (k == 0)
        assert store_flux.recounted is (k == 0)
        for store in (store_ql, store_flux):
            # What left came from memory: after the prefetch was read, and while kept.
            from_memory = prefetched and k >= 1 and (k == 1 or prefetch_limit > 1)
            assert store.leaving_from_memory is from_memory, k
    assert got[0].events.events_in_period


async def test_a_failed_refresh_is_followed_by_a_full_recount(
    influxdb_server: InfluxDBServer, session: aiohttp.ClientSession
) -> None:
    """InfluxDB failing mid-way (here: the database is gone) empties the store."""
    name = _unique("failing")
    _write_influxd(influxdb_server, name, DATA)
    store = WindowStore(Period.HOUR_1, TrendWindow.MINUTES_5)
    backend = InfluxQLBackend(session, influxdb_server.url, name, windows=store)
    first = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW + timedelta(minutes=1))
    assert not store.recounted
    influxdb_server.query(f'DROP DATABASE "{name}"')
    with pytest.raises(IngestorNotFoundError):
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW + timedelta(minutes=2))
    assert not store.ready
    _write_influxd(influxdb_server, name, DATA)
    again = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert store.recounted
    assert again.events == first.events
    # Another period (the get_statistics action) is recounted and leaves the store alone.
    other = await backend.async_fetch(Period.HOURS_6, TrendWindow.MINUTES_15, NOW)
    assert (
        other.events.events_in_period
        == expected_event_statistics(
            replace(DATA, period=Period.HOURS_6, window=TrendWindow.MINUTES_15)
        ).events_in_period
    )
    assert store.ready
