"""What every InfluxDB backend (Flux, InfluxQL) offers the source policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Protocol

from ..core.models import EventStatistics, ProcessingMetrics
from ..core.urls import http_url

if TYPE_CHECKING:
    from datetime import datetime

    from yarl import URL

    from ..core.models import Period, TrendWindow
    from .windows import WindowStore

MEASUREMENT = "home_assistant_events"
SERVICE_METRICS_MEASUREMENT = "service_metrics"
# One field per point, whatever the schema: A writes `state`, B writes `state_value`.
EVENT_FIELDS = ("state", "state_value")
# Both dialects ask the same of `service_metrics` (the Admin API's own query): attempts and
# errors summed over the period, the latest success rate and processing time per service.
ATTEMPT_FIELDS: Final = ("write_attempts", "events_processed")
ERROR_FIELDS: Final = ("write_errors", "error")
LATEST_FIELDS: Final = ("success_rate", "processing_time_ms")
# How far back the newest event is looked for when the period holds none.
FRESHNESS_LOOKBACK: Final = timedelta(days=7)
# The server's version, in the answer to every request.
VERSION_HEADER: Final = "X-Influxdb-Version"
DEFAULT_TIMEOUT: Final = 30.0


def influx_url(url: str, path: str = "") -> URL:
    """`url` with `path` appended, by the one address rule (`core/urls.http_url`).

    Raises:
        InvalidURLError: the address breaks the rule, before a request is ever sent.

    """
    return http_url(url, path, what="InfluxDB URL")


@dataclass(frozen=True, slots=True)
class InfluxResult:
    """What one InfluxDB refresh found.

    `metrics` comes from `service_metrics` and stays all-None when that measurement has no rows
    (the normal case: no ingestor service writes it).
    """

    events: EventStatistics
    metrics: ProcessingMetrics = field(default_factory=ProcessingMetrics)
    version: str | None = None


class InfluxBackend(Protocol):
    """One InfluxDB dialect. Every method raises only `IngestorError` subclasses."""

    # The counts of one period and trend window kept between refreshes (`api.windows`).
    windows: WindowStore | None

    async def async_fetch(self, period: Period, window: TrendWindow, now: datetime) -> InfluxResult:
        """All statistics of one refresh in exactly one request."""

    async def async_validate(self) -> None:
        """Prove URL, credentials and bucket/database with one cheap, bounded query."""

    async def async_close(self) -> None:
        """Release what the backend owns (never a session the caller passed in)."""
