"""Alert, connectivity and per-service binary sensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.const import (
    CONF_URL,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from pytest_homeassistant_custom_component.common import snapshot_platform

from .conftest import entity_state, state_of
from .recorded import INFLUXDB

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import entity_registry as er
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from syrupy.assertion import SnapshotAssertion

    from .conftest import Refresh
    from .recorded import RecordedStack

MAIN = "binary_sensor.ha_ingestor"
ALERT_ATTRIBUTES = ("severity", "value", "warning_threshold", "error_threshold", "message")
EVENT_RATE = ("websocket-ingestion", "/api/v1/event-rate")


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the binary sensor platform."""
    return [Platform.BINARY_SENSOR]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_binary_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.parametrize(
    ("failed_of", "key", "state", "details"),
    [
        pytest.param(
            (15, 200),
            "high_error_rate",
            STATE_ON,
            {
                "severity": "error",
                "value": 7.5,
                "warning_threshold": 2.0,
                "error_threshold": 5.0,
                "message": "Error rate 7.5 % is above the error threshold of 5 %.",
            },
            id="on",
        ),
        pytest.param(
            (1, 200),
            "high_error_rate",
            STATE_OFF,
            {
                "severity": None,
                "value": None,
                "warning_threshold": 2.0,
                "error_threshold": 5.0,
                "message": "Error rate is within the thresholds.",
            },
            id="quiet",
        ),
        pytest.param(
            (75, 2310),
            "low_success_rate",
            STATE_OFF,
            {
                "severity": None,
                "value": None,
                "warning_threshold": 95.0,
                "error_threshold": 90.0,
                "message": "Success rate is within the thresholds.",
            },
            id="quiet-as-recorded",
        ),
        pytest.param(
            # Nothing processed yet: the service has no processing time to tell.
            (0, 0),
            "slow_processing",
            STATE_OFF,
            {
                "severity": "unknown",
                "value": None,
                "warning_threshold": 1000.0,
                "error_threshold": None,
                "message": "Processing time is unknown.",
            },
            id="input-unknown",
        ),
    ],
)
@pytest.mark.usefixtures("init_integration")
async def test_alerts_follow_each_refresh(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    stack: RecordedStack,
    refresh: Refresh,
    failed_of: tuple[int, int],
    key: str,
    state: str,
    details: dict[str, Any],
) -> None:
    # As recorded, 75 of 2,310 events failed: a warning.
    assert state_of(hass, f"{MAIN}_high_error_rate") == STATE_ON

    failed, total = failed_of
    stats = stack.payload(*EVENT_RATE)["processing_stats"]
    stats.update(failed_events=failed, processed_events=total - failed)
    await refresh()

    alert = entity_state(hass, f"{MAIN}_{key}")
    assert alert.state == state
    assert alert.attributes["device_class"] == "problem"
    assert {k: alert.attributes[k] for k in ALERT_ATTRIBUTES} == details


@pytest.mark.usefixtures("init_integration")
async def test_unhealthy_service_alert_names_it(
    hass: HomeAssistant, stack: RecordedStack, refresh: Refresh
) -> None:
    assert state_of(hass, f"{MAIN}_service_unhealthy") == STATE_OFF

    stack.payload("data-api", "/health")["status"] = "degraded"
    await refresh()

    degraded = entity_state(hass, f"{MAIN}_service_unhealthy")
    assert degraded.state == STATE_ON
    assert degraded.attributes["severity"] == "warning"
    assert degraded.attributes["value"] == "data-api"
    assert degraded.attributes["message"] == "data-api is degraded."


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_connectivity(
    hass: HomeAssistant,
    stack: RecordedStack,
    refresh: Refresh,
    init_integration: MockConfigEntry,
) -> None:
    influx = entity_state(hass, f"{MAIN}_influxdb_connected")
    assert influx.state == STATE_ON
    assert influx.attributes["device_class"] == "connectivity"
    assert influx.attributes["version"] == "v2.7.10"
    assert state_of(hass, f"{MAIN}_admin_api_connected") == STATE_ON
    assert state_of(hass, "binary_sensor.websocket_ingestion_connectivity") == STATE_ON
    assert state_of(hass, "binary_sensor.data_api_connectivity") == STATE_ON

    # InfluxDB and a service go down: the statistics come from the services.
    stack.down.update({INFLUXDB, "data-api"})
    await refresh()
    assert state_of(hass, f"{MAIN}_influxdb_connected") == STATE_OFF
    assert state_of(hass, f"{MAIN}_influxdb_unreachable") == STATE_ON
    assert state_of(hass, "binary_sensor.data_api_connectivity") == STATE_OFF

    # Without InfluxDB in the entry, its link was not asked about: unknown.
    hass.config_entries.async_update_entry(
        init_integration, data={**init_integration.data, CONF_URL: ""}
    )
    await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert state_of(hass, f"{MAIN}_influxdb_connected") == STATE_UNKNOWN


@pytest.mark.usefixtures("init_integration")
async def test_everything_unavailable_when_the_update_fails(
    hass: HomeAssistant, stack: RecordedStack, refresh: Refresh
) -> None:
    # The delivery check's alert (on by default) has its own coordinator (test_delivery.py).
    delivery = f"{MAIN}_events_lost"
    assert delivery in hass.states.async_entity_ids("binary_sensor")
    entity_ids = [e for e in hass.states.async_entity_ids("binary_sensor") if e != delivery]
    # Six alerts, two connectivity sensors, one for each of the 13 recorded services.
    assert len(entity_ids) == 6 + 2 + 13

    stack.down.update({INFLUXDB, *stack.payloads})
    await refresh()
    assert {state_of(hass, e) for e in entity_ids} == {STATE_UNAVAILABLE}

    stack.down.clear()
    await refresh()
    assert state_of(hass, f"{MAIN}_high_error_rate") == STATE_ON
    assert STATE_UNAVAILABLE not in {state_of(hass, e) for e in entity_ids}
