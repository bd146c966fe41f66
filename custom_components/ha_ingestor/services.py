"""The response actions: `ha_ingestor.get_statistics` and `ha_ingestor.backfill`."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Final

try:
    import probatio as vol
except ImportError:  # pragma: no cover - Home Assistant before 2026.3 (the minimum target)
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from .api.core.delivery import credit_backfilled, lost_per_entity
from .api.core.models import Period, snapshot_as_dict
from .backfill import (
    EMPTY_SPAN,
    NO_RECORDER,
    PAST_RETENTION,
    BackfillError,
    async_backfill,
)
from .clients import create_influx_backend
from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DRY_RUN,
    ATTR_END,
    ATTR_PERIOD,
    ATTR_START,
    CONF_BUCKET,
    DEFAULT_BUCKET,
    DOMAIN,
    SERVICE_BACKFILL,
    SERVICE_GET_STATISTICS,
)

if TYPE_CHECKING:
    from homeassistant.util.json import JsonObjectType

    from .runtime import HaIngestorConfigEntry

GET_STATISTICS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_PERIOD): vol.All(cv.string, vol.Coerce(Period)),
    }
)


BACKFILL_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_START): cv.datetime,
        vol.Required(ATTR_END): cv.datetime,
        vol.Optional(ATTR_DRY_RUN, default=True): cv.boolean,
    }
)
# Errors of the caller's choice (span, recorder) against those of a server (token, InfluxDB).
_CALLER_ERRORS: Final = frozenset({EMPTY_SPAN, NO_RECORDER, PAST_RETENTION})


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> HaIngestorConfigEntry:
    entry: HaIngestorConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"entry_id": entry_id},
        )
    return entry


async def _async_get_statistics(call: ServiceCall) -> JsonObjectType:
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    coordinator = entry.runtime_data.coordinator
    period: Period | None = call.data.get(ATTR_PERIOD)
    if (period is None or period is coordinator.period) and coordinator.last_update_success:
        return snapshot_as_dict(coordinator.data)
    result = await coordinator.async_fetch(period or coordinator.period, dt_util.utcnow())
    if result.snapshot is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="statistics_failed",
            translation_placeholders={"error": str(result.error)},
        ) from result.error
    return snapshot_as_dict(result.snapshot)


async def _async_backfill(call: ServiceCall) -> JsonObjectType:
    """Find the state changes InfluxDB lacks in the span; write them unless a dry run."""
    entry = _loaded_entry(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    if not entry.data.get(CONF_URL):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="backfill_no_influxdb"
        )
    delivery = entry.runtime_data.delivery
    backend = (
        delivery.backend if delivery is not None else create_influx_backend(call.hass, entry.data)
    )
    try:
        result = await async_backfill(
            call.hass,
            backend,
            str(entry.data.get(CONF_BUCKET, DEFAULT_BUCKET)),
            dt_util.as_utc(call.data[ATTR_START]),
            dt_util.as_utc(call.data[ATTR_END]),
            dry_run=call.data[ATTR_DRY_RUN],
            lost=None if delivery is None else lost_per_entity(delivery.counter),
            credit=None if delivery is None else partial(credit_backfilled, delivery.counter),
        )
    except BackfillError as err:
        placeholders = err.placeholders
        if err.reason in _CALLER_ERRORS:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=f"backfill_{err.reason}",
                translation_placeholders=placeholders,
            ) from err
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=f"backfill_{err.reason}",
            translation_placeholders=placeholders,
        ) from err
    if delivery is not None and result.written:
        # The credited windows show at once, not at the next interval.
        await delivery.async_refresh()
    return result.as_dict()


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, in `async_setup`)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_STATISTICS,
        _async_get_statistics,
        schema=GET_STATISTICS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_BACKFILL,
        _async_backfill,
        schema=BACKFILL_SCHEMA,
        # A dry run is asked for its answer; a real run may come from an automation.
        supports_response=SupportsResponse.OPTIONAL,
    )
