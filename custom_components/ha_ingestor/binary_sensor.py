"""Binary sensors of every coordinator: alerts, connectivity (main and per service), storage."""

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

from .api.core.models import BACKPRESSURE_PERCENT, AlertKey, ServiceState, Snapshot
from .coordinators.delivery import DeliveryData
from .coordinators.storage import FIGURE_SERIES, FIGURE_SIZE, StorageState, figure_answered
from .entity import (
    HaIngestorEntity,
    HaIngestorEntityDescription,
    alert_attributes,
    async_add_platform_entities,
    offered_by_r3,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

    from .runtime import HaIngestorConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HaIngestorBinarySensorEntityDescription[DataT](
    HaIngestorEntityDescription[DataT], BinarySensorEntityDescription
):
    """A binary sensor of any coordinator's data: `value_fn` is its on/off (None: unknown)."""

    value_fn: Callable[[DataT], bool | None]


# One description type, specialised per coordinator's data (a binary sensor of each).
StatisticsBinarySensor = HaIngestorBinarySensorEntityDescription[Snapshot]
ServiceBinarySensor = HaIngestorBinarySensorEntityDescription[ServiceState]
StorageBinarySensor = HaIngestorBinarySensorEntityDescription[StorageState]
DeliveryBinarySensor = HaIngestorBinarySensorEntityDescription[DeliveryData]


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


def _alert(key: AlertKey) -> StatisticsBinarySensor:
    return StatisticsBinarySensor(
        key=f"alert_{key.value}",
        translation_key=f"alert_{key.value}",
        device_class=BinarySensorDeviceClass.PROBLEM,
        value_fn=_alert_is_on(key),
        attr_fn=_alert_attributes(key),
    )


BINARY_SENSORS: Final[tuple[StatisticsBinarySensor, ...]] = (
    *(_alert(key) for key in AlertKey),
    StatisticsBinarySensor(
        key="influxdb_connected",
        translation_key="influxdb_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.influxdb_connected,
        attr_fn=lambda s: {"version": s.influxdb_version},
    ),
    StatisticsBinarySensor(
        key="admin_api_connected",
        translation_key="admin_api_connected",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.admin_api_connected,
    ),
    # HomeIQ 2.0 (R3) only: its event queue close to full, so events are about to be dropped.
    StatisticsBinarySensor(
        key="alert_ingestion_backpressure",
        translation_key="alert_ingestion_backpressure",
        device_class=BinarySensorDeviceClass.PROBLEM,
        value_fn=lambda s: s.ingestion.backpressure,
        attr_fn=lambda s: {
            "value": s.ingestion.queue_fill_percent,
            "warning_threshold": BACKPRESSURE_PERCENT,
        },
        exists_fn=offered_by_r3,
    ),
)

SERVICE_BINARY_SENSORS: Final[tuple[ServiceBinarySensor, ...]] = (
    # No translation key: Home Assistant names it after its device class, in every language.
    ServiceBinarySensor(
        key="connectivity",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.reachable,
    ),
)


# --- Storage growth (its own coordinator, every 15 minutes) ----------------------------------


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


STORAGE_BINARY_SENSORS: Final[tuple[StorageBinarySensor, ...]] = (
    StorageBinarySensor(
        key="alert_storage_growth",
        translation_key="alert_storage_growth",
        device_class=BinarySensorDeviceClass.PROBLEM,
        # Unknown until enough history or a size against a budget is known.
        value_fn=lambda s: s.alert.active,
        attr_fn=_storage_alert_attributes,
        exists_fn=figure_answered(FIGURE_SIZE, FIGURE_SERIES),
    ),
)


# --- The delivery check (its own coordinator, counting on the bus) ---------------------------

DELIVERY_BINARY_SENSORS: Final[tuple[DeliveryBinarySensor, ...]] = (
    # On while completeness is below a threshold; off with severity unknown while unknown.
    DeliveryBinarySensor(
        key="alert_events_lost",
        translation_key="alert_events_lost",
        device_class=BinarySensorDeviceClass.PROBLEM,
        value_fn=lambda d: d.alert.active,
        attr_fn=lambda d: alert_attributes(d.alert),
    ),
)


class HaIngestorBinarySensor(HaIngestorEntity[Any], BinarySensorEntity):
    """A binary sensor of any coordinator's data: its description says what it reads."""

    entity_description: HaIngestorBinarySensorEntityDescription[Any]

    @property
    @override
    def is_on(self) -> bool | None:
        """The description's state of the latest data."""
        if (data := self.entity_data) is None:
            return None
        return self.entity_description.value_fn(data)


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001  (the signature Home Assistant calls)
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the alert and connectivity sensors of every coordinator, and one per service."""
    async_add_platform_entities(
        entry,
        async_add_entities,
        HaIngestorBinarySensor,
        statistics=BINARY_SENSORS,
        services=SERVICE_BINARY_SENSORS,
        storage=STORAGE_BINARY_SENSORS,
        delivery=DELIVERY_BINARY_SENSORS,
    )
