"""Pure normalisers: one per raw ingestor payload, each surviving its quirks.

The quirks are described in docs/ingestor-contracts.md.

Every function takes already-decoded JSON typed `object`, because a service may answer any
shape (`{"error": ...}` entries, 503 bodies, lists where dicts were promised). None of them
raises: whatever cannot be read becomes `None` (or `ServiceStatus.UNKNOWN`), never a made-up 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ..core.models import FiringAlert, ServiceStatus

# The seven status vocabularies in one table; words not listed are UNKNOWN.
# docs/ingestor-contracts.md#status-vocabularies
_STATUS_WORDS: dict[str, ServiceStatus] = {
    **dict.fromkeys(
        (
            "healthy",
            "pass",
            "ok",
            "up",
            "running",
            "active",
            "connected",
            "operational",
            "ready",
        ),
        ServiceStatus.HEALTHY,
    ),
    **dict.fromkeys(("degraded", "warning", "warn", "starting"), ServiceStatus.DEGRADED),
    **dict.fromkeys(
        (
            "unhealthy",
            "critical",
            "fail",
            "failed",
            "error",
            "stopped",
            "down",
            "disconnected",
            "inactive",
            "timeout",
        ),
        ServiceStatus.UNHEALTHY,
    ),
}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# str(timedelta): "1:25:24.575842", "1 day, 1:25:24.57", "3 days, 0:00:01".
_TIMEDELTA = re.compile(r"(?:(\d+) days?, )?(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)", re.ASCII)
_HTTP_CODE = re.compile(r"HTTP (\d{3})", re.ASCII)
_OFFSET = re.compile(r"T.*[+-]\d{2}:?\d{2}$", re.ASCII)
_FRACTION = re.compile(r"(\.\d+)", re.ASCII)
_PERCENT_MAX = 100.0
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


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def parse_status(value: object) -> ServiceStatus:
    """Map any status word (or a `healthy`-style bool) to the one vocabulary."""
    if isinstance(value, bool):
        return ServiceStatus.HEALTHY if value else ServiceStatus.UNHEALTHY
    if isinstance(value, str):
        return _STATUS_WORDS.get(value.strip().lower(), ServiceStatus.UNKNOWN)
    return ServiceStatus.UNKNOWN


def parse_number(value: object) -> float | None:
    """A finite int or float (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_count(value: object) -> int | None:
    """A non-negative whole number; an integral float (JSON `2297.0`) counts too."""
    number = parse_number(value)
    if number is None or number < 0 or not number.is_integer():
        return None
    return int(number)


def parse_percent(value: object) -> float | None:
    """A percentage already on the 0-100 scale; anything outside is not a percentage."""
    number = parse_number(value)
    if number is None or not 0 <= number <= _PERCENT_MAX:
        return None
    return number


def parse_fraction_percent(value: object) -> float | None:
    """A 0-1 fraction (aux `/health` `success_rate`, validator `error_rate`) as a percentage."""
    number = parse_number(value)
    if number is None or not 0 <= number <= 1:
        return None
    return number * _PERCENT_MAX


def parse_timestamp(value: object) -> datetime | None:
    """A wall-clock time in UTC.

    Accepts ISO strings with an offset, with `Z`, or naive (taken as UTC:
    docs/ingestor-contracts.md#quirk-naive-timestamps).
    Floats are event-loop seconds (R1 enrichment), not wall times, so they give None.
    """
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
        return None
    text = value.strip()
    # R3's alert routes append "Z" to an offset already there ("...+00:00Z").
    if text.endswith(("Z", "z")) and _OFFSET.search(text[:-1]):
        text = text[:-1]
    # AlertManager sends nanoseconds; Python reads at most microseconds.
    text = _FRACTION.sub(lambda m: m.group(1)[:7], text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_uptime(value: object) -> float | None:
    """Seconds of uptime from float/int seconds or a `str(timedelta)`.

    docs/ingestor-contracts.md#quirk-uptime-formats
    """
    number = parse_number(value)
    if number is not None:
        return number if number >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _TIMEDELTA.fullmatch(text)
    if match is None:
        try:
            return _non_negative(float(text))
        except ValueError:
            return None
    days, hours, minutes, seconds = match.groups()
    try:
        delta = timedelta(
            days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=float(seconds)
        )
    except (OverflowError, ValueError):
        # ValueError: Python refuses int() of more than 4300 digits.
        return None
    return delta.total_seconds()


def parse_text(value: object) -> str | None:
    """A non-empty string, stripped."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _dict(value: object) -> dict[str, object]:
    """The payload as a dict, or an empty one when it is anything else."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return {}


def _error_rate(errors: object, successes: object) -> float | None:
    """`errors / (errors + successes)` in percent; None without traffic."""
    bad = parse_count(errors)
    good = parse_count(successes)
    if bad is None or good is None or bad + good == 0:
        return None
    return bad / (bad + good) * _PERCENT_MAX


def _error_message(payload: dict[str, object]) -> str | None:
    """The text of an `{"error": ...}` entry (the text may be any JSON)."""
    if "error" not in payload:
        return None
    error = payload["error"]
    if error is None or error is False or error == "":
        return None
    return error if isinstance(error, str) else repr(error)


# ---------------------------------------------------------------------------------------------
# Admin API
# ---------------------------------------------------------------------------------------------


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
    entry = _dict(value)
    error = _error_message(entry)
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
        events_per_minute=_non_negative(entry.get("events_per_minute")),
        total_events_received=parse_count(entry.get("total_events_received")),
        success_rate=parse_percent(entry.get("success_rate")),
        processing_time_ms=_non_negative(processing),
    )


def _non_negative(value: object) -> float | None:
    number = parse_number(value)
    return number if number is not None and number >= 0 else None


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
    body = _dict(payload)
    source = parse_text(body.get("source"))
    timestamp = parse_timestamp(body.get("timestamp"))
    metrics = _dict(body.get("metrics"))
    if not metrics:
        return AdminStats(shape=StatsShape.UNKNOWN, source=source, timestamp=timestamp)
    if "services" in metrics or "total_events" in metrics:
        total_writes = parse_count(metrics.get("total_writes"))
        error_rate = parse_percent(metrics.get("error_rate_percent")) if total_writes else None
        services = (
            tuple(
                _admin_entry(str(name), entry) for name, entry in _dict(metrics["services"]).items()
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
    items = _dict(payload).get("services")
    if not isinstance(items, list):
        return ()
    listed: dict[str, ListedService] = {}
    for item in items:
        entry = _dict(item)
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
            message=_error_message(entry),
            port=port if port is not None and 0 < port <= _PORT_MAX else None,
        )
    return tuple(listed.values())


def normalize_health_services(payload: object) -> tuple[ListedService, ...]:
    """`GET /api/v1/health/services`: name -> `{status (verbatim, "pass"), error_message}`."""
    listed: list[ListedService] = []
    for key, value in _dict(payload).items():
        entry = _dict(value)
        if not entry:
            continue
        name = parse_text(entry.get("name")) or key
        listed.append(
            ListedService(
                name=name,
                status=parse_status(entry.get("status")),
                message=parse_text(entry.get("error_message")),
                response_time_ms=_non_negative(entry.get("response_time_ms")),
            )
        )
    return tuple(listed)


def normalize_admin_health(payload: object) -> tuple[ListedService, ...]:
    """`GET /api/v1/health` dependencies, named by display name ("WebSocket Ingestion").

    Real at R1, hard-coded "healthy" at R2: prefer `/api/v1/health/services`
    (docs/ingestor-contracts.md#quirk-r2-fake-health).
    """
    deps = _dict(payload).get("dependencies")
    if not isinstance(deps, list):
        return ()
    listed: list[ListedService] = []
    for item in deps:
        entry = _dict(item)
        name = parse_text(entry.get("name"))
        if name is None:
            continue
        listed.append(
            ListedService(
                name=name,
                status=parse_status(entry.get("status")),
                message=parse_text(entry.get("message")),
                response_time_ms=_non_negative(entry.get("response_time_ms")),
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
    data = _dict(_dict(payload).get("data"))
    authentication = data.get("authentication")
    if isinstance(authentication, dict):
        authentication = authentication.get("api_key_required")
    rate_limit = _dict(data.get("rate_limit"))
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


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------


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


def _known_text(value: object) -> str | None:
    text = parse_text(value)
    return None if text is None or text.lower() == "unknown" else text


def normalize_service_health(payload: object) -> ServiceHealth:
    """Generic `/health`: aux services, data-retention, enrichment, InfluxDB (`"pass"`)."""
    body = _dict(payload)
    error = _error_message(body)
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
        git_sha=_known_text(body.get("git_sha")),
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


def normalize_websocket_health(payload: object) -> WebsocketHealth:
    """websocket-ingestion `/health`, R1 and R2, including the `{"error": ...}` variant."""
    body = _dict(payload)
    subscription = _dict(body.get("subscription"))
    connection = _dict(body.get("connection"))
    return WebsocketHealth(
        health=normalize_service_health(body),
        events_per_minute=_non_negative(subscription.get("event_rate_per_minute")),
        last_event=parse_timestamp(subscription.get("last_event_time")),
        total_events_received=parse_count(subscription.get("total_events_received")),
        connection_attempts=parse_count(connection.get("connection_attempts")),
        failed_connections=parse_count(connection.get("failed_connections")),
    )


def is_websocket_stub(payload: object) -> bool:
    """R3's websocket `/health`: the standard shape without `subscription` (says nothing)."""
    body = _dict(payload)
    return normalize_service_health(body).standard and "subscription" not in body


_MAX_FAILED_CONNECTIONS = 5


def normalize_websocket_detailed(payload: object) -> WebsocketHealth:
    """R3 websocket `/health/detailed`: the R2 body without `reason`, judged by what it says.

    Not connected or not subscribed means no event reaches InfluxDB: unhealthy, whatever the
    service's own word (it says only "degraded" for an unsubscribed connection).
    """
    body = _dict(payload)
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
    body = _dict(payload)
    enabled = body.get("enabled")
    if enabled is False:
        return FilterStats(enabled=False, filtered_events=0, filtered_percent=0.0)
    if enabled is not True:
        return FilterStats()
    stats = _dict(body.get("statistics"))
    return FilterStats(
        enabled=True,
        filtered_events=parse_count(stats.get("filtered_count")),
        filtered_percent=parse_fraction_percent(stats.get("filter_rate")),
    )


def normalize_alerts_active(payload: object) -> tuple[FiringAlert, ...] | None:
    """R3 Admin API `GET /api/alerts/active`: a list of firing AlertManager alerts."""
    if not isinstance(payload, list):
        return None
    alerts: dict[str, FiringAlert] = {}
    for item in payload:
        entry = _dict(item)
        labels = _dict(entry.get("labels"))
        name = parse_text(entry.get("alertname")) or parse_text(labels.get("alertname"))
        if name is None or entry.get("status", "firing") != "firing":
            continue
        fingerprint = parse_text(entry.get("fingerprint")) or name
        alerts[fingerprint] = FiringAlert(
            fingerprint=fingerprint,
            name=name,
            severity=_known_text(entry.get("severity")),
            service=_known_text(entry.get("service")),
            summary=parse_text(entry.get("summary")),
            starts_at=parse_timestamp(entry.get("starts_at")),
            received_at=parse_timestamp(entry.get("received_at")),
        )
    return tuple(alerts.values())


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


def normalize_event_rate(payload: object) -> ProcessingFigures:
    """R2 websocket `GET /api/v1/event-rate` `processing_stats`.

    docs/ingestor-contracts.md#r1-and-r2-websocket-ingestion

    Without processed or failed events the service reports success 0 and time 0: unknown.
    """
    body = _dict(payload)
    stats = _dict(body.get("processing_stats"))
    connection = _dict(body.get("connection_stats"))
    processed = parse_count(stats.get("processed_events"))
    failed = parse_count(stats.get("failed_events"))
    traffic = (processed or 0) + (failed or 0) > 0
    return ProcessingFigures(
        error_rate=_error_rate(failed, processed),
        success_rate=parse_percent(stats.get("success_rate")) if traffic else None,
        processing_time_ms=(
            _non_negative(stats.get("average_processing_time_ms")) if processed else None
        ),
        last_event=parse_timestamp(connection.get("last_event_time"))
        or parse_timestamp(stats.get("last_processing_time")),
        uptime_seconds=parse_uptime(body.get("uptime_seconds")),
        queue_size=parse_count(stats.get("queue_size")),
        queue_maxsize=parse_count(stats.get("queue_maxsize")),
    )


def normalize_enrichment_stats(payload: object) -> ProcessingFigures:
    """R1 enrichment-pipeline `GET /api/v1/stats`.

    docs/ingestor-contracts.md#r1-enrichment-pipeline

    Error rate = InfluxDB write errors / (points written + write errors); success rate from
    `normalization.success_rate`, which is 0 (not 100) when nothing was normalised yet.
    `uptime` here is event-loop seconds since start of the loop, so it is not used.
    """
    body = _dict(payload)
    influxdb = _dict(body.get("influxdb"))
    normalization = _dict(body.get("normalization"))
    normalized = parse_count(normalization.get("normalized_events"))
    norm_errors = parse_count(normalization.get("normalization_errors"))
    traffic = (normalized or 0) + (norm_errors or 0) > 0
    return ProcessingFigures(
        error_rate=_error_rate(influxdb.get("write_errors"), influxdb.get("points_written")),
        success_rate=parse_percent(normalization.get("success_rate")) if traffic else None,
        last_event=parse_timestamp(normalization.get("last_normalized_time"))
        or parse_timestamp(influxdb.get("last_write_time")),
    )
