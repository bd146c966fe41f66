"""The whole integration in Home Assistant against a real influxd and the simulated ingestor.

No mocks in between: the config entry is set up as a user would have it, the coordinator
polls through its timer, the InfluxDB server is killed mid-run and brought back, and entity
states are checked against numbers computed here from the seeded points.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util

from custom_components.ha_ingestor.const import (
    CONF_UPDATE_INTERVAL,
)
from tests.support.events import Schema, event_line, generate_events
from tests.support.simulator import Fault, IngestorSimulator

from .live import entity_of, influx_data, ingestor_data, let_interval_pass, live_entry

if TYPE_CHECKING:
    from collections.abc import Iterator

    from homeassistant.core import HomeAssistant, State
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from tests.support.influxdb_server import InfluxDBServer

INTERVAL = 60
IN_PERIOD = 150
OUT_OF_PERIOD = 90
RATE = 12.5


@pytest.fixture
def influxdb(influxdb_server: InfluxDBServer, socket_enabled: None) -> Iterator[InfluxDBServer]:
    """The session's influxd: the test kills it and brings it back, as it must be afterwards."""
    try:
        yield influxdb_server
    finally:
        influxdb_server.start()


@pytest.fixture
def database(influxdb: InfluxDBServer) -> str:
    """A database of this test's own on the shared server, so only its points are counted."""
    name = f"e2e_{secrets.token_hex(4)}"
    influxdb.create_database(name)
    return name


@pytest.fixture
def seeded(influxdb: InfluxDBServer, database: str) -> dict[str, Any]:
    """Schema A and B events inside and outside the 1 h period; what they must give."""
    now = datetime.now(UTC)
    inside = generate_events(IN_PERIOD, now - timedelta(minutes=50), now - timedelta(minutes=2), 7)
    outside = generate_events(
        OUT_OF_PERIOD, now - timedelta(hours=3), now - timedelta(minutes=70), 8
    )
    events = inside + outside
    influxdb.write(
        database,
        [event_line(e, Schema.A if i % 2 else Schema.B) for i, e in enumerate(events)],
    )
    domains = Counter(e.entity_id.split(".", 1)[0] for e in inside)
    return {
        "events_in_period": len(inside),
        "active_entities": len({e.entity_id for e in inside}),
        "top_domain": max(sorted(domains), key=lambda d: domains[d]),
        "last_event": max(e.time for e in inside),
    }


@pytest.fixture
def entry(
    hass: HomeAssistant, influxdb: InfluxDBServer, database: str, simulator: IngestorSimulator
) -> MockConfigEntry:
    """A loaded entry as the config flow stores it: InfluxQL to the real server."""
    simulator.set_figures(events_per_minute=RATE)
    data = influx_data(influxdb, database) | ingestor_data(simulator)
    return live_entry(hass, data, {CONF_UPDATE_INTERVAL: INTERVAL})


async def _poll(hass: HomeAssistant) -> None:
    await let_interval_pass(hass, INTERVAL)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_influxdb_killed_mid_run_falls_back_to_services_and_back(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    entry: MockConfigEntry,
    influxdb: InfluxDBServer,
    database: str,
    seeded: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="custom_components.ha_ingestor")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    def state(platform: str, key: str) -> State:
        return entity_of(hass, entry, platform, key)

    # InfluxDB answers: event figures are the seeded ones, counted once per event.
    assert state("sensor", "data_source").state == "influxdb"
    assert int(state("sensor", "events_in_period").state) == seeded["events_in_period"]
    assert int(state("sensor", "active_entities").state) == seeded["active_entities"]
    assert float(state("sensor", "events_per_minute").state) == pytest.approx(
        seeded["events_in_period"] / 60, abs=0.01
    )
    last_event = dt_util.parse_datetime(state("sensor", "ingestion_lag").attributes["last_event"])
    assert last_event is not None
    assert last_event == seeded["last_event"]
    assert state("binary_sensor", "influxdb_connected").state == STATE_ON
    assert state("binary_sensor", "alert_influxdb_unreachable").state == STATE_OFF
    influx = entry.runtime_data.client.influx
    assert influx is not None
    windows = influx.windows
    assert windows is not None
    assert windows.recounted

    # New events (one of them a little late): the next refresh reads only what changed.
    now = datetime.now(UTC)
    fresh = generate_events(3, now - timedelta(seconds=40), now - timedelta(seconds=1), 9)
    await hass.async_add_executor_job(
        influxdb.write, database, [event_line(e, Schema.B) for e in fresh]
    )
    await _poll(hass)
    assert not windows.recounted
    assert int(state("sensor", "events_in_period").state) == seeded["events_in_period"] + 3

    # The server dies: the same refresh answers from the services.
    await hass.async_add_executor_job(influxdb.stop)
    await _poll(hass)

    assert state("sensor", "data_source").state == "services_fallback"
    assert state("sensor", "events_in_period").state == STATE_UNAVAILABLE
    assert state("sensor", "active_entities").state == STATE_UNAVAILABLE
    assert float(state("sensor", "events_per_minute").state) == RATE
    assert state("binary_sensor", "influxdb_connected").state == STATE_OFF
    assert state("binary_sensor", "alert_influxdb_unreachable").state == STATE_ON
    assert state("binary_sensor", "admin_api_connected").state == STATE_ON

    # Still down: the switch is not logged again.
    await _poll(hass)
    assert state("sensor", "data_source").state == "services_fallback"

    # Back on the same port with the same data.
    await hass.async_add_executor_job(influxdb.start)
    await _poll(hass)

    assert state("sensor", "data_source").state == "influxdb"
    assert int(state("sensor", "events_in_period").state) == seeded["events_in_period"] + 3
    assert state("binary_sensor", "alert_influxdb_unreachable").state == STATE_OFF
    # What was kept before the outage is not trusted: counted afresh.
    assert windows.recounted

    messages = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert sum("did not answer" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "seeded")
async def test_both_sources_down_makes_everything_unavailable(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    influxdb: InfluxDBServer,
    simulator: IngestorSimulator,
) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entity_of(hass, entry, "sensor", "data_source").state == "influxdb"

    await hass.async_add_executor_job(influxdb.stop)
    for service in simulator.service_urls:
        await simulator.set_fault(service, Fault.DOWN)
    await _poll(hass)

    registry = er.async_get(hass)
    # The delivery check (on by default) has had nothing settled to compare yet: its own
    # coordinator and tests (test_delivery.py) cover its outages.
    delivery = {
        "events_lost",
        "delivery_completeness",
        "delivery_latency",
        "alert_events_lost",
        "delivery_loss",  # an event entity: unknown until it first fires
    }
    states = [
        hass.states.get(e.entity_id)
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.translation_key not in delivery
    ]
    assert states
    assert {s.state for s in states if s is not None} == {STATE_UNAVAILABLE}

    await hass.async_add_executor_job(influxdb.start)
    await simulator.clear_faults()
    await _poll(hass)
    assert entity_of(hass, entry, "sensor", "data_source").state == "influxdb"
