"""Base entities: one class for the main device's entities, one for a service device's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, override

from homeassistant.core import callback
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .api.core.models import DataSource, Revision, Snapshot
from .coordinator import HaIngestorConfigEntry, HaIngestorCoordinator
from .devices import entry_key, main_device_info, service_device_info

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from enum import StrEnum

    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api.core.models import ServiceState


def offered_by_r3(snapshot: Snapshot | None) -> bool:
    """Figures only HomeIQ 2.0 (R3) reports: queue, entity filter, AlertManager alerts."""
    return snapshot is not None and snapshot.revision is Revision.R3


@callback
def async_add_when_offered[D: HaIngestorEntityDescription](
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    descriptions: Iterable[D],
    entity: Callable[[D], HaIngestorEntity],
) -> None:
    """Add the entity of each description once the ingestor's revision offers it.

    The revision is known from the first refresh that reached the ingestor, which may come
    after set-up (the ingestor was down); an entity is never added twice.
    """
    coordinator = entry.runtime_data.coordinator
    pending = [d for d in descriptions if d.exists_fn is not None]

    @callback
    def add_offered() -> None:
        ready = [d for d in pending if d.exists_fn is not None and d.exists_fn(coordinator.data)]
        if ready:
            pending[:] = [d for d in pending if d not in ready]
            async_add_entities(entity(d) for d in ready)

    add_offered()
    if pending:
        entry.async_on_unload(coordinator.async_add_listener(add_offered))


def enum_value(member: StrEnum | None) -> str | None:
    """The plain string of an enum member, for state attributes."""
    return None if member is None else member.value


class AlertLike(Protocol):
    """What an alert's state attributes are read from (`Alert`, the delivery check's alert)."""

    @property
    def severity(self) -> StrEnum | None: ...  # noqa: D102
    @property
    def value(self) -> float | str | None: ...  # noqa: D102
    @property
    def warning_threshold(self) -> float | str | None: ...  # noqa: D102
    @property
    def error_threshold(self) -> float | str | None: ...  # noqa: D102
    @property
    def message(self) -> str: ...  # noqa: D102


def alert_attributes(alert: AlertLike) -> dict[str, Any]:
    """The attributes every alert binary sensor has."""
    return {
        "severity": enum_value(alert.severity),
        "value": alert.value,
        "warning_threshold": alert.warning_threshold,
        "error_threshold": alert.error_threshold,
        "message": alert.message,
    }


def influxdb_answered(snapshot: Snapshot) -> bool:
    """Figures that only InfluxDB has are unavailable while running on the services fallback."""
    return snapshot.source is DataSource.INFLUXDB


@dataclass(frozen=True, kw_only=True)
class HaIngestorEntityDescription(EntityDescription):
    """What every entity of the main device may have: state attributes read from the snapshot."""

    attr_fn: Callable[[Snapshot], Mapping[str, Any]] | None = None
    # Set for entities only some revisions offer: created once it says True.
    exists_fn: Callable[[Snapshot | None], bool] | None = None


class HaIngestorEntity(CoordinatorEntity[HaIngestorCoordinator]):
    """An entity of the main "HA Ingestor" device."""

    _attr_has_entity_name = True
    entity_description: HaIngestorEntityDescription

    def __init__(
        self,
        entry: HaIngestorConfigEntry,
        description: HaIngestorEntityDescription,
    ) -> None:
        """Bind the entity to the entry's coordinator and main device."""
        coordinator = entry.runtime_data.coordinator
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{entry_key(entry)}_{description.key}"
        self._attr_device_info = main_device_info(entry, coordinator.data)

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The description's attributes of the latest snapshot, if it has any."""
        if (attr_fn := self.entity_description.attr_fn) is None:
            return None
        return attr_fn(self.coordinator.data)


class HaIngestorServiceEntity(CoordinatorEntity[HaIngestorCoordinator]):
    """An entity of one monitored service's device."""

    _attr_has_entity_name = True

    def __init__(
        self,
        entry: HaIngestorConfigEntry,
        description: EntityDescription,
        state: ServiceState,
    ) -> None:
        """Bind the entity to the entry's coordinator and the service's device."""
        super().__init__(entry.runtime_data.coordinator)
        self.entity_description = description
        self.service_name = state.name
        self._attr_unique_id = f"{entry_key(entry)}_{state.name}_{description.key}"
        self._attr_device_info = service_device_info(entry, state)

    @property
    def service_state(self) -> ServiceState | None:
        """The service as last seen; None once it has gone."""
        return self.coordinator.data.service(self.service_name)

    @property
    @override
    def available(self) -> bool:
        """Unavailable when the refresh failed or the service is no longer listed."""
        return super().available and self.service_state is not None
