"""The one normalised model every source is turned into.

`None` always means "not known": a value is never invented to fill a gap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, cast


class Period(StrEnum):
    """Statistics windows the ingestor itself knows (its `_period_to_seconds` map)."""

    MINUTES_15 = "15m"
    HOUR_1 = "1h"
    HOURS_6 = "6h"
    HOURS_24 = "24h"
    DAYS_7 = "7d"

    @property
    def duration(self) -> timedelta:
        """Length of the window."""
        return _PERIOD_DURATIONS[self]


_PERIOD_DURATIONS = {
    Period.MINUTES_15: timedelta(minutes=15),
    Period.HOUR_1: timedelta(hours=1),
    Period.HOURS_6: timedelta(hours=6),
    Period.HOURS_24: timedelta(hours=24),
    Period.DAYS_7: timedelta(days=7),
}


class TrendWindow(StrEnum):
    """Width of one bucket of the event trend."""

    MINUTES_1 = "1m"
    MINUTES_5 = "5m"
    MINUTES_15 = "15m"
    HOUR_1 = "1h"

    @property
    def duration(self) -> timedelta:
        """Length of one window."""
        return _WINDOW_DURATIONS[self]


_WINDOW_DURATIONS = {
    TrendWindow.MINUTES_1: timedelta(minutes=1),
    TrendWindow.MINUTES_5: timedelta(minutes=5),
    TrendWindow.MINUTES_15: timedelta(minutes=15),
    TrendWindow.HOUR_1: timedelta(hours=1),
}


class Backend(StrEnum):
    """Query language spoken to InfluxDB."""

    FLUX = "flux"
    INFLUXQL = "influxql"


class SourceMode(StrEnum):
    """Where statistics may come from (the ingestor's USE_INFLUXDB_STATS switch, done right)."""

    AUTO = "auto"
    INFLUXDB = "influxdb"
    SERVICES = "services"


class DataSource(StrEnum):
    """Which source answered a refresh."""

    INFLUXDB = "influxdb"
    SERVICES_FALLBACK = "services_fallback"


class ServiceStatus(StrEnum):
    """One vocabulary for the seven the ingestor's services use."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class Revision(StrEnum):
    """Ingestor generation, told apart by probing.

    docs/ingestor-contracts.md#telling-r1-from-r2
    """

    R1 = "r1"
    R2 = "r2"
    R3 = "r3"  # HomeIQ 2.0: standard health shape, Admin API with a key and a rate limit


class TrendDirection(StrEnum):
    """Direction of the event trend."""

    RISING = "rising"
    FALLING = "falling"
    STEADY = "steady"


class Severity(StrEnum):
    """Severity of an alert; UNKNOWN when its input is not known."""

    WARNING = "warning"
    ERROR = "error"
    UNKNOWN = "unknown"


class AlertKey(StrEnum):
    """The alert rules, one per key (evaluated in `alerts.py`, described in the README)."""

    HIGH_ERROR_RATE = "high_error_rate"
    LOW_SUCCESS_RATE = "low_success_rate"
    SLOW_PROCESSING = "slow_processing"
    INGESTION_STALLED = "ingestion_stalled"
    SERVICE_UNHEALTHY = "service_unhealthy"
    INFLUXDB_UNREACHABLE = "influxdb_unreachable"


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """Events counted in one window; `time` is the window's end (UTC)."""

    time: datetime
    count: int


@dataclass(frozen=True, slots=True)
class EventStatistics:
    """Event figures: from InfluxDB, or the few the services know in fallback."""

    events_in_period: int | None = None
    events_per_minute: float | None = None
    last_event: datetime | None = None
    active_entities: int | None = None
    # Top domains, most events first, at most ten.
    events_by_domain: tuple[tuple[str, int], ...] = ()
    trend: tuple[TrendPoint, ...] = ()
    trend_direction: TrendDirection | None = None


@dataclass(frozen=True, slots=True)
class ProcessingMetrics:
    """Error, success and latency figures (percentages are 0-100)."""

    error_rate: float | None = None
    success_rate: float | None = None
    processing_time_ms: float | None = None


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One monitored ingestor service as last seen."""

    name: str
    status: ServiceStatus
    reachable: bool
    message: str | None = None
    uptime_seconds: float | None = None
    response_time_ms: float | None = None
    version: str | None = None
    # The build a service reports in the R3 standard health shape ("unknown" is None).
    git_sha: str | None = None


# websocket-ingestion drops events once its queue is full: warn well before.
BACKPRESSURE_PERCENT = 80.0


@dataclass(frozen=True, slots=True)
class IngestionFigures:
    """What R3's websocket-ingestion tells beyond R2: its event queue and its entity filter."""

    queue_size: int | None = None
    queue_maxsize: int | None = None
    # None: the revision has no entity filter (or it did not answer); False: not configured.
    filter_enabled: bool | None = None
    filtered_events: int | None = None
    # Share of the processed events the filter dropped on purpose, 0-100.
    filtered_percent: float | None = None
    # Running totals since the service started, for the delivery funnel (api/core/funnel.py):
    # `state_changed` received (`events_by_type`), processed and failed by its event
    # processor (`/api/v1/event-rate` `processing_stats`). None where the revision has none.
    events_received: int | None = None
    events_processed: int | None = None
    events_failed: int | None = None

    @property
    def queue_fill_percent(self) -> float | None:
        """How full the queue is, 0-100."""
        if self.queue_size is None or not self.queue_maxsize:
            return None
        return min(self.queue_size / self.queue_maxsize * 100, 100.0)

    @property
    def backpressure(self) -> bool | None:
        """Whether the queue is close to full (events are about to be dropped)."""
        fill = self.queue_fill_percent
        return None if fill is None else fill >= BACKPRESSURE_PERCENT


@dataclass(frozen=True, slots=True)
class FiringAlert:
    """One AlertManager alert the R3 Admin API lists as firing."""

    fingerprint: str
    name: str
    severity: str | None = None
    service: str | None = None
    summary: str | None = None
    starts_at: datetime | None = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Alert thresholds (defaults are the ingestor's own)."""

    error_rate_warning: float = 2.0
    error_rate_error: float = 5.0
    success_rate_warning: float = 95.0
    success_rate_error: float = 90.0
    processing_time_warning: float = 1000.0
    processing_time_error: float | None = None
    stalled_warning_minutes: float = 5.0
    stalled_error_minutes: float = 15.0


@dataclass(frozen=True, slots=True)
class Alert:
    """One evaluated rule. `active` is False with severity UNKNOWN when its input is unknown."""

    key: AlertKey
    active: bool
    severity: Severity | None
    value: float | str | None
    warning_threshold: float | str | None
    error_threshold: float | str | None
    message: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one refresh learned, whatever answered it."""

    source: DataSource
    period: Period
    fetched_at: datetime
    query_duration_ms: float
    events: EventStatistics = field(default_factory=EventStatistics)
    metrics: ProcessingMetrics = field(default_factory=ProcessingMetrics)
    services: tuple[ServiceState, ...] = ()
    alerts: tuple[Alert, ...] = ()
    influxdb_connected: bool | None = None
    admin_api_connected: bool | None = None
    influxdb_version: str | None = None
    ingestor_version: str | None = None
    revision: Revision | None = None
    ingestion: IngestionFigures = field(default_factory=IngestionFigures)
    # AlertManager alerts firing now (R3); None where the revision has none or none was read.
    firing_alerts: tuple[FiringAlert, ...] | None = None
    # True only when `services` is the whole stack (the Admin API's listings answered, or
    # only direct service URLs are configured): a service missing from it is really gone.
    services_complete: bool = False

    def service(self, name: str) -> ServiceState | None:
        """The state of one service, if it was seen."""
        return next((s for s in self.services if s.name == name), None)

    def alert(self, key: AlertKey) -> Alert | None:
        """One evaluated alert rule."""
        return next((a for a in self.alerts if a.key is key), None)

    @property
    def active_alerts(self) -> tuple[Alert, ...]:
        """Alerts that are on."""
        return tuple(a for a in self.alerts if a.active)


def _plain(value: object) -> object:
    """JSON-ready: ISO timestamps, enum values, lists for tuples."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def snapshot_as_dict(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as plain JSON data (used by the action and diagnostics)."""
    data = cast("dict[str, Any]", _plain(asdict(snapshot)))
    data["events"]["events_by_domain"] = dict(snapshot.events.events_by_domain)
    return data
