"""Set-up, unload and the set-up failures of an entry."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_URL
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    Origin,
)
from custom_components.ha_ingestor.const import DOMAIN
from tests.support.influxdb_server import free_port

from .conftest import MODULE

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant

    from custom_components.ha_ingestor.api.models import Snapshot


async def test_load_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator.data.events.events_in_period == 1200
    assert entry.runtime_data.client is mock_client

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


@pytest.mark.parametrize(
    "snapshots",
    [
        [
            IngestorConnectionError(
                "InfluxDB and Admin API: connection refused", origin=Origin.SERVICES
            )
        ]
    ],
)
async def test_not_ready_when_no_source_answers(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == "services_failed"
    assert entry.reason is not None
    assert "connection refused" in entry.reason


@pytest.mark.parametrize(
    ("snapshots", "key"),
    [
        ([IngestorAuthenticationError("HTTP 401", origin=Origin.INFLUXDB)], "influxdb_auth_failed"),
        ([IngestorAuthenticationError("HTTP 401", origin=Origin.SERVICES)], "services_auth_failed"),
    ],
)
async def test_refused_credentials_start_reauth(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock, key: str
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == key
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == SOURCE_REAUTH
    assert flows[0]["context"]["entry_id"] == entry.entry_id


@pytest.mark.usefixtures("socket_enabled")
async def test_set_up_loads_no_certificates_in_the_event_loop(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """The real clients, pointed at a closed port: set-up must not build an SSL context.

    Home Assistant's blocking-call guard skips SSL calls in tests, so spy on them.
    """
    port = free_port()
    data = {
        **mock_config_entry.data,
        CONF_URL: f"https://127.0.0.1:{port}",
        "admin_api_url": f"https://127.0.0.1:{port}",
    }
    mock_config_entry = MockConfigEntry(domain=DOMAIN, unique_id="tls-spy", data=data)
    mock_config_entry.add_to_hass(hass)
    real_load_default_certs = ssl.SSLContext.load_default_certs
    real_load_verify_locations = ssl.SSLContext.load_verify_locations
    calls: list[str] = []

    def spy_default(self: ssl.SSLContext, *args: object) -> None:
        calls.append("load_default_certs")
        real_load_default_certs(self, *args)  # type: ignore[arg-type]

    def spy_verify(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        calls.append("load_verify_locations")
        real_load_verify_locations(self, *args, **kwargs)  # type: ignore[arg-type]

    with (
        patch(f"{MODULE}.PLATFORMS", []),
        patch.object(ssl.SSLContext, "load_default_certs", spy_default),
        patch.object(ssl.SSLContext, "load_verify_locations", spy_verify),
    ):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert calls == []


async def test_coordinator_reads_its_options(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_client: MagicMock,
    snapshots: list[Snapshot | Exception],
) -> None:
    mock_config_entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=mock_config_entry.unique_id,
        data=mock_config_entry.data,
        options={"update_interval": 15, "period": "24h"},
    )
    mock_config_entry.add_to_hass(hass)
    with patch(f"{MODULE}.PLATFORMS", []):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data.coordinator
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 15
    period = mock_client.async_get_snapshot.call_args.args[0]
    assert period == "24h"
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
