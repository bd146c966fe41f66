"""The coordinator: one snapshot per refresh, every source error mapped in one place."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import (
    CONF_API_KEY,
    CONF_PASSWORD,
    CONF_TOKEN,
    CONF_URL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from yarl import URL

from .api.alerts import evaluate_alerts
from .api.client import IngestorClient
from .api.errors import IngestorAuthenticationError, IngestorError, IngestorNotFoundError, Origin
from .api.flux import FluxBackend
from .api.influxql import InfluxQLBackend
from .api.models import Backend, DataSource, Period, Snapshot, SourceMode, Thresholds, TrendWindow
from .api.services import ServicesClient
from .const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_MONITORED_SERVICES,
    CONF_ORGANIZATION,
    CONF_PERIOD,
    CONF_SOURCE_MODE,
    CONF_TREND_WINDOW,
    CONF_UPDATE_INTERVAL,
    DEFAULT_BACKEND,
    DEFAULT_BUCKET,
    DEFAULT_ORGANIZATION,
    DEFAULT_PERIOD,
    DEFAULT_SOURCE_MODE,
    DEFAULT_THRESHOLDS,
    DEFAULT_TREND_WINDOW,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
    ISSUE_ADMIN_API_KEY_REQUIRED,
    ISSUE_BUCKET_NOT_FOUND,
    LOGGER,
    REQUEST_TIMEOUT,
    SERVICE_URL_KEYS,
    THRESHOLD_KEYS,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from homeassistant.core import HomeAssistant

    from .api.backend import InfluxBackend


@dataclass(kw_only=True, slots=True)
class HaIngestorRuntimeData:
    """What a loaded entry holds."""

    coordinator: HaIngestorCoordinator
    client: IngestorClient


type HaIngestorConfigEntry = ConfigEntry[HaIngestorRuntimeData]


def options_with_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option, the stored value where there is one."""
    result: dict[str, Any] = {
        CONF_SOURCE_MODE: DEFAULT_SOURCE_MODE.value,
        CONF_PERIOD: DEFAULT_PERIOD.value,
        CONF_TREND_WINDOW: DEFAULT_TREND_WINDOW.value,
        CONF_UPDATE_INTERVAL: DEFAULT_UPDATE_INTERVAL,
        **{key: getattr(DEFAULT_THRESHOLDS, key) for key in THRESHOLD_KEYS},
        CONF_MONITORED_SERVICES: [],
    }
    result.update({key: value for key, value in options.items() if key in result})
    if "processing_time_error" not in options:
        result["processing_time_error"] = DEFAULT_THRESHOLDS.processing_time_error
    return result


def thresholds_from(options: Mapping[str, Any]) -> Thresholds:
    """The alert thresholds the options ask for."""
    values = options_with_defaults(options)
    slow_error = values["processing_time_error"]
    return Thresholds(
        error_rate_warning=float(values["error_rate_warning"]),
        error_rate_error=float(values["error_rate_error"]),
        success_rate_warning=float(values["success_rate_warning"]),
        success_rate_error=float(values["success_rate_error"]),
        processing_time_warning=float(values["processing_time_warning"]),
        processing_time_error=None if slow_error is None else float(slow_error),
        stalled_warning_minutes=float(values["stalled_warning_minutes"]),
        stalled_error_minutes=float(values["stalled_error_minutes"]),
    )


def service_urls(data: Mapping[str, Any]) -> dict[str, str]:
    """Service name -> URL for every service the user addressed directly."""
    return {name: data[key] for key, name in SERVICE_URL_KEYS.items() if data.get(key)}


def services_configured(data: Mapping[str, Any]) -> bool:
    """Whether any ingestor service (Admin API or a direct service URL) is configured."""
    return bool(data.get(CONF_ADMIN_API_URL) or service_urls(data))


def create_influx_backend(hass: HomeAssistant, data: Mapping[str, Any]) -> InfluxBackend:
    """The InfluxDB backend the entry data describes (it must have a URL).

    Raises:
        InvalidNameError: the bucket/database name cannot be used safely.

    """
    url: str = data[CONF_URL]
    verify_ssl = bool(data.get(CONF_VERIFY_SSL, True))
    bucket = data.get(CONF_BUCKET, DEFAULT_BUCKET)
    timeout = REQUEST_TIMEOUT.total_seconds()
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
        )
    return FluxBackend(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        url,
        data.get(CONF_TOKEN, ""),
        data.get(CONF_ORGANIZATION, DEFAULT_ORGANIZATION),
        bucket,
        timeout=timeout,
    )


def create_services_client(hass: HomeAssistant, data: Mapping[str, Any]) -> ServicesClient:
    """The client of the ingestor's own APIs (Admin API and/or direct service URLs)."""
    return ServicesClient(
        async_get_clientsession(hass, verify_ssl=bool(data.get(CONF_VERIFY_SSL, True))),
        data.get(CONF_ADMIN_API_URL),
        data.get(CONF_API_KEY),
        service_urls(data),
        REQUEST_TIMEOUT.total_seconds(),
    )


def create_client(hass: HomeAssistant, entry: HaIngestorConfigEntry) -> IngestorClient:
    """The client for an entry: its sources and the source mode of its options."""
    mode = SourceMode(options_with_defaults(entry.options)[CONF_SOURCE_MODE])
    data = entry.data
    return IngestorClient(
        create_influx_backend(hass, data) if data.get(CONF_URL) else None,
        create_services_client(hass, data) if services_configured(data) else None,
        mode,
    )


def _host(url: str | None) -> str:
    return (URL(url).host or "") if url else ""


class HaIngestorCoordinator(DataUpdateCoordinator[Snapshot]):
    """Refreshes one snapshot per interval; InfluxDB first, the services as fallback."""

    config_entry: HaIngestorConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        config_entry: HaIngestorConfigEntry,
        client: IngestorClient,
    ) -> None:
        """Read the options once: changing them reloads the entry."""
        options = options_with_defaults(config_entry.options)
        super().__init__(
            hass,
            LOGGER,
            config_entry=config_entry,
            name=DOMAIN,
            update_interval=timedelta(seconds=int(options[CONF_UPDATE_INTERVAL])),
        )
        self.client = client
        self.mode = SourceMode(options[CONF_SOURCE_MODE])
        self.period = Period(options[CONF_PERIOD])
        self.trend_window = TrendWindow(options[CONF_TREND_WINDOW])
        self.thresholds = thresholds_from(config_entry.options)
        self.monitored_services = frozenset(options[CONF_MONITORED_SERVICES])
        self.on_fallback = False

    @property
    def fallback_unexpected(self) -> bool:
        """Whether a services snapshot means InfluxDB failed (not that it was not asked)."""
        return self.mode is SourceMode.AUTO and bool(self.config_entry.data.get(CONF_URL))

    async def async_fetch_snapshot(self, period: Period, now: datetime) -> Snapshot:
        """One snapshot for any period, only the monitored services in it.

        Raises only `IngestorError`.
        """
        snapshot = await self.client.async_get_snapshot(
            period, self.trend_window, self.thresholds, now
        )
        if self.monitored_services:
            snapshot = replace(
                snapshot,
                services=tuple(s for s in snapshot.services if s.name in self.monitored_services),
            )
            snapshot = replace(snapshot, alerts=evaluate_alerts(snapshot, self.thresholds, now))
        return snapshot

    def _key_missing(self, error: IngestorError | None) -> bool:
        """A 401 from the Admin API while no key is configured: a repair, not a reauth."""
        return (
            isinstance(error, IngestorAuthenticationError)
            and error.origin is Origin.SERVICES
            and not self.config_entry.data.get(CONF_API_KEY)
        )

    @override
    async def _async_update_data(self) -> Snapshot:
        """Map every source error here, once."""
        try:
            snapshot = await self.async_fetch_snapshot(self.period, dt_util.utcnow())
        except IngestorError as err:
            self._sync_issues()
            if isinstance(err, IngestorAuthenticationError) and not self._key_missing(err):
                raise _auth_failed(err) from err
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        self._sync_issues()
        # A refused credential needs the user even while the other source covers for it.
        for error in (self.client.last_influx_error, self.client.last_services_error):
            if isinstance(error, IngestorAuthenticationError) and not self._key_missing(error):
                raise _auth_failed(error) from error
        self._log_source_change(snapshot)
        return snapshot

    def _log_source_change(self, snapshot: Snapshot) -> None:
        """Log the switch to the fallback and back, once each way."""
        fallback = snapshot.source is DataSource.SERVICES_FALLBACK and self.fallback_unexpected
        if fallback and not self.on_fallback:
            LOGGER.warning(
                "InfluxDB at %s did not answer (%s); statistics come from the ingestor's "
                "services until it does",
                _host(self.config_entry.data.get(CONF_URL)),
                self.client.last_influx_error or "no answer",
            )
        elif not fallback and self.on_fallback:
            LOGGER.info("InfluxDB answers again; statistics come from InfluxDB")
        self.on_fallback = fallback

    def _sync_issues(self) -> None:
        """Create or delete the repair issues the last refresh calls for."""
        entry = self.config_entry
        self._set_issue(
            ISSUE_BUCKET_NOT_FOUND,
            active=isinstance(self.client.last_influx_error, IngestorNotFoundError),
            placeholders={
                "title": entry.title,
                "bucket": str(entry.data.get(CONF_BUCKET, DEFAULT_BUCKET)),
            },
        )
        self._set_issue(
            ISSUE_ADMIN_API_KEY_REQUIRED,
            active=self._key_missing(self.client.last_services_error),
            placeholders={"title": entry.title, "host": _host(entry.data.get(CONF_ADMIN_API_URL))},
        )

    def _set_issue(self, key: str, *, active: bool, placeholders: dict[str, str]) -> None:
        issue_id = f"{key}_{self.config_entry.entry_id}"
        if active:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=key,
                translation_placeholders=placeholders,
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)

    def async_delete_issues(self) -> None:
        """Remove this entry's repair issues (on unload)."""
        for key in (ISSUE_BUCKET_NOT_FOUND, ISSUE_ADMIN_API_KEY_REQUIRED):
            ir.async_delete_issue(self.hass, DOMAIN, f"{key}_{self.config_entry.entry_id}")


def _auth_failed(error: IngestorError) -> ConfigEntryAuthFailed:
    return ConfigEntryAuthFailed(
        translation_domain=DOMAIN,
        translation_key=f"{error.origin.value}_auth_failed",
        translation_placeholders={"error": str(error)},
    )
