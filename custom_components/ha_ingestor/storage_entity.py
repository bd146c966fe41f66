"""Entities of the storage figures: on the main device, added once the server answers them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import callback
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .devices import entry_key, main_device_info
from .storage_coordinator import StorageCoordinator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from homeassistant.helpers.entity import Entity
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .coordinator import HaIngestorConfigEntry
    from .storage_coordinator import StorageState


@dataclass(frozen=True, kw_only=True)
class HaIngestorStorageEntityDescription(EntityDescription):
    """A storage entity: the figures it needs (any one answered creates it) and its attributes."""

    figures: frozenset[str]
    attr_fn: Callable[[StorageState], Mapping[str, Any]] | None = None


class HaIngestorStorageEntity(CoordinatorEntity[StorageCoordinator]):
    """An entity of the main device, read from the storage coordinator."""

    _attr_has_entity_name = True
    entity_description: HaIngestorStorageEntityDescription

    def __init__(
        self, coordinator: StorageCoordinator, description: HaIngestorStorageEntityDescription
    ) -> None:
        """Bind the entity to the storage coordinator and the main device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry_key(entry)}_{description.key}"
        self._statistics = entry.runtime_data.coordinator
        self._attr_device_info = main_device_info(entry, self._statistics.data)

    @override
    async def async_added_to_hass(self) -> None:
        """Also follow the statistics refresh: its failure makes these unavailable too."""
        await super().async_added_to_hass()
        self.async_on_remove(self._statistics.async_add_listener(self._handle_coordinator_update))

    @property
    @override
    def available(self) -> bool:
        """Unavailable while no source of the entry answers, as every entity of the entry."""
        return super().available and self._statistics.last_update_success

    @property
    def state_data(self) -> StorageState | None:
        """The latest storage refresh (None before the first)."""
        return self.coordinator.data

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The description's attributes of the latest refresh, if it has any."""
        if (attr_fn := self.entity_description.attr_fn) is None or self.state_data is None:
            return None
        return attr_fn(self.state_data)


@callback
def async_add_storage_entities[D: HaIngestorStorageEntityDescription](
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    descriptions: Iterable[D],
    factory: Callable[[StorageCoordinator, D], Entity],
) -> None:
    """Add each storage entity once a figure it shows has been answered by the server.

    A server that never gives a figure (no self-monitoring, an older version, no right to
    read it) never gets its entity; a figure that was answered once keeps its entity, unknown
    while the server does not answer.
    """
    coordinator = entry.runtime_data.storage
    if coordinator is None:
        return
    pending = list(descriptions)

    @callback
    def add_answered() -> None:
        ready = [d for d in pending if d.figures & coordinator.answered]
        if ready:
            for description in ready:
                pending.remove(description)
            async_add_entities(factory(coordinator, d) for d in ready)

    add_answered()
    entry.async_on_unload(coordinator.async_add_listener(add_answered))
