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

import aiohttp
import pytest

from custom_components.ha_ingestor.api.flux import FluxBackend
from custom_components.ha_ingestor.api.influxql import InfluxQLBackend
from custom_components.ha_ingestor.api.models import Period, ProcessingMetrics, TrendWindow
from tests.support.dataset import (
    Dataset,
    build_dataset,
    expected_event_statistics,
    expected_processing_metrics,
)
from tests.support.influx2_double import Influx2Double

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from custom_components.ha_ingestor.api.backend import InfluxResult
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
    params = urllib.parse.urlencode({"db": database, "precision": data.precision})
    request = urllib.request.Request(  # noqa: S310
        f"{server.url}/write?{params}", data="\n".join(data.lines).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 204


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    """The InfluxDB 2.x double, its clock at NOW."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    now_ns = (NOW - epoch) // timedelta(microseconds=1) * 1000
    server = Influx2Double(tokens={TOKEN}, org=ORG, buckets=(), clock=lambda: now_ns)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """The session Home Assistant would lend the InfluxQL backend."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


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
