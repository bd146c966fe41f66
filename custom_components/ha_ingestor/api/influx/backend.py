"""What every InfluxDB backend (Flux, InfluxQL) offers the source policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

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
