"""Normalisers of each service's own payloads: `/health` and the per-service statistics.

Apart from the Admin API's payloads (`admin_payloads.py`) because each service speaks only for
itself: any service's `/health`, websocket-ingestion's R2 and R3 health pages, event rate and
filter statistics, and the R1 enrichment pipeline's statistics. Like every normaliser, none
raises: whatever cannot be read becomes None or `ServiceStatus.UNKNOWN`
(docs/ingestor-contracts.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..core.models import ServiceStatus
from .parse import (
    parse_count,
    parse_dict,
    parse_error_message,
    parse_error_rate,
    parse_fraction_percent,
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

_MAX_FAILED_CONNECTIONS = 5


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """Any service's `/health` body, read whatever its HTTP status.

    docs/ingestor-contracts.md#quirk-error-bodies
    """

    status: ServiceStatus
    message: str | None = None
    uptime_seconds: float | None = None
    version: str | None = None
    timestamp: datetime | None = None
    git_sha: str | None = None
    # The R3 standard shape (libs/homeiq-resilience): `git_sha` and `build_time` are always
    # there, and the HTTP status is always 200 whatever `status` says.
    standard: bool = False


def normalize_service_health(payload: object) -> ServiceHealth:
    """Generic `/health`: aux services, data-retention, enrichment, InfluxDB (`"pass"`)."""
    body = parse_dict(payload)
    error = parse_error_message(body)
    status = parse_status(body.get("status"))
    if status is ServiceStatus.UNKNOWN and error is not None:
        status = ServiceStatus.UNHEALTHY
    uptime = body.get("uptime_seconds", body.get("uptime"))
    if status is ServiceStatus.HEALTHY:
        message = parse_text(body.get("status_detail"))
    else:
        message = (
            parse_text(body.get("reason"))
            or error
            or parse_text(body.get("status_detail"))
            or parse_text(body.get("message"))
        )
    return ServiceHealth(
        status=status,
        message=message,
        uptime_seconds=parse_uptime(uptime),
        version=parse_text(body.get("version")),
        timestamp=parse_timestamp(body.get("timestamp")),
        git_sha=parse_known_text(body.get("git_sha")),
        standard="git_sha" in body and "build_time" in body,
    )


@dataclass(frozen=True, slots=True)
class WebsocketHealth:
    """websocket-ingestion `GET /health` (always HTTP 200, even unhealthy)."""

    health: ServiceHealth
    # Missing before the first computable rate (R1) and never decays: see `last_event`.
    events_per_minute: float | None = None
    last_event: datetime | None = None
    total_events_received: int | None = None
    connection_attempts: int | None = None
    failed_connections: int | None = None
    # `subscription.events_by_type.state_changed`: a running total since the service started.
    state_changed_received: int | None = None


def normalize_websocket_health(payload: object) -> WebsocketHealth:
    """websocket-ingestion `/health`, R1 and R2, including the `{"error": ...}` variant."""
    body = parse_dict(payload)
    subscription = parse_dict(body.get("subscription"))
    connection = parse_dict(body.get("connection"))
    return WebsocketHealth(
        health=normalize_service_health(body),
        events_per_minute=parse_non_negative(subscription.get("event_rate_per_minute")),
        last_event=parse_timestamp(subscription.get("last_event_time")),
        total_events_received=parse_count(subscription.get("total_events_received")),
        connection_attempts=parse_count(connection.get("connection_attempts")),
        failed_connections=parse_count(connection.get("failed_connections")),
        state_changed_received=parse_count(
            parse_dict(subscription.get("events_by_type")).get("state_changed")
        ),
    )


def is_websocket_stub(payload: object) -> bool:
    """R3's websocket `/health`: the standard shape without `subscription` (says nothing)."""
    body = parse_dict(payload)
    return normalize_service_health(body).standard and "subscription" not in body


def normalize_websocket_detailed(payload: object) -> WebsocketHealth:
    """R3 websocket `/health/detailed`: the R2 body without `reason`, judged by what it says.

    Not connected or not subscribed means no event reaches InfluxDB: unhealthy, whatever the
    service's own word (it says only "degraded" for an unsubscribed connection).
    """
    body = parse_dict(payload)
    base = normalize_websocket_health(body)
    connection = body.get("connection")
    subscription = body.get("subscription")
    status, message = base.health.status, None
    if not isinstance(connection, dict) or not isinstance(subscription, dict):
        status, message = ServiceStatus.UNHEALTHY, "health check failed"
    elif connection.get("status") == "not_initialized":
        # Events may flow regardless (docs/ingestor-contracts-r3.md): the stalled alert tells.
        status, message = ServiceStatus.DEGRADED, "not initialised"
    elif connection.get("is_running") is False:
        status, message = ServiceStatus.UNHEALTHY, "not connected"
    elif subscription.get("is_subscribed") is False:
        status, message = ServiceStatus.UNHEALTHY, "not subscribed"
    elif (base.failed_connections or 0) > _MAX_FAILED_CONNECTIONS:
        status, message = ServiceStatus.DEGRADED, "multiple connection failures"
    elif status is ServiceStatus.DEGRADED:
        message = "no events received"
    return replace(base, health=replace(base.health, status=status, message=message))


@dataclass(frozen=True, slots=True)
class FilterStats:
    """R3 websocket `GET /api/v1/filter/stats`."""

    enabled: bool | None = None
    filtered_events: int | None = None
    filtered_percent: float | None = None


def normalize_filter_stats(payload: object) -> FilterStats:
    """Disabled (the default) filters nothing: 0 events; `filter_rate` is a 0-1 fraction."""
    body = parse_dict(payload)
    enabled = body.get("enabled")
    if enabled is False:
        return FilterStats(enabled=False, filtered_events=0, filtered_percent=0.0)
    if enabled is not True:
        return FilterStats()
    stats = parse_dict(body.get("statistics"))
    return FilterStats(
        enabled=True,
        filtered_events=parse_count(stats.get("filtered_count")),
        filtered_percent=parse_fraction_percent(stats.get("filter_rate")),
    )


@dataclass(frozen=True, slots=True)
class ProcessingFigures:
    """Error, success and latency figures one service reported (percent, ms)."""

    error_rate: float | None = None
    success_rate: float | None = None
    processing_time_ms: float | None = None
    last_event: datetime | None = None
    uptime_seconds: float | None = None
    queue_size: int | None = None
    queue_maxsize: int | None = None
    # Running totals since the processor started (R2/R3 `processing_stats`).
    processed_events: int | None = None
    failed_events: int | None = None


def normalize_event_rate(payload: object) -> ProcessingFigures:
    """R2 websocket `GET /api/v1/event-rate` `processing_stats`.

    docs/ingestor-contracts.md#r1-and-r2-websocket-ingestion

    Without processed or failed events the service reports success 0 and time 0: unknown.
    """
    body = parse_dict(payload)
    stats = parse_dict(body.get("processing_stats"))
    connection = parse_dict(body.get("connection_stats"))
    processed = parse_count(stats.get("processed_events"))
    failed = parse_count(stats.get("failed_events"))
    traffic = (processed or 0) + (failed or 0) > 0
    return ProcessingFigures(
        error_rate=parse_error_rate(failed, processed),
        success_rate=parse_percent(stats.get("success_rate")) if traffic else None,
        processing_time_ms=(
            parse_non_negative(stats.get("average_processing_time_ms")) if processed else None
        ),
        last_event=parse_timestamp(connection.get("last_event_time"))
        or parse_timestamp(stats.get("last_processing_time")),
        uptime_seconds=parse_uptime(body.get("uptime_seconds")),
        queue_size=parse_count(stats.get("queue_size")),
        queue_maxsize=parse_count(stats.get("queue_maxsize")),
        processed_events=processed,
        failed_events=failed,
    )


def normalize_enrichment_stats(payload: object) -> ProcessingFigures:
    """R1 enrichment-pipeline `GET /api/v1/stats`.

    docs/ingestor-contracts.md#r1-enrichment-pipeline

    Error rate = InfluxDB write errors / (points written + write errors); success rate from
    `normalization.success_rate`, which is 0 (not 100) when nothing was normalised yet.
    `uptime` here is event-loop seconds since start of the loop, so it is not used.
    """
    body = parse_dict(payload)
    influxdb = parse_dict(body.get("influxdb"))
    normalization = parse_dict(body.get("normalization"))
    normalized = parse_count(normalization.get("normalized_events"))
    norm_errors = parse_count(normalization.get("normalization_errors"))
    traffic = (normalized or 0) + (norm_errors or 0) > 0
    return ProcessingFigures(
        error_rate=parse_error_rate(influxdb.get("write_errors"), influxdb.get("points_written")),
        success_rate=parse_percent(normalization.get("success_rate")) if traffic else None,
        last_event=parse_timestamp(normalization.get("last_normalized_time"))
        or parse_timestamp(influxdb.get("last_write_time")),
    )
