"""Normalisers of the Admin API's payloads: `/api/v1/stats`, its service lists, `/api/info`.

Apart from the services' own payloads (`service_payloads.py`) because the Admin API speaks
for the whole stack: its entries are other services as it saw them, in three `/api/v1/stats`
shapes, with display names and `{"error": ...}` stand-ins. R3's `/api/alerts/active` is here
too: the Admin API relays AlertManager. Like every normaliser, none raises: whatever cannot be
read becomes None or `ServiceStatus.UNKNOWN` (docs/ingestor-contracts.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ..core.models import FiringAlert, ServiceStatus
from .parse import (
    parse_count,
    parse_dict,
    parse_error_message,
    parse_known_text,
    parse_non_negative,
    parse_percent,
    parse_status,
    parse_text,
    parse_timestamp,
    parse_uptime,
)

if TYPE_CHECKING:
    from datetime import datetime

_HTTP_CODE = re.compile(r"HTTP (\d{3})", re.ASCII)
_SERVER_ERROR = 500
_PORT_MAX = 65535


class StatsShape(StrEnum):
    """Which of the three `/api/v1/stats` shapes was seen.

    docs/ingestor-contracts.md#quirk-stats-shapes
    """

    ALL_SERVICES = "all_services"
    SINGLE_SERVICE = "single_service"
    INFLUXDB = "influxdb"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AdminServiceEntry:
    """One service as the Admin API `/api/v1/stats` described it."""

    name: str
    status: ServiceStatus
    # None when the entry does not tell (the websocket transform's figures say nothing of it).
    reachable: bool | None
    message: str | None = None
    uptime_seconds: float | None = None
    events_per_minute: float | None = None
    total_events_received: int | None = None
    success_rate: float | None = None
    processing_time_ms: float | None = None


@dataclass(frozen=True, slots=True)
class AdminStats:
    """`/api/v1/stats`, whichever of its shapes answered."""

    shape: StatsShape
    source: str | None = None
    timestamp: datetime | None = None
    services: tuple[AdminServiceEntry, ...] = ()
    # The InfluxDB-path shape only. Its `total_events` is not read: it counts fields, not
    # events (docs/ingestor-contracts.md#quirk-inflated-event-counts).
    error_rate: float | None = None


def _admin_entry(name: str, value: object) -> AdminServiceEntry:
    """One per-service metric dict, an `{"error": ...}` entry, or an InfluxDB-path row."""
    if not isinstance(value, dict):
        return AdminServiceEntry(name=name, status=ServiceStatus.UNKNOWN, reachable=None)
    entry = parse_dict(value)
    error = parse_error_message(entry)
    if error is not None:
        # "HTTP 503" means the service answered; other texts are connection failures.
        code = _HTTP_CODE.fullmatch(error)
        if code is not None:
            status = (
                ServiceStatus.UNHEALTHY
                if int(code.group(1)) >= _SERVER_ERROR
                else ServiceStatus.UNKNOWN
            )
            return AdminServiceEntry(name=name, status=status, reachable=True, message=error)
        return AdminServiceEntry(
            name=name, status=ServiceStatus.UNHEALTHY, reachable=False, message=error
        )
    status = parse_status(entry.get("status"))
    if status is ServiceStatus.UNKNOWN and isinstance(entry.get("healthy"), bool):
        status = parse_status(entry["healthy"])
    has_figures = any(
        k in entry for k in ("status", "events_per_minute", "uptime_seconds", "success_rate")
    )
    processing = entry.get("processing_time_ms", entry.get("avg_processing_time"))
    return AdminServiceEntry(
        name=name,
        status=status,
        reachable=True if has_figures else None,
        message=parse_text(entry.get("status_detail")),
        uptime_seconds=parse_uptime(entry.get("uptime_seconds")),
        events_per_minute=parse_non_negative(entry.get("events_per_minute")),
        total_events_received=parse_count(entry.get("total_events_received")),
        success_rate=parse_percent(entry.get("success_rate")),
        processing_time_ms=parse_non_negative(processing),
    )


_SINGLE_SERVICE_KEYS = frozenset(
    {
        "events_per_minute",
        "error_rate",
        "response_time_ms",
        "connection_attempts",
        "total_events_received",
        "status",
        "uptime_seconds",
        "healthy",
        "error",
    }
)


def normalize_admin_stats(payload: object, service: str | None = None) -> AdminStats:
    """`GET /api/v1/stats`: detect the shape by its keys, never by `source`.

    docs/ingestor-contracts.md#quirk-stats-source

    `service` names the entry of the single-service shape (`?service=<name>`).
    """
    body = parse_dict(payload)
    source = parse_text(body.get("source"))
    timestamp = parse_timestamp(body.get("timestamp"))
    metrics = parse_dict(body.get("metrics"))
    if not metrics:
        return AdminStats(shape=StatsShape.UNKNOWN, source=source, timestamp=timestamp)
    if "services" in metrics or "total_events" in metrics:
        total_writes = parse_count(metrics.get("total_writes"))
        error_rate = parse_percent(metrics.get("error_rate_percent")) if total_writes else None
        services = (
            tuple(
                _admin_entry(str(name), entry)
                for name, entry in parse_dict(metrics["services"]).items()
            )
            if isinstance(metrics.get("services"), dict)
            else ()
        )
        return AdminStats(
            shape=StatsShape.INFLUXDB,
            source=source,
            timestamp=timestamp,
            services=services,
            error_rate=error_rate,
        )
    if metrics.keys() & _SINGLE_SERVICE_KEYS and not any(
        isinstance(v, dict) for v in metrics.values()
    ):
        return AdminStats(
            shape=StatsShape.SINGLE_SERVICE,
            source=source,
            timestamp=timestamp,
            services=(_admin_entry(service or "unknown", metrics),),
        )
    return AdminStats(
        shape=StatsShape.ALL_SERVICES,
        source=source,
        timestamp=timestamp,
        services=tuple(_admin_entry(name, entry) for name, entry in metrics.items()),
    )


@dataclass(frozen=True, slots=True)
class ListedService:
    """One entry of `GET /api/v1/services` or `/api/v1/health/services`."""

    name: str
    status: ServiceStatus
    message: str | None = None
    port: int | None = None
    response_time_ms: float | None = None


def normalize_services_list(payload: object) -> tuple[ListedService, ...]:
    """`GET /api/v1/services`: `{"services": [{"service", "status", "port", ...}]}`."""
    items = parse_dict(payload).get("services")
    if not isinstance(items, list):
        return ()
    listed: dict[str, ListedService] = {}
    for item in items:
        entry = parse_dict(item)
        name = parse_text(entry.get("service"))
        if name is None:
            continue
        status = parse_status(entry.get("status"))
        if status is ServiceStatus.UNKNOWN and isinstance(entry.get("running"), bool):
            status = parse_status(entry["running"])
        port = parse_count(entry.get("port"))
        listed[name] = ListedService(
            name=name,
            status=status,
            message=parse_error_message(entry),
            port=port if port is not None and 0 < port <= _PORT_MAX else None,
        )
    return tuple(listed.values())


def normalize_health_services(payload: object) -> tuple[ListedService, ...]:
    """`GET /api/v1/health/services`: name -> `{status (verbatim, "pass"), error_message}`."""
    listed: list[ListedService] = []
    for key, value in parse_dict(payload).items():
        entry = parse_dict(value)
        if not entry:
            continue
        name = parse_text(entry.get("name")) or key
        listed.append(
            ListedService(
                name=name,
                status=parse_status(entry.get("status")),
                message=parse_text(entry.get("error_message")),
                response_time_ms=parse_non_negative(entry.get("response_time_ms")),
            )
        )
    return tuple(listed)


def normalize_admin_health(payload: object) -> tuple[ListedService, ...]:
    """`GET /api/v1/health` dependencies, named by display name ("WebSocket Ingestion").

    Real at R1, hard-coded "healthy" at R2: prefer `/api/v1/health/services`
    (docs/ingestor-contracts.md#quirk-r2-fake-health).
    """
    deps = parse_dict(payload).get("dependencies")
    if not isinstance(deps, list):
        return ()
    listed: list[ListedService] = []
    for item in deps:
        entry = parse_dict(item)
        name = parse_text(entry.get("name"))
        if name is None:
            continue
        listed.append(
            ListedService(
                name=name,
                status=parse_status(entry.get("status")),
                message=parse_text(entry.get("message")),
                response_time_ms=parse_non_negative(entry.get("response_time_ms")),
            )
        )
    return tuple(listed)


@dataclass(frozen=True, slots=True)
class ApiInfo:
    """`GET /api/info`: version and whether a bearer key is needed.

    docs/ingestor-contracts.md#quirk-auth-detection
    """

    version: str | None = None
    authentication: bool | None = None
    title: str | None = None
    # R3 only: `data.rate_limit.requests_per_minute`.
    rate_limit_per_minute: int | None = None

    @property
    def r3(self) -> bool:
        """R3 reports a rate limit (and authentication as an object), R1/R2 never."""
        return self.rate_limit_per_minute is not None


def normalize_api_info(payload: object) -> ApiInfo:
    """`GET /api/info` -> `data.version`, `data.authentication`, `data.title`.

    `authentication` is a bool at R1/R2 and `{"api_key_required": bool, ...}` at R3.
    """
    data = parse_dict(parse_dict(payload).get("data"))
    authentication = data.get("authentication")
    if isinstance(authentication, dict):
        authentication = authentication.get("api_key_required")
    rate_limit = parse_dict(data.get("rate_limit"))
    return ApiInfo(
        version=parse_text(data.get("version")),
        authentication=authentication if isinstance(authentication, bool) else None,
        title=parse_text(data.get("title")),
        rate_limit_per_minute=parse_count(rate_limit.get("requests_per_minute"))
        if rate_limit or isinstance(data.get("authentication"), dict)
        else None,
    )


def is_admin_api_info(payload: object) -> bool:
    """Whether `/api/info` looks like the Admin API's (a `data` dict with title or version)."""
    info = normalize_api_info(payload)
    return info.title is not None or info.version is not None


def normalize_alerts_active(payload: object) -> tuple[FiringAlert, ...] | None:
    """R3 Admin API `GET /api/alerts/active`: a list of firing AlertManager alerts."""
    if not isinstance(payload, list):
        return None
    alerts: dict[str, FiringAlert] = {}
    for item in payload:
        entry = parse_dict(item)
        labels = parse_dict(entry.get("labels"))
        name = parse_text(entry.get("alertname")) or parse_text(labels.get("alertname"))
        if name is None or entry.get("status", "firing") != "firing":
            continue
        fingerprint = parse_text(entry.get("fingerprint")) or name
        alerts[fingerprint] = FiringAlert(
            fingerprint=fingerprint,
            name=name,
            severity=parse_known_text(entry.get("severity")),
            service=parse_known_text(entry.get("service")),
            summary=parse_text(entry.get("summary")),
            starts_at=parse_timestamp(entry.get("starts_at")),
            received_at=parse_timestamp(entry.get("received_at")),
        )
    return tuple(alerts.values())
