"""The statistics coordinator: one snapshot per refresh, every source error mapped in one place."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, override

from homeassistant.const import CONF_API_KEY, CONF_URL
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from yarl import URL

from ..api.core.alerts import evaluate_alerts
from ..api.core.errors import (
    IngestorAuthenticationError,
    IngestorError,
    IngestorNotFoundError,
    Origin,
)
from ..api.core.models import DataSource, Period, Snapshot, SourceMode, TrendWindow
from ..const import (
    CONF_ADMIN_API_URL,
    CONF_BUCKET,
    CONF_MONITORED_SERVICES,
    CONF_PERIOD,
    CONF_SOURCE_MODE,
    CONF_TREND_WINDOW,
    DEFAULT_BUCKET,
    DOMAIN,
    ISSUE_ADMIN_API_KEY_REQUIRED,
    ISSUE_BUCKET_NOT_FOUND,
    LOGGER,
)
from ..issues import delete_entry_issues, set_entry_issue
from ..options import options_with_defaults, thresholds_from, trend_window_for, update_interval_of

if TYPE_CHECKING:
    from datetime import datetime

    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

    from ..api.client import FetchResult, IngestorClient


def _host(url: str | None) -> str:
    return (URL(url).host or "") if url else ""


class StatisticsCoordinator(DataUpdateCoordinator[Snapshot]):
    """Refreshes one snapshot per interval; InfluxDB first, the services as fallback."""

    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        config_entry: ConfigEntry,
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
        delete_entry_issues(
            self.hass, self.config_entry, ISSUE_BUCKET_NOT_FOUND, ISSUE_ADMIN_API_KEY_REQUIRED
        )


def _auth_failed(error: IngestorError) -> ConfigEntryAuthFailed:
    return ConfigEntryAuthFailed(
        translation_domain=DOMAIN,
        translation_key=f"{error.origin.value}_auth_failed",
        translation_placeholders={"error": str(error)},
    )
