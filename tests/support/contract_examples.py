"""Payload examples quoted from the ingestor's contracts (ingestor-interfaces.md).

Shared by the tests of the normalisers and of the simulator, which must agree with them.
"""

from __future__ import annotations

from typing import Any

# Section 5.2: websocket-ingestion `GET /health` at R2.
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
