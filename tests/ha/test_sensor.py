"""Sensors of the main device and the per-service status sensors."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import (
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    snapshot_platform,
)

from custom_components.ha_ingestor.api.errors import IngestorConnectionError, Origin
from custom_components.ha_ingestor.api.models import (
    Alert,
    AlertKey,
    DataSource,
    EventStatistics,
    ProcessingMetrics,
    ServiceState,
    ServiceStatus,
    Severity,
    TrendDirection,
    TrendPoint,
)
from custom_components.ha_ingestor.sensor import HaIngestorSensor

from .conftest import NOW, make_snapshot, poll, state_of

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from syrupy.assertion import SnapshotAssertion

    from custom_components.ha_ingestor.api.models import Snapshot

MAIN = "sensor.ha_ingestor"


def _rich_snapshot() -> Snapshot:
    """Every figure known, trend and an active alert included."""
    return make_snapshot(
        events=EventStatistics(
            events_in_period=1200,
            events_per_minute=20.0,
            last_event=NOW - timedelta(seconds=90),
            active_entities=42,
            events_by_domain=(("sensor", 900), ("light", 300)),
            trend=(
                TrendPoint(time=NOW - timedelta(minutes=5), count=90),
                TrendPoint(time=NOW, count=110),
            ),
            trend_direction=TrendDirection.RISING,
        ),
        metrics=ProcessingMetrics(error_rate=3.25, success_rate=96.75, processing_time_ms=40.0),
        alerts=(
            Alert(
                key=AlertKey.HIGH_ERROR_RATE,
                active=True,
                severity=Severity.WARNING,
                value=3.25,
                warning_threshold=2.0,
                error_threshold=5.0,
                message="Error rate 3.25% is above the warning threshold of 2%.",
            ),
            Alert(
                key=AlertKey.LOW_SUCCESS_RATE,
                active=False,
                severity=None,
                value=96.75,
                warning_threshold=95.0,
                error_threshold=90.0,
                message="Success rate 96.75% is within the thresholds.",
            ),
        ),
    )


@pytest.fixture(autouse=True)
def frozen_now(freezer: FrozenDateTimeFactory) -> None:
    """State timestamps in the snapshots stay put."""
    freezer.move_to(NOW)


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the sensor platform."""
    return [Platform.SENSOR]


@pytest.fixture
def snapshots() -> list[Snapshot | Exception]:
    """A snapshot with every figure known."""
    return [_rich_snapshot()]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_values_follow_the_snapshot(hass: HomeAssistant) -> None:
    data = _rich_snapshot()
    assert float(state_of(hass, f"{MAIN}_events_per_minute")) == data.events.events_per_minute
    assert int(state_of(hass, f"{MAIN}_events_in_period")) == data.events.events_in_period
    assert int(state_of(hass, f"{MAIN}_active_entities")) == data.events.active_entities
    assert float(state_of(hass, f"{MAIN}_error_rate")) == data.metrics.error_rate
    assert float(state_of(hass, f"{MAIN}_success_rate")) == data.metrics.success_rate
    assert float(state_of(hass, f"{MAIN}_processing_time")) == data.metrics.processing_time_ms
    assert float(state_of(hass, f"{MAIN}_query_duration")) == data.query_duration_ms
    # The lag is measured at the refresh that saw the newest event.
    assert float(state_of(hass, f"{MAIN}_ingestion_lag")) == 90.0
    assert state_of(hass, f"{MAIN}_last_event") == "2026-11-26T11:58:30+00:00"
    assert state_of(hass, f"{MAIN}_last_successful_update") == data.fetched_at.isoformat()
    assert state_of(hass, f"{MAIN}_data_source") == "influxdb"

    # One of two alerts is on: the count and the list agree.
    alerts = hass.states.get(f"{MAIN}_active_alerts")
    assert alerts is not None
    assert alerts.state == "1"
    assert alerts.attributes["alerts"] == [
        {
            "key": "high_error_rate",
            "severity": "warning",
            "message": "Error rate 3.25% is above the warning threshold of 2%.",
        }
    ]

    events = hass.states.get(f"{MAIN}_events_in_period")
    assert events is not None
    assert events.attributes["events_by_domain"] == {"sensor": 900, "light": 300}
    assert events.attributes["trend"] == [
        {"time": "2026-11-26T11:55:00+00:00", "count": 90},
        {"time": "2026-11-26T12:00:00+00:00", "count": 110},
    ]
    assert events.attributes["trend_direction"] == "rising"
    assert events.attributes["period"] == "1h"


@pytest.mark.usefixtures("init_integration")
async def test_noisy_sensors_are_disabled_by_default(
    hass: HomeAssistant, entity_registry: er.EntityRegistry
) -> None:
    for key in ("query_duration", "last_successful_update"):
        entry = entity_registry.async_get(f"{MAIN}_{key}")
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        assert hass.states.get(f"{MAIN}_{key}") is None
    assert hass.states.get(f"{MAIN}_events_per_minute") is not None


def test_large_attributes_are_not_recorded() -> None:
    combined = HaIngestorSensor._Entity__combined_unrecorded_attributes  # type: ignore[attr-defined]
    assert {"events_by_domain", "trend", "alerts"} <= combined


@pytest.mark.parametrize(
    "snapshots",
    [
        [
            make_snapshot(
                events=EventStatistics(),
                metrics=ProcessingMetrics(),
                services=(
                    ServiceState(
                        name="websocket-ingestion", status=ServiceStatus.UNKNOWN, reachable=True
                    ),
                ),
            )
        ]
    ],
)
@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_figures_not_known_are_unknown_not_zero(hass: HomeAssistant) -> None:
    for key in (
        "events_per_minute",
        "events_in_period",
        "last_event",
        "ingestion_lag",
        "active_entities",
        "error_rate",
        "success_rate",
        "processing_time",
    ):
        assert state_of(hass, f"{MAIN}_{key}") == STATE_UNKNOWN, key
    # No alert is on, and that is a real zero.
    assert state_of(hass, f"{MAIN}_active_alerts") == "0"
    assert state_of(hass, "sensor.websocket_ingestion_status") == "unknown"


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_influxdb_figures_unavailable_on_fallback(
    hass: HomeAssistant, snapshots: list[Snapshot | Exception], freezer: FrozenDateTimeFactory
) -> None:
    assert state_of(hass, f"{MAIN}_events_in_period") == "1200"

    fallback = make_snapshot(
        DataSource.SERVICES_FALLBACK,
        events=EventStatistics(events_per_minute=18.5, last_event=NOW - timedelta(seconds=30)),
    )
    snapshots[:] = [fallback]
    await poll(hass, freezer)

    assert state_of(hass, f"{MAIN}_data_source") == "services_fallback"
    for key in ("events_in_period", "active_entities"):
        assert state_of(hass, f"{MAIN}_{key}") == STATE_UNAVAILABLE, key
    # What the services know stays available, from the services.
    assert state_of(hass, f"{MAIN}_events_per_minute") == "18.5"
    assert float(state_of(hass, f"{MAIN}_ingestion_lag")) == 30.0
    assert state_of(hass, f"{MAIN}_error_rate") == "0.5"
    assert state_of(hass, "sensor.websocket_ingestion_status") == "healthy"

    snapshots[:] = [_rich_snapshot()]
    await poll(hass, freezer)
    assert state_of(hass, f"{MAIN}_events_in_period") == "1200"
    assert state_of(hass, f"{MAIN}_data_source") == "influxdb"


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_everything_unavailable_when_the_update_fails(
    hass: HomeAssistant, snapshots: list[Snapshot | Exception], freezer: FrozenDateTimeFactory
) -> None:
    entity_ids = hass.states.async_entity_ids("sensor")
    assert len(entity_ids) == 14  # 12 statistics + 2 service status sensors

    snapshots[:] = [IngestorConnectionError("both down", origin=Origin.SERVICES)]
    await poll(hass, freezer)
    assert {state_of(hass, e) for e in entity_ids} == {STATE_UNAVAILABLE}

    snapshots[:] = [_rich_snapshot()]
    await poll(hass, freezer)
    assert STATE_UNAVAILABLE not in {state_of(hass, e) for e in entity_ids}


@pytest.mark.usefixtures("init_integration")
async def test_service_status_follows_the_service(
    hass: HomeAssistant, snapshots: list[Snapshot | Exception], freezer: FrozenDateTimeFactory
) -> None:
    assert state_of(hass, "sensor.admin_api_status") == "healthy"
    base = _rich_snapshot()
    for status in (ServiceStatus.DEGRADED, ServiceStatus.UNHEALTHY, ServiceStatus.UNKNOWN):
        services = tuple(
            replace(s, status=status) if s.name == "admin-api" else s for s in base.services
        )
        snapshots[:] = [replace(base, services=services)]
        await poll(hass, freezer)
        assert state_of(hass, "sensor.admin_api_status") == status.value
        assert state_of(hass, "sensor.websocket_ingestion_status") == "healthy"
