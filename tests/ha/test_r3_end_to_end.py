"""HomeIQ 2.0 (R3) end to end: Home Assistant, a real influxd and the simulated R3 services.

No mocks in between: the entry is stored as the config flow stores it, the coordinator polls
through its own timer at the shortest interval, and the simulated Admin API counts (and would
refuse, with 429) every request the integration sends it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest
from homeassistant.const import CONF_API_KEY, STATE_OFF, STATE_ON

from custom_components.ha_ingestor.const import (
    CONF_DATA_API_URL,
    CONF_UPDATE_INTERVAL,
    MIN_UPDATE_INTERVAL,
)
from tests.conftest import R3_KEY
from tests.support.simulator import ADMIN_API, DATA_API, WEBSOCKET_INGESTION
from tests.support.simulator_r3 import (
    RATE_LIMIT_EXEMPT,
    IngestorSimulatorR3,
    ManualClock,
    WebhookAlert,
)

from .live import (
    entity_of,
    influx_data,
    ingestor_data,
    let_interval_pass,
    live_entry,
    write_recent_events,
)

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant, State
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from tests.support.influxdb_server import InfluxDBServer

KEY = R3_KEY
# The Admin API's limit per client address (ADMIN_API_RATE_LIMIT_PER_MIN).
ADMIN_LIMIT_PER_MINUTE = 60


@pytest.fixture
def entry(
    hass: HomeAssistant, influxdb_server: InfluxDBServer, r3: IngestorSimulatorR3
) -> MockConfigEntry:
    """InfluxQL on the real influxd, the R3 Admin API with its key, the shortest interval."""
    database = f"r3_{datetime.now(UTC):%H%M%S%f}"
    influxdb_server.create_database(database)
    write_recent_events(influxdb_server, database, 60, 3, spread=timedelta(minutes=30))
    data = {
        **influx_data(influxdb_server, database),
        **ingestor_data(r3),
        CONF_API_KEY: KEY,
        CONF_DATA_API_URL: r3.url_of(DATA_API),
    }
    return live_entry(hass, data, {CONF_UPDATE_INTERVAL: MIN_UPDATE_INTERVAL})


async def _poll(hass: HomeAssistant, clock: ManualClock) -> None:
    """One interval passes, for Home Assistant's timer and for the Admin API's rate limiter."""
    clock.now += MIN_UPDATE_INTERVAL
    await let_interval_pass(hass, MIN_UPDATE_INTERVAL)


async def test_r3_health_queue_alerts_and_request_budget(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    r3: IngestorSimulatorR3,
    clock: ManualClock,
) -> None:
    r3.set_figures(ws_subscribed=False, queue_size=2500)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    def state(platform: str, key: str) -> State:
        return entity_of(hass, entry, platform, key)

    # (a) The stub says healthy, /health/detailed says not subscribed: unhealthy.
    async with aiohttp.ClientSession() as http:
        async with http.get(r3.url_of(WEBSOCKET_INGESTION) + "/health") as response:
            assert (response.status, (await response.json())["status"]) == (200, "healthy")
        async with http.get(r3.url_of(WEBSOCKET_INGESTION) + "/health/detailed") as response:
            detailed = await response.json()
    assert detailed["subscription"]["is_subscribed"] is False
    assert state("sensor", "websocket-ingestion_status").state == "unhealthy"
    assert state("binary_sensor", "alert_service_unhealthy").state == STATE_ON
    assert state("sensor", "data_source").state == "influxdb"

    # (b) The R3 entities follow the simulator.
    assert float(state("sensor", "ingestion_queue_fill").state) == 25.0
    assert state("binary_sensor", "alert_ingestion_backpressure").state == STATE_OFF
    await r3.post_alerts([WebhookAlert("ServiceDown", "critical", fingerprint="f1")])
    r3.set_figures(ws_subscribed=True, queue_size=9000)
    started = clock.now
    first = len(r3.requests_to(ADMIN_API))
    await _poll(hass, clock)

    assert state("sensor", "websocket-ingestion_status").state == "healthy"
    assert float(state("sensor", "ingestion_queue_fill").state) == 90.0
    assert state("binary_sensor", "alert_ingestion_backpressure").state == STATE_ON
    firing = state("sensor", "alertmanager_alerts_firing")
    assert firing.state == "1"
    assert [a["name"] for a in firing.attributes["alerts"]] == ["ServiceDown"]

    await r3.post_alerts([WebhookAlert("ServiceDown", status="resolved", fingerprint="f1")])
    r3.set_figures(queue_size=100)
    await _poll(hass, clock)
    assert state("sensor", "alertmanager_alerts_firing").state == "0"
    assert float(state("sensor", "ingestion_queue_fill").state) == 1.0
    assert state("binary_sensor", "alert_ingestion_backpressure").state == STATE_OFF

    # (c) One minute at the shortest interval, measured by the Admin API itself.
    await _poll(hass, clock)
    await _poll(hass, clock)
    minute = r3.requests_to(ADMIN_API)[first:]
    assert clock.now - started == 60
    limited = [r for r in minute if r.path not in RATE_LIMIT_EXEMPT]
    assert all(r.status != 429 for r in minute)
    per_minute = len(limited)
    assert per_minute <= ADMIN_LIMIT_PER_MINUTE / 3, [r.path for r in limited]
    assert state("binary_sensor", "admin_api_connected").state == STATE_ON
    await hass.config_entries.async_unload(entry.entry_id)
