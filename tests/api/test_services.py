"""ServicesClient against the simulated ingestor stack over real loopback HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest

from custom_components.ha_ingestor.api.core.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorResponseError,
    IngestorSSLError,
    IngestorTimeoutError,
    Origin,
)
from custom_components.ha_ingestor.api.core.models import (
    Period,
    Revision,
    ServiceState,
    ServiceStatus,
)
from custom_components.ha_ingestor.api.ingestor.admin_payloads import AdminServiceEntry
from custom_components.ha_ingestor.api.ingestor.alert_memory import AlertMemory
from custom_components.ha_ingestor.api.ingestor.assembly import assemble
from custom_components.ha_ingestor.api.ingestor.probed import direct_state
from custom_components.ha_ingestor.api.ingestor.replies import AdminReplies, Reply, ServiceReplies
from custom_components.ha_ingestor.api.ingestor.reported import (
    Reported,
    admin_events_per_minute,
    read_reported,
)
from custom_components.ha_ingestor.api.ingestor.services import ServicesClient
from tests.support.influxdb_server import free_port
from tests.support.simulator import (
    ADMIN_API,
    CARBON_INTENSITY,
    DATA_API,
    DATA_RETENTION,
    ENRICHMENT_PIPELINE,
    WEBSOCKET_INGESTION,
    Fault,
    IngestorSimulator,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEY = "s3cr3t-admin-key"


def _direct_urls(sim: IngestorSimulator) -> dict[str, str]:
    return {k: v for k, v in sim.service_urls.items() if k != ADMIN_API}


def _client(
    session: aiohttp.ClientSession,
    sim: IngestorSimulator,
    *,
    api_key: str | None = None,
    direct: bool = True,
    timeout: float = 5.0,
) -> ServicesClient:
    urls = _direct_urls(sim) if direct else None
    return ServicesClient(session, sim.admin_api_url, api_key, urls, timeout)


async def test_r2_fetch(session: aiohttp.ClientSession, r2: IngestorSimulator) -> None:
    last = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    r2.set_figures(
        events_per_minute=12.5,
        last_event_time=last,
        processed_events=980,
        failed_events=20,
        success_rate=98.0,
        average_processing_time_ms=4.25,
    )
    result = await _client(session, r2).async_fetch(Period.HOUR_1)

    assert result.revision is Revision.R2
    assert result.admin_api_connected is True
    assert result.ingestor_version == "1.0.0"
    assert result.events.events_per_minute == 12.5
    assert result.events.last_event == last
    assert result.events.events_in_period is None
    assert result.events.active_entities is None
    assert result.metrics.error_rate == pytest.approx(2.0)
    assert result.metrics.success_rate == 98.0
    assert result.metrics.processing_time_ms == 4.25
    # The funnel's running totals: `events_by_type.state_changed`, processed and failed.
    ingestion = result.ingestion
    assert (ingestion.events_received, ingestion.events_processed) == (2310, 980)
    assert ingestion.events_failed == 20
    states = {s.name: s for s in result.services}
    for name in (ADMIN_API, WEBSOCKET_INGESTION, DATA_API, CARBON_INTENSITY, DATA_RETENTION):
        assert states[name].status is ServiceStatus.HEALTHY, name
        assert states[name].reachable
    assert states[WEBSOCKET_INGESTION].response_time_ms is not None
    assert states[ADMIN_API].version == "1.0.0"
    # Undeployed services of the R2 fallback list are not part of the stack (quirk 15).
    assert "sports-data" not in states
    assert "calendar-service" not in states
    assert result.admin_api_error is None


async def test_r1_fetch_reads_enrichment(
    session: aiohttp.ClientSession, r1: IngestorSimulator
) -> None:
    r1.set_figures(
        events_per_minute=None,
        points_written=990,
        write_errors=10,
        normalized_events=1000,
        normalization_success_rate=97.0,
    )
    result = await _client(session, r1).async_fetch(Period.HOUR_1)

    assert result.revision is Revision.R1
    assert result.events.events_per_minute is None  # absent before a rate exists, not 0
    assert result.metrics.error_rate == pytest.approx(1.0)
    assert result.metrics.success_rate == 97.0
    assert result.metrics.processing_time_ms is None  # R1 has no latency figure
    # R1 has no event processor's totals: those funnel stages stay unknown.
    assert (result.ingestion.events_processed, result.ingestion.events_failed) == (None, None)
    states = {s.name: s for s in result.services}
    assert states[ENRICHMENT_PIPELINE].status is ServiceStatus.HEALTHY
    assert states["influxdb"].status is ServiceStatus.HEALTHY  # "pass" from the Admin API
    # Direct requests went to R1's endpoints; R1 has no /api/v1/event-rate.
    assert r1.requests_to(ENRICHMENT_PIPELINE, "/api/v1/stats")
    (rate,) = r1.requests_to(WEBSOCKET_INGESTION, "/api/v1/event-rate")
    assert rate.status == 404


async def test_urls_derived_from_what_the_admin_api_reports(
    session: aiohttp.ClientSession, r1: IngestorSimulator
) -> None:
    result = await _client(session, r1, direct=False).async_fetch(Period.HOUR_1)

    assert result.revision is Revision.R1
    for name in (WEBSOCKET_INGESTION, ENRICHMENT_PIPELINE, DATA_RETENTION):
        assert r1.requests_to(name, "/health"), name
    assert result.metrics.success_rate == 100.0
    states = {s.name: s for s in result.services}
    assert states[WEBSOCKET_INGESTION].response_time_ms is not None  # probed directly


async def test_fetch_calls_overlap(session: aiohttp.ClientSession) -> None:
    delay = 1.0
    async with IngestorSimulator(revision=Revision.R2, upstream_timeout=0.05) as sim:
        for name in sim.services:
            await sim.set_fault(name, Fault.SLOW, delay=delay)
        client = _client(session, sim)
        started = time.monotonic()
        result = await client.async_fetch(Period.HOUR_1)
        elapsed = time.monotonic() - started
        ours = [r for r in sim.request_log if not r.internal]

    assert result.admin_api_connected is True
    assert len(ours) >= 8
    # Sequential calls would take len(ours) * delay; parallel ones about one delay.
    assert elapsed < 2.5 * delay < len(ours) * delay
    # Every request started before the first one ended.
    assert max(r.started for r in ours) < min(r.ended for r in ours)


async def test_one_service_down_does_not_fail_the_fetch(
    session: aiohttp.ClientSession, r2: IngestorSimulator
) -> None:
    await r2.set_fault(DATA_API, Fault.DOWN)
    await r2.set_fault(CARBON_INTENSITY, Fault.DEGRADED)
    await r2.set_fault(DATA_RETENTION, Fault.SERVER_ERROR)
    result = await _client(session, r2).async_fetch(Period.HOUR_1)

    states = {s.name: s for s in result.services}
    down = states[DATA_API]
    assert down.reachable is False
    assert down.status is ServiceStatus.UNHEALTHY
    assert down.message is not None
    assert "cannot connect" in down.message
    degraded = states[CARBON_INTENSITY]  # 503 with a JSON body: the body counts (quirk 17)
    assert degraded.reachable is True
    assert degraded.status is ServiceStatus.DEGRADED
    assert states[DATA_RETENTION].status is ServiceStatus.UNHEALTHY
    assert states[WEBSOCKET_INGESTION].status is ServiceStatus.HEALTHY


async def test_unhealthy_and_garbled_websocket(
    session: aiohttp.ClientSession, r2: IngestorSimulator
) -> None:
    await r2.set_fault(WEBSOCKET_INGESTION, Fault.UNHEALTHY, paths=["/health"])
    result = await _client(session, r2).async_fetch(Period.HOUR_1)
    states = {s.name: s for s in result.services}
    ws = states[WEBSOCKET_INGESTION]
    assert ws.status is ServiceStatus.UNHEALTHY  # HTTP 200, but the body says so
    assert ws.reachable is True

    await r2.set_fault(WEBSOCKET_INGESTION, Fault.GARBLED)
    result = await _client(session, r2).async_fetch(Period.HOUR_1)
    ws = {s.name: s for s in result.services}[WEBSOCKET_INGESTION]
    assert ws.status is ServiceStatus.UNHEALTHY
    assert ws.message == "HTTP 200 with an unreadable body"
    assert result.events.events_per_minute is None or result.events.events_per_minute >= 0


async def test_api_key_is_sent_to_the_admin_api_only(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    async with IngestorSimulator(revision=Revision.R2, api_key=KEY, upstream_timeout=0.5) as sim:
        result = await _client(session, sim, api_key=KEY).async_fetch(Period.HOUR_1)
    assert result.admin_api_error is None
    assert result.metrics.success_rate == 100.0


async def test_refused_key_with_services_answering_is_partial(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    async with IngestorSimulator(revision=Revision.R2, api_key=KEY, upstream_timeout=0.5) as sim:
        result = await _client(session, sim, api_key="wrong").async_fetch(Period.HOUR_1)
    assert isinstance(result.admin_api_error, IngestorAuthenticationError)
    assert result.admin_api_error.origin is Origin.SERVICES
    assert "wrong" not in str(result.admin_api_error)
    assert result.admin_api_connected is True
    states = {s.name: s for s in result.services}
    assert states[WEBSOCKET_INGESTION].status is ServiceStatus.HEALTHY


async def test_refused_key_without_other_source_raises(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    dead = {WEBSOCKET_INGESTION: f"http://127.0.0.1:{free_port()}"}
    async with IngestorSimulator(revision=Revision.R2, api_key=KEY, upstream_timeout=0.5) as sim:
        client = ServicesClient(session, sim.admin_api_url, None, dead, 5.0)
        with pytest.raises(IngestorAuthenticationError) as err:
            await client.async_fetch(Period.HOUR_1)
    assert err.value.origin is Origin.SERVICES
    assert "needs an API key" in str(err.value)


async def test_admin_api_down(session: aiohttp.ClientSession, r2: IngestorSimulator) -> None:
    await r2.set_fault(ADMIN_API, Fault.DOWN)
    result = await _client(session, r2).async_fetch(Period.HOUR_1)
    assert result.admin_api_connected is False
    assert result.revision is Revision.R2  # told by the websocket's event-rate page
    admin = {s.name: s for s in result.services}[ADMIN_API]
    assert admin.reachable is False
    assert admin.status is ServiceStatus.UNHEALTHY
    assert result.metrics.success_rate == 100.0

    with pytest.raises(IngestorConnectionError) as err:
        await _client(session, r2, direct=False).async_fetch(Period.HOUR_1)
    assert err.value.origin is Origin.SERVICES


async def test_no_admin_api_and_every_service_down(session: aiohttp.ClientSession) -> None:
    urls = {WEBSOCKET_INGESTION: f"http://127.0.0.1:{free_port()}"}
    client = ServicesClient(session, None, None, urls, 2.0)
    with pytest.raises(IngestorConnectionError):
        await client.async_fetch(Period.HOUR_1)
    with pytest.raises(IngestorConnectionError):
        await client.async_validate()
    nothing = ServicesClient(session, None, None, None)
    with pytest.raises(IngestorConnectionError, match="No ingestor service"):
        await nothing.async_fetch(Period.HOUR_1)


async def test_services_only_without_admin_api(
    session: aiohttp.ClientSession, r2: IngestorSimulator
) -> None:
    client = ServicesClient(session, None, None, _direct_urls(r2), 5.0)
    await client.async_validate()
    result = await client.async_fetch(Period.HOUR_1)
    assert result.admin_api_connected is None
    assert ADMIN_API not in {s.name for s in result.services}
    assert result.revision is Revision.R2


async def test_not_an_admin_api(session: aiohttp.ClientSession, r2: IngestorSimulator) -> None:
    # The websocket service answers 404 on every Admin API path.
    client = ServicesClient(session, r2.url_of(WEBSOCKET_INGESTION), None, None, 5.0)
    with pytest.raises(IngestorResponseError):
        await client.async_validate()
    with pytest.raises(IngestorResponseError):
        await client.async_fetch(Period.HOUR_1)


async def test_timeout(session: aiohttp.ClientSession, r2: IngestorSimulator) -> None:
    await r2.set_fault(DATA_API, Fault.SLOW, delay=2.0)
    client = _client(session, r2, timeout=0.5)
    result = await client.async_fetch(Period.HOUR_1)
    data_api = {s.name: s for s in result.services}[DATA_API]
    assert data_api.reachable is False
    assert data_api.message is not None
    assert "no answer within 0.5 s" in data_api.message

    await r2.set_fault(ADMIN_API, Fault.SLOW, delay=2.0)
    with pytest.raises(IngestorTimeoutError):
        await ServicesClient(session, r2.admin_api_url, None, None, 0.5).async_validate()


async def test_validate(session: aiohttp.ClientSession, socket_enabled: None) -> None:
    async with IngestorSimulator(revision=Revision.R1, api_key=KEY, upstream_timeout=0.5) as sim:
        info = await ServicesClient(session, sim.admin_api_url, KEY, None).async_validate()
        assert info.version == "1.0.0"
        assert info.authentication is True
        for key in (None, "wrong"):
            with pytest.raises(IngestorAuthenticationError) as err:
                await ServicesClient(session, sim.admin_api_url, key, None).async_validate()
            assert err.value.origin is Origin.SERVICES
        await sim.set_fault(ADMIN_API, Fault.GARBLED)
        with pytest.raises(IngestorResponseError):
            await ServicesClient(session, sim.admin_api_url, KEY, None).async_validate()
        await sim.set_fault(ADMIN_API, Fault.DOWN)
        with pytest.raises(IngestorConnectionError) as down:
            await ServicesClient(session, sim.admin_api_url, KEY, None).async_validate()
        assert KEY not in str(down.value)


async def test_validate_tls_failure(session: aiohttp.ClientSession, r2: IngestorSimulator) -> None:
    # A TLS handshake against a plain-HTTP listener fails in TLS, not in TCP.
    tls_url = r2.admin_api_url.replace("http://", "https://")
    with pytest.raises(IngestorSSLError):
        await ServicesClient(session, tls_url, None, None, 5.0).async_validate()


async def test_session_is_not_closed(session: aiohttp.ClientSession, r2: IngestorSimulator) -> None:
    client = _client(session, r2)
    await client.async_fetch(Period.HOUR_1)
    assert not session.closed
    assert client.admin_api_url == r2.admin_api_url


async def test_r1_reads_api_v1_health_without_health_services(
    session: aiohttp.ClientSession, r1: IngestorSimulator
) -> None:
    await r1.set_fault(ADMIN_API, Fault.SERVER_ERROR, paths=["/api/v1/health/services"])
    await r1.set_fault(ENRICHMENT_PIPELINE, Fault.DOWN)
    client = ServicesClient(
        session, r1.admin_api_url, None, {DATA_RETENTION: r1.url_of(DATA_RETENTION)}, 5.0
    )
    result = await client.async_fetch(Period.HOUR_1)
    assert r1.requests_to(ADMIN_API, "/api/v1/health")
    enrichment = {s.name: s for s in result.services}[ENRICHMENT_PIPELINE]
    assert enrichment.status is ServiceStatus.UNHEALTHY
    assert enrichment.reachable is False


async def test_websocket_rate_from_the_admin_api_when_not_asked_directly(
    session: aiohttp.ClientSession, r2: IngestorSimulator
) -> None:
    r2.set_figures(events_per_minute=7.5)
    client = ServicesClient(session, r2.admin_api_url, None, {DATA_API: r2.url_of(DATA_API)}, 5.0)
    result = await client.async_fetch(Period.HOUR_1)
    assert result.events.events_per_minute == 7.5
    assert result.events.last_event is None
    assert not r2.requests_to(WEBSOCKET_INGESTION)


def test_direct_state_from_http_code_alone() -> None:
    def state(status: int, body: object) -> ServiceStatus:
        replies = ServiceReplies("x", Reply(status, body, None, 1.0))
        return direct_state(replies).status

    assert state(200, {"service": "x"}) is ServiceStatus.HEALTHY
    assert state(500, {"detail": "boom"}) is ServiceStatus.UNHEALTHY
    assert state(404, {"detail": "Not Found"}) is ServiceStatus.UNKNOWN
    assert state(502, None) is ServiceStatus.UNHEALTHY
    assert state(200, None) is ServiceStatus.UNHEALTHY  # an unreadable answer is not health


def test_admin_influxdb_shape_and_zero_rate() -> None:
    ok_empty = Reply(200, {}, None, 1.0)
    admin = AdminReplies(
        stats=Reply(
            200,
            {
                "metrics": {
                    "total_events": 100,
                    "total_writes": 200,
                    "error_rate_percent": 3.5,
                    "services": {
                        WEBSOCKET_INGESTION: {"success_rate": 96.0, "avg_processing_time": 12.0}
                    },
                },
                "trends": [],
                "source": "influxdb",
            },
            None,
            1.0,
        ),
        services=ok_empty,
        health_services=ok_empty,
        health=ok_empty,
        info=ok_empty,
    )
    reported = read_reported(admin)
    result = assemble(admin, reported, [], AlertMemory())
    assert result.metrics.error_rate == 3.5
    assert result.metrics.success_rate == 96.0
    assert result.metrics.processing_time_ms == 12.0
    assert result.events.events_per_minute is None
    assert {s.name for s in result.services} == {ADMIN_API}
    assert admin_events_per_minute(None) is None
    entry = AdminServiceEntry(
        name=WEBSOCKET_INGESTION,
        status=ServiceStatus.UNKNOWN,
        reachable=True,
        events_per_minute=0.0,
        total_events_received=0,
    )
    assert admin_events_per_minute(entry) is None


def test_no_url_derived_without_a_host() -> None:
    client = ServicesClient(None, "http:///nohost", None, None)  # type: ignore[arg-type]
    reported = Reported(
        states=[
            ServiceState(name="mystery", status=ServiceStatus.HEALTHY, reachable=True),
            ServiceState(name=WEBSOCKET_INGESTION, status=ServiceStatus.HEALTHY, reachable=True),
        ]
    )
    assert client._derive_urls(reported) == {}


# --- period, timeouts, one round, completeness -----------------------------------------------


@pytest.fixture
async def traced(socket_enabled: None) -> AsyncIterator[tuple[aiohttp.ClientSession, list[str]]]:
    """A session that records every URL it requests."""
    urls: list[str] = []

    async def on_start(
        _session: aiohttp.ClientSession, _context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        urls.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as client_session:
        yield client_session, urls


async def test_period_is_passed_and_stats_get_a_longer_timeout(
    traced: tuple[aiohttp.ClientSession, list[str]], r2: IngestorSimulator
) -> None:
    session, urls = traced
    # Slower than every other request may take, within the stats call's own timeout.
    await r2.set_fault(ADMIN_API, Fault.SLOW, delay=1.5, paths=["/api/v1/stats"])
    client = ServicesClient(
        session, r2.admin_api_url, None, _direct_urls(r2), 1.0, stats_timeout=5.0
    )
    result = await client.async_fetch(Period.DAYS_7)

    stats = [u for u in urls if u.startswith(r2.admin_api_url + "/api/v1/stats")]
    assert stats == [f"{r2.admin_api_url}/api/v1/stats?period=7d"]
    assert result.admin_api_error is None
    assert result.services_complete


async def test_derived_urls_are_asked_with_the_admin_api_from_the_second_fetch(
    session: aiohttp.ClientSession, r1: IngestorSimulator
) -> None:
    await r1.set_fault(ADMIN_API, Fault.SLOW, delay=0.3)
    client = _client(session, r1, direct=False)

    def health_after_admin() -> bool:
        admin_done = max(r.ended for r in r1.requests_to(ADMIN_API))
        (health,) = r1.requests_to(WEBSOCKET_INGESTION, "/health")
        return health.started >= admin_done

    first = await client.async_fetch(Period.HOUR_1)
    # The first fetch learns the services from the Admin API, then asks them.
    assert health_after_admin()
    r1.request_log.clear()
    second = await client.async_fetch(Period.HOUR_1)
    # The second asks them at once, in the same round as the Admin API.
    assert not health_after_admin()
    assert [s.name for s in second.services] == [s.name for s in first.services]
    assert len(r1.requests_to(WEBSOCKET_INGESTION, "/health")) == 1


async def test_services_complete_only_when_the_listings_answered(
    session: aiohttp.ClientSession, r2: IngestorSimulator
) -> None:
    assert (await _client(session, r2).async_fetch(Period.HOUR_1)).services_complete
    for path in ("/api/v1/services", "/api/v1/stats", "/api/v1/health/services"):
        await r2.set_fault(ADMIN_API, Fault.SERVER_ERROR, paths=[path])
        result = await _client(session, r2).async_fetch(Period.HOUR_1)
        assert result.admin_api_connected is True
        assert not result.services_complete, path
    await r2.set_fault(ADMIN_API, Fault.DOWN)
    assert not (await _client(session, r2).async_fetch(Period.HOUR_1)).services_complete
    # Direct URLs only: the configured services are always all listed.
    direct_only = ServicesClient(session, None, None, _direct_urls(r2), 5.0)
    assert (await direct_only.async_fetch(Period.HOUR_1)).services_complete
