"""What every InfluxDB backend (Flux, InfluxQL) offers the source policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from yarl import URL

from ..core.errors import InvalidURLError
from ..core.models import EventStatistics, ProcessingMetrics

if TYPE_CHECKING:
    from datetime import datetime

    from ..core.models import Period, TrendWindow
    from .windows import WindowStore

MEASUREMENT = "home_assistant_events"
SERVICE_METRICS_MEASUREMENT = "service_metrics"
# One field per point, whatever the schema: A writes `state`, B writes `state_value`.
EVENT_FIELDS = ("state", "state_value")


def influx_url(url: str, path: str = "") -> URL:
    """`url` with `path` appended: the one InfluxDB address rule of both backends and set-up.

    http(s)://host[:port][/path]. A path is kept (InfluxDB behind a reverse proxy's prefix),
    user info is dropped (credentials travel in headers only). A query string or fragment is
    refused: each backend sends its own parameters, so one would be kept by one backend and
    lost by the other.

    Raises:
        InvalidURLError: anything else, before a request is ever sent.

    """
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as err:
        msg = "InfluxDB URL is not a URL"
        raise InvalidURLError(msg) from err
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        msg = "InfluxDB URL must look like http(s)://host[:port][/path]"
        raise InvalidURLError(msg)
    # The raw text: `http://h/?` has an empty query string yet still a query.
    if "?" in url or "#" in url:
        msg = "InfluxDB URL must not have a query string or fragment"
        raise InvalidURLError(msg)
    base = parsed.with_user(None)
    return base.with_path(base.raw_path.rstrip("/") + path, encoded=True)


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
