"""What our entities cost the recorder: no row on a refresh unless a state really changed.

Home Assistant writes a `states` row for every state change, and a change of an attribute is
one: `_unrecorded_attributes` keeps an attribute out of the stored attributes but not the row
out of the table. So an attribute that moves with every refresh while the state stays (the
live reading on an alert that is off, the end of a span that keeps growing) costs a row per
entity and refresh, 1,440 a day at the default interval.

Real parts: the recorder (SQLite), a real influxd that receives new events before every
refresh, and the simulated R2 services whose readings change on every refresh as a running
ingestor's do. The rows are read back from the recorder's own history.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING
from unittest.mock import patch

import pytest
from homeassistant.components.recorder import get_instance, history
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ha_ingestor.api.core.delivery import FINE_SECONDS
from custom_components.ha_ingestor.const import (
    CONF_DELIVERY_CHECK,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
)
from tests.support.delivery_ingestor import DeliveryIngestor

from .live import influx_data, ingestor_data, let_interval_pass, live_entry, write_recent_events

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant, State
    from pytest_homeassistant_custom_component.typing import (
        RecorderInstanceGenerator,
        WebSocketGenerator,
    )

    from tests.support.influxdb_server import InfluxDBServer
    from tests.support.simulator import IngestorSimulator

INTERVAL = 60
REFRESHES = 5
REFRESHES_PER_DAY = 86_400 // INTERVAL


@pytest.fixture
def mock_recorder_before_hass(async_setup_recorder_instance: RecorderInstanceGenerator) -> None:
    """The recorder starts before Home Assistant, as it does for a user."""


def _rows(hass: HomeAssistant, since: datetime, entity_ids: list[str]) -> dict[str, list[State]]:
    """Every state row the recorder wrote for these entities since `since`, oldest first."""
    found = history.get_significant_states(
        hass,
        since,
        entity_ids=entity_ids,
        include_start_time_state=False,
        significant_changes_only=False,
        minimal_response=False,
        no_attributes=False,
    )
    return {
        entity_id: [s for s in found.get(entity_id, []) if not isinstance(s, dict)]
        for entity_id in entity_ids
    }


async def _measured(
    hass: HomeAssistant, since: datetime, entity_ids: list[str], what: str, scale: float
) -> tuple[dict[str, list[State]], Counter[str]]:
    """The rows since `since`, and per entity those no state change caused; printed.

    Printed for the closing note: all rows and the attribute-only ones, times `scale` (to
    rows a day, or per comparison), and the rows of each entity.
    """
    await async_wait_recording_done(hass)
    rows = await get_instance(hass).async_add_executor_job(_rows, hass, since, entity_ids)
    by_attribute = Counter(
        entity_id
        for entity_id, states in rows.items()
        for previous, state in pairwise(states)
        if state.state == previous.state
    )
    written = {entity_id: len(states) for entity_id, states in rows.items() if states}
    print(  # noqa: T201
        f"{what}:",
        round(sum(written.values()) * scale, 2),
        "of which by an attribute alone:",
        round(sum(by_attribute.values()) * scale, 2),
        dict(by_attribute),
        written,
    )
    return rows, by_attribute


@pytest.mark.usefixtures("recorder_mock", "entity_registry_enabled_by_default")
async def test_no_row_is_written_by_an_attribute_alone(
    hass: HomeAssistant, influxdb_server: InfluxDBServer, simulator: IngestorSimulator
) -> None:
    database = f"footprint_{datetime.now(UTC):%H%M%S%f}"
    influxdb_server.create_database(database)
    write_recent_events(influxdb_server, database, 40, 1)
    entry = live_entry(
        hass,
        influx_data(influxdb_server, database) | ingestor_data(simulator),
        {CONF_UPDATE_INTERVAL: INTERVAL, CONF_DELIVERY_CHECK: True},
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    ours = sorted(
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    )
    assert "binary_sensor.ha_ingestor_high_error_rate" in ours
    assert "sensor.ha_ingestor_delivery_completeness" in ours

    await async_wait_recording_done(hass)
    since = dt_util.utcnow()
    for seed in range(2, 2 + REFRESHES):
        # A running ingestor: new events, readings that move a little, none near a threshold.
        write_recent_events(influxdb_server, database, 5, seed)
        simulator.set_figures(
            processed_events=2000 + 100 * seed,
            failed_events=seed,
            success_rate=99.0 - seed / 10,
            average_processing_time_ms=1.5 + seed / 10,
            events_per_minute=30.0 + seed,
        )
        await let_interval_pass(hass, INTERVAL)
    await async_wait_recording_done(hass)

    rows, by_attribute = await _measured(
        hass, since, ours, "recorder rows per day", REFRESHES_PER_DAY / REFRESHES
    )
    # The readings did move: the sensors that show them wrote their changes.
    assert len(rows["sensor.ha_ingestor_error_rate"]) >= REFRESHES - 1
    assert not by_attribute, dict(by_attribute)


# --- The delivery check: its span moves with every comparison --------------------------------

SETTLE = 6.0
ROUNDS = 3
# Their states stay (100 %, 0 lost) while their span attributes move: measured in the README.
SPAN_SENSORS = frozenset(
    {"sensor.ha_ingestor_delivery_completeness", "sensor.ha_ingestor_events_lost"}
)


@pytest.mark.usefixtures("recorder_mock", "entity_registry_enabled_by_default")
async def test_delivery_rows_per_comparison(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    influxdb_server: InfluxDBServer,
) -> None:
    """Rows of the delivery entities while nothing is lost: real time, a real ingestor's writes.

    Measured, not yet held to zero: `since`, `until`, `events_fired` and `events_stored` are
    attributes of *Delivery completeness* and *Events lost*, whose states stay 100 % and 0
    while every event arrives, so each comparison that moves the span is a row of each.
    """
    database = f"footprint_delivery_{datetime.now(UTC):%H%M%S%f}"
    influxdb_server.create_database(database)
    assert await async_setup_component(hass, DOMAIN, {})
    ingestor = DeliveryIngestor(await hass_ws_client(hass), influxdb_server, database)
    await ingestor.start()
    try:
        with patch("custom_components.ha_ingestor.coordinators.delivery.SETTLE_SECONDS", SETTLE):
            entry = live_entry(
                hass, influx_data(influxdb_server, database), {CONF_DELIVERY_CHECK: True}
            )
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            delivery = entry.runtime_data.delivery
            assert delivery is not None
            await asyncio.sleep(max(0.0, delivery.counter.origin - time.time()) + 0.05)
            ours = sorted(
                e.entity_id
                for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
                if "delivery" in e.unique_id or "events_lost" in e.unique_id
            )
            await async_wait_recording_done(hass)
            since = dt_util.utcnow()
            for round_ in range(ROUNDS):
                for i in range(5):
                    hass.states.async_set("sensor.steady", f"{round_}.{i}")
                    await asyncio.sleep(0.01)  # one entity's points in one millisecond: one
                fired = time.time()
                await hass.async_block_till_done()
                await asyncio.sleep(max(0.0, fired + SETTLE + FINE_SECONDS - time.time()) + 0.2)
                await delivery.async_refresh()
                await hass.async_block_till_done()
    finally:
        await ingestor.stop()
    await async_wait_recording_done(hass)
    assert ingestor.lost == 0
    rows, by_attribute = await _measured(
        hass, since, ours, "delivery rows per comparison", 1 / ROUNDS
    )
    assert len(rows["sensor.ha_ingestor_delivery_completeness"]) >= ROUNDS - 1
    # Only the two span sensors, and at most one row each per comparison: a new attribute that
    # moves elsewhere fails here.
    assert set(by_attribute) <= SPAN_SENSORS, dict(by_attribute)
    assert all(n < ROUNDS for n in by_attribute.values()), dict(by_attribute)
