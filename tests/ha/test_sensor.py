"""Sensors of the main device and the per-service status sensors."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, Platform
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import snapshot_platform

from custom_components.ha_ingestor.api.influx.windows import RECOUNT_EVERY
from custom_components.ha_ingestor.sensor import HaIngestorSensor

from .conftest import INTERVAL, NOW, entity_state, state_of
from .recorded import INFLUXDB, point_time, tag

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from syrupy.assertion import SnapshotAssertion

    from .conftest import Refresh
    from .recorded import RecordedStack

MAIN = "sensor.ha_ingestor"
DELIVERY_SENSORS = ("events_lost", "delivery_completeness", "delivery_latency")
EVENT_RATE = ("websocket-ingestion", "/api/v1/event-rate")
WEBSOCKET_HEALTH = ("websocket-ingestion", "/health")


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the sensor platform."""
    return [Platform.SENSOR]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_values_follow_the_recording(hass: HomeAssistant, stack: RecordedStack) -> None:
    # What InfluxDB holds for the hour before NOW, counted here from the recorded points.
    points = stack.events_in_period(NOW - timedelta(hours=1))
    newest = max(point_time(line) for line in points)
    domains = Counter(tag(line, "domain") for line in points)
    assert float(state_of(hass, f"{MAIN}_events_per_minute")) == pytest.approx(len(points) / 60)
    assert int(state_of(hass, f"{MAIN}_events_in_period")) == len(points)
    assert int(state_of(hass, f"{MAIN}_active_entities")) == len(
        {tag(line, "entity_id") for line in points}
    )
    lag = entity_state(hass, f"{MAIN}_ingestion_lag")
    assert dt_util.parse_datetime(lag.attributes["last_event"]) == newest
    # The lag is measured at the refresh that saw the newest event.
    assert float(state_of(hass, f"{MAIN}_ingestion_lag")) == pytest.approx(
        (NOW - newest).total_seconds(), abs=1
    )
    # What the websocket service reported about its processing.
    stats = stack.payload(*EVENT_RATE)["processing_stats"]
    failed, processed = stats["failed_events"], stats["processed_events"]
    assert float(state_of(hass, f"{MAIN}_error_rate")) == pytest.approx(
        100 * failed / (failed + processed)
    )
    assert float(state_of(hass, f"{MAIN}_success_rate")) == stats["success_rate"]
    assert float(state_of(hass, f"{MAIN}_processing_time")) == (stats["average_processing_time_ms"])
    assert state_of(hass, f"{MAIN}_data_source") == "influxdb"

    # The recorded error rate (3.25 %) is beyond the warning threshold: one alert is on.
    alerts = entity_state(hass, f"{MAIN}_active_alerts")
    assert alerts.state == "1"
    assert alerts.attributes["alerts"] == [
        {
            "key": "high_error_rate",
            "severity": "warning",
            "message": "Error rate 3.25 % is above the warning threshold of 2 %.",
        }
    ]

    events = entity_state(hass, f"{MAIN}_events_in_period")
    assert events.attributes["events_by_domain"] == dict(domains)
    trend = events.attributes["trend"]
    assert len(trend) == 12  # 1 h in 5 min windows
    assert trend[-1]["time"] == NOW.isoformat()
    assert sum(point["count"] for point in trend) == len(points)
    assert events.attributes["period"] == "1h"


@pytest.mark.usefixtures("init_integration")
async def test_noisy_sensors_are_disabled_by_default(
    hass: HomeAssistant, entity_registry: er.EntityRegistry
) -> None:
    for key in ("query_duration",):
        entry = entity_registry.async_get(f"{MAIN}_{key}")
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(f"{MAIN}_{key}") is None
    assert hass.states.get(f"{MAIN}_events_per_minute") is not None


def test_large_attributes_are_not_recorded() -> None:
    combined = HaIngestorSensor._Entity__combined_unrecorded_attributes  # type: ignore[attr-defined]
    assert {"events_by_domain", "trend", "alerts"} <= combined


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_figures_not_known_are_unknown_not_zero(
    hass: HomeAssistant, stack: RecordedStack, refresh: Refresh, freezer: FrozenDateTimeFactory
) -> None:
    # A freshly started ingestor: nothing processed yet, nothing in InfluxDB. Points that
    # vanish from InfluxDB are seen by the next full recount (api/influx/windows.py), due after
    # an hour.
    stats = stack.payload(*EVENT_RATE)["processing_stats"]
    stats.update(processed_events=0, failed_events=0, success_rate=0.0)
    stack.points = []
    freezer.tick(RECOUNT_EVERY)
    await refresh()

    for key in ("ingestion_lag", "error_rate", "success_rate", "processing_time"):
        assert state_of(hass, f"{MAIN}_{key}") == STATE_UNKNOWN, key
    # Counted and none found: real zeros.
    assert state_of(hass, f"{MAIN}_events_in_period") == "0"
    assert state_of(hass, f"{MAIN}_active_entities") == "0"


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_influxdb_figures_unavailable_on_fallback(
    hass: HomeAssistant, stack: RecordedStack, refresh: Refresh
) -> None:
    in_period = state_of(hass, f"{MAIN}_events_in_period")

    stack.down.add(INFLUXDB)
    await refresh()

    assert state_of(hass, f"{MAIN}_data_source") == "services_fallback"
    for key in ("events_in_period", "active_entities"):
        assert state_of(hass, f"{MAIN}_{key}") == STATE_UNAVAILABLE, key
    # What the services know stays available, from the services.
    subscription = stack.payload(*WEBSOCKET_HEALTH)["subscription"]
    assert (
        float(state_of(hass, f"{MAIN}_events_per_minute"))
        == (subscription["event_rate_per_minute"])
    )
    last_event = dt_util.parse_datetime(subscription["last_event_time"] + "+00:00")
    assert last_event is not None
    assert float(state_of(hass, f"{MAIN}_ingestion_lag")) == pytest.approx(
        (NOW + INTERVAL - last_event).total_seconds()
    )
    assert state_of(hass, "sensor.websocket_ingestion_status") == "healthy"

    stack.down.discard(INFLUXDB)
    await refresh()
    assert state_of(hass, f"{MAIN}_events_in_period") == in_period
    assert state_of(hass, f"{MAIN}_data_source") == "influxdb"


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_everything_unavailable_when_the_update_fails(
    hass: HomeAssistant, stack: RecordedStack, refresh: Refresh
) -> None:
    # The delivery check (on by default) has its own coordinator and tests (test_delivery.py).
    delivery = {f"{MAIN}_{key}" for key in DELIVERY_SENSORS}
    assert delivery <= set(hass.states.async_entity_ids("sensor"))
    entity_ids = [e for e in hass.states.async_entity_ids("sensor") if e not in delivery]
    # 10 statistics and a status sensor for each of the 13 services of the recorded stack.
    assert len(entity_ids) == 10 + 13

    stack.down.update({INFLUXDB, *stack.payloads})
    await refresh()
    assert {state_of(hass, e) for e in entity_ids} == {STATE_UNAVAILABLE}

    stack.down.clear()
    await refresh()
    assert STATE_UNAVAILABLE not in {state_of(hass, e) for e in entity_ids}


@pytest.mark.parametrize(
    ("reported", "state"),
    [("degraded", "degraded"), ("unhealthy", "unhealthy"), ("maintenance", "unknown")],
)
@pytest.mark.usefixtures("init_integration")
async def test_service_status_follows_the_service(
    hass: HomeAssistant,
    stack: RecordedStack,
    refresh: Refresh,
    reported: str,
    state: str,
) -> None:
    assert state_of(hass, "sensor.data_api_status") == "healthy"

    stack.payload("data-api", "/health")["status"] = reported
    await refresh()

    assert state_of(hass, "sensor.data_api_status") == state
    assert state_of(hass, "sensor.websocket_ingestion_status") == "healthy"
