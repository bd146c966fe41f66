"""Sensors of every coordinator: statistics, a status per service, storage figures, delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.components.sensor import (
    DOMAIN as SENSOR_DOMAIN,
)
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.helpers import entity_registry as er

from .api.core.funnel import FUNNEL_STAGES
from .api.core.models import DataSource, ServiceState, ServiceStatus, Snapshot
from .const import DOMAIN
from .coordinators.delivery import DeliveryData
from .coordinators.storage import (
    FIGURE_OLDEST_POINT,
    FIGURE_RETENTION,
    FIGURE_SERIES,
    FIGURE_SIZE,
    StorageState,
    figure_answered,
)
from .devices import entry_key
from .entity import (
    HaIngestorEntity,
    HaIngestorEntityDescription,
    async_add_platform_entities,
    enum_value,
    influxdb_answered,
    offered_by_r3,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
    from homeassistant.helpers.typing import StateType

    from .api.core.models import Alert, FiringAlert
    from .runtime import HaIngestorConfigEntry

PARALLEL_UPDATES = 0

EVENTS_PER_MINUTE: Final = "events/min"

# Lists that grow with the data: worth seeing now, not worth a row in every recorder state.
ATTR_EVENTS_BY_DOMAIN: Final = "events_by_domain"
ATTR_TREND: Final = "trend"
ATTR_ALERTS: Final = "alerts"
# Changes with every event stored: a state of its own would write the logbook on every refresh
# (it keeps only sensors with a unit or state class out), so it rides on `ingestion_lag`.
ATTR_LAST_EVENT: Final = "last_event"
# Names the delivery check's worst entities (up to ten): seen now, not recorded.
ATTR_TOP_LOST: Final = "entities_lost_most"
# Sensors of earlier versions that changed on every refresh: a timestamp sensor writes a
# logbook entry each time. Their registry entries are removed.
REMOVED_SENSOR_KEYS: Final = ("last_event", "last_successful_update")


@dataclass(frozen=True, kw_only=True)
class HaIngestorSensorEntityDescription[DataT](
    HaIngestorEntityDescription[DataT], SensorEntityDescription
):
    """A sensor of any coordinator's data."""

    value_fn: Callable[[DataT], StateType | datetime]


# One description type, specialised per coordinator's data (a sensor of each).
StatisticsSensor = HaIngestorSensorEntityDescription[Snapshot]
ServiceSensor = HaIngestorSensorEntityDescription[ServiceState]
StorageSensor = HaIngestorSensorEntityDescription[StorageState]
DeliverySensor = HaIngestorSensorEntityDescription[DeliveryData]


def _ingestion_lag(snapshot: Snapshot) -> float | None:
    """Seconds between the newest stored event and the refresh that saw it."""
    if (last := snapshot.events.last_event) is None:
        return None
    # A writer whose clock runs ahead must not produce a negative lag.
    return max((snapshot.fetched_at - last) / timedelta(seconds=1), 0.0)


def _lag_attributes(snapshot: Snapshot) -> dict[str, Any]:
    last = snapshot.events.last_event
    return {ATTR_LAST_EVENT: None if last is None else last.isoformat()}


def _event_attributes(snapshot: Snapshot) -> dict[str, Any]:
    events = snapshot.events
    return {
        "period": snapshot.period.value,
        ATTR_EVENTS_BY_DOMAIN: dict(events.events_by_domain),
        ATTR_TREND: [{"time": p.time.isoformat(), "count": p.count} for p in events.trend],
        "trend_direction": enum_value(events.trend_direction),
    }


def _alert_summary(alert: Alert) -> dict[str, Any]:
    return {
        "key": alert.key.value,
        "severity": enum_value(alert.severity),
        "message": alert.message,
    }


def _firing_alert(alert: FiringAlert) -> dict[str, Any]:
    return {
        "name": alert.name,
        "severity": alert.severity,
        "service": alert.service,
        "summary": alert.summary,
        "starts_at": alert.starts_at.isoformat() if alert.starts_at is not None else None,
    }


def _firing_count(snapshot: Snapshot) -> int | None:
    alerts = snapshot.firing_alerts
    return None if alerts is None else len(alerts)


SENSORS: Final[tuple[StatisticsSensor, ...]] = (
    StatisticsSensor(
        key="events_per_minute",
        translation_key="events_per_minute",
        native_unit_of_measurement=EVENTS_PER_MINUTE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.events.events_per_minute,
        attr_fn=lambda s: {"trend_direction": enum_value(s.events.trend_direction)},
    ),
    StatisticsSensor(
        key="events_in_period",
        translation_key="events_in_period",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.events.events_in_period,
        attr_fn=_event_attributes,
        available_fn=influxdb_answered,
    ),
    StatisticsSensor(
        key="ingestion_lag",
        translation_key="ingestion_lag",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=_ingestion_lag,
        attr_fn=_lag_attributes,
    ),
    StatisticsSensor(
        key="active_entities",
        translation_key="active_entities",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.events.active_entities,
        available_fn=influxdb_answered,
    ),
    StatisticsSensor(
        key="error_rate",
        translation_key="error_rate",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda s: s.metrics.error_rate,
    ),
    StatisticsSensor(
        key="success_rate",
        translation_key="success_rate",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda s: s.metrics.success_rate,
    ),
    StatisticsSensor(
        key="processing_time",
        translation_key="processing_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda s: s.metrics.processing_time_ms,
    ),
    StatisticsSensor(
        key="active_alerts",
        translation_key="active_alerts",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: len(s.active_alerts),
        attr_fn=lambda s: {ATTR_ALERTS: [_alert_summary(a) for a in s.active_alerts]},
    ),
    StatisticsSensor(
        key="data_source",
        translation_key="data_source",
        device_class=SensorDeviceClass.ENUM,
        options=[source.value for source in DataSource],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.source.value,
    ),
    StatisticsSensor(
        key="query_duration",
        translation_key="query_duration",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda s: s.query_duration_ms,
    ),
    # HomeIQ 2.0 (R3) only.
    StatisticsSensor(
        key="ingestion_queue_fill",
        translation_key="ingestion_queue_fill",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.ingestion.queue_fill_percent,
        attr_fn=lambda s: {
            "queue_size": s.ingestion.queue_size,
            "queue_maxsize": s.ingestion.queue_maxsize,
        },
        exists_fn=offered_by_r3,
    ),
    StatisticsSensor(
        key="events_filtered",
        translation_key="events_filtered",
        # A counter since the ingestor started: a restart starts it again at 0.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda s: s.ingestion.filtered_events,
        attr_fn=lambda s: {"filter_enabled": s.ingestion.filter_enabled},
        exists_fn=offered_by_r3,
    ),
    StatisticsSensor(
        key="events_filtered_rate",
        translation_key="events_filtered_rate",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda s: s.ingestion.filtered_percent,
        exists_fn=offered_by_r3,
    ),
    StatisticsSensor(
        key="alertmanager_alerts_firing",
        translation_key="alertmanager_alerts_firing",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_firing_count,
        attr_fn=lambda s: {ATTR_ALERTS: [_firing_alert(a) for a in s.firing_alerts or ()]},
        exists_fn=offered_by_r3,
    ),
)

SERVICE_SENSORS: Final[tuple[ServiceSensor, ...]] = (
    ServiceSensor(
        key="status",
        translation_key="service_status",
        device_class=SensorDeviceClass.ENUM,
        # A status not known is Home Assistant's own unknown state, not an option of ours.
        options=[status.value for status in ServiceStatus if status is not ServiceStatus.UNKNOWN],
        value_fn=lambda s: None if s.status is ServiceStatus.UNKNOWN else s.status.value,
    ),
)

# --- Storage figures (their own coordinator, every 15 minutes) -------------------------------

BYTES_PER_MB: Final = 1_000_000
MEGABYTES_PER_DAY: Final = "MB/d"


def _size_growth(state: StorageState) -> float | None:
    rate = state.growth.size_bytes_per_day
    return None if rate is None else rate / BYTES_PER_MB


def _retention_days(state: StorageState) -> float | None:
    retention = state.figures.retention
    return None if retention is None else retention / timedelta(days=1)


def _series_attributes(state: StorageState) -> dict[str, Any]:
    top = state.figures.top_measurement
    return {
        "top_measurement": None if top is None else top[0],
        "top_measurement_series": None if top is None else top[1],
        "growth_per_day": state.growth.series_per_day,
        "growth_percent_per_day": state.growth.series_percent_per_day,
    }


STORAGE_SENSORS: Final[tuple[StorageSensor, ...]] = (
    StorageSensor(
        key="storage_size",
        translation_key="storage_size",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        exists_fn=figure_answered(FIGURE_SIZE),
        value_fn=lambda s: s.figures.size_bytes,
    ),
    StorageSensor(
        key="storage_growth",
        translation_key="storage_growth",
        native_unit_of_measurement=MEGABYTES_PER_DAY,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        exists_fn=figure_answered(FIGURE_SIZE),
        value_fn=_size_growth,
        attr_fn=lambda s: {"percent_per_day": s.growth.size_percent_per_day},
    ),
    StorageSensor(
        key="series_cardinality",
        translation_key="series_cardinality",
        state_class=SensorStateClass.MEASUREMENT,
        exists_fn=figure_answered(FIGURE_SERIES),
        value_fn=lambda s: s.figures.series,
        attr_fn=_series_attributes,
    ),
    StorageSensor(
        key="retention",
        translation_key="retention",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.DAYS,
        suggested_display_precision=0,
        entity_category=EntityCategory.DIAGNOSTIC,
        exists_fn=figure_answered(FIGURE_RETENTION),
        value_fn=_retention_days,
        # A duration sensor cannot say "for ever": its state is then unknown, and this says why.
        attr_fn=lambda s: {
            "infinite": s.figures.retention_infinite if s.figures.retention_known else None
        },
    ),
    StorageSensor(
        key="oldest_point",
        translation_key="oldest_point",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        exists_fn=figure_answered(FIGURE_OLDEST_POINT),
        value_fn=lambda s: s.figures.oldest_point,
    ),
)


# --- The delivery check (its own coordinator, counting on the bus) ---------------------------


def _top_lost(data: DeliveryData) -> list[dict[str, Any]]:
    return [{"entity_id": e, "lost": n} for e, n in data.report.top_lost]


def _span(data: DeliveryData) -> dict[str, Any]:
    report = data.report
    return {
        "since": report.since.isoformat() if report.since else None,
        "until": report.until.isoformat() if report.until else None,
        "events_fired": report.fired,
        "events_stored": report.stored,
        # More stored than fired (another writer, duplicates): reported, never negative loss.
        "events_extra": report.extra,
        # Dropped on purpose by the ingestor's filter, not counted lost (None: unknown, it
        # restarted; loss is unknown then).
        "events_filtered": report.filtered,
    }


def _funnel(data: DeliveryData) -> dict[str, Any]:
    """Where the period's lost events went (None: that stage has no counter, or restarted).

    Nothing is claimed while not the source. They change with each compared span, so with
    every refresh while events are lost: seen now, not recorded.
    """
    if data.report.not_source:
        return dict.fromkeys(FUNNEL_STAGES)
    return {name: data.funnel.get(name) for name in FUNNEL_STAGES}


def _known(data: DeliveryData, value: float | None) -> float | None:
    """Nothing is claimed while not the source, or while the filter's share is unknown."""
    report = data.report
    return None if report.not_source or report.fired == 0 or report.filtered is None else value


DELIVERY_SENSORS: Final[tuple[DeliverySensor, ...]] = (
    DeliverySensor(
        key="delivery_completeness",
        translation_key="delivery_completeness",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda d: d.report.completeness,
        attr_fn=_span,
    ),
    DeliverySensor(
        key="events_lost",
        translation_key="events_lost",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: _known(d, d.report.lost),
        attr_fn=lambda d: {**_span(d), **_funnel(d), ATTR_TOP_LOST: _top_lost(d)},
    ),
    DeliverySensor(
        key="delivery_latency",
        translation_key="delivery_latency",
        native_unit_of_measurement=UnitOfTime.SECONDS,
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda d: d.latency,
        attr_fn=lambda d: {"p95": d.latency_p95, "samples": d.samples, "late": d.late},
    ),
)


class HaIngestorSensor(HaIngestorEntity[Any], SensorEntity):
    """A sensor of any coordinator's data: its description says what it reads."""

    entity_description: HaIngestorSensorEntityDescription[Any]
    _unrecorded_attributes = frozenset(
        {ATTR_EVENTS_BY_DOMAIN, ATTR_TREND, ATTR_ALERTS, ATTR_LAST_EVENT, ATTR_TOP_LOST}
        | set(FUNNEL_STAGES)
    )

    @property
    @override
    def native_value(self) -> StateType | datetime:
        """The description's value of the latest data."""
        if (data := self.entity_data) is None:
            return None
        return self.entity_description.value_fn(data)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HaIngestorConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every coordinator, and a status sensor per service now and later."""
    registry = er.async_get(hass)
    for key in REMOVED_SENSOR_KEYS:
        unique_id = f"{entry_key(entry)}_{key}"
        if entity_id := registry.async_get_entity_id(SENSOR_DOMAIN, DOMAIN, unique_id):
            registry.async_remove(entity_id)
    async_add_platform_entities(
        entry,
        async_add_entities,
        HaIngestorSensor,
        statistics=SENSORS,
        services=SERVICE_SENSORS,
        storage=STORAGE_SENSORS,
        delivery=DELIVERY_SENSORS,
    )
