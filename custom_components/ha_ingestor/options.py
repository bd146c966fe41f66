"""An entry's options with their defaults, and what the other layers read from them.

The one place that knows every option's default; the coordinators, the clients and the options
flow all read the options through it, so a missing option (an entry of an older version)
always means its default.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import CONF_URL

from .api.core.delivery import DEFAULT_ERROR_BELOW as DEFAULT_DELIVERY_ERROR
from .api.core.delivery import DEFAULT_WARNING_BELOW as DEFAULT_DELIVERY_WARNING
from .api.core.models import Period, SourceMode, Thresholds, TrendWindow
from .api.core.storage import StorageThresholds
from .const import (
    CONF_DELIVERY_CHECK,
    CONF_DELIVERY_ERROR,
    CONF_DELIVERY_WARNING,
    CONF_MONITORED_SERVICES,
    CONF_PERIOD,
    CONF_SHOW_PANEL,
    CONF_SOURCE_MODE,
    CONF_STORAGE_BUDGET_DAYS,
    CONF_STORAGE_BUDGET_GB,
    CONF_STORAGE_GROWTH_PERCENT,
    CONF_TREND_WINDOW,
    CONF_UPDATE_INTERVAL,
    DEFAULT_PERIOD,
    DEFAULT_SOURCE_MODE,
    DEFAULT_THRESHOLDS,
    DEFAULT_TREND_WINDOW,
    DEFAULT_UPDATE_INTERVAL,
    MAX_TREND_WINDOWS,
    STORAGE_OPTION_DEFAULTS,
    THRESHOLD_KEYS,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from homeassistant.config_entries import ConfigEntry

BYTES_PER_GB: Final = 1_000_000_000


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
        # On by default (existing entries migrate to on: __init__.async_migrate_entry).
        CONF_DELIVERY_CHECK: True,
        CONF_DELIVERY_WARNING: DEFAULT_DELIVERY_WARNING,
        CONF_DELIVERY_ERROR: DEFAULT_DELIVERY_ERROR,
        CONF_SHOW_PANEL: True,
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


def storage_thresholds_from(options: Mapping[str, Any]) -> StorageThresholds:
    """The storage alert's thresholds the options ask for (no budget: that check is off)."""
    values = options_with_defaults(options)
    budget = values[CONF_STORAGE_BUDGET_GB]
    return StorageThresholds(
        growth_percent_per_day=float(values[CONF_STORAGE_GROWTH_PERCENT]),
        budget_bytes=None if budget is None else int(float(budget) * BYTES_PER_GB),
        budget_days=float(values[CONF_STORAGE_BUDGET_DAYS]),
    )


def update_interval_of(options: Mapping[str, Any]) -> timedelta:
    """The polling interval the options ask for."""
    return timedelta(seconds=int(options_with_defaults(options)[CONF_UPDATE_INTERVAL]))


def influxdb_asked(entry: ConfigEntry) -> bool:
    """InfluxDB is configured and the source mode lets it be asked."""
    mode = SourceMode(options_with_defaults(entry.options)[CONF_SOURCE_MODE])
    return bool(entry.data.get(CONF_URL)) and mode is not SourceMode.SERVICES


def delivery_enabled(entry: ConfigEntry) -> bool:
    """The delivery check is on (the default) and InfluxDB is asked."""
    return bool(options_with_defaults(entry.options)[CONF_DELIVERY_CHECK]) and influxdb_asked(entry)


def panel_shown(entry: ConfigEntry) -> bool:
    """The entry asks for the sidebar panel (on unless the options hide it)."""
    return bool(options_with_defaults(entry.options)[CONF_SHOW_PANEL])
