"""Payload examples quoted from the ingestor's contracts (docs/ingestor-contracts.md).

Shared by the tests of the normalisers and of the simulator, which must agree with them.
"""

from __future__ import annotations

from typing import Any

# websocket-ingestion `GET /health` at R2.
# docs/ingestor-contracts.md#r1-and-r2-websocket-ingestion
WEBSOCKET_HEALTH_R2: dict[str, Any] = {
    "status": "healthy",
    "service": "websocket-ingestion",
    "uptime": "1:25:24.575842",
    "timestamp": "2025-11-01T23:06:11.950322",
    "connection": {
        "is_running": True,
        "connection_attempts": 1,
        "successful_connections": 1,
        "failed_connections": 0,
    },
    "subscription": {
        "is_subscribed": True,
        "active_subscriptions": 1,
        "total_events_received": 912344,
        "session_events_received": 2310,
        "historical_events_received": 910034,
        "events_by_type": {"state_changed": 2310},
        "last_event_time": "2025-11-01T23:06:10.871002",
        "event_rate_per_minute": 31.6,
    },
}

# data-api `GET /health` (R2; docs/ingestor-contracts.md#r2-data-api).
DATA_API_HEALTH: dict[str, Any] = {
    "status": "healthy",
    "service": "data-api",
    "version": "1.0.0",
    "timestamp": "2025-11-01T23:06:12.3",
    "uptime_seconds": 5130.1,
    "dependencies": {
        "influxdb": {
            "status": "connected",
            "url": "http://influxdb:8086",
            "query_count": 42,
            "avg_query_time_ms": 11.7,
            "success_rate": 100.0,
        },
        "sqlite": {
            "status": "healthy",
            "journal_mode": "wal",
            "database_size_mb": 3.42,
            "wal_enabled": True,
            "connection": "ok",
        },
    },
    "authentication": {"enabled": False},
}
