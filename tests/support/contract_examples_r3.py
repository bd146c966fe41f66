"""Payload examples of HomeIQ 2.0 (R3), as docs/ingestor-contracts-r3.md describes them.

Shared by the tests of the normalisers and of the R3 simulator, which must agree with them.
"""

from __future__ import annotations

from typing import Any

# the standard `/health` of websocket-ingestion (a stub) and of data-api.
WEBSOCKET_HEALTH_STUB: dict[str, Any] = {
    "status": "healthy",
    "service": "websocket-ingestion",
    "version": "1.0.0",
    "git_sha": "unknown",
    "build_time": "unknown",
    "uptime_seconds": 5127,
    "timestamp": "2026-08-06T18:00:12.301117+00:00",
}
DATA_API_HEALTH_R3: dict[str, Any] = {
    "status": "healthy",
    "service": "data-api",
    "version": "1.0.0",
    "git_sha": "unknown",
    "build_time": "unknown",
    "uptime_seconds": 5130,
    "checks": [
        {"name": "database", "status": "healthy", "latency_ms": 2.7},
        {"name": "influxdb", "status": "healthy", "latency_ms": 0.0},
    ],
    "dependencies": {"database": "ok", "influxdb": "ok"},
    "timestamp": "2026-08-06T18:00:12.310442+00:00",
}

# websocket-ingestion `GET /health/detailed`, and its not-initialised variant.
WEBSOCKET_DETAILED: dict[str, Any] = {
    "status": "healthy",
    "service": "websocket-ingestion",
    "uptime": "1:25:24.575842",
    "timestamp": "2026-08-06T18:00:11.950322+00:00",
    "connection": {
        "is_running": True,
        "connection_attempts": 1,
        "successful_connections": 1,
        "failed_connections": 0,
    },
    "subscription": {
        "is_subscribed": True,
        "active_subscriptions": 1,
        "total_events_received": 4562310,
        "session_events_received": 2316,
        "historical_events_received": 4559994,
        "events_by_type": {"state_changed": 2310, "entity_registry_updated": 6},
        "last_event_time": "2026-08-06T18:00:10.871002+00:00",
        "event_rate_per_minute": 27.12,
    },
}
WEBSOCKET_DETAILED_NOT_INITIALISED: dict[str, Any] = {
    "status": "degraded",
    "service": "websocket-ingestion",
    "uptime": "0:03:10.100000",
    "timestamp": "2026-08-06T16:37:00.000100+00:00",
    "connection": {"status": "not_initialized"},
    "subscription": {"status": "not_initialized"},
}

# `GET /api/v1/filter/stats`, enabled.
FILTER_STATS_ENABLED: dict[str, Any] = {
    "enabled": True,
    "statistics": {
        "filtered_count": 1204,
        "passed_count": 1106,
        "exception_count": 6,
        "total_processed": 2316,
        "filter_rate": 0.5198618307426598,
        "uptime_seconds": 5123.912345,
        "mode": "exclude",
        "patterns_count": 3,
        "exceptions_count": 1,
    },
    "message": None,
}

# `GET /api/alerts/active` (one alert) and `/count`.
ALERTS_ACTIVE: list[dict[str, Any]] = [
    {
        "fingerprint": "6c1f0b1e2d3a4f59",
        "alertname": "ServiceDown",
        "status": "firing",
        "severity": "critical",
        "service": "websocket-ingestion",
        "tier": "1",
        "summary": "Service core-platform/homeiq-websocket:8001 is down",
        "description": "websocket-ingestion in core-platform has been unreachable for more "
        "than 2 minutes.",
        "starts_at": "2026-08-06T17:58:00.123456789Z",
        "received_at": "2026-08-06T18:00:30.123456+00:00Z",
        "labels": {
            "alertname": "ServiceDown",
            "group": "core-platform",
            "instance": "homeiq-websocket:8001",
            "job": "core-platform",
            "service": "websocket-ingestion",
            "severity": "critical",
            "tier": "1",
        },
    }
]
ALERTS_COUNT: dict[str, Any] = {
    "total": 3,
    "by_severity": {"critical": 1, "warning": 2},
    "timestamp": "2026-08-06T18:00:31.000512+00:00Z",
}

# `GET /api/info`.
API_INFO_R3: dict[str, Any] = {
    "success": True,
    "data": {
        "title": "Home Assistant Ingestor Admin API",
        "version": "1.0.0",
        "description": "Admin API for Home Assistant Ingestor",
        "endpoints": {
            "health": "/api/v1/health",
            "stats": "/api/v1/stats",
            "config": "/api/v1/config",
            "events": "/api/v1/events",
        },
        "authentication": {"api_key_required": True, "docs_enabled": False},
        "rate_limit": {"requests_per_minute": 60, "burst": 20},
        "cors_enabled": True,
    },
    "message": "API information retrieved successfully",
    "timestamp": "2026-08-06T18:00:12.511204+00:00",
    "request_id": None,
}
