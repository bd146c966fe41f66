"""Diagnostics download."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from homeassistant.components.diagnostics import REDACTED
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from .conftest import ENTRY_DATA
from .recorded import INFLUXDB

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
    from syrupy.assertion import SnapshotAssertion

    from .recorded import RecordedStack


# `init_integration` first: it freezes the clock, and the client's token must be issued after.
async def test_diagnostics(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
) -> None:
    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result == snapshot


async def test_diagnostics_leak_no_secret_and_no_host(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    stack: RecordedStack,
) -> None:
    stack.down.update({INFLUXDB, *stack.payloads})
    await init_integration.runtime_data.coordinator.async_refresh()

    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result["coordinator"]["last_update_success"] is False
    assert result["coordinator"]["last_error"]["type"] == "UpdateFailed"
    assert "cannot connect" in result["coordinator"]["last_error"]["message"]
    text = json.dumps(result)
    for secret in ("influx-secret-token", "admin-secret-key", "influxdb.local", "ingestor.local"):
        assert secret not in text
    assert ENTRY_DATA["organization"] not in text
    assert result["entry"]["data"]["organization"] == REDACTED
    assert result["entry"]["data"]["url"] == "http://**REDACTED**:8086"
    assert result["entry"]["data"]["bucket"] == ENTRY_DATA["bucket"]
