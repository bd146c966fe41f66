"""Diagnostics download."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from homeassistant.components.diagnostics import REDACTED
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.ha_ingestor.api.errors import IngestorConnectionError, Origin

from .conftest import ENTRY_DATA, make_snapshot

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ha_ingestor.api.models import Snapshot


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result == snapshot


@pytest.mark.parametrize(
    "snapshots",
    [
        [
            make_snapshot(),
            IngestorConnectionError(
                "influxdb.local:8086 and http://ingestor.local:8003: connection refused",
                origin=Origin.SERVICES,
            ),
        ]
    ],
)
async def test_diagnostics_leak_no_secret_and_no_host(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    snapshots: list[Snapshot | Exception],
) -> None:
    await init_integration.runtime_data.coordinator.async_refresh()

    result = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert result["coordinator"]["last_update_success"] is False
    assert result["coordinator"]["last_error"]["type"] == "UpdateFailed"
    assert "connection refused" in result["coordinator"]["last_error"]["message"]
    text = json.dumps(result)
    for secret in ("influx-secret-token", "admin-secret-key", "influxdb.local", "ingestor.local"):
        assert secret not in text
    assert ENTRY_DATA["organization"] not in text
    assert result["entry"]["data"]["organization"] == REDACTED
    assert result["entry"]["data"]["url"] == "http://**REDACTED**:8086"
    assert result["entry"]["data"]["bucket"] == ENTRY_DATA["bucket"]
