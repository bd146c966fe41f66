"""The source policy: InfluxDB first, services in parallel and as fallback, errors ranked."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest

from custom_components.ha_ingestor.api.client import FetchResult, IngestorClient, most_meaningful
from custom_components.ha_ingestor.api.core.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorError,
    IngestorNotFoundError,
    IngestorResponseError,
    IngestorSSLError,
    IngestorTimeoutError,
    Origin,
)
from custom_components.ha_ingestor.api.core.models import (
    AlertKey,
    DataSource,
    EventStatistics,
    Period,
    ProcessingMetrics,
    Revision,
    ServiceState,
    ServiceStatus,
    Severity,
    Snapshot,
    SourceMode,
    Thresholds,
    TrendWindow,
)
from custom_components.ha_ingestor.api.influx.backend import InfluxResult
from custom_components.ha_ingestor.api.ingestor.assembly import ServicesResult
from custom_components.ha_ingestor.api.ingestor.services import ServicesClient
from tests.support.simulator import ADMIN_API, Fault, IngestorSimulator

if TYPE_CHECKING:
    import aiohttp

NOW = datetime(2025, 11, 1, 23, 6, 12, tzinfo=UTC)
THRESHOLDS = Thresholds()
INFLUX_EVENTS = EventStatistics(
    events_in_period=1200, events_per_minute=20.0, last_event=NOW - timedelta(seconds=5)
)


class FakeInflux:
    """An InfluxBackend (Protocol) that answers or fails as told, and counts its calls."""

    def __init__(
        self,
        result: InfluxResult | None = None,
        error: IngestorError | None = None,
        delay: float = 0.0,
    ) -> None:
        self.result = result or InfluxResult(events=INFLUX_EVENTS, version="v2.7.10")
        self.error = error
        self.delay = delay
        self.calls: list[tuple[Period, TrendWindow, datetime]] = []

    async def async_fetch(self, period: Period, window: TrendWindow, now: datetime) -> InfluxResult:
        self.calls.append((period, window, now))
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.result

    async def async_validate(self) -> None:
        """Not used by the client."""

    async def async_close(self) -> None:
        """Not used by the client."""


class FakeServices:
    """Stands in for ServicesClient where the HTTP side is not the point."""

    def __init__(
        self, result: ServicesResult | None = None, error: IngestorError | None = None
    ) -> None:
        self.result = result or ServicesResult(
            events=EventStatistics(events_per_minute=31.6, last_event=NOW),
            metrics=ProcessingMetrics(error_rate=1.0, success_rate=99.0, processing_time_ms=2.0),
            services=(
                ServiceState(
                    name="websocket-ingestion", status=ServiceStatus.HEALTHY, reachable=True
                ),
            ),
            admin_api_connected=True,
            ingestor_version="1.0.0",
            revision=Revision.R2,
        )
        self.error = error
        self.calls = 0
        self.periods: list[Period] = []
        self.admin_api_url: str | None = "http://admin:8003"

    async def async_fetch(self, period: Period) -> ServicesResult:
        self.calls += 1
        self.periods.append(period)
        if self.error is not None:
            raise self.error
        return self.result


def _client(
    influx: FakeInflux | None, services: FakeServices | None, mode: SourceMode = SourceMode.AUTO
) -> IngestorClient:
    return IngestorClient(influx, cast("ServicesClient | None", services), mode)


async def _fetch(client: IngestorClient, now: datetime | None = NOW) -> FetchResult:
    return await client.async_get_snapshot(Period.HOUR_1, TrendWindow.MINUTES_5, THRESHOLDS, now)


def _answered(result: FetchResult) -> Snapshot:
    assert result.snapshot is not None, result.error
    return result.snapshot


async def _snapshot(client: IngestorClient, now: datetime | None = NOW) -> Snapshot:
    return _answered(await _fetch(client, now))


async def test_auto_with_influxdb_asks_services_too() -> None:
    influx, services = FakeInflux(), FakeServices()
    client = _client(influx, services)
    result = await _fetch(client)
    snapshot = _answered(result)

    assert snapshot.source is DataSource.INFLUXDB
    assert snapshot.events == INFLUX_EVENTS
    # service_metrics had no rows: the figures come from the services.
    assert snapshot.metrics == services.result.metrics
    assert snapshot.services == services.result.services
    assert snapshot.influxdb_connected is True
    assert snapshot.admin_api_connected is True
    assert snapshot.influxdb_version == "v2.7.10"
    assert snapshot.ingestor_version == "1.0.0"
    assert snapshot.revision is Revision.R2
    assert snapshot.period is Period.HOUR_1
    assert snapshot.fetched_at.tzinfo is UTC
    assert snapshot.query_duration_ms >= 0
    assert [a.key for a in snapshot.alerts] == list(AlertKey)
    assert snapshot.active_alerts == ()
    assert influx.calls == [(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)]
    assert services.calls == 1
    assert services.periods == [Period.HOUR_1]
    assert result.influx_error is None
    assert result.services_error is None
    assert result.error is None


async def test_influx_service_metrics_win_per_figure() -> None:
    influx = FakeInflux(
        InfluxResult(events=INFLUX_EVENTS, metrics=ProcessingMetrics(success_rate=80.0))
    )
    snapshot = await _snapshot(_client(influx, FakeServices()))
    assert snapshot.metrics == ProcessingMetrics(
        error_rate=1.0, success_rate=80.0, processing_time_ms=2.0
    )
    assert snapshot.alert(AlertKey.LOW_SUCCESS_RATE).severity is Severity.ERROR  # type: ignore[union-attr]


async def test_auto_falls_back_when_influxdb_fails() -> None:
    down = IngestorConnectionError("refused", origin=Origin.INFLUXDB)
    client = _client(FakeInflux(error=down), FakeServices())
    result = await _fetch(client)
    snapshot = _answered(result)

    assert snapshot.source is DataSource.SERVICES_FALLBACK
    assert snapshot.events.events_per_minute == 31.6
    assert snapshot.events.events_in_period is None
    assert snapshot.influxdb_connected is False
    assert snapshot.influxdb_version is None
    assert result.influx_error is down
    alert = snapshot.alert(AlertKey.INFLUXDB_UNREACHABLE)
    assert alert is not None
    assert alert.active
    assert alert.severity is Severity.WARNING


async def test_influx_auth_error_is_kept_while_services_cover() -> None:
    refused = IngestorAuthenticationError("401", origin=Origin.INFLUXDB)
    client = _client(FakeInflux(error=refused), FakeServices())
    result = await _fetch(client)
    assert _answered(result).source is DataSource.SERVICES_FALLBACK
    assert result.influx_error is refused

    # The next good refresh forgets it.
    client.influx = FakeInflux()
    assert (await _fetch(client)).influx_error is None


async def test_services_failure_with_influxdb_is_not_fatal() -> None:
    refused = IngestorAuthenticationError("401", origin=Origin.SERVICES)
    client = _client(FakeInflux(), FakeServices(error=refused))
    result = await _fetch(client)
    snapshot = _answered(result)
    assert snapshot.source is DataSource.INFLUXDB
    assert snapshot.services == ()
    assert snapshot.metrics == ProcessingMetrics()
    assert snapshot.admin_api_connected is False
    assert result.services_error is refused
    assert snapshot.alert(AlertKey.SERVICE_UNHEALTHY).severity is Severity.UNKNOWN  # type: ignore[union-attr]


async def test_partial_services_error_is_exposed() -> None:
    partial = FakeServices()
    refused = IngestorAuthenticationError("401", origin=Origin.SERVICES)
    partial.result = ServicesResult(
        events=EventStatistics(),
        metrics=ProcessingMetrics(),
        services=(),
        admin_api_connected=True,
        admin_api_error=refused,
    )
    client = _client(None, partial)
    result = await _fetch(client)
    assert result.snapshot is not None
    assert result.services_error is refused


@pytest.mark.parametrize(
    ("influx_error", "services_error", "expected"),
    [
        (
            IngestorConnectionError("a", origin=Origin.INFLUXDB),
            IngestorAuthenticationError("b", origin=Origin.SERVICES),
            "b",
        ),
        (
            IngestorAuthenticationError("a", origin=Origin.INFLUXDB),
            IngestorConnectionError("b", origin=Origin.SERVICES),
            "a",
        ),
        (
            IngestorTimeoutError("a", origin=Origin.INFLUXDB),
            IngestorConnectionError("b", origin=Origin.SERVICES),
            "a",
        ),
        (
            IngestorConnectionError("a", origin=Origin.INFLUXDB),
            IngestorNotFoundError("b", origin=Origin.SERVICES),
            "b",
        ),
    ],
)
async def test_both_down_raises_the_most_meaningful(
    influx_error: IngestorError, services_error: IngestorError, expected: str
) -> None:
    client = _client(FakeInflux(error=influx_error), FakeServices(error=services_error))
    result = await _fetch(client)
    assert result.snapshot is None
    assert str(result.error) == expected
    assert result.influx_error is influx_error
    assert result.services_error is services_error


def test_most_meaningful_order() -> None:
    conn = IngestorConnectionError("conn", origin=Origin.INFLUXDB)
    ssl = IngestorSSLError("ssl", origin=Origin.INFLUXDB)
    resp = IngestorResponseError("resp", origin=Origin.SERVICES)
    other = IngestorError("other", origin=Origin.SERVICES)
    assert most_meaningful(conn, ssl) is ssl
    assert most_meaningful(conn, resp) is resp
    assert most_meaningful(resp, ssl) is ssl
    assert most_meaningful(other, conn) is conn
    assert most_meaningful(other, None) is other
    assert most_meaningful(None, None) is None


async def test_influxdb_mode_never_asks_services() -> None:
    services = FakeServices()
    client = _client(FakeInflux(), services, SourceMode.INFLUXDB)
    snapshot = await _snapshot(client)
    assert snapshot.source is DataSource.INFLUXDB
    assert services.calls == 0
    assert snapshot.admin_api_connected is None
    assert snapshot.services == ()

    down = IngestorConnectionError("refused", origin=Origin.INFLUXDB)
    client = _client(FakeInflux(error=down), services, SourceMode.INFLUXDB)
    assert (await _fetch(client)).error is down
    assert services.calls == 0


async def test_services_mode_never_asks_influxdb() -> None:
    influx = FakeInflux()
    client = _client(influx, FakeServices(), SourceMode.SERVICES)
    snapshot = await _snapshot(client, now=None)
    assert snapshot.source is DataSource.SERVICES_FALLBACK
    assert influx.calls == []
    assert snapshot.influxdb_connected is None
    # InfluxDB was not asked, so "unreachable" is not known.
    assert snapshot.alert(AlertKey.INFLUXDB_UNREACHABLE).severity is Severity.UNKNOWN  # type: ignore[union-attr]


async def test_no_source_for_the_mode() -> None:
    result = await _fetch(_client(None, FakeServices(), SourceMode.INFLUXDB))
    assert isinstance(result.influx_error, IngestorConnectionError)
    assert result.error is result.influx_error
    assert result.error.origin is Origin.INFLUXDB
    result = await _fetch(_client(FakeInflux(), None, SourceMode.SERVICES))
    assert isinstance(result.services_error, IngestorConnectionError)
    assert result.error is result.services_error
    assert result.error.origin is Origin.SERVICES


# --- with the real ServicesClient against the simulator ----------------------------------------


async def test_influxdb_and_services_run_in_parallel(session: aiohttp.ClientSession) -> None:
    delay = 0.8
    async with IngestorSimulator(revision=Revision.R2, upstream_timeout=0.05) as sim:
        for name in sim.services:
            await sim.set_fault(name, Fault.SLOW, delay=delay)
        urls = {k: v for k, v in sim.service_urls.items() if k != ADMIN_API}
        services = ServicesClient(session, sim.admin_api_url, None, urls, 5.0)
        client = IngestorClient(FakeInflux(delay=delay), services, SourceMode.AUTO)
        started = time.monotonic()
        result = await client.async_get_snapshot(
            Period.MINUTES_15, TrendWindow.MINUTES_1, THRESHOLDS
        )
        snapshot = _answered(result)
        elapsed = time.monotonic() - started

    assert snapshot.source is DataSource.INFLUXDB
    assert snapshot.admin_api_connected is True
    assert snapshot.service("websocket-ingestion") is not None
    assert snapshot.metrics.success_rate == 100.0
    assert elapsed < 2.5 * delay
    assert snapshot.query_duration_ms == pytest.approx(elapsed * 1000, rel=0.2)


async def test_fallback_through_the_simulator(session: aiohttp.ClientSession) -> None:
    async with IngestorSimulator(revision=Revision.R1, upstream_timeout=0.5) as sim:
        services = ServicesClient(session, sim.admin_api_url, None, None, 5.0)
        down = IngestorConnectionError("refused", origin=Origin.INFLUXDB)
        client = IngestorClient(FakeInflux(error=down), services, SourceMode.AUTO)
        snapshot = _answered(
            await client.async_get_snapshot(Period.HOUR_1, TrendWindow.MINUTES_5, THRESHOLDS)
        )
        await sim.set_fault(ADMIN_API, Fault.DOWN)
        await sim.set_fault("websocket-ingestion", Fault.DOWN)
        failed = await client.async_get_snapshot(Period.HOUR_1, TrendWindow.MINUTES_5, THRESHOLDS)

    assert snapshot.source is DataSource.SERVICES_FALLBACK
    assert snapshot.revision is Revision.R1
    assert snapshot.events.events_per_minute == 31.6
    assert snapshot.events.last_event is not None
    # Both failed with connection errors: the InfluxDB one comes first.
    assert failed.snapshot is None
    assert failed.error is down


# --- what the review found ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "connected", "alert_active"),
    [
        (IngestorAuthenticationError("HTTP 401", origin=Origin.INFLUXDB), True, False),
        (IngestorNotFoundError("no bucket", origin=Origin.INFLUXDB), True, False),
        (IngestorResponseError("HTTP 500", origin=Origin.INFLUXDB), True, False),
        (IngestorConnectionError("refused", origin=Origin.INFLUXDB), False, True),
        (IngestorTimeoutError("slow", origin=Origin.INFLUXDB), False, True),
        (IngestorSSLError("tls", origin=Origin.INFLUXDB), False, True),
    ],
)
async def test_influxdb_connected_means_it_answered(
    error: IngestorError, *, connected: bool, alert_active: bool
) -> None:
    snapshot = await _snapshot(_client(FakeInflux(error=error), FakeServices()))
    # Any InfluxDB failure still means the services' figures are used.
    assert snapshot.source is DataSource.SERVICES_FALLBACK
    assert snapshot.influxdb_connected is connected
    alert = snapshot.alert(AlertKey.INFLUXDB_UNREACHABLE)
    assert alert is not None
    assert alert.active is alert_active


async def test_concurrent_fetches_keep_their_own_errors() -> None:
    """An action's refresh running beside the coordinator's cannot swap their errors."""
    down = IngestorConnectionError("refused", origin=Origin.INFLUXDB)
    slow_failing = FakeInflux(error=down, delay=0.05)
    client = _client(slow_failing, FakeServices())

    async def good_one() -> FetchResult:
        await asyncio.sleep(0.01)
        client.influx = FakeInflux()
        return await _fetch(client)

    failing, good = await asyncio.gather(_fetch(client), good_one())
    assert failing.influx_error is down
    assert _answered(failing).source is DataSource.SERVICES_FALLBACK
    assert good.influx_error is None
    assert _answered(good).source is DataSource.INFLUXDB
    assert not hasattr(client, "last_influx_error")


async def test_the_period_reaches_the_services() -> None:
    services = FakeServices()
    await _client(FakeInflux(), services).async_get_snapshot(
        Period.DAYS_7, TrendWindow.HOUR_1, THRESHOLDS, NOW
    )
    assert services.periods == [Period.DAYS_7]


async def test_one_deadline_bounds_the_whole_refresh() -> None:
    client = IngestorClient(
        FakeInflux(delay=5.0), cast("ServicesClient", FakeServices()), SourceMode.AUTO, 0.2
    )
    started = time.monotonic()
    result = await _fetch(client)
    elapsed = time.monotonic() - started

    assert elapsed < 1.0
    assert isinstance(result.influx_error, IngestorTimeoutError)
    assert result.influx_error.origin is Origin.INFLUXDB
    # The source that answered in time is kept; a timeout is a connection-type failure.
    snapshot = _answered(result)
    assert snapshot.source is DataSource.SERVICES_FALLBACK
    assert snapshot.influxdb_connected is False

    both_slow = IngestorClient(FakeInflux(delay=5.0), None, SourceMode.AUTO, 0.1)
    assert isinstance((await _fetch(both_slow)).error, IngestorTimeoutError)


async def test_services_complete_comes_from_the_services() -> None:
    complete = FakeServices()
    complete.result = replace(complete.result, services_complete=True)
    assert (await _snapshot(_client(FakeInflux(), complete))).services_complete
    assert not (await _snapshot(_client(FakeInflux(), FakeServices()))).services_complete
    assert not (await _snapshot(_client(FakeInflux(), None))).services_complete
