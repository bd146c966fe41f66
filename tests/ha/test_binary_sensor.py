"""Alert, connectivity and per-service binary sensors."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import (
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from pytest_homeassistant_custom_component.common import (
    snapshot_platform,
)

from custom_components.ha_ingestor.api.errors import IngestorConnectionError, Origin
from custom_components.ha_ingestor.api.models import (
    Alert,
    AlertKey,
    DataSource,
    ServiceState,
    ServiceStatus,
    Severity,
)

from .conftest import NOW, make_snapshot, poll, state_of

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import entity_registry as er
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ha_ingestor.api.models import Snapshot

MAIN = "binary_sensor.ha_ingestor"
ALERT_ATTRIBUTES = ("severity", "value", "warning_threshold", "error_threshold", "message")

ERROR_RATE_ALERT = Alert(
    key=AlertKey.HIGH_ERROR_RATE,
    active=True,
    severity=Severity.ERROR,
    value=7.5,
    warning_threshold=2.0,
    error_threshold=5.0,
    message="Error rate 7.5% is above the error threshold of 5%.",
)
SUCCESS_RATE_QUIET = Alert(
    key=AlertKey.LOW_SUCCESS_RATE,
    active=False,
    severity=None,
    value=99.0,
    warning_threshold=95.0,
    error_threshold=90.0,
    message="Success rate 99% is within the thresholds.",
)
STALLED_UNKNOWN = Alert(
    key=AlertKey.INGESTION_STALLED,
    active=False,
    severity=Severity.UNKNOWN,
    value=None,
    warning_threshold=5.0,
    error_threshold=15.0,
    message="Time since the last event is unknown.",
)
SERVICE_DEGRADED = Alert(
    key=AlertKey.SERVICE_UNHEALTHY,
    active=True,
    severity=Severity.WARNING,
    value="admin-api",
    warning_threshold="degraded",
    error_threshold="unhealthy",
    message="admin-api is degraded.",
)


def _alerting_snapshot() -> Snapshot:
    """One alert on (error), one quiet, one with unknown input, one on (warning, text)."""
    return make_snapshot(
        alerts=(ERROR_RATE_ALERT, SUCCESS_RATE_QUIET, STALLED_UNKNOWN, SERVICE_DEGRADED),
        services=(
            ServiceState(name="websocket-ingestion", status=ServiceStatus.HEALTHY, reachable=True),
            ServiceState(name="admin-api", status=ServiceStatus.DEGRADED, reachable=True),
            ServiceState(name="data-api", status=ServiceStatus.UNHEALTHY, reachable=False),
        ),
    )


@pytest.fixture(autouse=True)
def frozen_now(freezer: FrozenDateTimeFactory) -> None:
    """State timestamps in the snapshots stay put."""
    freezer.move_to(NOW)


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the binary sensor platform."""
    return [Platform.BINARY_SENSOR]


@pytest.fixture
def snapshots() -> list[Snapshot | Exception]:
    """A snapshot with alerts in every state."""
    return [_alerting_snapshot()]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_binary_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_alert_on_carries_its_details(hass: HomeAssistant) -> None:
    state = hass.states.get(f"{MAIN}_high_error_rate")
    assert state is not None
    assert state.state == STATE_ON
    assert state.attributes["device_class"] == "problem"
    assert {k: state.attributes[k] for k in ALERT_ATTRIBUTES} == {
        "severity": "error",
        "value": 7.5,
        "warning_threshold": 2.0,
        "error_threshold": 5.0,
        "message": "Error rate 7.5% is above the error threshold of 5%.",
    }

    degraded = hass.states.get(f"{MAIN}_service_unhealthy")
    assert degraded is not None
    assert degraded.state == STATE_ON
    assert degraded.attributes["severity"] == "warning"
    assert degraded.attributes["value"] == "admin-api"


@pytest.mark.usefixtures("init_integration")
async def test_quiet_alert_is_off(hass: HomeAssistant) -> None:
    state = hass.states.get(f"{MAIN}_low_success_rate")
    assert state is not None
    assert state.state == STATE_OFF
    assert state.attributes["severity"] is None
    assert state.attributes["value"] == 99.0


@pytest.mark.usefixtures("init_integration")
async def test_alert_with_unknown_input_is_off_with_severity_unknown(hass: HomeAssistant) -> None:
    # A rule whose input is unknown is off, with severity unknown (docs/architecture.md).
    state = hass.states.get(f"{MAIN}_ingestion_stalled")
    assert state is not None
    assert state.state == STATE_OFF
    assert state.attributes["severity"] == "unknown"
    assert state.attributes["value"] is None
    assert state.attributes["message"] == "Time since the last event is unknown."


@pytest.mark.usefixtures("init_integration")
async def test_alert_not_evaluated_is_unknown(hass: HomeAssistant) -> None:
    # The snapshot carries no slow-processing or InfluxDB alert at all.
    for key in ("slow_processing", "influxdb_unreachable"):
        state = hass.states.get(f"{MAIN}_{key}")
        assert state is not None
        assert state.state == STATE_UNKNOWN
        assert "severity" not in state.attributes


@pytest.mark.usefixtures("init_integration")
async def test_alerts_follow_each_refresh(
    hass: HomeAssistant, snapshots: list[Snapshot | Exception], freezer: FrozenDateTimeFactory
) -> None:
    assert state_of(hass, f"{MAIN}_high_error_rate") == STATE_ON
    cleared = replace(
        ERROR_RATE_ALERT,
        active=False,
        severity=None,
        value=0.5,
        message="Error rate 0.5% is within the thresholds.",
    )
    snapshots[:] = [make_snapshot(alerts=(cleared,))]
    await poll(hass, freezer)
    state = hass.states.get(f"{MAIN}_high_error_rate")
    assert state is not None
    assert state.state == STATE_OFF
    assert state.attributes["value"] == 0.5


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_connectivity(
    hass: HomeAssistant, snapshots: list[Snapshot | Exception], freezer: FrozenDateTimeFactory
) -> None:
    influx = hass.states.get(f"{MAIN}_influxdb_connected")
    assert influx is not None
    assert influx.state == STATE_ON
    assert influx.attributes["device_class"] == "connectivity"
    assert influx.attributes["version"] == "v2.7.10"
    assert state_of(hass, f"{MAIN}_admin_api_connected") == STATE_ON
    assert state_of(hass, "binary_sensor.websocket_ingestion_connectivity") == STATE_ON
    assert state_of(hass, "binary_sensor.data_api_connectivity") == STATE_OFF

    # On the fallback the InfluxDB link is down; a source that was not asked is unknown.
    snapshots[:] = [make_snapshot(DataSource.SERVICES_FALLBACK, admin_api_connected=None)]
    await poll(hass, freezer)
    assert state_of(hass, f"{MAIN}_influxdb_connected") == STATE_OFF
    assert state_of(hass, f"{MAIN}_admin_api_connected") == STATE_UNKNOWN


@pytest.mark.usefixtures("init_integration")
async def test_everything_unavailable_when_the_update_fails(
    hass: HomeAssistant, snapshots: list[Snapshot | Exception], freezer: FrozenDateTimeFactory
) -> None:
    entity_ids = hass.states.async_entity_ids("binary_sensor")
    # Six alerts, two connectivity sensors, one per service.
    assert len(entity_ids) == 11

    snapshots[:] = [IngestorConnectionError("both down", origin=Origin.INFLUXDB)]
    await poll(hass, freezer)
    assert {state_of(hass, e) for e in entity_ids} == {STATE_UNAVAILABLE}

    snapshots[:] = [_alerting_snapshot()]
    await poll(hass, freezer)
    assert state_of(hass, f"{MAIN}_high_error_rate") == STATE_ON
    assert STATE_UNAVAILABLE not in {state_of(hass, e) for e in entity_ids}
