"""Set-up, unload and the set-up failures of an entry."""

from __future__ import annotations

import ssl
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_URL
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.influx.flux import FluxBackend
from custom_components.ha_ingestor.api.ingestor.services import ServicesClient
from custom_components.ha_ingestor.api.ingestor.stack import ADMIN_API
from custom_components.ha_ingestor.const import CONF_DELIVERY_CHECK, DOMAIN
from tests.support.influxdb_server import free_port

from .conftest import ENTRY_DATA, MODULE, NOW, UNIQUE_ID
from .recorded import INFLUXDB

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .recorded import RecordedStack

INFLUXDB_UNAUTHORIZED = b'{"code":"unauthorized","message":"unauthorized access"}'


async def test_load_and_unload(
    hass: HomeAssistant, init_integration: MockConfigEntry, stack: RecordedStack
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator.data.events.events_in_period == len(
        stack.events_in_period(NOW - timedelta(hours=1))
    )
    assert isinstance(entry.runtime_data.client.influx, FluxBackend)
    assert isinstance(entry.runtime_data.client.services, ServicesClient)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    with patch(f"{MODULE}.PLATFORMS", []):
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()


async def test_not_ready_when_no_source_answers(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, stack: RecordedStack
) -> None:
    stack.down.update({INFLUXDB, *stack.payloads})
    await _set_up(hass, mock_config_entry)

    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert mock_config_entry.error_reason_translation_key == "both_failed"
    assert mock_config_entry.reason is not None
    assert "cannot connect" in mock_config_entry.reason


@pytest.mark.parametrize(
    ("refused", "key"),
    [(INFLUXDB, "influxdb_auth_failed"), (ADMIN_API, "services_auth_failed")],
)
async def test_refused_credentials_start_reauth(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    stack: RecordedStack,
    refused: str,
    key: str,
) -> None:
    # The refusing source's own answer; the other source is down.
    if refused == INFLUXDB:
        stack.answer(INFLUXDB, "/api/v2/query", 401, INFLUXDB_UNAUTHORIZED)
        stack.down.update(stack.payloads)
    else:
        stack.refuse(ADMIN_API)
        stack.down.add(INFLUXDB)
    await _set_up(hass, mock_config_entry)

    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert mock_config_entry.error_reason_translation_key == key
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == SOURCE_REAUTH
    assert flows[0]["context"]["entry_id"] == mock_config_entry.entry_id


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


@pytest.mark.parametrize("entry_options", [{"update_interval": 15, "period": "24h"}])
async def test_coordinator_reads_its_options(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, stack: RecordedStack
) -> None:
    await _set_up(hass, mock_config_entry)
    coordinator = mock_config_entry.runtime_data.coordinator
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 15
    assert coordinator.data.period == "24h"
    assert stack.stats_periods() == ["24h"]
    await hass.config_entries.async_unload(mock_config_entry.entry_id)


@pytest.mark.usefixtures("stack")
@pytest.mark.parametrize("stored", [{}, {CONF_DELIVERY_CHECK: False}])
async def test_entries_of_1_1_get_the_delivery_check_on(
    hass: HomeAssistant, stored: dict[str, Any]
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=UNIQUE_ID, data=ENTRY_DATA, options=stored, minor_version=1
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (1, 2)
    assert entry.options[CONF_DELIVERY_CHECK] is True
    assert entry.runtime_data.delivery is not None


@pytest.mark.usefixtures("stack")
async def test_an_entry_of_a_newer_version_is_refused(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id=UNIQUE_ID, data=ENTRY_DATA, version=2)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)

    assert entry.state is ConfigEntryState.MIGRATION_ERROR
