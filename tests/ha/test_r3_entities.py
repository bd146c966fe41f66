"""Entities only HomeIQ 2.0 (R3) offers: created where it runs, following its figures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from custom_components.ha_ingestor.api.models import (
    FiringAlert,
    IngestionFigures,
    Revision,
    ServiceState,
    ServiceStatus,
)
from custom_components.ha_ingestor.const import DOMAIN
from tests.ha.conftest import make_snapshot, poll, state_of

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry

    from custom_components.ha_ingestor.api.models import Snapshot

R3_SENSORS = (
    "ingestion_queue_fill",
    "events_filtered",
    "events_filtered_rate",
    "alertmanager_alerts_firing",
)
DOWN = FiringAlert(
    fingerprint="f1",
    name="ServiceDown",
    severity="critical",
    service="websocket-ingestion",
    summary="Service core-platform/homeiq-websocket:8001 is down",
    starts_at=datetime(2026, 8, 6, 17, 58, tzinfo=UTC),
)


def r3_snapshot(**changes: object) -> Snapshot:
    snapshot = make_snapshot(
        revision=Revision.R3,
        ingestion=IngestionFigures(
            queue_size=2500,
            queue_maxsize=10000,
            filter_enabled=True,
            filtered_events=1204,
            filtered_percent=52.0,
        ),
        firing_alerts=(DOWN,),
        services=(
            ServiceState(
                name="websocket-ingestion",
                status=ServiceStatus.HEALTHY,
                reachable=True,
                version="1.0.0",
                git_sha="580788a",
            ),
        ),
    )
    return replace(snapshot, **changes)


@pytest.fixture
def platforms() -> list[str]:
    return [Platform.SENSOR, Platform.BINARY_SENSOR]


def entity_id(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.unique_id}_{key}")


@pytest.mark.parametrize("snapshots", [[make_snapshot(revision=Revision.R2)]])
@pytest.mark.usefixtures("snapshots")
async def test_r2_gets_none_of_them(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    for key in R3_SENSORS:
        assert entity_id(hass, init_integration, "sensor", key) is None
    assert (
        entity_id(hass, init_integration, "binary_sensor", "alert_ingestion_backpressure") is None
    )
    assert entity_id(hass, init_integration, "sensor", "events_per_minute") is not None


@pytest.mark.parametrize(
    "snapshots",
    [
        [
            r3_snapshot(),
            r3_snapshot(
                ingestion=IngestionFigures(queue_size=9000, queue_maxsize=10000),
                firing_alerts=(),
            ),
        ]
    ],
)
@pytest.mark.usefixtures("snapshots")
async def test_r3_entities_follow_the_figures(
    hass: HomeAssistant, init_integration: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    entry = init_integration

    def ids(platform: str, key: str) -> str:
        found = entity_id(hass, entry, platform, key)
        assert found is not None, key
        return found

    queue = hass.states.get(ids("sensor", "ingestion_queue_fill"))
    assert queue is not None
    assert (float(queue.state), queue.attributes["unit_of_measurement"]) == (25.0, "%")
    assert queue.attributes["queue_maxsize"] == 10000
    assert state_of(hass, ids("binary_sensor", "alert_ingestion_backpressure")) == STATE_OFF
    assert state_of(hass, ids("sensor", "events_filtered")) == "1204"
    assert float(state_of(hass, ids("sensor", "events_filtered_rate"))) == 52.0
    firing = hass.states.get(ids("sensor", "alertmanager_alerts_firing"))
    assert firing is not None
    assert firing.state == "1"
    assert firing.attributes["alerts"] == [
        {
            "name": "ServiceDown",
            "severity": "critical",
            "service": "websocket-ingestion",
            "summary": "Service core-platform/homeiq-websocket:8001 is down",
            "starts_at": "2026-08-06T17:58:00+00:00",
        }
    ]
    (device,) = (
        d
        for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if (DOMAIN, f"{entry.unique_id}_websocket-ingestion") in d.identifiers
    )
    assert (device.sw_version, device.hw_version) == ("1.0.0", "580788a")

    await poll(hass, freezer)
    assert float(state_of(hass, ids("sensor", "ingestion_queue_fill"))) == 90.0
    assert state_of(hass, ids("binary_sensor", "alert_ingestion_backpressure")) == STATE_ON
    assert state_of(hass, ids("sensor", "alertmanager_alerts_firing")) == "0"


@pytest.mark.parametrize("snapshots", [[make_snapshot(revision=None), r3_snapshot()]])
@pytest.mark.usefixtures("snapshots")
async def test_r3_entities_appear_once_r3_is_seen(
    hass: HomeAssistant, init_integration: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    assert entity_id(hass, init_integration, "sensor", "ingestion_queue_fill") is None
    await poll(hass, freezer)
    await poll(hass, freezer)
    found = entity_id(hass, init_integration, "sensor", "ingestion_queue_fill")
    assert found is not None
    assert float(state_of(hass, found)) == 25.0
    # Added once, not again on every refresh.
    await poll(hass, freezer)
    registry = er.async_get(hass)
    keys = [
        e.unique_id for e in er.async_entries_for_config_entry(registry, init_integration.entry_id)
    ]
    assert keys.count(f"{init_integration.unique_id}_ingestion_queue_fill") == 1
