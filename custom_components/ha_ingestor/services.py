"""The `ha_ingestor.get_statistics` response action."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

try:
    import probatio as vol
except ImportError:  # pragma: no cover - Home Assistant before 2026.3 (the minimum target)
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util import dt as dt_util

from .api.core.models import Period, snapshot_as_dict
from .const import ATTR_CONFIG_ENTRY_ID, ATTR_PERIOD, DOMAIN, SERVICE_GET_STATISTICS

if TYPE_CHECKING:
    from homeassistant.util.json import JsonObjectType

    from .runtime import HaIngestorConfigEntry

GET_STATISTICS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_PERIOD): vol.All(cv.string, vol.Coerce(Period)),
    }
)


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
