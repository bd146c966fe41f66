"""The status sensors of the services, set up for real against the simulated R2 ingestor.

No mocks in between: a services-only entry (Admin API and direct service addresses) polls the
simulator over loopback HTTP, and the states are read from Home Assistant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.const import CONF_VERIFY_SSL, STATE_ON, STATE_UNKNOWN
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.models import Revision
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_WEBSOCKET_INGESTION_URL,
    DOMAIN,
)
from tests.support.simulator import ADMIN_API, WEBSOCKET_INGESTION, Fault, IngestorSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from homeassistant.core import HomeAssistant, State

ADMIN_STATUS = "sensor.admin_api_status"
WEBSOCKET_STATUS = "sensor.websocket_ingestion_status"
SERVICE_UNHEALTHY = "binary_sensor.ha_ingestor_service_unhealthy"


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[IngestorSimulator]:
    async with IngestorSimulator(Revision.R2, upstream_timeout=0.5) as sim:
        yield sim


async def _set_up(hass: HomeAssistant, sim: IngestorSimulator) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor",
        unique_id="ingestor.test",
        data={
            CONF_VERIFY_SSL: True,
            CONF_ADMIN_API_URL: sim.admin_api_url,
            CONF_WEBSOCKET_INGESTION_URL: sim.service_urls[WEBSOCKET_INGESTION],
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


async def test_a_garbled_admin_api_is_not_healthy(
    hass: HomeAssistant, simulator: IngestorSimulator
) -> None:
    await simulator.set_fault(ADMIN_API, Fault.GARBLED)
    await _set_up(hass, simulator)

    assert _state(hass, ADMIN_STATUS).state == "unhealthy"
    alert = _state(hass, SERVICE_UNHEALTHY)
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

    websocket = _state(hass, WEBSOCKET_STATUS)
    assert websocket.state == STATE_UNKNOWN
    assert websocket.attributes["options"] == ["healthy", "degraded", "unhealthy"]
    assert _state(hass, ADMIN_STATUS).state == "healthy"
