"""The `ha_ingestor.get_statistics` response action."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import voluptuous as vol
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.models import Period
from custom_components.ha_ingestor.const import DOMAIN

from .conftest import ENTRY_DATA, NOW
from .recorded import INFLUXDB, tag

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .recorded import RecordedStack


async def _call(hass: HomeAssistant, **data: object) -> dict[str, object]:
    response = await hass.services.async_call(
        DOMAIN, "get_statistics", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def test_latest_statistics_without_a_new_query(
    hass: HomeAssistant, init_integration: MockConfigEntry, stack: RecordedStack
) -> None:
    asked = len(stack.requests)
    response = await _call(hass, config_entry_id=init_integration.entry_id)

    assert len(stack.requests) == asked
    assert response["source"] == "influxdb"
    assert response["period"] == "1h"
    assert response["fetched_at"] == NOW.isoformat()
    events = response["events"]
    assert isinstance(events, dict)
    points = stack.events_in_period(NOW - timedelta(hours=1))
    assert events["events_in_period"] == len(points)
    assert events["events_by_domain"] == dict(Counter(tag(line, "domain") for line in points))
    services = response["services"]
    assert isinstance(services, list)
    assert {s["name"]: s["status"] for s in services}["admin-api"] == "healthy"
    json.dumps(response)  # a response must be plain JSON


async def test_any_period_is_fetched_fresh(
    hass: HomeAssistant, init_integration: MockConfigEntry, stack: RecordedStack
) -> None:
    response = await _call(hass, config_entry_id=init_integration.entry_id, period="7d")
    assert response["period"] == "7d"
    assert stack.stats_periods()[-1] == "7d"
    events = response["events"]
    assert isinstance(events, dict)
    # Every recorded point lies within the 7 days.
    assert events["events_in_period"] == len(stack.points)
    # The entities keep the configured period.
    assert init_integration.runtime_data.coordinator.data.period is Period.HOUR_1


async def test_failed_fetch_is_a_translated_error(
    hass: HomeAssistant, init_integration: MockConfigEntry, stack: RecordedStack
) -> None:
    stack.down.update({INFLUXDB, *stack.payloads})
    with pytest.raises(HomeAssistantError) as raised:
        await _call(hass, config_entry_id=init_integration.entry_id, period="24h")
    assert raised.value.translation_key == "statistics_failed"
    assert raised.value.translation_placeholders is not None
    assert "cannot connect" in raised.value.translation_placeholders["error"]


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


async def test_a_failed_action_leaves_the_refresh_state_alone(
    hass: HomeAssistant, init_integration: MockConfigEntry, stack: RecordedStack
) -> None:
    coordinator = init_integration.runtime_data.coordinator
    stack.down.update({INFLUXDB, *stack.payloads})
    with pytest.raises(HomeAssistantError):
        await _call(hass, config_entry_id=init_integration.entry_id, period="24h")
    # The action's errors are its own: the entities' refresh still reads as healthy.
    assert coordinator.last_influx_error is None
    assert coordinator.last_services_error is None
    assert coordinator.last_update_success
    assert coordinator.data.period is Period.HOUR_1
