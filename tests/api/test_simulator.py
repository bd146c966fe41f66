"""The ingestor simulator and event writer match docs/ingestor-contracts.md and really misbehave."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from custom_components.ha_ingestor.api.core.models import Revision
from tests.support.contract_examples import DATA_API_HEALTH, WEBSOCKET_HEALTH_R2
from tests.support.events import (
    Event,
    Schema,
    auxiliary_lines,
    carbon_intensity_line,
    event_lines,
    generate_events,
    normalise_state_r1,
    schema_a_line,
    schema_b_line,
    service_metrics_lines,
    smart_meter_line,
    to_ns,
    truncate_to_ms,
)
from tests.support.simulator import (
    CARBON_INTENSITY,
    DATA_API,
    DATA_RETENTION,
    ENRICHMENT_PIPELINE,
    WEBSOCKET_INGESTION,
    EventWriter,
    Fault,
    IngestorSimulator,
    run,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.support.influxdb_server import InfluxDBServer

pytestmark = pytest.mark.usefixtures("socket_enabled")

REPO = Path(__file__).resolve().parents[2]
UPTIME = re.compile(r"^(\d+ days?, )?\d+:\d{2}:\d{2}(\.\d{6})?$")

# --- the ingestor's real payloads, the shapes the simulator's must have -------------------

EVENT_RATE_R2 = {
    "service": "websocket-ingestion",
    "events_per_second": 0.45,
    "events_per_hour": 1620.0,
    "total_events_processed": 2310,
    "uptime_seconds": 5123.4,
    "processing_stats": {
        "is_running": True,
        "max_workers": 10,
        "active_workers": 10,
        "processing_rate_limit": 1000,
        "processed_events": 2310,
        "failed_events": 0,
        "success_rate": 100.0,
        "processing_rate_per_second": 0.45,
        "average_processing_time_ms": 1.93,
        "queue_size": 0,
        "queue_maxsize": 10000,
        "uptime_seconds": 5121.7,
        "last_processing_time": "2025-11-01T23:06:10.874112",
        "event_handlers_count": 1,
    },
    "connection_stats": {
        "is_connected": True,
        "is_subscribed": True,
        "total_events_received": 2310,
        "events_by_type": {"state_changed": 2310},
        "last_event_time": "2025-11-01T23:06:10.871002",
    },
    "timestamp": "2025-11-01T23:06:12.001200",
}
_NORMALIZATION = {
    "normalized_events": 2297,
    "normalization_errors": 0,
    "success_rate": 100.0,
    "last_normalized_time": "2025-10-12T20:05:02.951000+00:00",
}
_INFLUX = {
    "points_written": 2297,
    "write_errors": 0,
    "success_rate": 100.0,
    "last_write_time": "2025-10-12T20:05:02.953311",
    "connected": True,
    "bucket": "home_assistant_events",
    "org": "ha-ingestor",
}
ENRICHMENT_HEALTH = {
    "status": "healthy",
    "service": "enrichment-pipeline",
    "uptime": "1:25:20.771000",
    "timestamp": "2025-10-12T20:05:03.401221",
    "is_running": True,
    "normalization": _NORMALIZATION,
    "influxdb": _INFLUX,
}
ENRICHMENT_STATS = {
    "service": "enrichment-pipeline",
    "is_running": True,
    "uptime": 5120.77,
    "normalization": _NORMALIZATION,
    "influxdb": _INFLUX,
    "validation_stats": {
        "validation_count": 4594,
        "error_count": 0,
        "warning_count": 12,
        "error_rate": 0.0,
        "warning_rate": 0.0026,
    },
    "alert_stats": {
        "total_alerts": 0,
        "active_alerts": 0,
        "acknowledged_alerts": 0,
        "resolved_alerts": 0,
        "severity_breakdown": {"info": 0, "warning": 0, "critical": 0},
        "type_breakdown": {},
        "alert_handlers": 0,
        "history_size": 0,
    },
    "timestamp": 81234.567,
}
CARBON_HEALTH = {
    "status": "healthy",
    "status_detail": "credentials_missing",
    "service": "carbon-intensity-service",
    "uptime_seconds": 5101.9,
    "last_successful_fetch": None,
    "last_token_refresh": None,
    "total_fetches": 0,
    "failed_fetches": 0,
    "token_refresh_count": 0,
    "success_rate": 0,
    "credentials_configured": False,
    "timestamp": "2025-11-01T23:06:12.120034",
}
ADMIN_HEALTH = {
    "status": "healthy",
    "timestamp": "2025-10-12T20:05:03.412907",
    "service": "admin-api",
    "uptime_seconds": 5123.45,
}
ADMIN_ROOT = {
    "success": True,
    "data": {
        "service": "Home Assistant Ingestor Admin API",
        "version": "1.0.0",
        "status": "running",
        "timestamp": "2025-10-12T20:05:03.412907",
    },
    "message": "Admin API is running",
    "timestamp": "2025-10-12T20:05:03.412907",
    "request_id": None,
}
ADMIN_V1_HEALTH_R1 = {
    "service": "admin-api",
    "status": "critical",
    "timestamp": "2025-10-12T20:05:03.412907Z",
    "uptime_seconds": 5123.45,
    "version": "1.0.0",
    "dependencies": [
        {
            "name": "InfluxDB",
            "type": "database",
            "status": "healthy",
            "response_time_ms": 4.1,
            "message": "Connected successfully",
            "details": None,
        },
    ],
    "metrics": {
        "uptime_seconds": 5123.45,
        "uptime_human": "1h 25m 23s",
        "start_time": "2025-10-12T18:39:40.001233",
        "current_time": "2025-10-12T20:05:03.412907",
    },
}
ADMIN_V1_HEALTH_R2 = {
    "status": "healthy",
    "service": "admin-api",
    "timestamp": "2025-11-01T23:06:12.000101",
    "uptime_seconds": 5123.4,
    "uptime_human": "1h 25m 23s",
    "uptime_percentage": 100.0,
    "dependencies": [
        {
            "name": "InfluxDB",
            "type": "database",
            "status": "healthy",
            "response_time_ms": 5.2,
            "last_check": "2025-11-01T23:06:12.000090",
        },
    ],
    "metrics": {
        "uptime_human": "1h 25m 23s",
        "uptime_percentage": 100.0,
        "total_requests": 0,
        "error_rate": 0.0,
    },
}
HEALTH_SERVICE_ENTRY = {
    "name": "websocket-ingestion",
    "status": "healthy",
    "last_check": "2025-11-01T23:06:12.1",
    "response_time_ms": 3.9,
    "error_message": None,
}
WEBSOCKET_STATS_METRICS = {
    "events_per_minute": 27.18,
    "error_rate": 0.0,
    "response_time_ms": 0,
    "connection_attempts": 1,
    "total_events_received": 2310,
}
GENERIC_STATS_METRICS = {"status": "healthy", "uptime_seconds": 5130.1, "healthy": True}
STATS_KEYS = {"timestamp", "period", "metrics", "trends", "alerts", "source"}


def assert_shape(actual: Any, example: Any, where: str = "$") -> None:
    """Same keys (recursively) and JSON types; None in the example accepts anything."""
    if example is None:
        return
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        if example:  # {} in an example means "any object"
            assert set(actual) == set(example), f"{where}: keys {set(actual) ^ set(example)}"
            for key, value in example.items():
                assert_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not a list"
        for index, item in enumerate(actual if example else []):
            assert_shape(item, example[0], f"{where}[{index}]")
    else:
        assert json_type(actual) == json_type(example), f"{where}: {actual!r} vs {example!r}"


def json_type(value: Any) -> str:
    """JSON's own type names (int and float are both numbers; bool is not one)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_naive_iso(text: Any) -> datetime:
    assert isinstance(text, str)
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is None, text
    return parsed.replace(tzinfo=UTC)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


# --- payload shapes -------------------------------------------------------------------------


async def test_r2_service_payloads_match_the_contract_examples(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    urls = r2.service_urls
    assert set(urls) == {
        "admin-api",
        WEBSOCKET_INGESTION,
        DATA_API,
        CARBON_INTENSITY,
        DATA_RETENTION,
    }
    assert r2.admin_api_url == urls["admin-api"]
    cases = [
        (urls[WEBSOCKET_INGESTION] + "/health", WEBSOCKET_HEALTH_R2),
        (urls[WEBSOCKET_INGESTION] + "/api/v1/event-rate", EVENT_RATE_R2),
        (urls[DATA_API] + "/health", DATA_API_HEALTH),
        (urls[CARBON_INTENSITY] + "/health", CARBON_HEALTH),
        (r2.admin_api_url + "/health", ADMIN_HEALTH),
        (r2.admin_api_url + "/", ADMIN_ROOT),
        (r2.admin_api_url + "/api/v1/health", ADMIN_V1_HEALTH_R2),
    ]
    for url, example in cases:
        status, body = await get(http, url)
        assert status == 200, url
        assert_shape(body, example, url)


async def test_r1_service_payloads_match_the_contract_examples(
    r1: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    urls = r1.service_urls
    assert ENRICHMENT_PIPELINE in urls
    assert DATA_API not in urls
    ws_r1 = {k: v for k, v in WEBSOCKET_HEALTH_R2.items() if k != "subscription"}
    ws_r1["subscription"] = {
        k: v
        for k, v in WEBSOCKET_HEALTH_R2["subscription"].items()  # type: ignore[attr-defined]
        if k not in {"session_events_received", "historical_events_received"}
    }
    cases = [
        (urls[WEBSOCKET_INGESTION] + "/health", ws_r1),
        (urls[ENRICHMENT_PIPELINE] + "/health", ENRICHMENT_HEALTH),
        (urls[ENRICHMENT_PIPELINE] + "/api/v1/stats", ENRICHMENT_STATS),
        (r1.admin_api_url + "/api/v1/health", ADMIN_V1_HEALTH_R1),
    ]
    for url, example in cases:
        status, body = await get(http, url)
        assert status == 200, url
        assert_shape(body, example, url)
    # R1 has no event-rate page: that 404 is how the integration tells R1 from R2.
    async with http.get(urls[WEBSOCKET_INGESTION] + "/api/v1/event-rate") as response:
        assert response.status == 404


async def test_timestamps_use_the_ingestors_formats(
    r1: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    _, ws = await get(http, r1.url_of(WEBSOCKET_INGESTION) + "/health")
    assert UPTIME.match(ws["uptime"])
    stamp = assert_naive_iso(ws["timestamp"])
    assert abs(stamp - datetime.now(UTC)) < timedelta(seconds=5)
    _, stats = await get(http, r1.url_of(ENRICHMENT_PIPELINE) + "/api/v1/stats")
    assert isinstance(stats["timestamp"], float)  # event-loop seconds, not a date
    assert isinstance(stats["uptime"], float)
    _, v1 = await get(http, r1.admin_api_url + "/api/v1/health")
    assert v1["timestamp"].endswith("Z")
    r1.set_figures(uptime_seconds=2 * 86400 + 3.5)
    _, ws = await get(http, r1.url_of(WEBSOCKET_INGESTION) + "/health")
    assert ws["uptime"] == "2 days, 0:00:03.500000"


async def test_figures_set_by_the_test_appear_in_payloads(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    last = datetime(2025, 11, 1, 23, 6, 10, 871002, tzinfo=UTC)
    r2.set_figures(
        events_per_minute=12.5,
        session_events=100,
        historical_events=900,
        connection_attempts=8,
        failed_connections=2,
        processed_events=95,
        failed_events=5,
        success_rate=95.0,
        average_processing_time_ms=1234.5,
        events_per_second=0.2,
        last_event_time=last,
        aux_success_rate=0.75,
    )
    _, ws = await get(http, r2.url_of(WEBSOCKET_INGESTION) + "/health")
    assert ws["subscription"]["event_rate_per_minute"] == 12.5
    assert ws["subscription"]["total_events_received"] == 1000
    assert ws["subscription"]["last_event_time"] == "2025-11-01T23:06:10.871002"
    _, rate = await get(http, r2.url_of(WEBSOCKET_INGESTION) + "/api/v1/event-rate")
    processing = rate["processing_stats"]
    assert (processing["processed_events"], processing["failed_events"]) == (95, 5)
    assert processing["average_processing_time_ms"] == 1234.5
    assert processing["success_rate"] == 95.0
    assert rate["events_per_hour"] == 720.0
    _, carbon = await get(http, r2.url_of(CARBON_INTENSITY) + "/health")
    assert carbon["success_rate"] == 0.75
    _, stats = await get(http, r2.admin_api_url + "/api/v1/stats?period=15m")
    assert set(stats) == STATS_KEYS
    assert stats["period"] == "15m"
    assert stats["source"] == "services-fallback"
    ws_metrics = stats["metrics"][WEBSOCKET_INGESTION]
    assert_shape(ws_metrics, WEBSOCKET_STATS_METRICS)
    assert ws_metrics["error_rate"] == 25.0
    assert ws_metrics["events_per_minute"] == 12.5
    assert ws_metrics["total_events_received"] == 1000
    trend = stats["trends"][WEBSOCKET_INGESTION]["events_per_minute"]
    assert trend[0]["value"] == 12.5
    assert_naive_iso(trend[0]["timestamp"])


async def test_r1_omits_the_event_rate_before_one_exists(
    r1: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    r1.set_figures(events_per_minute=None, last_event_time=None)
    _, ws = await get(http, r1.url_of(WEBSOCKET_INGESTION) + "/health")
    assert "event_rate_per_minute" not in ws["subscription"]
    assert ws["subscription"]["last_event_time"] is None
    with pytest.raises(TypeError):
        r1.set_figures(no_such_figure=1)


async def test_r1_admin_stats_use_both_fallback_services(
    r1: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    r1.set_figures(validation_count=200, validation_errors=3, points_written=77)
    _, stats = await get(http, r1.admin_api_url + "/api/v1/stats")
    assert list(stats["metrics"]) == [WEBSOCKET_INGESTION, ENRICHMENT_PIPELINE]
    enrichment = stats["metrics"][ENRICHMENT_PIPELINE]
    assert_shape(enrichment, WEBSOCKET_STATS_METRICS)
    assert enrichment["error_rate"] == 1.5
    assert enrichment["connection_attempts"] == 77  # the misnamed points_written
    assert isinstance(stats["trends"][ENRICHMENT_PIPELINE]["error_rate"][0]["timestamp"], float)
    _, single = await get(http, r1.admin_api_url + "/api/v1/stats?service=websocket-ingestion")
    assert_shape(single["metrics"], WEBSOCKET_STATS_METRICS)


async def test_r2_admin_stats_cover_thirteen_services_with_undeployed_errors(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    _, stats = await get(http, r2.admin_api_url + "/api/v1/stats")
    assert len(stats["metrics"]) == 13
    assert_shape(stats["metrics"][DATA_API], GENERIC_STATS_METRICS)
    assert stats["metrics"]["sports-data"]["error"].startswith("Cannot connect to host")
    assert {alert["service"] for alert in stats["alerts"]} == {"sports-data", "calendar-service"}
    assert isinstance(stats["metrics"]["weather-api"]["uptime_seconds"], float | int)
    _, services = await get(http, r2.admin_api_url + "/api/v1/health/services")
    assert_shape(services[WEBSOCKET_INGESTION], HEALTH_SERVICE_ENTRY)
    assert services["influxdb"]["status"] == "pass"
    assert services["calendar-service"]["status"] == "unhealthy"
    _, listing = await get(http, r2.admin_api_url + "/api/v1/services")
    assert {entry["service"] for entry in listing["services"]} == {
        WEBSOCKET_INGESTION,
        DATA_RETENTION,
        "admin-api",
        "health-dashboard",
        "influxdb",
    }
    assert listing["running"] == listing["total"] == 5
    _, realtime = await get(http, r2.admin_api_url + "/api/v1/real-time-metrics")
    assert realtime["events_per_hour"] == 1620.0
    assert realtime["total_apis"] == 11


# --- authentication -------------------------------------------------------------------------


async def test_api_key_guards_protected_routes_only(http: aiohttp.ClientSession) -> None:
    async with IngestorSimulator(Revision.R2, api_key="s3cret", upstream_timeout=0.5) as sim:
        base = sim.admin_api_url
        status, body = await get(http, base + "/api/v1/stats")
        assert status == 401
        assert body["success"] is False
        assert body["error"] == "Authentication required"
        assert body["error_code"] == "HTTP_401"
        assert body["request_id"] is None
        assert_naive_iso(body["timestamp"])
        status, body = await get(http, base + "/api/v1/stats", {"Authorization": "Bearer nope"})
        assert (status, body["error"]) == (401, "Invalid API key")
        status, _ = await get(http, base + "/api/v1/stats", {"Authorization": "Bearer s3cret"})
        assert status == 200
        for path in ("/health", "/", "/api/v1/health", "/api/v1/health/services"):
            status, _ = await get(http, base + path)
            assert status == 200, path
        status, info = await get(http, base + "/api/info")
        assert status == 200
        assert info["data"]["authentication"] is True
        # A key never shows up in a payload.
        assert "s3cret" not in json.dumps(info)
        status, body = await get(http, base + "/api/v1/nothing")
        assert (status, body) == (404, {"detail": "Not Found"})


async def test_auth_on_without_a_key_refuses_every_protected_call(
    http: aiohttp.ClientSession,
) -> None:
    async with IngestorSimulator(Revision.R1, auth_enabled=True) as sim:
        headers = {"Authorization": "Bearer anything"}
        status, body = await get(http, sim.admin_api_url + "/api/v1/stats", headers)
        assert (status, body["error"]) == (401, "Invalid API key")


async def test_auth_off_is_advertised(r1: IngestorSimulator, http: aiohttp.ClientSession) -> None:
    _, info = await get(http, r1.admin_api_url + "/api/info")
    assert info["data"]["authentication"] is False
    status, _ = await get(http, r1.admin_api_url + "/api/v1/stats")
    assert status == 200


# --- faults ----------------------------------------------------------------------------------


async def test_down_refuses_connections_and_comes_back_on_the_same_port(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    url = r2.url_of(WEBSOCKET_INGESTION) + "/health"
    await get(http, url)  # leave a keep-alive connection behind
    await r2.set_fault(WEBSOCKET_INGESTION, Fault.DOWN)
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(http, url)
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientConnectorError):
            await get(fresh, url)
    status, _ = await get(http, r2.url_of(DATA_API) + "/health")
    assert status == 200  # a partial outage: the others still answer
    _, stats = await get(http, r2.admin_api_url + "/api/v1/stats")
    error = stats["metrics"][WEBSOCKET_INGESTION]["error"]
    assert error.startswith("Cannot connect to host 127.0.0.1")
    assert {"service": WEBSOCKET_INGESTION, "level": "error", "message": error} in stats["alerts"]
    _, v1 = await get(http, r2.admin_api_url + "/api/v1/health")
    assert v1["status"] == "healthy"  # R2's hard-coded page does not notice (quirk 13)
    await r2.clear_faults()
    assert r2.url_of(WEBSOCKET_INGESTION) + "/health" == url
    status, _ = await get(http, url)
    assert status == 200


async def test_slow_is_really_slow(r2: IngestorSimulator, http: aiohttp.ClientSession) -> None:
    await r2.set_fault(DATA_API, Fault.SLOW, delay=0.6)
    url = r2.url_of(DATA_API) + "/health"
    with pytest.raises(TimeoutError):
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=0.2)):
            pass
    started = time.monotonic()
    status, _ = await get(http, url)
    assert status == 200
    assert time.monotonic() - started >= 0.6
    record = r2.requests_to(DATA_API)[-1]
    assert record.ended - record.started >= 0.6
    with pytest.raises(ValueError, match="delay"):
        await r2.set_fault(DATA_API, Fault.SLOW)


async def test_request_log_shows_concurrent_calls(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    for service in (DATA_API, CARBON_INTENSITY):
        await r2.set_fault(service, Fault.SLOW, delay=0.3)
    await asyncio.gather(
        get(http, r2.url_of(DATA_API) + "/health"),
        get(http, r2.url_of(CARBON_INTENSITY) + "/health"),
    )
    first, second = r2.requests_to(DATA_API)[0], r2.requests_to(CARBON_INTENSITY)[0]
    assert first.started < second.ended
    assert second.started < first.ended
    assert not r2.requests_to(WEBSOCKET_INGESTION)
    await get(http, r2.admin_api_url + "/api/v1/stats")
    # The Admin API's own calls are logged too, but marked internal.
    assert not r2.requests_to(WEBSOCKET_INGESTION)
    assert len(r2.requests_to(WEBSOCKET_INGESTION, "/health", include_internal=True)) == 1


async def test_garbled_json_is_really_invalid(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    await r2.set_fault(WEBSOCKET_INGESTION, Fault.GARBLED)
    async with http.get(r2.url_of(WEBSOCKET_INGESTION) + "/health") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        text = await response.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    _, stats = await get(http, r2.admin_api_url + "/api/v1/stats")
    assert "error" in stats["metrics"][WEBSOCKET_INGESTION]


async def test_server_errors_and_401s(r2: IngestorSimulator, http: aiohttp.ClientSession) -> None:
    await r2.set_fault(WEBSOCKET_INGESTION, Fault.SERVER_ERROR, paths=["/api/v1/event-rate"])
    status, body = await get(http, r2.url_of(WEBSOCKET_INGESTION) + "/api/v1/event-rate")
    assert status == 500
    assert body["events_per_second"] == 0
    status, _ = await get(http, r2.url_of(WEBSOCKET_INGESTION) + "/health")
    assert status == 200  # the fault is limited to one path
    await r2.set_fault(DATA_RETENTION, Fault.SERVER_ERROR)
    status, body = await get(http, r2.url_of(DATA_RETENTION) + "/health")
    assert (status, body["status"]) == (500, "error")
    _, stats = await get(http, r2.admin_api_url + "/api/v1/stats")
    assert stats["metrics"][DATA_RETENTION] == {"error": "HTTP 500"}
    await r2.set_fault("admin-api", Fault.UNAUTHORIZED)
    status, body = await get(http, r2.admin_api_url + "/api/v1/stats")
    assert (status, body["error"]) == (401, "Invalid API key")
    status, _ = await get(http, r2.admin_api_url + "/health")
    assert status == 200
    await r2.set_fault("admin-api", Fault.SERVER_ERROR)
    status, body = await get(http, r2.admin_api_url + "/api/v1/stats")
    assert (status, body["error"]) == (500, "Failed to get statistics")


async def test_degraded_aux_service_answers_503_with_a_json_body(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    await r2.set_fault(CARBON_INTENSITY, Fault.DEGRADED)
    status, body = await get(http, r2.url_of(CARBON_INTENSITY) + "/health")
    assert status == 503
    assert_shape(body, CARBON_HEALTH)
    assert body["status"] == "degraded"
    _, stats = await get(http, r2.admin_api_url + "/api/v1/stats")
    assert stats["metrics"][CARBON_INTENSITY] == {"error": "HTTP 503"}
    _, services = await get(http, r2.admin_api_url + "/api/v1/health/services")
    assert services[CARBON_INTENSITY]["error_message"] == "HTTP 503"


async def test_unhealthy_is_reported_in_a_200_body(
    r2: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    await r2.set_fault(WEBSOCKET_INGESTION, Fault.UNHEALTHY)
    await r2.set_fault(DATA_RETENTION, Fault.UNHEALTHY)
    status, body = await get(http, r2.url_of(WEBSOCKET_INGESTION) + "/health")
    assert (status, body["status"]) == (200, "unhealthy")
    assert body["reason"]
    status, body = await get(http, r2.url_of(DATA_RETENTION) + "/health")
    assert (status, body["status"]) == (200, "critical")
    _, stats = await get(http, r2.admin_api_url + "/api/v1/stats")
    # R2's Admin API demotes anything but "unhealthy" to a warning in its fallback alerts.
    demoted = {"service": DATA_RETENTION, "level": "warning", "message": "Service status: critical"}
    assert demoted in stats["alerts"]
    assert stats["metrics"][DATA_RETENTION]["healthy"] is False
    await r2.set_fault(WEBSOCKET_INGESTION, Fault.UNHEALTHY, status="degraded")
    _, body = await get(http, r2.url_of(WEBSOCKET_INGESTION) + "/health")
    assert body["status"] == "degraded"


async def test_r1_health_reports_a_dead_dependency(
    r1: IngestorSimulator, http: aiohttp.ClientSession
) -> None:
    await r1.set_fault(ENRICHMENT_PIPELINE, Fault.SLOW, delay=1.5)
    _, v1 = await get(http, r1.admin_api_url + "/api/v1/health")
    assert v1["status"] == "critical"
    enrichment = v1["dependencies"][2]
    assert enrichment["name"] == "Enrichment Pipeline"
    assert (enrichment["status"], enrichment["message"]) == ("critical", "Timeout after 0.5s")


async def test_unknown_service_is_rejected(r1: IngestorSimulator) -> None:
    with pytest.raises(ValueError, match="not simulated"):
        await r1.set_fault(DATA_API, Fault.DOWN)
    with pytest.raises(ValueError, match="unknown auxiliary"):
        IngestorSimulator(auxiliary=["nope"])


# --- line protocol and the event generator ---------------------------------------------------


def test_generated_events_are_deterministic_and_varied() -> None:
    start = datetime(2025, 11, 1, tzinfo=UTC)
    end = start + timedelta(hours=1)
    events = generate_events(300, start, end, seed=7)
    assert events == generate_events(300, start, end, seed=7)
    assert events != generate_events(300, start, end, seed=8)
    assert len(events) == 300
    assert all(start <= event.time < end for event in events)
    assert [event.time for event in events] == sorted(event.time for event in events)
    assert len({truncate_to_ms(event.time) for event in events}) == 300
    domains = {event.domain for event in events}
    assert {"sensor", "light", "binary_sensor", "switch", "climate"} <= domains
    assert max(len(event.attributes) for event in events) >= 10
    last: dict[str, Event] = {}
    for event in events:
        before = last.get(event.entity_id)
        assert event.old_state == (before.state if before else None)
        last[event.entity_id] = event
    with pytest.raises(ValueError, match="distinct milliseconds"):
        generate_events(10, start, start + timedelta(milliseconds=5), seed=1)


def test_schema_lines_carry_each_revisions_artefacts() -> None:
    when = datetime(2025, 10, 12, 20, 5, 0, 123456, tzinfo=UTC)
    event = Event(
        "light.kitchen",
        when,
        "on",
        None,
        {"brightness": 255, "color_temp": 370, "friendly_name": 'Kitchen "Main"\\Light'},
    )
    line_a = schema_a_line(event)
    assert line_a.startswith(
        "home_assistant_events,entity_id=light.kitchen,event_type=state_changed "
    )
    assert 'state="True"' in line_a
    assert 'old_state="None"' in line_a
    assert "attr_brightness=255.0" in line_a
    assert 'attr_color_temp="370"' in line_a
    assert r'attr_friendly_name="Kitchen \"Main\"\\Light"' in line_a
    assert line_a.endswith(" 1760299500123456000")
    line_b = schema_b_line(event)
    assert ",domain=light," in line_b
    assert "previous_state" not in line_b  # null old state: field omitted
    assert line_b.endswith(" 1760299500123000000")  # cut to ms, written in ns
    with pytest.raises(ValueError, match="drops"):
        schema_b_line(Event("light.bad-id", when, "on", None))
    with pytest.raises(ValueError, match="timezone"):
        Event("light.x", datetime(2025, 1, 1), "on", None)  # noqa: DTZ001


def query_rows(server: InfluxDBServer, database: str, q: str) -> list[dict[str, Any]]:
    result: Any = server.query(q, database)
    series = result["results"][0].get("series", [])
    rows = []
    for serie in series:
        for values in serie["values"]:
            row = dict(zip(serie["columns"], values, strict=True))
            row |= serie.get("tags", {})
            rows.append(row)
    return rows


CONTRACT_A = (
    "home_assistant_events,entity_id=sensor.living_room_temperature,event_type=state_changed "
    'attr_device_class="temperature",attr_friendly_name="Living Room Temperature",'
    'attr_state_class="measurement",attr_unit_of_measurement="celsius",old_state="21.3",'
    'state="21.5" 1760299500123456000'
)


def test_schema_a_line_is_the_contract_point(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    event = Event(
        "sensor.living_room_temperature",
        datetime(2025, 10, 12, 20, 5, 0, 123456, tzinfo=UTC),
        "21.5",
        "21.3",
        {
            "state_class": "measurement",
            "unit_of_measurement": "°C",
            "device_class": "temperature",
            "friendly_name": "Living Room Temperature",
        },
    )
    for database, text in (("contract_a", CONTRACT_A), ("ours_a", schema_a_line(event))):
        influxdb_server.create_database(database)
        influxdb_server.write(database, text)
    q = "SELECT * FROM home_assistant_events"
    assert query_rows(influxdb_server, "ours_a", q) == query_rows(influxdb_server, "contract_a", q)


async def _backfill(
    server: InfluxDBServer, database: str, schema: Schema, count: int, seed: int
) -> list[Event]:
    """`count` events of the last hour, written by the simulator's writer into a new database."""
    server.create_database(database)
    now = datetime.now(UTC)
    writer = EventWriter(server.url, database, schema, 60, seed=seed)
    try:
        events = await writer.backfill(count, now - timedelta(hours=1), now)
    finally:
        await writer.stop()
    assert writer.written == count
    return events


async def test_writer_lands_schema_a_points(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    database = "writer_a"
    events = await _backfill(influxdb_server, database, Schema.A, 120, seed=3)
    rows = query_rows(
        influxdb_server, database, "SELECT * FROM home_assistant_events GROUP BY entity_id"
    )
    assert len(rows) == 120
    by_time = {(row["entity_id"], row["time"]): row for row in rows}
    for event in events:
        row = by_time[(event.entity_id, to_ns(event.time))]
        assert row["event_type"] == "state_changed"
        assert "domain" not in row
        assert row["state"] == normalise_state_r1(event.state)
        assert row["old_state"] == normalise_state_r1(event.old_state)
    keys = query_rows(influxdb_server, database, "SHOW FIELD KEYS FROM home_assistant_events")
    types = {row["fieldKey"]: row["fieldType"] for row in keys}
    assert types["state"] == types["old_state"] == "string"
    assert types["attr_brightness"] == "float"
    assert types["attr_charging"] == "boolean"
    assert types["attr_friendly_name"] == "string"
    assert "state_value" not in types


async def test_writer_lands_schema_b_points(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    database = "writer_b"
    events = await _backfill(influxdb_server, database, Schema.B, 80, seed=4)
    rows = query_rows(
        influxdb_server,
        database,
        "SELECT * FROM home_assistant_events GROUP BY entity_id, domain, event_type",
    )
    assert len(rows) == 80
    by_time = {(row["entity_id"], row["time"]): row for row in rows}
    for event in events:
        row = by_time[(event.entity_id, to_ns(truncate_to_ms(event.time)))]
        assert row["domain"] == event.domain
        state = ast.literal_eval(row["state_value"])
        assert state["state"] == event.state
        assert state["entity_id"] == event.entity_id
        if event.old_state is None:
            assert row["previous_state"] is None
        else:
            assert ast.literal_eval(row["previous_state"])["state"] == event.old_state
        assert row["context_id"] == event.context_id
        assert "state" not in row


async def test_mixed_dataset_in_one_write(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    database = "mixed"
    influxdb_server.create_database(database)
    start = datetime(2025, 11, 1, tzinfo=UTC)
    end = start + timedelta(hours=1)
    a_events = generate_events(30, start, end, seed=1)
    b_events = generate_events(20, start, end, seed=2)
    lines = [
        *event_lines(a_events, Schema.A),
        *event_lines(b_events, Schema.B),
        *service_metrics_lines(),
        carbon_intensity_line(start),
        smart_meter_line(start),
        *auxiliary_lines(start, end, 8, seed=5),
    ]
    influxdb_server.write(database, lines, precision="ns")
    counted = query_rows(
        influxdb_server,
        database,
        "SELECT count(state) AS a, count(state_value) AS b FROM home_assistant_events",
    )
    assert (counted[0]["a"], counted[0]["b"]) == (30, 20)
    circuits = query_rows(influxdb_server, database, 'SHOW TAG VALUES WITH KEY = "circuit_name"')
    assert {row["value"] for row in circuits} <= {"Kitchen, north", "HVAC=main", "Garage outlets"}
    assert circuits
    metrics = query_rows(influxdb_server, database, "SELECT * FROM service_metrics")
    assert {row["service"] for row in metrics} == {"websocket-ingestion", "enrichment-pipeline"}


async def test_live_writer_is_bounded_and_feeds_the_simulator(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    database = "live"
    influxdb_server.create_database(database)
    async with IngestorSimulator(Revision.R2) as sim:
        before = sim.figures.session_events
        writer = EventWriter(
            influxdb_server.url,
            database,
            Schema.B,
            rate_per_minute=1200,
            interval=0.1,
            max_events=6,
            on_write=sim.record_events,
        )
        async with writer:
            await writer.wait(10)
            assert not writer.running
        assert writer.written == 6
        assert sim.figures.session_events == before + 6
        assert sim.figures.last_event_time is not None
        assert datetime.now(UTC) - sim.figures.last_event_time < timedelta(seconds=10)
    rows = query_rows(
        influxdb_server, database, "SELECT count(state_value) FROM home_assistant_events"
    )
    assert rows[0]["count"] == 6


async def test_writer_reports_refused_writes(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> None:
    writer = EventWriter(
        influxdb_server.url, "no_such_db", Schema.A, 6000, interval=0.05, token="tok-123"
    )
    assert "tok-123" not in repr(writer)
    now = datetime.now(UTC)
    try:
        with pytest.raises(RuntimeError, match=r"404|not found"):
            await writer.backfill(3, now - timedelta(minutes=1), now)
        await writer.start()
        deadline = time.monotonic() + 5
        while writer.failed_writes == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await writer.stop()
    assert writer.failed_writes >= 1
    assert writer.last_error is not None
    assert "tok-123" not in writer.last_error


async def test_command_line_runs_the_demo_stack(
    influxdb_server: InfluxDBServer, socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    database = "cli"
    influxdb_server.create_database(database)
    args = ["--revision", "r1", "--influx-url", influxdb_server.url, "--database", database]
    args += ["--rate", "600", "--backfill", "10"]
    task = asyncio.create_task(run(args))
    output = ""
    try:
        deadline = time.monotonic() + 10
        while "Ctrl-C" not in output and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.05)
            output += capsys.readouterr().out
        assert "Ctrl-C" in output
        admin = re.search(r"admin-api\s+(http://\S+)", output)
        assert admin
        async with aiohttp.ClientSession() as http:
            _, stats = await get(http, admin.group(1) + "/api/v1/stats")
        assert stats["metrics"][WEBSOCKET_INGESTION]["total_events_received"] >= 2320
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    rows = query_rows(influxdb_server, database, "SELECT count(state) FROM home_assistant_events")
    assert rows[0]["count"] >= 10


def test_module_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.simulator", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--revision" in result.stdout
    assert "--influx-url" in result.stdout
