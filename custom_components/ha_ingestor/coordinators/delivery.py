"""The delivery coordinator: count `state_changed` on the bus, compare with InfluxDB.

Counting starts when the entry loads (nothing is claimed for before) and goes on while
InfluxDB does not answer; the comparison of settled windows resumes when it does. The
arithmetic is in `api/core/delivery.py`, the queries in `api/influx/delivery.py`; see
docs/ingestor-contracts.md#delivery-check. The funnel (`api/core/funnel.py`) counts the same
events between two readings of the ingestor's running totals (each statistics refresh) and
locates the loss of each settled span stage by stage (docs/architecture.md#the-delivery-funnel).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
from homeassistant.util import dt as dt_util

from ..api.core.delivery import (
    POLL_SECONDS,
    SETTLE_SECONDS,
    STORED_EARLY,
    DeliveryAlert,
    DeliveryCounter,
    DeliveryReport,
    LatencySampler,
    Window,
    delivery_alert,
)
from ..api.core.errors import IngestorError
from ..api.core.funnel import Funnel, FunnelSpan, stage_totals, without_filtered
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
    # The funnel's stages summed over the period (`Funnel.totals`), and the span this
    # refresh compared (None: none settled); the window event fires for it.
    funnel: dict[str, int | None] = field(default_factory=dict)
    span: FunnelSpan | None = None


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
        self.funnel = Funnel()
        self._funnel_count = self.funnel.count
        self._read_at: datetime | None = None
        self._observe_ingestor()

    @callback
    def _on_state_changed(self, event: Event[EventStateChangedData]) -> None:
        """O(1) and never blocking: three dictionary updates at most."""
        data = event.data
        if data["new_state"] is None:
            self.funnel.count_removal()
            return  # a removal: the ingestor drops it on purpose
        fired = event.time_fired_timestamp
        self._count(data["entity_id"], fired)
        self._funnel_count(data["entity_id"])
        self._offer(data["entity_id"], fired, event.context.id)

    @callback
    def _observe_ingestor(self) -> None:
        """A new statistics snapshot: the ingestor's running totals close a funnel step.

        The step ends now, when this bus's own count is read, on the clock that stamps
        `time_fired` (the step's points are looked up by it); the ingestor's totals were read
        while the snapshot was fetched, moments before (docs/architecture.md#the-delivery-funnel).
        """
        snapshot = self.statistics.data
        if snapshot is None or snapshot.fetched_at == self._read_at:
            return
        self._read_at = snapshot.fetched_at
        self.funnel.observe(dt_util.utcnow().timestamp(), stage_totals(snapshot))

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Listen on the bus and poll sampled events; the returned callback stops both."""
        stop_listening = self.hass.bus.async_listen(EVENT_STATE_CHANGED, self._on_state_changed)
        stop_reading = self.statistics.async_add_listener(self._observe_ingestor)
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
            stop_reading()
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
        span: FunnelSpan | None = None
        try:
            if window is not None:
                stored = await async_stored_counts(
                    self.backend, self.bucket_name, window, self.counter.bucket
                )
                self.counter.settle(window, stored)
            span = await self._async_compare_funnel(now)
        except IngestorError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="influxdb_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        snapshot = self.statistics.data
        if snapshot is not None:
            self.counter.observe_filter(
                snapshot.fetched_at.timestamp(), snapshot.ingestion.filtered_events
            )
        report = without_filtered(self.counter.report(now))
        self._set_not_source_issue(active=report.not_source)
        latency, p95, samples, late = self.sampler.figures()
        return DeliveryData(
            report=report,
            alert=delivery_alert(report.completeness, self.warning, self.error),
            latency=latency,
            latency_p95=p95,
            samples=samples,
            late=late,
            funnel=self.funnel.totals(),
            span=span,
        )

    async def _async_compare_funnel(self, now: float) -> FunnelSpan | None:
        """The funnel's steps InfluxDB has settled, compared whole: one request, if any.

        Raises:
            IngestorError: InfluxDB did not answer (the steps wait for the next refresh).

        """
        # Settled: InfluxDB answered for it and it is older than the settle delay (at the
        # start `compared_until` is the origin, which nothing has been compared up to yet).
        until = min(float(self.counter.compared_until), now - self.counter.settle_seconds)
        if (settled := self.funnel.settled(until)) is None:
            return None
        # A point's time is its event's cut to the millisecond (R3: up to 1 ms earlier still),
        # and a step's first events come right after its reading: look its points up that
        # much earlier, at both ends (nothing fires in the moments before a reading, its
        # services are being asked then).
        start, end = (datetime.fromtimestamp(t, UTC) - STORED_EARLY for t in settled)
        # Per entity only: one bucket as long as the span, so a span after a long outage
        # answers at most two rows an entity, not one per bucket of the period.
        bucket = max(self.counter.bucket, math.ceil(settled[1] - settled[0]))
        counts = await async_stored_counts(
            self.backend, self.bucket_name, Window(start, end), bucket
        )
        stored: dict[str, int] = {}
        for (_bucket, entity_id), n in counts.items():
            stored[entity_id] = stored.get(entity_id, 0) + n
        return self.funnel.compare(until, stored, now, float(self.counter.period))

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
