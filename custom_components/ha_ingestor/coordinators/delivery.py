"""The delivery coordinator: count `state_changed` on the bus, compare with InfluxDB.

Counting starts when the entry loads (nothing is claimed for before) and goes on while
InfluxDB does not answer; the comparison of settled windows resumes when it does. The
arithmetic is in `api/core/delivery.py`, the queries in `api/influx/delivery.py`; see
docs/ingestor-contracts.md#delivery-check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, override

from homeassistant.const import (
    EVENT_STATE_CHANGED,
)
from homeassistant.core import callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.update_coordinator import (
    DataUpdateCoordinator,
    UpdateFailed,
)

from ..api.core.delivery import (
    POLL_SECONDS,
    SETTLE_SECONDS,
    DeliveryAlert,
    DeliveryCounter,
    DeliveryReport,
    LatencySampler,
    delivery_alert,
)
from ..api.core.errors import IngestorError
from ..api.core.models import Period
from ..api.influx.delivery import (
    async_samples_found,
    async_stored_counts,
)
from ..clients import create_influx_backend
from ..const import (
    CONF_BUCKET,
    CONF_DELIVERY_ERROR,
    CONF_DELIVERY_WARNING,
    CONF_PERIOD,
    DEFAULT_BUCKET,
    DOMAIN,
    ISSUE_DELIVERY_NOT_SOURCE,
    LOGGER,
)
from ..issues import set_entry_issue
from ..options import delivery_enabled, options_with_defaults, update_interval_of

if TYPE_CHECKING:
    from datetime import datetime

    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant

    from ..api.core.models import Snapshot
    from ..api.influx.backend import InfluxBackend


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


class DeliveryCoordinator(DataUpdateCoordinator[DeliveryData]):
    """Compares newly settled windows once per interval; counts on the bus all the time."""

    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        statistics: DataUpdateCoordinator[Snapshot],
        backend: InfluxBackend | None = None,
    ) -> None:
        """Start counting now: nothing fired before is ever claimed.

        `statistics` is read for the ingestor's filter counter, never refreshed from here.
        """
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN}_delivery",
            update_interval=update_interval_of(entry.options),
        )
        options = options_with_defaults(entry.options)
        period = Period(options[CONF_PERIOD]).duration
        self.statistics = statistics
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
        snapshot = self.statistics.data
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
            # One click turns the check off (repairs.py).
            fixable=True,
        )

    def async_delete_issues(self) -> None:
        """Remove the check's repair issue (on unload)."""
        self._set_not_source_issue(active=False)


async def async_setup_delivery(
    hass: HomeAssistant, entry: ConfigEntry, statistics: DataUpdateCoordinator[Snapshot]
) -> DeliveryCoordinator | None:
    """Start the check for an entry that asks for it, with its first comparison."""
    if not delivery_enabled(entry):
        return None
    delivery = DeliveryCoordinator(hass, entry, statistics)
    entry.async_on_unload(delivery.async_start())
    entry.async_on_unload(delivery.async_delete_issues)
    await delivery.async_refresh()
    return delivery
