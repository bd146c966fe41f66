"""Building an entry's clients: InfluxDB backend, services client, source policy, storage source.

The one place that turns entry data and options into the api package's objects, for the
coordinators (every refresh) and the config flow (validation), so all of them always speak to
the sources the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.const import (
    CONF_API_KEY,
    CONF_PASSWORD,
    CONF_TOKEN,
    CONF_URL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api.client import IngestorClient
from .api.core.models import Backend, Period, SourceMode, TrendWindow
from .api.influx.flux import FluxBackend
from .api.influx.influxql import InfluxQLBackend
from .api.influx.storage import FluxStorage, InfluxQLStorage
from .api.influx.windows import WindowStore
from .api.ingestor.services import STATS_TIMEOUT, ServicesClient
from .const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_ORGANIZATION,
    CONF_PERIOD,
    CONF_SOURCE_MODE,
    CONF_TREND_WINDOW,
    DEFAULT_BACKEND,
    DEFAULT_BUCKET,
    DEFAULT_ORGANIZATION,
    REQUEST_TIMEOUT,
    SERVICE_URL_KEYS,
    STORAGE_REQUEST_TIMEOUT,
)
from .options import influxdb_asked, options_with_defaults, update_interval_of

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import timedelta

    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

    from .api.core.storage import StorageSource
    from .api.influx.backend import InfluxBackend


# A refresh must end before the next one is due (the shortest interval is 15 s); the longest
# single request, the Admin API's `/api/v1/stats`, sets the bound for long intervals.
_REFRESH_MARGIN = 3.0
_REFRESH_TIMEOUT_MAX = STATS_TIMEOUT + 10.0


def refresh_timeout(update_interval: timedelta) -> float:
    """The budget of one whole refresh, in seconds: below the interval, at most 40 s."""
    seconds = update_interval.total_seconds()
    return min(max(seconds - _REFRESH_MARGIN, seconds / 2), _REFRESH_TIMEOUT_MAX)


def stats_timeout(update_interval: timedelta) -> float:
    """The slow `/api/v1/stats` call's own timeout: long, but ending inside the budget."""
    return min(STATS_TIMEOUT, refresh_timeout(update_interval) - 1.0)


def service_urls(data: Mapping[str, Any]) -> dict[str, str]:
    """Service name -> URL for every service the user addressed directly."""
    return {name: data[key] for key, name in SERVICE_URL_KEYS.items() if data.get(key)}


def services_configured(data: Mapping[str, Any]) -> bool:
    """Whether any ingestor service (Admin API or a direct service URL) is configured."""
    return bool(data.get(CONF_ADMIN_API_URL) or service_urls(data))


def create_influx_backend(
    hass: HomeAssistant,
    data: Mapping[str, Any],
    request_timeout: timedelta = REQUEST_TIMEOUT,
    windows: WindowStore | None = None,
) -> InfluxBackend:
    """The InfluxDB backend the entry data describes (it must have a URL).

    `windows` keeps the counts of the entry's period between refreshes (`api/influx/windows.py`).

    Raises:
        InvalidNameError: the bucket/database name cannot be used safely.

    """
    url: str = data[CONF_URL]
    verify_ssl = bool(data.get(CONF_VERIFY_SSL, True))
    bucket = data.get(CONF_BUCKET, DEFAULT_BUCKET)
    timeout = request_timeout.total_seconds()
    if data.get(CONF_BACKEND, DEFAULT_BACKEND) == Backend.INFLUXQL:
        # A user name means InfluxDB 1.x basic auth; otherwise the token, if any.
        username = data.get(CONF_USERNAME)
        return InfluxQLBackend(
            async_get_clientsession(hass, verify_ssl=verify_ssl),
            url,
            bucket,
            token=None if username else data.get(CONF_TOKEN),
            username=username,
            password=data.get(CONF_PASSWORD) if username else None,
            timeout=timeout,
            windows=windows,
        )
    return FluxBackend(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        url,
        data.get(CONF_TOKEN, ""),
        data.get(CONF_ORGANIZATION, DEFAULT_ORGANIZATION),
        bucket,
        timeout=timeout,
        windows=windows,
    )


def create_services_client(
    hass: HomeAssistant, data: Mapping[str, Any], stats_timeout_s: float = STATS_TIMEOUT
) -> ServicesClient:
    """The client of the ingestor's own APIs (Admin API and/or direct service URLs)."""
    return ServicesClient(
        async_get_clientsession(hass, verify_ssl=bool(data.get(CONF_VERIFY_SSL, True))),
        data.get(CONF_ADMIN_API_URL),
        data.get(CONF_API_KEY),
        service_urls(data),
        REQUEST_TIMEOUT.total_seconds(),
        stats_timeout=stats_timeout_s,
    )


def create_client(hass: HomeAssistant, entry: ConfigEntry) -> IngestorClient:
    """The client for an entry: its sources, the source mode and the refresh budget.

    The InfluxDB backend refreshes the entry's period incrementally: any change of period,
    trend window or source reloads the entry, and so starts from a full recount.
    """
    options = options_with_defaults(entry.options)
    mode = SourceMode(options[CONF_SOURCE_MODE])
    interval = update_interval_of(entry.options)
    data = entry.data
    windows = WindowStore(Period(options[CONF_PERIOD]), TrendWindow(options[CONF_TREND_WINDOW]))
    return IngestorClient(
        create_influx_backend(hass, data, windows=windows) if data.get(CONF_URL) else None,
        create_services_client(hass, data, stats_timeout(interval))
        if services_configured(data)
        else None,
        mode,
        refresh_timeout(interval),
    )


def create_storage_source(hass: HomeAssistant, entry: ConfigEntry) -> StorageSource | None:
    """The storage figures' source of an entry; None when InfluxDB is never asked."""
    if not influxdb_asked(entry):
        return None
    backend = create_influx_backend(hass, entry.data, STORAGE_REQUEST_TIMEOUT)
    if isinstance(backend, InfluxQLBackend):
        return InfluxQLStorage(backend)
    if isinstance(backend, FluxBackend):
        return FluxStorage(backend)
    return None  # pragma: no cover  (every backend is one of the two)
