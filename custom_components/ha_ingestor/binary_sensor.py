"""Binary sensors: alert rules and connectivity of the main device, connectivity per service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined]
    # Defined in binary_sensor.const since 2026.x and only re-exported implicitly there.
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory

from .api.core.models import BACKPRESSURE_PERCENT, AlertKey
from .delivery import delivery_entities
from .devices import async_add_platform_entities
from .entity import (
    HaIngestorEntity,
    HaIngestorEntityDescription,
    HaIngestorServiceEntity,
    alert_attributes,
    async_add_when_offered,
    offered_by_r3,
)
from .storage_coordinator import FIGURE_SERIES, FIGURE_SIZE
from .storage_entity import (
    HaIngestorStorageEntity,
    HaIngestorStorageEntityDescription,
    async_add_storage_entities,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .api.core.models import ServiceState, Snapshot
    from .coordinator import HaIngestorConfigEntry
    from .storage_coordinator import StorageState

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HaIngestorBinarySensorEntityDescription(
    HaIngestorEntityDescription, BinarySensorEntityDescription
):
    """A binary sensor of the main device, read from the snapshot."""

    is_on_fn: Callable[[Snapshot], bool | None]


@dataclass(frozen=True, kw_only=True)
class HaIngestorServiceBinarySensorEntityDescription(BinarySensorEntityDescription):
    """A binary sensor of a service device, read from that service's state."""

    is_on_fn: Callable[[ServiceState], bool | None]


def _alert_is_on(key: AlertKey) -> Callable[[Snapshot], bool | None]:
    """On while the rule fires; off when it does not or its input is unknown."""

    def is_on(snapshot: Snapshot) -> bool | None:
        alert = snapshot.alert(key)
        return None if alert is None else alert.active

    return is_on


def _alert_attributes(key: AlertKey) -> Callable[[Snapshot], Mapping[str, Any]]:
    def attributes(snapshot: Snapshot) -> Mapping[str, Any]:
        if (alert := snapshot.alert(key)) is None:
            return {}
        return alert_attributes(alert)

    return attributes


def _alert(key: AlertKey) -> HaIngestorBinarySensorEntityDescription:
    return HaIngestorBinarySensorEntityDescription(
        key=f"alert_{key.value}",
        translation_key=f"alert_{key.value}",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=_alert_is_on(key),
        attr_fn=_alert_attributes(key),
    )


BINARY_SENSORS: Final[tuple[HaIngestorBinarySensorEntityDescription, ...]] = (
    *(_alert(key) for key in AlertKey),
    HaIngestorBinarySensorEntityDescription(
        key="influxdb_connected",
        translation_key="influxdb_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda s: s.influxdb_connected,
        attr_fn=lambda s: {"version": s.influxdb_version},
    ),
    HaIngestorBinarySensorEntityDescription(
        key="admin_api_connected",
        translation_key="admin_api_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda s: s.admin_api_connected,
    ),
    # HomeIQ 2.0 (R3) only: its event queue close to full, so events are about to be dropped.
    HaIngestorBinarySensorEntityDescription(
        key="alert_ingestion_backpressure",
        translation_key="alert_ingestion_backpressure",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=lambda s: s.ingestion.backpressure,
        attr_fn=lambda s: {
            "value": s.ingestion.queue_fill_percent,
            "warning_threshold": BACKPRESSURE_PERCENT,
        },
        exists_fn=offered_by_r3,
    ),
)

SERVICE_BINARY_SENSORS: Final[tuple[HaIngestorServiceBinarySensorEntityDescription, ...]] = (
    # No translation key: Home Assistant names it after its device class, in every language.
    HaIngestorServiceBinarySensorEntityDescription(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda s: s.reachable,
    ),
)


# --- Storage growth (its own coordinator, every 15 minutes) ----------------------------------


@dataclass(frozen=True, kw_only=True)
class HaIngestorStorageBinarySensorEntityDescription(
    HaIngestorStorageEntityDescription, BinarySensorEntityDescription
):
    """A binary sensor of the storage figures."""


def _storage_alert_attributes(state: StorageState) -> Mapping[str, Any]:
    budget = state.thresholds.budget_bytes
    return {
        "reasons": list(state.alert.reasons),
        "size_growth_percent_per_day": state.growth.size_percent_per_day,
        "series_growth_percent_per_day": state.growth.series_percent_per_day,
        "growth_threshold_percent_per_day": state.thresholds.growth_percent_per_day,
        "budget_bytes": budget,
        "budget_days": state.thresholds.budget_days if budget is not None else None,
        "days_until_budget": state.alert.days_until_budget,
    }


STORAGE_BINARY_SENSORS: Final[tuple[HaIngestorStorageBinarySensorEntityDescription, ...]] = (
    HaIngestorStorageBinarySensorEntityDescription(
        key="alert_storage_growth",
        translation_key="alert_storage_growth",
        device_class=BinarySensorDeviceClass.PROBLEM,
        figures=frozenset({FIGURE_SIZE, FIGURE_SERIES}),
        attr_fn=_storage_alert_attributes,
    ),
)


class HaIngestorStorageBinarySensor(HaIngestorStorageEntity, BinarySensorEntity):
    """On while the event store grows too fast or nears its size budget."""

    entity_description: HaIngestorStorageBinarySensorEntityDescription

    @property
    @override
    def is_on(self) -> bool | None:
        """Unknown until enough history or a size against a budget is known."""
        return None if (state := self.state_data) is None else state.alert.active


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001  (the signature Home Assistant calls)
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the alert and connectivity sensors, and one per service now and later."""
    async_add_entities(delivery_entities(entry, "binary_sensor"))
    async_add_platform_entities(
        entry,
        async_add_entities,
        (HaIngestorBinarySensor(entry, d) for d in BINARY_SENSORS if d.exists_fn is None),
        lambda state: (
            HaIngestorServiceBinarySensor(entry, description, state)
            for description in SERVICE_BINARY_SENSORS
        ),
    )
    async_add_storage_entities(
        entry, async_add_entities, STORAGE_BINARY_SENSORS, HaIngestorStorageBinarySensor
    )
    async_add_when_offered(
        entry, async_add_entities, BINARY_SENSORS, lambda d: HaIngestorBinarySensor(entry, d)
    )


class HaIngestorBinarySensor(HaIngestorEntity, BinarySensorEntity):
    """An alert or connectivity state of the ingestor."""

    entity_description: HaIngestorBinarySensorEntityDescription

    @property
    @override
    def is_on(self) -> bool | None:
        """The state from the latest snapshot."""
        return self.entity_description.is_on_fn(self.coordinator.data)


class HaIngestorServiceBinarySensor(HaIngestorServiceEntity, BinarySensorEntity):
    """A state of one monitored service."""

    entity_description: HaIngestorServiceBinarySensorEntityDescription

    @property
    @override
    def is_on(self) -> bool | None:
        """The state, while the service is listed."""
        if (state := self.service_state) is None:
            return None
        return self.entity_description.is_on_fn(state)
