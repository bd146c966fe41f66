"""The services client against HomeIQ 2.0 (R3): the right health, the rate limit, the alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
import pytest

from custom_components.ha_ingestor.api.core.errors import IngestorAuthenticationError
from custom_components.ha_ingestor.api.core.models import Period, Revision, ServiceStatus
from custom_components.ha_ingestor.api.ingestor.admin_payloads import (
    normalize_alerts_active,
    normalize_api_info,
)
from custom_components.ha_ingestor.api.ingestor.parse import parse_timestamp
from custom_components.ha_ingestor.api.ingestor.service_payloads import (
    is_websocket_stub,
    normalize_filter_stats,
    normalize_service_health,
    normalize_websocket_detailed,
)
from custom_components.ha_ingestor.api.ingestor.services import ServicesClient
from tests.conftest import R3_KEY
from tests.support.contract_examples import DATA_API_HEALTH, WEBSOCKET_HEALTH_R2
from tests.support.contract_examples_r3 import (
    ALERTS_ACTIVE,
    API_INFO_R3,
    DATA_API_HEALTH_R3,
    FILTER_STATS_ENABLED,
    WEBSOCKET_DETAILED,
    WEBSOCKET_DETAILED_NOT_INITIALISED,
    WEBSOCKET_HEALTH_STUB,
)
from tests.support.simulator import (
    ADMIN_API,
    DATA_API,
    DATA_RETENTION,
    WEBSOCKET_INGESTION,
    Fault,
)
from tests.support.simulator_r3 import (
    RATE_LIMIT_EXEMPT,
    IngestorSimulatorR3,
    ManualClock,
    WebhookAlert,
)

if TYPE_CHECKING:
    from custom_components.ha_ingestor.api.ingestor.assembly import ServicesResult

pytestmark = pytest.mark.usefixtures("socket_enabled")

KEY = R3_KEY
# The shortest update interval the options allow.
SHORTEST_INTERVAL = 15


def client(
    session: aiohttp.ClientSession, sim: IngestorSimulatorR3, *, key: str | None = KEY
) -> ServicesClient:
    direct = {n: sim.url_of(n) for n in (WEBSOCKET_INGESTION, DATA_API, DATA_RETENTION)}
    return ServicesClient(session, sim.admin_api_url, key, direct, 5.0)


def state(result: ServicesResult, name: str) -> tuple[ServiceStatus, str | None]:
    found = next(s for s in result.services if s.name == name)
    return found.status, found.message


# --- normalisers ---------------------------------------------------------------------------


def test_broken_zulu_and_nanosecond_timestamps_parse() -> None:
    received = parse_timestamp("2026-08-06T18:00:30.123456+00:00Z")
    assert received == datetime(2026, 8, 6, 18, 0, 30, 123456, tzinfo=UTC)
    starts = parse_timestamp("2026-08-06T17:58:00.123456789Z")
    assert starts == datetime(2026, 8, 6, 17, 58, 0, 123456, tzinfo=UTC)
    assert parse_timestamp("2026-08-06T18:00:31.000512-02:00Z") == datetime(
        2026, 8, 6, 20, 0, 31, 512, tzinfo=UTC
    )


def test_api_info_authentication_object_and_bool() -> None:
    info = normalize_api_info(API_INFO_R3)
    assert (info.authentication, info.rate_limit_per_minute, info.r3) == (True, 60, True)
    r2 = normalize_api_info({"data": {"version": "1.0.0", "authentication": False}})
    assert (r2.authentication, r2.r3) == (False, False)


def test_websocket_detailed_is_judged_by_connection_and_subscription() -> None:
    assert is_websocket_stub(WEBSOCKET_HEALTH_STUB)
    assert not is_websocket_stub(WEBSOCKET_HEALTH_R2)
    healthy = normalize_websocket_detailed(WEBSOCKET_DETAILED)
    assert healthy.health.status is ServiceStatus.HEALTHY
    assert healthy.events_per_minute == 27.12
    assert healthy.last_event == datetime(2026, 8, 6, 18, 0, 10, 871002, tzinfo=UTC)
    unsubscribed = {
        **WEBSOCKET_DETAILED,
        "status": "degraded",
        "subscription": {**WEBSOCKET_DETAILED["subscription"], "is_subscribed": False},
    }
    health = normalize_websocket_detailed(unsubscribed).health
    assert (health.status, health.message) == (ServiceStatus.UNHEALTHY, "not subscribed")
    health = normalize_websocket_detailed(WEBSOCKET_DETAILED_NOT_INITIALISED).health
    assert (health.status, health.message) == (ServiceStatus.DEGRADED, "not initialised")
    broken = {**WEBSOCKET_DETAILED, "status": "unhealthy", "connection": None}
    health = normalize_websocket_detailed(broken).health
    assert health.status is ServiceStatus.UNHEALTHY
    # An R2 body read through the R3 reader: field by field, the same answer.
    health = normalize_websocket_detailed(WEBSOCKET_HEALTH_R2).health
    assert health.status is ServiceStatus.HEALTHY


def test_standard_health_mixed_with_r2_shapes() -> None:
    r3 = normalize_service_health(DATA_API_HEALTH_R3)
    assert (r3.standard, r3.git_sha, r3.uptime_seconds) == (True, None, 5130)
    r2 = normalize_service_health(DATA_API_HEALTH)
    assert r2.standard is False
    mixed = normalize_service_health({**DATA_API_HEALTH, "git_sha": "580788a"})
    assert (mixed.status, mixed.git_sha) == (ServiceStatus.HEALTHY, "580788a")


def test_filter_stats_and_alerts() -> None:
    enabled = normalize_filter_stats(FILTER_STATS_ENABLED)
    assert enabled.filtered_events == 1204
    assert enabled.filtered_percent == pytest.approx(51.986, abs=0.001)
    disabled = normalize_filter_stats(
        {"enabled": False, "statistics": None, "message": "Entity filter not configured"}
    )
    assert (disabled.enabled, disabled.filtered_events) == (False, 0)
    assert normalize_filter_stats({"detail": "Not Found"}).enabled is None
    (alert,) = normalize_alerts_active(ALERTS_ACTIVE) or ()
    assert (alert.name, alert.severity, alert.service) == (
        "ServiceDown",
        "critical",
        "websocket-ingestion",
    )
    assert alert.received_at == datetime(2026, 8, 6, 18, 0, 30, 123456, tzinfo=UTC)
    assert normalize_alerts_active({"detail": "Not Found"}) is None


# --- the client against the simulator ------------------------------------------------------


async def test_r3_is_detected_and_websocket_health_comes_from_detailed(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    r3.set_figures(ws_subscribed=False)
    result = await client(session, r3).async_fetch(Period.HOUR_1)
    assert result.revision is Revision.R3
    assert state(result, WEBSOCKET_INGESTION) == (ServiceStatus.UNHEALTHY, "not subscribed")
    # The stub said healthy all along.
    assert r3.requests_to(WEBSOCKET_INGESTION, "/health")[-1].status == 200

    r3.set_figures(ws_subscribed=True, ws_connected=False)
    result = await client(session, r3).async_fetch(Period.HOUR_1)
    assert state(result, WEBSOCKET_INGESTION) == (ServiceStatus.UNHEALTHY, "not connected")
    r3.set_figures(ws_connected=True)
    result = await client(session, r3).async_fetch(Period.HOUR_1)
    assert state(result, WEBSOCKET_INGESTION) == (ServiceStatus.HEALTHY, None)
    assert result.events.events_per_minute == 31.6


async def test_r3_is_detected_from_the_websocket_alone(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    only = ServicesClient(
        session, None, None, {WEBSOCKET_INGESTION: r3.url_of(WEBSOCKET_INGESTION)}, 5.0
    )
    result = await only.async_fetch(Period.HOUR_1)
    assert result.revision is Revision.R3


async def test_standard_health_status_version_and_git_sha(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    r3.set_figures(git_sha="580788a")
    await r3.set_fault(DATA_API, Fault.UNHEALTHY)
    result = await client(session, r3).async_fetch(Period.HOUR_1)
    data_api = next(s for s in result.services if s.name == DATA_API)
    assert (data_api.status, data_api.reachable) == (ServiceStatus.UNHEALTHY, True)
    assert (data_api.version, data_api.git_sha) == ("1.0.0", "580788a")


async def test_data_retention_without_key_is_not_configured_not_unhealthy(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    result = await client(session, r3).async_fetch(Period.HOUR_1)
    status, message = state(result, DATA_RETENTION)
    assert status is ServiceStatus.HEALTHY
    assert message == "statistics not configured (API key not configured)"


async def test_queue_filter_and_firing_alerts(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    r3.set_figures(
        queue_size=8500,
        filter_enabled=True,
        filtered_events=30,
        filter_passed_events=90,
        session_events=120,
        processed_events=88,
        failed_events=2,
    )
    await r3.post_alerts([WebhookAlert("ServiceDown", "critical", fingerprint="f1")])
    services = client(session, r3)
    first = await services.async_fetch(Period.HOUR_1)
    assert first.ingestion.queue_fill_percent == 85.0
    assert first.ingestion.backpressure is True
    assert (first.ingestion.filtered_events, first.ingestion.filtered_percent) == (30, 25.0)
    # The funnel's totals: `/health/detailed` received, `/api/v1/event-rate` processed, failed.
    assert (first.ingestion.events_received, first.ingestion.events_processed) == (120, 88)
    assert first.ingestion.events_failed == 2
    second = await services.async_fetch(Period.HOUR_1)  # R3 known: the alerts are asked
    assert [a.name for a in second.firing_alerts or ()] == ["ServiceDown"]


async def test_one_firing_alert_does_not_flap_across_the_ttl_gap(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3, clock: ManualClock
) -> None:
    services = client(session, r3)
    await services.async_fetch(Period.HOUR_1)
    await r3.post_alerts([WebhookAlert("ServiceDown", "critical", fingerprint="f1")])
    await r3.post_alerts([WebhookAlert("Slow", "warning", fingerprint="f2")])
    counts = []
    for step in (0, 100, 10, 790, 300, 600, 400):  # 0, 100, 110, 900, 1200, 1800, 2200 s
        clock.now += step
        result = await services.async_fetch(Period.HOUR_1, now=r3.wall_now())
        counts.append(sorted(a.name for a in result.firing_alerts or ()))
        if step == 100:
            await r3.post_alerts([WebhookAlert("Slow", status="resolved", fingerprint="f2")])
    # Resolved: gone at once. Expired at 900 s although still firing: held until its repeat
    # (30 min for critical) could have renewed it.
    assert counts == [
        ["ServiceDown", "Slow"],
        ["ServiceDown", "Slow"],
        ["ServiceDown"],
        ["ServiceDown"],
        ["ServiceDown"],
        ["ServiceDown"],
        [],
    ]
    # The simulated Admin API itself had dropped it at 900 s.
    assert r3.requests_to(ADMIN_API, "/api/alerts/active")[-1].status == 200


async def test_requests_per_minute_at_the_shortest_interval(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    services = client(session, r3)
    refreshes = 60 // SHORTEST_INTERVAL
    for _ in range(refreshes):
        await services.async_fetch(Period.HOUR_1)
    limited = [r for r in r3.requests_to(ADMIN_API) if r.path not in RATE_LIMIT_EXEMPT]
    assert all(r.status != 429 for r in limited)
    # Well under the Admin API's 60 a minute (and under its burst of 20).
    assert len(limited) <= 20
    assert {r.path for r in limited[-4:]} == {
        "/api/v1/stats",
        "/api/v1/health/services",
        "/api/info",
        "/api/alerts/active",
    }


async def test_429_is_slow_down_with_the_last_values(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    services = client(session, r3)
    good = await services.async_fetch(Period.HOUR_1)
    before = len(r3.requests_to(ADMIN_API))
    async with aiohttp.ClientSession() as other:  # another tab at the same address
        for _ in range(25):
            async with other.get(r3.admin_api_url + "/api/info"):
                pass
    throttled = await services.async_fetch(Period.HOUR_1)
    assert throttled.admin_api_connected is True
    assert throttled.admin_api_error is None
    admin = next(s for s in throttled.services if s.name == ADMIN_API)
    assert admin.status is ServiceStatus.HEALTHY
    assert admin.message is not None
    assert "429" in admin.message
    assert {s.name for s in throttled.services} == {s.name for s in good.services}
    assert throttled.services_complete is True
    # Backing off: the next refresh does not touch the rate-limited paths at all.
    asked = len(r3.requests_to(ADMIN_API))
    await services.async_fetch(Period.HOUR_1)
    newer = r3.requests_to(ADMIN_API)[asked:]
    assert all(r.path in RATE_LIMIT_EXEMPT for r in newer)
    assert before < asked


async def test_refused_r3_key_is_an_authentication_error(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    result = await client(session, r3, key="wrong").async_fetch(Period.HOUR_1)
    assert isinstance(result.admin_api_error, IngestorAuthenticationError)
    with pytest.raises(IngestorAuthenticationError):
        await client(session, r3, key="wrong").async_validate()
    info = await client(session, r3).async_validate()
    assert info.authentication is True


async def test_validate_without_key_says_a_key_is_required(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    with pytest.raises(IngestorAuthenticationError, match="needs an API key"):
        await client(session, r3, key=None).async_validate()


async def test_a_garbled_detailed_health_is_unhealthy_not_the_stubs_healthy(
    session: aiohttp.ClientSession, r3: IngestorSimulatorR3
) -> None:
    await r3.set_fault(WEBSOCKET_INGESTION, Fault.GARBLED, paths=["/health/detailed"])
    result = await client(session, r3).async_fetch(Period.HOUR_1)
    status, message = state(result, WEBSOCKET_INGESTION)
    assert status is ServiceStatus.UNHEALTHY
    assert message is not None
    assert message.startswith("/health/detailed: ")
