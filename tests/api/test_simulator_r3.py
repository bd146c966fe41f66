"""The R3 (HomeIQ 2.0) simulator reproduces docs/ingestor-contracts-r3.md, faults included."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.conftest import R3_KEY
from tests.support.contract_examples_r3 import (
    ALERTS_ACTIVE,
    ALERTS_COUNT,
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
    ALERT_TTL,
    IngestorSimulatorR3,
    ManualClock,
    WebhookAlert,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

KEY = R3_KEY
STANDARD_KEYS = {"status", "service", "version", "git_sha", "build_time", "uptime_seconds"}


async def get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        body = await response.json(content_type=None)
        return response.status, body, response.headers


# Objects whose keys are data (event types, severities, labels), not a fixed shape.
MAPS = frozenset({"events_by_type", "by_severity", "labels"})


def same_shape(actual: Any, example: Any) -> None:
    """Same keys and value types as the contract's example, recursively."""
    if isinstance(example, dict):
        assert isinstance(actual, dict)
        assert set(actual) == set(example), set(actual) ^ set(example)
        for key, value in example.items():
            if key in MAPS:
                assert isinstance(actual[key], dict)
            elif value is not None and actual[key] is not None:
                same_shape(actual[key], value)
    elif isinstance(example, list) and example:
        assert isinstance(actual, list)
        for item in actual:
            same_shape(item, example[0])
    elif isinstance(example, float):
        assert isinstance(actual, int | float)
    elif example is not None:
        assert type(actual) is type(example), (actual, example)


async def test_websocket_health_is_a_stub_and_the_truth_is_detailed(
    r3: IngestorSimulatorR3,
) -> None:
    base = r3.url_of(WEBSOCKET_INGESTION)
    r3.set_figures(ws_subscribed=False)

    status, stub, _ = await get(base + "/health")
    assert status == 200
    same_shape(stub, WEBSOCKET_HEALTH_STUB)
    assert stub["status"] == "healthy"

    status, detailed, _ = await get(base + "/health/detailed")
    assert status == 200
    same_shape(detailed, WEBSOCKET_DETAILED)
    assert detailed["status"] == "degraded"
    assert detailed["subscription"]["is_subscribed"] is False
    assert "reason" not in detailed

    r3.set_figures(ws_subscribed=True, ws_connected=False)
    _, detailed, _ = await get(base + "/health/detailed")
    assert detailed["status"] == "unhealthy"

    r3.set_figures(ws_initialized=False)
    _, detailed, _ = await get(base + "/health/detailed")
    assert detailed == detailed | {"connection": {"status": "not_initialized"}}
    same_shape(detailed, WEBSOCKET_DETAILED_NOT_INITIALISED)


async def test_every_health_is_200_with_the_standard_shape_even_when_unhealthy(
    r3: IngestorSimulatorR3,
) -> None:
    for name in r3.services:
        status, body, _ = await get(r3.url_of(name) + "/health")
        assert status == 200, name
        assert set(body) >= STANDARD_KEYS, name
        assert isinstance(body["uptime_seconds"], int)
        assert body["timestamp"].endswith("+00:00")
    _, data_api, _ = await get(r3.url_of(DATA_API) + "/health")
    same_shape(data_api, DATA_API_HEALTH_R3)

    await r3.set_fault(DATA_API, Fault.UNHEALTHY)
    status, body, _ = await get(r3.url_of(DATA_API) + "/health")
    assert (status, body["status"], body["dependencies"]) == (
        200,
        "unhealthy",
        {"database": "down", "influxdb": "down"},
    )


async def test_event_rate_and_filter_stats(r3: IngestorSimulatorR3) -> None:
    base = r3.url_of(WEBSOCKET_INGESTION)
    r3.set_figures(queue_size=2500, queue_maxsize=10000)
    _, rate, _ = await get(base + "/api/v1/event-rate")
    stats = rate["processing_stats"]
    assert (stats["state"], stats["queue_size"], stats["queue_maxsize"]) == ("running", 2500, 10000)
    assert rate["timestamp"].endswith("+00:00")

    _, disabled, _ = await get(base + "/api/v1/filter/stats")
    assert disabled == {
        "enabled": False,
        "statistics": None,
        "message": "Entity filter not configured",
    }
    r3.set_figures(filter_enabled=True, filtered_events=1204, filter_passed_events=1106)
    _, enabled, _ = await get(base + "/api/v1/filter/stats")
    same_shape(enabled, FILTER_STATS_ENABLED)
    assert enabled["statistics"]["filter_rate"] == pytest.approx(1204 / 2310)


async def test_admin_api_wants_a_key_moved_routes_are_404(r3: IngestorSimulatorR3) -> None:
    admin = r3.admin_api_url
    status, body, headers = await get(admin + "/api/v1/stats")
    assert (status, body) == (401, {"detail": "Authentication required"})
    assert headers["WWW-Authenticate"] == "Bearer"

    status, body, _ = await get(admin + "/api/v1/stats", {"Authorization": f"Bearer {KEY}"})
    assert status == 200
    assert body["source"] == "services-fallback"
    assert "sports-api" in body["metrics"]
    assert body["metrics"][WEBSOCKET_INGESTION]["events_per_minute"] == 31.6

    for moved in ("/api/v1/services", "/api/v1/alerts"):
        status, body, _ = await get(admin + moved)
        assert (status, body) == (404, {"detail": "Not Found"})

    _, info, _ = await get(admin + "/api/info")
    same_shape(info, API_INFO_R3)
    assert info["data"]["authentication"] == {"api_key_required": True, "docs_enabled": False}

    _, health, _ = await get(admin + "/api/v1/health")
    assert [d["name"] for d in health["dependencies"]] == [
        "InfluxDB",
        "WebSocket Ingestion",
        "Data API",
    ]
    _, services, _ = await get(admin + "/api/v1/health/services")
    assert len(services) == 27
    assert services["influxdb"]["status"] == "pass"
    assert "Name does not resolve" in services["rag-service"]["error_message"]
    _, groups, _ = await get(admin + "/api/v1/health/groups")
    assert groups["summary"]["total_services"] == 27


async def test_admin_api_rate_limit_answers_429_per_client_and_refills(
    r3: IngestorSimulatorR3, clock: ManualClock
) -> None:
    admin = r3.admin_api_url
    statuses = [(await get(admin + "/api/info"))[0] for _ in range(21)]
    assert statuses == [200] * 20 + [429]
    status, body, headers = await get(admin + "/api/info")
    assert status == 429
    assert body["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert int(headers["Retry-After"]) >= 1
    # Exempt paths still answer.
    assert (await get(admin + "/api/v1/health"))[0] == 200
    assert (await get(admin + "/health"))[0] == 200
    clock.now += 1.0  # one token a second (60 a minute)
    assert (await get(admin + "/api/info"))[0] == 200
    assert (await get(admin + "/api/info"))[0] == 429


async def test_alertmanager_alerts_fire_resolve_and_expire(
    r3: IngestorSimulatorR3, clock: ManualClock
) -> None:
    admin = r3.admin_api_url
    down = WebhookAlert("ServiceDown", "critical", fingerprint="6c1f0b1e2d3a4f59")
    slow = WebhookAlert("SlowQueries", "warning", service=DATA_API, fingerprint="aa")
    reply = await r3.post_alerts([down, slow])
    assert reply["firing"] == 2
    assert reply["timestamp"].endswith("+00:00Z")

    _, active, _ = await get(admin + "/api/alerts/active")
    same_shape(active, ALERTS_ACTIVE)
    assert sorted(a["alertname"] for a in active) == ["ServiceDown", "SlowQueries"]
    assert active[0]["received_at"].endswith("+00:00Z")
    _, count, _ = await get(admin + "/api/alerts/active/count")
    same_shape(count, ALERTS_COUNT)
    assert count["by_severity"] == {"critical": 1, "warning": 1}
    _, critical, _ = await get(admin + "/api/alerts/active?severity=critical")
    assert [a["alertname"] for a in critical] == ["ServiceDown"]

    await r3.post_alerts([WebhookAlert("SlowQueries", status="resolved", fingerprint="aa")])
    clock.now += ALERT_TTL - 1
    _, active, _ = await get(admin + "/api/alerts/active")
    assert [a["alertname"] for a in active] == ["ServiceDown"]
    clock.now += 1  # 900 s after its last notification it is gone, though still firing
    _, count, _ = await get(admin + "/api/alerts/active/count")
    assert count["total"] == 0


async def test_data_retention_stats_need_a_key_it_does_not_have(
    r3: IngestorSimulatorR3,
) -> None:
    base = r3.url_of(DATA_RETENTION)
    status, body, _ = await get(base + "/backup/stats")
    assert (status, body) == (500, {"detail": "API key not configured"})
    r3.retention_api_key = "ret"
    status, body, _ = await get(base + "/retention/stats", {"X-API-Key": "wrong"})
    assert (status, body) == (403, {"detail": "Invalid API key"})
    status, body, _ = await get(base + "/backup/stats", {"X-API-Key": "ret"})
    assert (status, body["total_backups"]) == (200, 0)


@pytest.mark.parametrize("fault", [Fault.UNAUTHORIZED, Fault.SERVER_ERROR, Fault.GARBLED])
async def test_fault_switches_apply_to_r3(r3: IngestorSimulatorR3, fault: Fault) -> None:
    await r3.set_fault(ADMIN_API, fault)
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            r3.admin_api_url + "/api/v1/stats", headers={"Authorization": f"Bearer {KEY}"}
        ) as response,
    ):
        text = await response.text()
    expected = {Fault.UNAUTHORIZED: 401, Fault.SERVER_ERROR: 500, Fault.GARBLED: 200}[fault]
    assert response.status == expected
    if fault is Fault.UNAUTHORIZED:
        assert "detail" in text


async def test_down_and_slow_faults(r3: IngestorSimulatorR3) -> None:
    await r3.set_fault(WEBSOCKET_INGESTION, Fault.DOWN)
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(r3.url_of(WEBSOCKET_INGESTION) + "/health")
    await r3.clear_faults()
    await r3.set_fault(WEBSOCKET_INGESTION, Fault.SLOW, delay=0.3)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            await http.get(
                r3.url_of(WEBSOCKET_INGESTION) + "/health/detailed",
                timeout=aiohttp.ClientTimeout(total=0.1),
            )
