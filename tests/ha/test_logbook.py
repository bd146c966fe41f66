"""In steady state no entity of ours writes the logbook (the device's Activity) on a refresh.

Real parts: Home Assistant's recorder and logbook, a real influxd that receives a new event
before every refresh (as with a running ingestor), the simulated R2 services. The logbook is
read through its own WebSocket command, as the Activity panel does.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
)
from tests.support.simulator import WEBSOCKET_INGESTION, Fault, IngestorSimulator

from .live import influx_data, ingestor_data, let_interval_pass, live_entry, write_recent_events

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.typing import (
        RecorderInstanceGenerator,
        WebSocketGenerator,
    )

    from tests.support.influxdb_server import InfluxDBServer

# Only a logbook that is really served: the minimum target has no frontend package.
pytest.importorskip("hass_frontend")

INTERVAL = 60
REFRESHES = 4


@pytest.fixture
def mock_recorder_before_hass(async_setup_recorder_instance: RecorderInstanceGenerator) -> None:
    """The recorder starts before Home Assistant, as the logbook needs it."""


async def _refresh(hass: HomeAssistant) -> None:
    await let_interval_pass(hass, INTERVAL)


async def _logbook_entries(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, since: datetime
) -> list[dict[str, Any]]:
    await async_wait_recording_done(hass)
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "logbook/get_events", "start_time": since.isoformat()})
    response = await client.receive_json()
    assert response["success"], response
    entries: list[dict[str, Any]] = response["result"]
    return entries


@pytest.mark.usefixtures("recorder_mock", "entity_registry_enabled_by_default")
async def test_no_entity_writes_the_logbook_on_every_refresh(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    influxdb_server: InfluxDBServer,
    simulator: IngestorSimulator,
) -> None:
    database = f"logbook_{datetime.now(UTC):%H%M%S%f}"
    influxdb_server.create_database(database)
    write_recent_events(influxdb_server, database, 30, 1)
    assert await async_setup_component(hass, "logbook", {})
    data = influx_data(influxdb_server, database) | ingestor_data(simulator)
    entry = live_entry(hass, data, {CONF_UPDATE_INTERVAL: INTERVAL})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    ours = {
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert "sensor.ha_ingestor_ingestion_lag" in ours
    assert "sensor.ha_ingestor_query_duration" in ours  # disabled by default: enabled here

    since = dt_util.utcnow()
    lag_attributes = []
    for seed in range(2, 2 + REFRESHES):
        write_recent_events(influxdb_server, database, 5, seed, spread=timedelta(milliseconds=5))
        await _refresh(hass)
        lag = hass.states.get("sensor.ha_ingestor_ingestion_lag")
        assert lag is not None
        lag_attributes.append(lag.attributes["last_event"])
    # Steady state with events flowing: the newest event moves on with every refresh ...
    assert len(set(lag_attributes)) == REFRESHES
    # ... and the logbook does not hear of it.
    written = Counter(e["entity_id"] for e in await _logbook_entries(hass, hass_ws_client, since))
    assert not {entity: n for entity, n in written.items() if entity in ours}

    # The logbook is read right: a real change of one of ours is there, once.
    await simulator.set_fault(WEBSOCKET_INGESTION, Fault.UNHEALTHY, paths=["/health"])
    await _refresh(hass)
    written = Counter(e["entity_id"] for e in await _logbook_entries(hass, hass_ws_client, since))
    assert written["sensor.websocket_ingestion_status"] == 1


@pytest.mark.usefixtures("recorder_mock")
async def test_the_sensors_that_flooded_the_logbook_are_removed_on_upgrade(
    hass: HomeAssistant, simulator: IngestorSimulator
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="upgraded", data={CONF_ADMIN_API_URL: simulator.admin_api_url}
    )
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    for key in ("last_event", "last_successful_update"):
        registry.async_get_or_create(
            "sensor", DOMAIN, f"upgraded_{key}", config_entry=entry, suggested_object_id=key
        )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    keys = {e.unique_id for e in er.async_entries_for_config_entry(registry, entry.entry_id)}
    assert "upgraded_ingestion_lag" in keys
    assert not keys & {"upgraded_last_event", "upgraded_last_successful_update"}
