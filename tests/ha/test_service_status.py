"""The status sensors of the services, set up for real against the simulated R2 ingestor.

No mocks in between: a services-only entry (Admin API and direct service addresses) polls the
simulator over loopback HTTP, and the states are read from Home Assistant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.const import CONF_VERIFY_SSL, STATE_ON, STATE_UNKNOWN

from tests.support.simulator import ADMIN_API, WEBSOCKET_INGESTION, Fault, IngestorSimulator

from .conftest import entity_state
from .live import ingestor_data, live_entry

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

ADMIN_STATUS = "sensor.admin_api_status"
WEBSOCKET_STATUS = "sensor.websocket_ingestion_status"
SERVICE_UNHEALTHY = "binary_sensor.ha_ingestor_service_unhealthy"


async def _set_up(hass: HomeAssistant, sim: IngestorSimulator) -> None:
    entry = live_entry(
        hass, {CONF_VERIFY_SSL: True, **ingestor_data(sim)}, unique_id="ingestor.test"
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_a_garbled_admin_api_is_not_healthy(
    hass: HomeAssistant, simulator: IngestorSimulator
) -> None:
    await simulator.set_fault(ADMIN_API, Fault.GARBLED)
    await _set_up(hass, simulator)

    assert entity_state(hass, ADMIN_STATUS).state == "unhealthy"
    alert = entity_state(hass, SERVICE_UNHEALTHY)
    assert alert.state == STATE_ON
    assert "admin-api" in alert.attributes["message"]
    assert "unreadable body" in alert.attributes["message"]


async def test_a_status_not_known_is_home_assistants_unknown_not_an_option(
    hass: HomeAssistant, simulator: IngestorSimulator
) -> None:
    # A status word none of the ingestor's vocabularies has.
    await simulator.set_fault(
        WEBSOCKET_INGESTION, Fault.UNHEALTHY, paths=["/health"], status="rebooting"
    )
    await _set_up(hass, simulator)

    websocket = entity_state(hass, WEBSOCKET_STATUS)
    assert websocket.state == STATE_UNKNOWN
    assert websocket.attributes["options"] == ["healthy", "degraded", "unhealthy"]
    assert entity_state(hass, ADMIN_STATUS).state == "healthy"
