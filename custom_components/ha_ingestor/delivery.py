"""The delivery check in Home Assistant: count `state_changed` on the bus, compare with InfluxDB.

Counting starts when the entry loads (nothing is claimed for before) and goes on while
InfluxDB does not answer; the comparison of settled windows resumes when it does. The
arithmetic is in `api/delivery.py`; see docs/ingestor-contracts.md#delivery-check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, override

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined]
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    CONF_URL,
    EVENT_STATE_CHANGED,
    PERCENTAGE,
    UnitOfTime,
)
from homeassistant.core import callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import (
    CoordinatorEntity,
    DataUpdateCoordinator,
    UpdateFailed,
)

from .api.core.delivery import (
    DEFAULT_ERROR_BELOW,
    DEFAULT_WARNING_BELOW,
    POLL_SECONDS,
    SETTLE_SECONDS,
    DeliveryAlert,
    DeliveryCounter,
    DeliveryReport,
    LatencySampler,
    delivery_alert,
)
from .api.core.errors import IngestorError
from .api.core.models import Period, SourceMode
from .api.influx.delivery import (
    async_samples_found,
    async_stored_counts,
)
from .clients import create_influx_backend
from .const import (
    CONF_BUCKET,
    CONF_DELIVERY_CHECK,
    CONF_DELIVERY_ERROR,
    CONF_DELIVERY_WARNING,
    CONF_PERIOD,
    CONF_SOURCE_MODE,
    DEFAULT_BUCKET,
    DOMAIN,
    ISSUE_DELIVERY_NOT_SOURCE,
    LOGGER,
)
from .coordinator import options_with_defaults, set_entry_issue, update_interval_of
from .devices import entry_key, main_device_info
from .entity import alert_attributes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from datetime import datetime

    from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant
    from homeassistant.helpers.entity import Entity
    from homeassistant.helpers.typing import StateType

    from .api.influx.backend import InfluxBackend
    from .coordinator import HaIngestorConfigEntry

ATTR_TOP_LOST: Final = "entities_lost_most"


@dataclass(frozen=True, slots=True)
class DeliveryData:
    """One refresh of the delivery check."""

    report: DeliveryReport
    alert: DeliveryAlert
    latency: float | None = None
    latency_p95: float | None = None
    samples: int = 0
    late: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def delivery_enabled(entry: HaIngestorConfigEntry) -> bool:
    """The check is opted into and InfluxDB is configured and asked."""
    options = options_with_defaults(entry.options)
    return (
        bool(options[CONF_DELIVERY_CHECK])
        and bool(entry.data.get(CONF_URL))
        and options[CONF_SOURCE_MODE] != SourceMode.SERVICES.value
    )


class DeliveryCoordinator(DataUpdateCoordinator[DeliveryData]):
    """Compares newly settled windows once per interval; counts on the bus all the time."""

    config_entry: HaIngestorConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HaIngestorConfigEntry,
        backend: InfluxBackend | None = None,
    ) -> None:
        """Start counting now: nothing fired before is ever claimed."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN}_delivery",
            update_interval=update_interval_of(entry.options),
        )
        options = options_with_defaults(entry.options)
        period = Period(options[CONF_PERIOD]).duration
        self.backend = backend or create_influx_backend(hass, entry.data)
        self.bucket_name = str(entry.data.get(CONF_BUCKET, DEFAULT_BUCKET))
        self.warning = float(options[CONF_DELIVERY_WARNING])
        self.error = float(options[CONF_DELIVERY_ERROR])
        self.counter = DeliveryCounter(time.time(), period, SETTLE_SECONDS)
        self.sampler = LatencySampler(int(period.total_seconds()), next_sample=self.counter.origin)
        self._count = self.counter.count
        self._offer = self.sampler.offer

    @callback
    def _on_state_changed(self, event: Event[EventStateChangedData]) -> None:
        """O(1) and never blocking: two dictionary updates at most."""
        data = event.data
        if data["new_state"] is None:
            return  # a removal: the ingestor drops it on purpose
        fired = event.time_fired_timestamp
        self._count(data["entity_id"], fired)
        self._offer(data["entity_id"], fired, event.context.id)

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Listen on the bus and poll sampled events; the returned callback stops both."""
        stop_listening = self.hass.bus.async_listen(EVENT_STATE_CHANGED, self._on_state_changed)
        stop_polling = async_track_time_interval(
            self.hass,
            self._async_poll_samples,
            timedelta(seconds=POLL_SECONDS),
            name=f"{DOMAIN} delivery latency",
            cancel_on_shutdown=True,
        )

        @callback
        def stop() -> None:
            stop_listening()
            stop_polling()

        return stop

    async def _async_poll_samples(self, _now: datetime) -> None:
        """One tiny lookup request for the waiting samples, none while none waits."""
        waiting = [sample for sample, _fired in self.sampler.waiting]
        if not waiting:
            return
        try:
            found = await async_samples_found(self.backend, waiting)
        except IngestorError as err:
            LOGGER.debug("Delivery latency lookup failed: %s", err)
            found = []
        self.sampler.resolve(found, time.time())

    @override
    async def _async_update_data(self) -> DeliveryData:
        now = time.time()
        self.counter.compact(now)
        window = self.counter.settled_window(now)
        if window is not None:
            try:
                stored = await async_stored_counts(
                    self.backend, self.bucket_name, window, self.counter.bucket
                )
            except IngestorError as err:
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="influxdb_failed",
                    translation_placeholders={"error": str(err)},
                ) from err
            self.counter.settle(window, stored)
        snapshot = self.config_entry.runtime_data.coordinator.data
        if snapshot is not None:
            self.counter.observe_filter(
                snapshot.fetched_at.timestamp(), snapshot.ingestion.filtered_events
            )
        report = self.counter.report(now)
        self._set_not_source_issue(active=report.not_source)
        latency, p95, samples, late = self.sampler.figures()
        return DeliveryData(
            report=report,
            alert=delivery_alert(report.completeness, self.warning, self.error),
            latency=latency,
            latency_p95=p95,
            samples=samples,
            late=late,
        )

    def _set_not_source_issue(self, *, active: bool) -> None:
        set_entry_issue(
            self.hass,
            self.config_entry,
            ISSUE_DELIVERY_NOT_SOURCE,
            active=active,
            placeholders={"title": self.config_entry.title, "bucket": self.bucket_name},
            severity=ir.IssueSeverity.WARNING,
        )

    def async_delete_issues(self) -> None:
        """Remove the check's repair issue (on unload)."""
        self._set_not_source_issue(active=False)


async def async_setup_delivery(
    hass: HomeAssistant, entry: HaIngestorConfigEntry
) -> DeliveryCoordinator | None:
    """Start the check for an entry that asks for it; its first comparison is not awaited."""
    if not delivery_enabled(entry):
        return None
    delivery = DeliveryCoordinator(hass, entry)
    entry.async_on_unload(delivery.async_start())
    entry.async_on_unload(delivery.async_delete_issues)
    await delivery.async_refresh()
    return delivery


# --------------------------------------------------------------------------------------
# Entities
# --------------------------------------------------------------------------------------


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
        # Dropped on purpose by the ingestor's filter (None: unknown); loss is unknown then.
        "events_filtered": report.filtered,
    }


def _known(data: DeliveryData, value: float | None) -> float | None:
    """Nothing is claimed while not the source, or while the ingestor's filter dropped events."""
    report = data.report
    return None if report.not_source or report.fired == 0 or report.filtered != 0 else value


@dataclass(frozen=True, kw_only=True)
class DeliverySensorEntityDescription(SensorEntityDescription):
    """A figure of the delivery check."""

    value_fn: Callable[[DeliveryData], StateType]
    attr_fn: Callable[[DeliveryData], Mapping[str, Any]]


DELIVERY_SENSORS: Final[tuple[DeliverySensorEntityDescription, ...]] = (
    DeliverySensorEntityDescription(
        key="delivery_completeness",
        translation_key="delivery_completeness",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        value_fn=lambda d: d.report.completeness,
        attr_fn=_span,
    ),
    DeliverySensorEntityDescription(
        key="events_lost",
        translation_key="events_lost",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda d: _known(d, d.report.lost),
        attr_fn=lambda d: {**_span(d), ATTR_TOP_LOST: _top_lost(d)},
    ),
    DeliverySensorEntityDescription(
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

ALERT_EVENTS_LOST: Final = BinarySensorEntityDescription(
    key="alert_events_lost",
    translation_key="alert_events_lost",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


class _DeliveryEntity(CoordinatorEntity[DeliveryCoordinator]):
    _attr_has_entity_name = True

    def __init__(self, entry: HaIngestorConfigEntry, key: str) -> None:
        delivery = entry.runtime_data.delivery
        assert delivery is not None  # noqa: S101  (only built when the check runs)
        super().__init__(delivery)
        self._attr_unique_id = f"{entry_key(entry)}_{key}"
        self._attr_device_info = main_device_info(entry, entry.runtime_data.coordinator.data)


class DeliverySensor(_DeliveryEntity, SensorEntity):
    """A figure of the delivery check."""

    entity_description: DeliverySensorEntityDescription
    _unrecorded_attributes = frozenset({ATTR_TOP_LOST})

    def __init__(
        self, entry: HaIngestorConfigEntry, description: DeliverySensorEntityDescription
    ) -> None:
        """Bind the figure to the entry's delivery check."""
        super().__init__(entry, description.key)
        self.entity_description = description

    @property
    @override
    def native_value(self) -> StateType:
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any]:
        return self.entity_description.attr_fn(self.coordinator.data)


class DeliveryAlertBinarySensor(_DeliveryEntity, BinarySensorEntity):
    """On while completeness is below a threshold; off with severity unknown while unknown."""

    entity_description = ALERT_EVENTS_LOST

    def __init__(self, entry: HaIngestorConfigEntry) -> None:
        """Bind the alert to the entry's delivery check."""
        super().__init__(entry, ALERT_EVENTS_LOST.key)

    @property
    @override
    def is_on(self) -> bool:
        return self.coordinator.data.alert.active

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any]:
        return alert_attributes(self.coordinator.data.alert)


def delivery_entities(entry: HaIngestorConfigEntry, platform: str) -> Iterable[Entity]:
    """The check's entities of one platform (none when the check does not run)."""
    if entry.runtime_data.delivery is None:
        return ()
    if platform == "sensor":
        return [DeliverySensor(entry, d) for d in DELIVERY_SENSORS]
    return [DeliveryAlertBinarySensor(entry)]


__all__ = [
    "DEFAULT_ERROR_BELOW",
    "DEFAULT_WARNING_BELOW",
    "DeliveryCoordinator",
    "async_setup_delivery",
    "delivery_entities",
]
