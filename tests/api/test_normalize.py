"""The payload normalisers against real ingestor payloads, every quirk, and random JSON.

The quirks are those of docs/ingestor-contracts.md.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.ha_ingestor.api.core.models import ServiceStatus
from custom_components.ha_ingestor.api.ingestor.admin_payloads import (
    ApiInfo,
    StatsShape,
    is_admin_api_info,
    normalize_admin_health,
    normalize_admin_stats,
    normalize_api_info,
    normalize_health_services,
    normalize_services_list,
)
from custom_components.ha_ingestor.api.ingestor.parse import (
    parse_count,
    parse_fraction_percent,
    parse_number,
    parse_percent,
    parse_status,
    parse_text,
    parse_timestamp,
    parse_uptime,
)
from custom_components.ha_ingestor.api.ingestor.service_payloads import (
    ProcessingFigures,
    normalize_enrichment_stats,
    normalize_event_rate,
    normalize_service_health,
    normalize_websocket_health,
)
from tests.support.contract_examples import DATA_API_HEALTH, WEBSOCKET_HEALTH_R2

if TYPE_CHECKING:
    from collections.abc import Callable

# --- Real payloads of the ingestor (docs/ingestor-contracts.md) -------------------------------

R1_STATS: dict[str, Any] = {
    "timestamp": "2025-10-12T20:05:03.412907",
    "period": "1h",
    "metrics": {
        "websocket-ingestion": {
            "events_per_minute": 27.18,
            "error_rate": 0.0,
            "response_time_ms": 0,
            "connection_attempts": 1,
            "total_events_received": 2310,
        },
        "enrichment-pipeline": {
            "events_per_minute": 0,
            "error_rate": 0.0,
            "response_time_ms": 0,
            "connection_attempts": 2297,
            "total_events_received": 0,
        },
    },
    "trends": {
        "websocket-ingestion": {
            "events_per_minute": [{"timestamp": "2025-10-12T20:05:03.398112", "value": 27.18}],
        },
        "enrichment-pipeline": {"events_per_minute": [{"timestamp": 81234.567, "value": 0}]},
    },
    "alerts": [],
    "source": "services-fallback",
}

R2_STATS: dict[str, Any] = {
    "timestamp": "2025-11-01T23:06:12.004511",
    "period": "1h",
    "metrics": {
        "admin-api": {"status": "healthy", "uptime_seconds": 5123.4, "healthy": True},
        "data-api": {"status": "healthy", "uptime_seconds": 5130.1, "healthy": True},
        "websocket-ingestion": {
            "events_per_minute": 31.6,
            "error_rate": 0.0,
            "response_time_ms": 0,
            "connection_attempts": 1,
            "total_events_received": 912344,
        },
        "sports-data": {
            "error": "Cannot connect to host homeiq-sports-data:8005 ssl:default "
            "[Name or service not known]"
        },
        "calendar-service": {"error": "HTTP 503"},
        "carbon-intensity-service": {
            "status": "healthy",
            "uptime_seconds": 5101.9,
            "healthy": True,
        },
        "data-retention": {"status": "warning", "uptime_seconds": 0.0, "healthy": False},
        "weather-api": {"status": "healthy", "uptime_seconds": 5099, "healthy": True},
        "log-aggregator": {"error": "HTTP 404"},
        "energy-correlator": {"healthy": False},
    },
    "trends": {"admin-api": {}},
    "alerts": [{"service": "sports-data", "level": "error", "message": "..."}],
    "source": "services-fallback",
}

INFLUX_PATH_STATS: dict[str, Any] = {
    "timestamp": "2025-10-12T20:05:03.412907",
    "period": "1h",
    "metrics": {
        "total_events": 18420,
        "events_per_minute": 307.0,
        "period": "1h",
        "total_writes": 1000,
        "write_errors": 31,
        "error_rate_percent": 3.1,
        "services": {
            "websocket-ingestion": {
                "events_processed": 1250.0,
                "avg_processing_time": 42.7,
                "success_rate": 99.76,
            },
            "enrichment-pipeline": {
                "events_processed": 1,
                "processing_time_ms": 1350.0,
                "success_rate": 93.2,
            },
        },
    },
    "trends": [{"time": "2025-10-12T19:10:00+00:00", "count": 14}],
    "alerts": [],
    "source": "influxdb",
}

SERVICES_LIST: dict[str, Any] = {
    "services": [
        {"service": "websocket-ingestion", "running": True, "status": "running", "port": 8001},
        {"service": "data-retention", "running": False, "status": "stopped", "port": 8080},
        {"service": "influxdb", "running": False, "status": "error", "error": "HTTP 500"},
        {"service": "health-dashboard", "running": True, "port": 80},
        {"service": "odd", "port": 70000},
        {"no-name": True},
        "garbage",
    ],
    "total": 5,
    "running": 2,
    "stopped": 1,
}

HEALTH_SERVICES: dict[str, Any] = {
    "websocket-ingestion": {
        "name": "websocket-ingestion",
        "status": "healthy",
        "last_check": "2025-11-01T23:06:12.1",
        "response_time_ms": 3.9,
        "error_message": None,
    },
    "influxdb": {"name": "influxdb", "status": "pass", "response_time_ms": 2.2},
    "calendar-service": {
        "name": "calendar-service",
        "status": "unhealthy",
        "response_time_ms": None,
        "error_message": "Cannot connect to host homeiq-calendar:8013",
    },
    "broken": "not a dict",
}

ADMIN_HEALTH_R1: dict[str, Any] = {
    "service": "admin-api",
    "status": "critical",
    "timestamp": "2025-10-12T20:05:03.412907Z",
    "uptime_seconds": 5123.45,
    "version": "1.0.0",
    "dependencies": [
        {"name": "InfluxDB", "type": "database", "status": "healthy", "response_time_ms": 4.1},
        {
            "name": "Enrichment Pipeline",
            "type": "api",
            "status": "critical",
            "response_time_ms": 2000.0,
            "message": "Timeout after 2.0s",
        },
        {"type": "api"},
    ],
}

API_INFO: dict[str, Any] = {
    "success": True,
    "data": {
        "title": "Home Assistant Ingestor Admin API",
        "version": "1.0.0",
        "description": "...",
        "endpoints": {"health": "/health"},
        "authentication": True,
        "cors_enabled": True,
    },
}

WEBSOCKET_HEALTH_R1_EARLY: dict[str, Any] = {
    "status": "degraded",
    "reason": "No events received in 60+ seconds",
    "service": "websocket-ingestion",
    "uptime": "1 day, 1:25:24.57",
    "timestamp": "2025-10-12T20:05:03.398112",
    "connection": {"status": "not_initialized"},
    "subscription": {"is_subscribed": True, "total_events_received": 0, "last_event_time": None},
}

EVENT_RATE_R2: dict[str, Any] = {
    "service": "websocket-ingestion",
    "events_per_second": 0.45,
    "events_per_hour": 1620.0,
    "total_events_processed": 2310,
    "uptime_seconds": 5123.4,
    "processing_stats": {
        "is_running": True,
        "processed_events": 2290,
        "failed_events": 20,
        "success_rate": 99.13,
        "average_processing_time_ms": 1.93,
        "last_processing_time": "2025-11-01T23:06:10.874112",
    },
    "connection_stats": {"last_event_time": "2025-11-01T23:06:10.871002"},
    "timestamp": "2025-11-01T23:06:12.001200",
}

ENRICHMENT_STATS_R1: dict[str, Any] = {
    "service": "enrichment-pipeline",
    "is_running": True,
    "uptime": 5120.77,
    "normalization": {
        "normalized_events": 2297,
        "normalization_errors": 0,
        "success_rate": 100.0,
        "last_normalized_time": "2025-10-12T20:05:02.951000+00:00",
    },
    "influxdb": {
        "points_written": 2290,
        "write_errors": 10,
        "success_rate": 99.5,
        "last_write_time": "2025-10-12T20:05:02.953311",
        "connected": True,
    },
    "validation_stats": {"validation_count": 4594, "error_count": 0, "error_rate": 0.0},
    "timestamp": 81234.567,
}

AUX_HEALTH_DEGRADED: dict[str, Any] = {
    "status": "degraded",
    "status_detail": "credentials_missing",
    "service": "carbon-intensity-service",
    "uptime_seconds": 5101.9,
    "success_rate": 0.25,
    "timestamp": "2025-11-01T23:06:12.120034",
}


# --- Scalars ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("healthy", ServiceStatus.HEALTHY),
        ("pass", ServiceStatus.HEALTHY),
        ("running", ServiceStatus.HEALTHY),
        ("active", ServiceStatus.HEALTHY),
        (" Healthy ", ServiceStatus.HEALTHY),
        ("degraded", ServiceStatus.DEGRADED),
        ("warning", ServiceStatus.DEGRADED),
        ("unhealthy", ServiceStatus.UNHEALTHY),
        ("critical", ServiceStatus.UNHEALTHY),
        ("fail", ServiceStatus.UNHEALTHY),
        ("stopped", ServiceStatus.UNHEALTHY),
        ("error", ServiceStatus.UNHEALTHY),
        ("inactive", ServiceStatus.UNHEALTHY),
        ("timeout", ServiceStatus.UNHEALTHY),
        ("unknown", ServiceStatus.UNKNOWN),
        ("not_configured", ServiceStatus.UNKNOWN),
        ("not_initialized", ServiceStatus.UNKNOWN),
        (True, ServiceStatus.HEALTHY),
        (False, ServiceStatus.UNHEALTHY),
        (1, ServiceStatus.UNKNOWN),
        (None, ServiceStatus.UNKNOWN),
    ],
)
def test_parse_status(word: object, expected: ServiceStatus) -> None:
    assert parse_status(word) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-10-12T20:05:03.412907", datetime(2025, 10, 12, 20, 5, 3, 412907, tzinfo=UTC)),
        ("2025-10-12T20:05:03Z", datetime(2025, 10, 12, 20, 5, 3, tzinfo=UTC)),
        ("2025-10-12T22:05:03+02:00", datetime(2025, 10, 12, 20, 5, 3, tzinfo=UTC)),
        ("2025-11-01T23:06:12.3", datetime(2025, 11, 1, 23, 6, 12, 300000, tzinfo=UTC)),
        (81234.567, None),
        (1760299503, None),
        (None, None),
        ("", None),
        ("yesterday", None),
        ("20251012", None),
        ("2025-13-45T00:00:00", None),
        ("0001-01-01T00:00:00+01:00", None),
        (True, None),
    ],
)
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1:25:24.575842", 5124.575842),
        ("1 day, 1:25:24.57", 86400 + 5124.57),
        ("3 days, 0:00:01", 3 * 86400 + 1.0),
        ("0:00:00", 0.0),
        (5123.45, 5123.45),
        (5099, 5099.0),
        ("5123.4", 5123.4),
        (-1, None),
        ("-1 day, 23:59:59", None),
        ("1:99:00", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
        (True, None),
        (float("inf"), None),
        ("9" * 5000 + " days, 0:00:00", None),
        ("1000000000 days, 0:00:00", None),
    ],
)
def test_parse_uptime(value: object, expected: float | None) -> None:
    parsed = parse_uptime(value)
    if expected is None:
        assert parsed is None
    else:
        assert parsed == pytest.approx(expected)


def test_parse_numbers_and_scales() -> None:
    assert parse_number(value=True) is None
    assert parse_number(10**400) is None
    assert parse_number(float("nan")) is None
    assert parse_count(2297.0) == 2297
    assert parse_count(2.5) is None
    assert parse_count(-1) is None
    assert parse_percent(99.5) == 99.5
    assert parse_percent(100.1) is None
    assert parse_percent(-0.1) is None
    assert parse_fraction_percent(0.25) == 25.0
    assert parse_fraction_percent(1) == 100.0
    assert parse_fraction_percent(25) is None
    assert parse_text("  x ") == "x"
    assert parse_text("   ") is None
    assert parse_text(3) is None


# --- Admin API --------------------------------------------------------------------------------


def test_admin_stats_r1_all_services() -> None:
    stats = normalize_admin_stats(R1_STATS)
    assert stats.shape is StatsShape.ALL_SERVICES
    assert stats.source == "services-fallback"
    assert stats.timestamp == datetime(2025, 10, 12, 20, 5, 3, 412907, tzinfo=UTC)
    ws, enrichment = stats.services
    assert ws.name == "websocket-ingestion"
    assert ws.events_per_minute == 27.18
    assert ws.total_events_received == 2310
    assert ws.status is ServiceStatus.UNKNOWN
    assert ws.reachable is True
    assert enrichment.name == "enrichment-pipeline"
    assert stats.error_rate is None


def test_admin_stats_r2_all_services() -> None:
    stats = normalize_admin_stats(R2_STATS)
    assert stats.shape is StatsShape.ALL_SERVICES
    by_name = {s.name: s for s in stats.services}
    assert by_name["admin-api"].status is ServiceStatus.HEALTHY
    assert by_name["admin-api"].uptime_seconds == 5123.4
    assert by_name["weather-api"].uptime_seconds == 5099.0
    sports = by_name["sports-data"]
    assert sports.status is ServiceStatus.UNHEALTHY
    assert sports.reachable is False
    assert sports.message is not None
    assert sports.message.startswith("Cannot connect")
    assert by_name["calendar-service"].reachable is True
    assert by_name["calendar-service"].status is ServiceStatus.UNHEALTHY
    assert by_name["log-aggregator"].status is ServiceStatus.UNKNOWN
    assert by_name["data-retention"].status is ServiceStatus.DEGRADED
    assert by_name["energy-correlator"].status is ServiceStatus.UNHEALTHY
    assert by_name["websocket-ingestion"].events_per_minute == 31.6


def test_admin_stats_websocket_transform_failure_entry() -> None:
    payload = {"metrics": {"websocket-ingestion": {"error": "'metrics'"}, "x": "not a dict"}}
    stats = normalize_admin_stats(payload)
    ws, other = stats.services
    assert ws.status is ServiceStatus.UNHEALTHY
    assert ws.message == "'metrics'"
    assert other.status is ServiceStatus.UNKNOWN
    assert other.reachable is None


def test_admin_stats_error_entry_with_non_text_error() -> None:
    stats = normalize_admin_stats({"metrics": {"a": {"error": {"code": 1}}, "b": {"error": None}}})
    a, b = stats.services
    assert a.message == "{'code': 1}"
    assert b.status is ServiceStatus.UNKNOWN


def test_admin_stats_influxdb_path() -> None:
    stats = normalize_admin_stats(INFLUX_PATH_STATS)
    assert stats.shape is StatsShape.INFLUXDB
    assert stats.source == "influxdb"
    assert stats.error_rate == 3.1
    ws, enrichment = stats.services
    assert ws.processing_time_ms == 42.7  # docs/ingestor-contracts.md#quirk-avg-processing-time
    assert ws.success_rate == 99.76
    assert enrichment.processing_time_ms == 1350.0


def test_admin_stats_influxdb_path_without_writes_has_no_error_rate() -> None:
    payload = copy.deepcopy(INFLUX_PATH_STATS)
    payload["metrics"].update(total_writes=0, error_rate_percent=0)
    payload["metrics"]["services"] = ["not", "a", "dict"]
    stats = normalize_admin_stats(payload)
    assert stats.error_rate is None
    assert stats.services == ()


def test_admin_stats_single_service() -> None:
    flat = {"metrics": R1_STATS["metrics"]["websocket-ingestion"], "trends": {}}
    stats = normalize_admin_stats(flat, "websocket-ingestion")
    assert stats.shape is StatsShape.SINGLE_SERVICE
    (only,) = stats.services
    assert only.name == "websocket-ingestion"
    assert only.events_per_minute == 27.18
    failed = normalize_admin_stats({"metrics": {"error": "HTTP 404"}})
    assert failed.shape is StatsShape.SINGLE_SERVICE
    assert failed.services[0].name == "unknown"


@pytest.mark.parametrize("payload", [None, [], "x", {}, {"metrics": []}, {"metrics": {}}])
def test_admin_stats_unreadable(payload: object) -> None:
    stats = normalize_admin_stats(payload)
    assert stats.shape is StatsShape.UNKNOWN
    assert stats.services == ()


def test_services_list() -> None:
    listed = {s.name: s for s in normalize_services_list(SERVICES_LIST)}
    assert set(listed) == {
        "websocket-ingestion",
        "data-retention",
        "influxdb",
        "health-dashboard",
        "odd",
    }
    assert listed["websocket-ingestion"].status is ServiceStatus.HEALTHY
    assert listed["websocket-ingestion"].port == 8001
    assert listed["data-retention"].status is ServiceStatus.UNHEALTHY
    assert listed["influxdb"].message == "HTTP 500"
    assert listed["health-dashboard"].status is ServiceStatus.HEALTHY  # from `running`
    assert listed["odd"].port is None
    assert listed["odd"].status is ServiceStatus.UNKNOWN
    assert normalize_services_list({"services": "x"}) == ()


def test_health_services() -> None:
    listed = {s.name: s for s in normalize_health_services(HEALTH_SERVICES)}
    assert set(listed) == {"websocket-ingestion", "influxdb", "calendar-service"}
    assert listed["influxdb"].status is ServiceStatus.HEALTHY  # "pass"
    assert listed["influxdb"].response_time_ms == 2.2
    assert listed["calendar-service"].status is ServiceStatus.UNHEALTHY
    assert listed["calendar-service"].message == "Cannot connect to host homeiq-calendar:8013"


def test_admin_health_dependencies() -> None:
    deps = normalize_admin_health(ADMIN_HEALTH_R1)
    assert [(d.name, d.status) for d in deps] == [
        ("InfluxDB", ServiceStatus.HEALTHY),
        ("Enrichment Pipeline", ServiceStatus.UNHEALTHY),
    ]
    assert deps[1].message == "Timeout after 2.0s"
    assert normalize_admin_health({"dependencies": {}}) == ()


def test_api_info() -> None:
    info = normalize_api_info(API_INFO)
    assert info == ApiInfo(
        version="1.0.0", authentication=True, title="Home Assistant Ingestor Admin API"
    )
    assert is_admin_api_info(API_INFO)
    assert not is_admin_api_info({"detail": "Not Found"})
    assert normalize_api_info({"data": {"authentication": "yes"}}).authentication is None


# --- Services ---------------------------------------------------------------------------------


def test_websocket_health_r2() -> None:
    ws = normalize_websocket_health(WEBSOCKET_HEALTH_R2)
    assert ws.health.status is ServiceStatus.HEALTHY
    assert ws.health.message is None
    assert ws.health.uptime_seconds == pytest.approx(5124.575842)
    assert ws.events_per_minute == 31.6
    assert ws.last_event == datetime(2025, 11, 1, 23, 6, 10, 871002, tzinfo=UTC)
    assert ws.total_events_received == 912344
    assert ws.connection_attempts == 1
    assert ws.failed_connections == 0


def test_websocket_health_r1_without_rate() -> None:
    ws = normalize_websocket_health(WEBSOCKET_HEALTH_R1_EARLY)
    assert ws.health.status is ServiceStatus.DEGRADED
    assert ws.health.message == "No events received in 60+ seconds"
    assert ws.health.uptime_seconds == pytest.approx(86400 + 5124.57)
    # Missing, not 0: docs/ingestor-contracts.md#quirk-event-rate
    assert ws.events_per_minute is None
    assert ws.last_event is None
    assert ws.connection_attempts is None


def test_websocket_health_error_variant() -> None:
    ws = normalize_websocket_health(
        {"status": "unhealthy", "service": "websocket-ingestion", "error": "boom"}
    )
    assert ws.health.status is ServiceStatus.UNHEALTHY
    assert ws.health.message == "boom"
    no_status = normalize_service_health({"error": "boom"})
    assert no_status.status is ServiceStatus.UNHEALTHY


def test_event_rate_r2() -> None:
    figures = normalize_event_rate(EVENT_RATE_R2)
    assert figures.error_rate == pytest.approx(20 / 2310 * 100)
    assert figures.success_rate == 99.13
    assert figures.processing_time_ms == 1.93
    assert figures.last_event == datetime(2025, 11, 1, 23, 6, 10, 871002, tzinfo=UTC)
    assert figures.uptime_seconds == 5123.4


def test_event_rate_without_traffic_is_unknown() -> None:
    idle = copy.deepcopy(EVENT_RATE_R2)
    idle["processing_stats"].update(
        processed_events=0, failed_events=0, success_rate=0, average_processing_time_ms=0
    )
    del idle["connection_stats"]
    figures = normalize_event_rate(idle)
    assert figures.error_rate is None
    assert figures.success_rate is None
    assert figures.processing_time_ms is None
    assert figures.last_event == datetime(2025, 11, 1, 23, 6, 10, 874112, tzinfo=UTC)
    error_body = {"service": "websocket-ingestion", "error": "x", "events_per_second": 0}
    assert normalize_event_rate(error_body) == ProcessingFigures()


def test_enrichment_stats_r1() -> None:
    figures = normalize_enrichment_stats(ENRICHMENT_STATS_R1)
    assert figures.error_rate == pytest.approx(10 / 2300 * 100)
    assert figures.success_rate == 100.0
    assert figures.processing_time_ms is None
    assert figures.uptime_seconds is None  # event-loop seconds, not an uptime
    assert figures.last_event == datetime(2025, 10, 12, 20, 5, 2, 951000, tzinfo=UTC)


def test_enrichment_stats_without_traffic_is_unknown() -> None:
    idle = copy.deepcopy(ENRICHMENT_STATS_R1)
    idle["normalization"].update(normalized_events=0, success_rate=0)
    idle["influxdb"].update(points_written=0, write_errors=0)
    del idle["normalization"]["last_normalized_time"]
    figures = normalize_enrichment_stats(idle)
    # 0 without traffic is unknown: docs/ingestor-contracts.md#quirk-percent-scales
    assert figures.success_rate is None
    assert figures.error_rate is None
    assert figures.last_event == datetime(2025, 10, 12, 20, 5, 2, 953311, tzinfo=UTC)


def test_data_api_health() -> None:
    # data-api's /health is read as any service's: status, version, uptime.
    health = normalize_service_health(DATA_API_HEALTH)
    assert health.status is ServiceStatus.HEALTHY
    assert health.version == "1.0.0"
    assert health.uptime_seconds == 5130.1


def test_aux_health_503_body() -> None:
    health = normalize_service_health(AUX_HEALTH_DEGRADED)
    assert health.status is ServiceStatus.DEGRADED
    assert health.message == "credentials_missing"
    assert health.uptime_seconds == 5101.9
    healthy = normalize_service_health({**AUX_HEALTH_DEGRADED, "status": "healthy"})
    assert healthy.message == "credentials_missing"
    influx = normalize_service_health(
        {"name": "influxdb", "message": "ready for queries and writes", "status": "pass"}
    )
    assert influx.status is ServiceStatus.HEALTHY
    assert influx.message is None
    failing = normalize_service_health({"status": "fail", "message": "not ready"})
    assert failing.message == "not ready"


# --- Property-based: no normaliser raises on any JSON -----------------------------------------

NORMALISERS: list[Callable[[object], object]] = [
    normalize_admin_stats,
    normalize_services_list,
    normalize_health_services,
    normalize_admin_health,
    normalize_api_info,
    is_admin_api_info,
    normalize_service_health,
    normalize_websocket_health,
    normalize_event_rate,
    normalize_enrichment_stats,
    parse_status,
    parse_timestamp,
    parse_uptime,
    parse_number,
    parse_count,
    parse_percent,
    parse_fraction_percent,
    parse_text,
]

EXAMPLES: list[dict[str, Any]] = [
    R1_STATS,
    R2_STATS,
    INFLUX_PATH_STATS,
    SERVICES_LIST,
    HEALTH_SERVICES,
    ADMIN_HEALTH_R1,
    API_INFO,
    WEBSOCKET_HEALTH_R2,
    WEBSOCKET_HEALTH_R1_EARLY,
    EVENT_RATE_R2,
    ENRICHMENT_STATS_R1,
    DATA_API_HEALTH,
    AUX_HEALTH_DEGRADED,
]

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(
        [
            "healthy",
            "pass",
            "HTTP 503",
            "1 day, 1:25:24.57",
            "2025-10-12T20:05:03.412907",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "1:25:24.575842",
            "nan",
            "-inf",
        ]
    )
)
JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a node inside a JSON value."""
    found: list[tuple[object, ...]] = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _replace(value: Any, path: tuple[object, ...], new: object) -> Any:
    if not path:
        return new
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


@st.composite
def mutated_examples(draw: st.DrawFn) -> object:
    """A real payload with up to three nodes swapped for random JSON."""
    payload = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(payload)))
        payload = _replace(payload, path, draw(JSON))
    return payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=JSON)
def test_normalisers_survive_random_json(payload: object) -> None:
    for normalise in NORMALISERS:
        normalise(payload)
    normalize_admin_stats(payload, "websocket-ingestion")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_examples())
def test_normalisers_survive_mutated_real_payloads(payload: object) -> None:
    # The mutated value must still be JSON (what a service can send).
    json.dumps(payload)
    for normalise in NORMALISERS:
        normalise(payload)


@settings(max_examples=200, deadline=None)
@given(
    value=_SCALARS
    | st.datetimes(
        timezones=st.none()
        | st.builds(
            timezone,
            st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)),
        )
    ).map(lambda d: d.isoformat())
)
def test_parsed_timestamps_are_always_utc(value: object) -> None:
    parsed = parse_timestamp(value)
    assert parsed is None or parsed.utcoffset() == timedelta(0)
