"""The HA Ingestor integration: watches an HA Ingestor stack through InfluxDB and its APIs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from homeassistant.const import Platform
from homeassistant.exceptions import ConfigEntryNotReady, HomeAssistantError
from homeassistant.helpers import config_validation as cv

from .clients import create_client, create_storage_source
from .config_flow import HaIngestorConfigFlow
from .const import CONF_DELIVERY_CHECK, DOMAIN
from .coordinators.delivery import async_setup_delivery
from .coordinators.statistics import StatisticsCoordinator
from .coordinators.storage import StorageCoordinator
from .devices import async_remove_config_entry_device, async_sync_devices
from .frontend import async_register_card, async_update_panel
from .runtime import HaIngestorConfigEntry, HaIngestorRuntimeData
from .services import async_setup_services

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.typing import ConfigType

__all__ = ["async_remove_config_entry_device"]

PLATFORMS: Final = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:  # noqa: ARG001
    """Register the actions and the data-flow card once, for every entry."""
    async_setup_services(hass)
    await async_register_card(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: HaIngestorConfigEntry) -> bool:
    """Bring an entry of an older version up to this one; refuse one of a newer version.

    1.1 -> 1.2: the delivery check became on by default, so it is turned on. Whoever does not
    want it turns it off again in the options, or in one click from its repair issue when this
    Home Assistant is not the ingestor's source.
    """
    if entry.version > HaIngestorConfigFlow.VERSION:
        return False
    if entry.minor_version < 2:  # noqa: PLR2004
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_DELIVERY_CHECK: True}, minor_version=2
        )
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HaIngestorConfigEntry) -> bool:
    """Connect, fetch the first snapshot, then set up the platforms.

    Nothing is closed on failure or unload: every source runs on Home Assistant's shared
    session.
    """
    client = create_client(hass, entry)
    coordinator = StatisticsCoordinator(hass, entry, client)
    try:
        await coordinator.async_config_entry_first_refresh()
    except ConfigEntryNotReady as err:
        cause = coordinator.last_exception
        # Home Assistant 2026.2 drops the translation of the failed refresh; keep it.
        if err.translation_key is None and isinstance(cause, HomeAssistantError):
            raise ConfigEntryNotReady(
                translation_domain=cause.translation_domain,
                translation_key=cause.translation_key,
                translation_placeholders=cause.translation_placeholders,
            ) from cause
        raise
    source = create_storage_source(hass, entry)
    storage = None if source is None else StorageCoordinator(hass, entry, source)
    entry.runtime_data = HaIngestorRuntimeData(
        coordinator=coordinator,
        client=client,
        storage=storage,
        delivery=await async_setup_delivery(hass, entry, coordinator),
    )
    # Devices first (the platforms' entities attach to them), then once per refresh, before
    # the platforms' own listeners add entities for new services.
    async_sync_devices(hass, entry)
    entry.async_on_unload(coordinator.async_add_listener(lambda: async_sync_devices(hass, entry)))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if storage is not None:
        # Not awaited: the slow figures must never hold up or fail the set-up.
        entry.async_create_background_task(
            hass, storage.async_start(), f"{DOMAIN} storage figures {entry.entry_id}"
        )
    async_update_panel(hass, entry, loaded=True)
    return True


async def async_remove_entry(hass: HomeAssistant, entry: HaIngestorConfigEntry) -> None:
    """Forget the entry's saved storage samples."""
    await StorageCoordinator.async_remove_history_of(hass, entry)


async def async_unload_entry(hass: HomeAssistant, entry: HaIngestorConfigEntry) -> bool:
    """Unload the platforms, then drop the repair issues."""
    if unloaded := await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        entry.runtime_data.coordinator.async_delete_issues()
        async_update_panel(hass, entry, loaded=False)
    return unloaded
