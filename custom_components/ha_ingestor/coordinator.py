"""The coordinator: one snapshot per refresh, every source error mapped in one place."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY, CONF_URL
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from yarl import URL

from .api.core.alerts import evaluate_alerts
from .api.core.delivery import (
    DEFAULT_ERROR_BELOW as DEFAULT_DELIVERY_ERROR,
)
from .api.core.delivery import (
    DEFAULT_WARNING_BELOW as DEFAULT_DELIVERY_WARNING,
)
from .api.core.errors import (
    IngestorAuthenticationError,
    IngestorError,
    IngestorNotFoundError,
    Origin,
)
from .api.core.models import DataSource, Period, Snapshot, SourceMode, Thresholds, TrendWindow
from .const import (
    CONF_ADMIN_API_URL,
    CONF_BUCKET,
    CONF_DELIVERY_CHECK,
    CONF_DELIVERY_ERROR,
    CONF_DELIVERY_WARNING,
    CONF_MONITORED_SERVICES,
    CONF_PERIOD,
    CONF_SOURCE_MODE,
    CONF_TREND_WINDOW,
    CONF_UPDATE_INTERVAL,
    DEFAULT_BUCKET,
    DEFAULT_PERIOD,
    DEFAULT_SOURCE_MODE,
    DEFAULT_THRESHOLDS,
    DEFAULT_TREND_WINDOW,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
    ISSUE_ADMIN_API_KEY_REQUIRED,
    ISSUE_BUCKET_NOT_FOUND,
    LOGGER,
    MAX_TREND_WINDOWS,
    STORAGE_OPTION_DEFAULTS,
    THRESHOLD_KEYS,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from homeassistant.core import HomeAssistant

    from .api.client import FetchResult, IngestorClient
    from .delivery import DeliveryCoordinator
    from .storage_coordinator import StorageCoordinator


@dataclass(kw_only=True, slots=True)
class HaIngestorRuntimeData:
    """What a loaded entry holds."""

    coordinator: HaIngestorCoordinator
    client: IngestorClient
    # None when InfluxDB is not asked (no address, or the services-only mode).
    storage: StorageCoordinator | None = None
    delivery: DeliveryCoordinator | None = None


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
        **STORAGE_OPTION_DEFAULTS,
        CONF_DELIVERY_CHECK: False,
        CONF_DELIVERY_WARNING: DEFAULT_DELIVERY_WARNING,
        CONF_DELIVERY_ERROR: DEFAULT_DELIVERY_ERROR,
    }
    result.update({key: value for key, value in options.items() if key in result})
    return result


def trend_window_error(period: Period, window: TrendWindow) -> str | None:
    """Why `window` cannot divide `period` (an options-form error key), None when it can."""
    if window.duration >= period.duration:
        return "trend_window_not_shorter"
    if period.duration / window.duration > MAX_TREND_WINDOWS:
        return "too_many_trend_windows"
    return None


def trend_window_for(period: Period, chosen: TrendWindow) -> TrendWindow:
    """The chosen window where the options would accept it for `period`, else the default.

    The action asks for any period with the entry's window; the default fits every period.
    """
    return chosen if trend_window_error(period, chosen) is None else DEFAULT_TREND_WINDOW


def thresholds_from(options: Mapping[str, Any]) -> Thresholds:
    """The alert thresholds the options ask for (None stays None: a level that is off)."""
    values = options_with_defaults(options)
    chosen: dict[str, Any] = {
        key: None if values[key] is None else float(values[key]) for key in THRESHOLD_KEYS
    }
    return Thresholds(**chosen)


def update_interval_of(options: Mapping[str, Any]) -> timedelta:
    """The polling interval the options ask for."""
    return timedelta(seconds=int(options_with_defaults(options)[CONF_UPDATE_INTERVAL]))


def set_entry_issue(  # noqa: PLR0913
    hass: HomeAssistant,
    entry: HaIngestorConfigEntry,
    key: str,
    *,
    active: bool,
    placeholders: dict[str, str],
    severity: ir.IssueSeverity = ir.IssueSeverity.ERROR,
) -> None:
    """Create or delete one of an entry's repair issues (id: key and entry id)."""
    issue_id = f"{key}_{entry.entry_id}"
    if active:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=severity,
            translation_key=key,
            translation_placeholders=placeholders,
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


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
            update_interval=update_interval_of(config_entry.options),
        )
        self.client = client
        self.mode = SourceMode(options[CONF_SOURCE_MODE])
        self.period = Period(options[CONF_PERIOD])
        self.trend_window = TrendWindow(options[CONF_TREND_WINDOW])
        self.thresholds = thresholds_from(config_entry.options)
        self.monitored_services = frozenset(options[CONF_MONITORED_SERVICES])
        self.on_fallback = False
        # Every service of the last snapshot, before the monitored-services filter (the
        # options offer all of them).
        self.seen_services: frozenset[str] = frozenset()
        # How each source ended in the last refresh of this coordinator (not the action's).
        self.last_influx_error: IngestorError | None = None
        self.last_services_error: IngestorError | None = None

    @property
    def fallback_unexpected(self) -> bool:
        """Whether a services snapshot means InfluxDB failed (not that it was not asked)."""
        return self.mode is SourceMode.AUTO and bool(self.config_entry.data.get(CONF_URL))

    async def async_fetch(self, period: Period, now: datetime) -> FetchResult:
        """One refresh for any period, only the monitored services in its snapshot."""
        return self._monitored(
            await self.client.async_get_snapshot(
                period, trend_window_for(period, self.trend_window), self.thresholds, now
            ),
            now,
        )

    def _monitored(self, result: FetchResult, now: datetime) -> FetchResult:
        if result.snapshot is None or not self.monitored_services:
            return result
        snapshot = replace(
            result.snapshot,
            services=tuple(
                s for s in result.snapshot.services if s.name in self.monitored_services
            ),
        )
        snapshot = replace(snapshot, alerts=evaluate_alerts(snapshot, self.thresholds, now))
        return replace(result, snapshot=snapshot)

    def _key_missing(self, error: IngestorError | None) -> bool:
        """A 401 from the Admin API while no key is configured: a repair, not a reauth."""
        return (
            isinstance(error, IngestorAuthenticationError)
            and error.origin is Origin.SERVICES
            and not self.config_entry.data.get(CONF_API_KEY)
        )

    def _refused(self, result: FetchResult) -> IngestorError | None:
        """A refused credential the user must fix (a reauth)."""
        return next(
            (
                error
                for error in (result.influx_error, result.services_error)
                if isinstance(error, IngestorAuthenticationError) and not self._key_missing(error)
            ),
            None,
        )

    @override
    async def _async_update_data(self) -> Snapshot:
        """Map every source error here, once."""
        now = dt_util.utcnow()
        unfiltered = await self.client.async_get_snapshot(
            self.period, self.trend_window, self.thresholds, now
        )
        result = self._monitored(unfiltered, now)
        self.last_influx_error = result.influx_error
        self.last_services_error = result.services_error
        self._sync_issues()
        refused = self._refused(result)
        snapshot = result.snapshot
        if snapshot is None:
            if refused is not None:
                raise _auth_failed(refused) from refused
            raise self._update_failed(result) from result.error
        if refused is not None:
            # ConfigEntryAuthFailed would stop the polling while the other source still
            # answers: ask for new credentials (HA keeps one flow per entry) and go on.
            self.config_entry.async_start_reauth(self.hass)
        if unfiltered.snapshot is not None:
            self.seen_services = frozenset(s.name for s in unfiltered.snapshot.services)
        self._log_source_change(snapshot)
        return snapshot

    def _update_failed(self, result: FetchResult) -> UpdateFailed:
        """Name the source(s) that failed, with the most meaningful error."""
        error = result.error
        if result.influx_error is not None and result.services_error is not None:
            key = "both_failed"
        elif result.influx_error is not None:
            key = "influxdb_failed"
        else:
            key = "services_failed"
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders={"error": str(error)},
        )

    def _log_source_change(self, snapshot: Snapshot) -> None:
        """Log the switch to the fallback and back, once each way."""
        fallback = snapshot.source is DataSource.SERVICES_FALLBACK and self.fallback_unexpected
        if fallback and not self.on_fallback:
            LOGGER.warning(
                "InfluxDB at %s did not answer (%s); statistics come from the ingestor's "
                "services until it does",
                _host(self.config_entry.data.get(CONF_URL)),
                self.last_influx_error or "no answer",
            )
        elif not fallback and self.on_fallback:
            LOGGER.info("InfluxDB answers again; statistics come from InfluxDB")
        self.on_fallback = fallback

    def _sync_issues(self) -> None:
        """Create or delete the repair issues the last refresh calls for."""
        entry = self.config_entry
        self._set_issue(
            ISSUE_BUCKET_NOT_FOUND,
            active=isinstance(self.last_influx_error, IngestorNotFoundError),
            placeholders={
                "title": entry.title,
                "bucket": str(entry.data.get(CONF_BUCKET, DEFAULT_BUCKET)),
            },
        )
        self._set_issue(
            ISSUE_ADMIN_API_KEY_REQUIRED,
            active=self._key_missing(self.last_services_error),
            placeholders={"title": entry.title, "host": _host(entry.data.get(CONF_ADMIN_API_URL))},
        )

    def _set_issue(self, key: str, *, active: bool, placeholders: dict[str, str]) -> None:
        set_entry_issue(self.hass, self.config_entry, key, active=active, placeholders=placeholders)

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
