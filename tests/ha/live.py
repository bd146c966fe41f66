"""Entries on real parts: the session's influxd and a simulated ingestor on loopback.

The end-to-end, logbook, recorder and delivery tests set Home Assistant up the way a user has
it, with the entry the config flow stores; these are the pieces they share. The fixtures that
start the parts (`influxdb_server`, `database`, `simulator`) live in the conftest files.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_URL, CONF_VERIFY_SSL
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.ha_ingestor.config_flow import unique_id_for
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_WEBSOCKET_INGESTION_URL,
    DOMAIN,
)
from tests.support.events import Schema, event_line, generate_events
from tests.support.simulator import WEBSOCKET_INGESTION

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant, State

    from tests.support.influxdb_server import InfluxDBServer
    from tests.support.simulator import IngestorSimulator


def influx_data(server: InfluxDBServer, database: str) -> dict[str, Any]:
    """What the flow stores for InfluxQL on the real server."""
    return {
        CONF_URL: server.url,
        CONF_BACKEND: "influxql",
        CONF_BUCKET: database,
        CONF_VERIFY_SSL: True,
    }


def ingestor_data(simulator: IngestorSimulator) -> dict[str, Any]:
    """What the flow stores for the simulated Admin API and websocket-ingestion."""
    return {
        CONF_ADMIN_API_URL: simulator.admin_api_url,
        CONF_WEBSOCKET_INGESTION_URL: simulator.url_of(WEBSOCKET_INGESTION),
    }


def live_entry(
    hass: HomeAssistant,
    data: dict[str, Any],
    options: dict[str, Any] | None = None,
    *,
    unique_id: str | None = None,
) -> MockConfigEntry:
    """The entry added to Home Assistant (not set up), identified as the flow identifies it."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor",
        unique_id=unique_id or unique_id_for(data),
        data=data,
        options=options or {},
    )
    entry.add_to_hass(hass)
    return entry


def entity_of(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> State:
    """The state of the entry's entity of this key, which must exist."""
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.unique_id}_{key}")
    assert entity_id, f"no {platform} entity {key}"
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


def write_recent_events(
    server: InfluxDBServer,
    database: str,
    count: int,
    seed: int,
    *,
    spread: timedelta = timedelta(minutes=10),
) -> None:
    """`count` schema B events in the `spread` before now: the newest is later than any before."""
    now = datetime.now(UTC)
    events = generate_events(count, now - spread, now, seed)
    server.write(database, [event_line(e, Schema.B) for e in events])


async def let_interval_pass(hass: HomeAssistant, seconds: float) -> None:
    """One update interval on Home Assistant's own timer, and its refresh run to the end."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds + 1))
    # Scheduled refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)
