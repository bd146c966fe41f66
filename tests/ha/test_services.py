"""The `ha_ingestor.get_statistics` response action."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
import voluptuous as vol
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.errors import IngestorConnectionError, Origin
from custom_components.ha_ingestor.api.models import Period
from custom_components.ha_ingestor.const import DOMAIN

from .conftest import ENTRY_DATA, make_snapshot

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from homeassistant.core import HomeAssistant

    from custom_components.ha_ingestor.api.models import Snapshot


async def _call(hass: HomeAssistant, **data: object) -> dict[str, object]:
    response = await hass.services.async_call(
        DOMAIN, "get_statistics", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def test_latest_statistics_without_a_new_query(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    calls = mock_client.async_get_snapshot.await_count
    response = await _call(hass, config_entry_id=init_integration.entry_id)

    assert mock_client.async_get_snapshot.await_count == calls
    assert response["source"] == "influxdb"
    assert response["period"] == "1h"
    assert response["fetched_at"] == "2026-11-26T12:00:00+00:00"
    events = response["events"]
    assert isinstance(events, dict)
    assert events["events_in_period"] == 1200
    assert events["events_by_domain"] == {"sensor": 900, "light": 300}
    services = response["services"]
    assert isinstance(services, list)
    assert services[0]["status"] == "healthy"
    json.dumps(response)  # a response must be plain JSON


@pytest.mark.parametrize(
    "snapshots", [[make_snapshot(), make_snapshot(period=Period.DAYS_7, query_duration_ms=80.0)]]
)
async def test_any_period_is_fetched_fresh(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    snapshots: list[Snapshot | Exception],
) -> None:
    response = await _call(hass, config_entry_id=init_integration.entry_id, period="7d")
    assert mock_client.async_get_snapshot.call_args.args[0] is Period.DAYS_7
    assert response["period"] == "7d"
    assert response["query_duration_ms"] == 80.0
    # The entities keep the configured period.
    assert init_integration.runtime_data.coordinator.data.period is Period.HOUR_1


@pytest.mark.parametrize(
    "snapshots",
    [[make_snapshot(), IngestorConnectionError("both down", origin=Origin.SERVICES)]],
)
async def test_failed_fetch_is_a_translated_error(
    hass: HomeAssistant, init_integration: MockConfigEntry, snapshots: list[Snapshot | Exception]
) -> None:
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, config_entry_id=init_integration.entry_id, period="24h")
    assert raised.value.translation_key == "statistics_failed"
    assert raised.value.translation_placeholders == {"error": "both down"}


@pytest.mark.usefixtures("init_integration")
async def test_unknown_entry(hass: HomeAssistant) -> None:
    with pytest.raises(ServiceValidationError) as raised:
        await _call(hass, config_entry_id="nope")
    assert raised.value.translation_key == "entry_not_found"


@pytest.mark.usefixtures("init_integration")
async def test_entry_of_another_integration(hass: HomeAssistant) -> None:
    other = MockConfigEntry(domain="demo")
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as raised:
        await _call(hass, config_entry_id=other.entry_id)
    assert raised.value.translation_key == "entry_not_found"


async def test_entry_not_loaded(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    second = MockConfigEntry(domain=DOMAIN, unique_id="second", data=ENTRY_DATA)
    second.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as raised:
        await _call(hass, config_entry_id=second.entry_id)
    assert raised.value.translation_key == "entry_not_loaded"


@pytest.mark.usefixtures("init_integration")
async def test_unknown_period_is_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    with pytest.raises(vol.Invalid):
        await _call(hass, config_entry_id=init_integration.entry_id, period="2h")


@pytest.mark.parametrize(
    "snapshots",
    [[make_snapshot(), IngestorConnectionError("influx down", origin=Origin.INFLUXDB)]],
)
async def test_a_failed_action_leaves_the_refresh_state_alone(
    hass: HomeAssistant, init_integration: MockConfigEntry, snapshots: list[Snapshot | Exception]
) -> None:
    coordinator = init_integration.runtime_data.coordinator
    with pytest.raises(HomeAssistantError):
        await _call(hass, config_entry_id=init_integration.entry_id, period="24h")
    # The action's errors are its own: the entities' refresh still reads as healthy.
    assert coordinator.last_influx_error is None
    assert coordinator.last_services_error is None
    assert coordinator.last_update_success
    assert coordinator.data.period is Period.HOUR_1
