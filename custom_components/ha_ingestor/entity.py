"""The one entity base and the one description type, for every coordinator and platform.

An entity is a description bound to one coordinator's data: the statistics snapshot, a
service's state within it, the storage figures or the delivery check. The description says how
to read the state (`value_fn`), the attributes (`attr_fn`), when the figure is available
(`available_fn`) and when the entity exists at all (`exists_fn`); the base binds it to a
coordinator, a unique id and a device. A platform adds one class per platform on top.

docs/architecture.md#entities
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self, cast, override

from homeassistant.core import callback
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .api.core.models import DataSource, Revision
from .devices import entry_key, known_services, main_device_info, service_device_info

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from enum import StrEnum

    from homeassistant.helpers.device_registry import DeviceInfo
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api.core.models import ServiceState, Snapshot
    from .coordinators.delivery import DeliveryData
    from .coordinators.storage import StorageState
    from .runtime import HaIngestorConfigEntry


@dataclass(frozen=True, kw_only=True)
class HaIngestorEntityDescription[DataT](EntityDescription):
    """How an entity reads its coordinator's data (`DataT`)."""

    value_fn: Callable[[DataT], Any]
    attr_fn: Callable[[DataT], Mapping[str, Any]] | None = None
    # False: the figure is unknown to the source that answered (the entity is unavailable).
    available_fn: Callable[[DataT], bool] | None = None
    # Set for entities only some answers offer (a revision, a figure the server gives):
    # created once it says True, never twice.
    exists_fn: Callable[[DataT | None], bool] | None = None


class HaIngestorEntity[DataT](CoordinatorEntity[DataUpdateCoordinator[Any]]):
    """An entity of one coordinator's data, on the main device or a service's device."""

    _attr_has_entity_name = True
    entity_description: HaIngestorEntityDescription[DataT]

    def __init__(  # noqa: PLR0913
        self,
        coordinator: DataUpdateCoordinator[Any],
        description: HaIngestorEntityDescription[DataT],
        *,
        unique_id: str,
        device_info: DeviceInfo,
        read: Callable[[], DataT | None] | None = None,
        follows: DataUpdateCoordinator[Any] | None = None,
    ) -> None:
        """Bind the description to a coordinator.

        `read` picks the entity's data out of the coordinator's (default: all of it);
        `follows` is another coordinator whose failure makes this entity unavailable too.
        """
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = unique_id
        self._attr_device_info = device_info
        self._read = read
        self._follows = follows

    @classmethod
    def of_main_device(
        cls,
        entry: HaIngestorConfigEntry,
        coordinator: DataUpdateCoordinator[Any],
        description: HaIngestorEntityDescription[DataT],
        *,
        follow_statistics: bool = False,
    ) -> Self:
        """An entity of the main "HA Ingestor" device.

        With `follow_statistics`, the entity is also unavailable while no source answers the
        statistics refresh (the storage figures: as every entity of the entry).
        """
        statistics = entry.runtime_data.coordinator
        return cls(
            coordinator,
            description,
            unique_id=f"{entry_key(entry)}_{description.key}",
            device_info=main_device_info(entry, statistics.data),
            follows=statistics if follow_statistics else None,
        )

    @classmethod
    def of_service(
        cls,
        entry: HaIngestorConfigEntry,
        description: HaIngestorEntityDescription[DataT],
        state: ServiceState,
    ) -> Self:
        """An entity of one monitored service's device, unavailable once the service is gone."""
        statistics = entry.runtime_data.coordinator
        name = state.name

        def read() -> DataT | None:
            return cast("DataT | None", statistics.data.service(name))

        return cls(
            statistics,
            description,
            unique_id=f"{entry_key(entry)}_{name}_{description.key}",
            device_info=service_device_info(entry, state),
            read=read,
        )

    @override
    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        if self._follows is not None:
            self.async_on_remove(self._follows.async_add_listener(self._handle_coordinator_update))

    @property
    def entity_data(self) -> DataT | None:
        """This entity's part of the latest refresh (None before the first, or once gone)."""
        if self._read is not None:
            return self._read()
        data: DataT | None = self.coordinator.data
        return data

    @property
    @override
    def available(self) -> bool:
        """Unavailable when a refresh it depends on failed, or its figure is not known."""
        if not super().available:
            return False
        if self._follows is not None and not self._follows.last_update_success:
            return False
        if (data := self.entity_data) is None:
            return self._read is None  # before the first refresh of a coordinator: unknown
        available_fn = self.entity_description.available_fn
        return available_fn is None or available_fn(data)

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        """The description's attributes of the latest data, if it has any."""
        if (attr_fn := self.entity_description.attr_fn) is None:
            return None
        if (data := self.entity_data) is None:
            return None
        return attr_fn(data)


# --- What descriptions share ----------------------------------------------------------------


def offered_by_r3(snapshot: Snapshot | None) -> bool:
    """Figures only HomeIQ 2.0 (R3) reports: queue, entity filter, AlertManager alerts."""
    return snapshot is not None and snapshot.revision is Revision.R3


def influxdb_answered(snapshot: Snapshot) -> bool:
    """Figures that only InfluxDB has are unavailable while running on the services fallback."""
    return snapshot.source is DataSource.INFLUXDB


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


# --- Adding a platform's entities -----------------------------------------------------------


@callback
def async_add_described[D: HaIngestorEntityDescription[Any]](
    entry: HaIngestorConfigEntry,
    coordinator: DataUpdateCoordinator[Any],
    async_add_entities: AddConfigEntryEntitiesCallback,
    descriptions: Iterable[D],
    entity: Callable[[D], HaIngestorEntity[Any]],
) -> None:
    """Add each description's entity now, or once its `exists_fn` says so.

    What an entity needs may be known only after set-up (the revision from the first refresh
    that reached the ingestor, a storage figure from the first answer that held it); an entity
    is never added twice, and one that existed keeps existing.
    """
    pending = list(descriptions)

    @callback
    def add_existing() -> None:
        ready = [d for d in pending if d.exists_fn is None or d.exists_fn(coordinator.data)]
        if ready:
            pending[:] = [d for d in pending if d not in ready]
            async_add_entities(entity(d) for d in ready)

    add_existing()
    if pending:
        entry.async_on_unload(coordinator.async_add_listener(add_existing))


class ServiceTracker:
    """Which services a platform has already created entities for."""

    def __init__(self) -> None:
        """Start with none."""
        self._known: set[str] = set()

    def new_services(self, snapshot: Snapshot) -> list[ServiceState]:
        """Services that need entities now; forgets the gone ones so they can come back."""
        if (existing := known_services(snapshot)) is not None:
            self._known &= existing
        new = [s for s in snapshot.services if s.name not in self._known]
        self._known.update(s.name for s in new)
        return new


@callback
def async_add_service_entities(
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    service_entities: Callable[[ServiceState], Iterable[HaIngestorEntity[Any]]],
) -> None:
    """Add a platform's per-service entities for every service now and later."""
    coordinator = entry.runtime_data.coordinator
    tracker = ServiceTracker()

    @callback
    def add_service_entities() -> None:
        if new := tracker.new_services(coordinator.data):
            async_add_entities(entity for state in new for entity in service_entities(state))

    add_service_entities()
    entry.async_on_unload(coordinator.async_add_listener(add_service_entities))


@callback
def async_add_platform_entities(  # noqa: PLR0913
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entity_class: type[HaIngestorEntity[Any]],
    *,
    statistics: Iterable[HaIngestorEntityDescription[Snapshot]],
    services: Iterable[HaIngestorEntityDescription[ServiceState]],
    storage: Iterable[HaIngestorEntityDescription[StorageState]],
    delivery: Iterable[HaIngestorEntityDescription[DeliveryData]],
) -> None:
    """Add one platform's entities of every coordinator the entry runs.

    The storage figures also follow the statistics refresh; the delivery check stands alone.
    """
    runtime = entry.runtime_data

    def on_main_device(
        coordinator: DataUpdateCoordinator[Any], *, follow_statistics: bool = False
    ) -> Callable[[HaIngestorEntityDescription[Any]], HaIngestorEntity[Any]]:
        return lambda description: entity_class.of_main_device(
            entry, coordinator, description, follow_statistics=follow_statistics
        )

    async_add_described(
        entry,
        runtime.coordinator,
        async_add_entities,
        statistics,
        on_main_device(runtime.coordinator),
    )
    services = tuple(services)
    async_add_service_entities(
        entry,
        async_add_entities,
        lambda state: [entity_class.of_service(entry, d, state) for d in services],
    )
    if runtime.storage is not None:
        async_add_described(
            entry,
            runtime.storage,
            async_add_entities,
            storage,
            on_main_device(runtime.storage, follow_statistics=True),
        )
    if runtime.delivery is not None:
        async_add_described(
            entry, runtime.delivery, async_add_entities, delivery, on_main_device(runtime.delivery)
        )
