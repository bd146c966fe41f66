"""System health: can Home Assistant reach InfluxDB and the Admin API, and what answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components import system_health
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, callback

from .const import CONF_ADMIN_API_URL, DOMAIN

if TYPE_CHECKING:
    from .coordinator import HaIngestorConfigEntry


@callback
def async_register(hass: HomeAssistant, register: system_health.SystemHealthRegistration) -> None:  # noqa: ARG001
    """Register the info callback."""
    register.async_register_info(system_health_info)


async def system_health_info(hass: HomeAssistant) -> dict[str, Any]:
    """Reachability, data source and versions of the first loaded HA Ingestor entry."""
    entries: list[HaIngestorConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if not entries:
        return {}
    entry = entries[0]
    info: dict[str, Any] = {}
    if url := entry.data.get(CONF_URL):
        # /ping answers without credentials on InfluxDB 1.x, 2.x and 3.
        info["can_reach_influxdb"] = system_health.async_check_can_reach_url(hass, f"{url}/ping")
    if admin_api_url := entry.data.get(CONF_ADMIN_API_URL):
        info["can_reach_admin_api"] = system_health.async_check_can_reach_url(
            hass, f"{admin_api_url}/health"
        )
    coordinator = entry.runtime_data.coordinator
    info["last_update_success"] = coordinator.last_update_success
    if (snapshot := coordinator.data) is not None:
        info["data_source"] = snapshot.source.value
        info["influxdb_version"] = snapshot.influxdb_version
        info["ingestor_version"] = snapshot.ingestor_version
    return info
