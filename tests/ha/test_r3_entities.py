"""Entities only HomeIQ 2.0 (R3) offers: created where it runs, following its figures.

The real clients ask the simulated R3 (or R2) services; only the revision's answers decide
which entities exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.const import CONF_API_KEY, STATE_OFF, STATE_ON
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.models import Revision
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_UPDATE_INTERVAL,
    CONF_WEBSOCKET_INGESTION_URL,
    DOMAIN,
    MIN_UPDATE_INTERVAL,
)
from tests.support.simulator import WEBSOCKET_INGESTION, Fault, IngestorSimulator
from tests.support.simulator_r3 import IngestorSimulatorR3, WebhookAlert

from .live import entity_of, let_interval_pass

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

pytestmark = pytest.mark.usefixtures("socket_enabled")

KEY = "r3-key"
R3_SENSORS = (
    "ingestion_queue_fill",
    "events_filtered",
    "events_filtered_rate",
    "alertmanager_alerts_firing",
)


def _entry(hass: HomeAssistant, sim: IngestorSimulator, key: str | None = KEY) -> MockConfigEntry:
    data = {
        CONF_ADMIN_API_URL: sim.admin_api_url,
        CONF_WEBSOCKET_INGESTION_URL: sim.url_of(WEBSOCKET_INGESTION),
    }
    if key:
        data[CONF_API_KEY] = key
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor (127.0.0.1)",
        unique_id=f"127.0.0.1:{sim.admin_api_url.rsplit(':', 1)[1]}",
        data=data,
        options={CONF_UPDATE_INTERVAL: MIN_UPDATE_INTERVAL},
    )
    entry.add_to_hass(hass)
    return entry


def _entity_id(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.unique_id}_{key}")


async def _poll(hass: HomeAssistant) -> None:
    await let_interval_pass(hass, MIN_UPDATE_INTERVAL)


async def test_r2_gets_none_of_them(hass: HomeAssistant) -> None:
    async with IngestorSimulator(Revision.R2, upstream_timeout=0.5) as sim:
        entry = _entry(hass, sim, key=None)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await _poll(hass)
        for key in R3_SENSORS:
            assert _entity_id(hass, entry, "sensor", key) is None
        assert _entity_id(hass, entry, "binary_sensor", "alert_ingestion_backpressure") is None
        assert _entity_id(hass, entry, "sensor", "events_per_minute") is not None
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_r3_entities_follow_the_figures(hass: HomeAssistant) -> None:
    async with IngestorSimulatorR3(KEY, upstream_timeout=0.5) as sim:
        sim.set_figures(
            queue_size=2500,
            filter_enabled=True,
            filtered_events=1204,
            filter_passed_events=1106,
            git_sha="580788a",
        )
        await sim.post_alerts([WebhookAlert("ServiceDown", "critical", fingerprint="f1")])
        entry = _entry(hass, sim)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await _poll(hass)  # the alerts are asked once a refresh has seen R3

        def state(platform: str, key: str) -> str:
            return entity_of(hass, entry, platform, key).state

        assert float(state("sensor", "ingestion_queue_fill")) == 25.0
        assert state("binary_sensor", "alert_ingestion_backpressure") == STATE_OFF
        assert state("sensor", "events_filtered") == "1204"
        assert float(state("sensor", "events_filtered_rate")) == pytest.approx(52.12, abs=0.01)
        firing_id = _entity_id(hass, entry, "sensor", "alertmanager_alerts_firing")
        assert firing_id is not None
        firing = hass.states.get(firing_id)
        assert firing is not None
        assert firing.state == "1"
        assert firing.attributes["alerts"] == [
            {
                "name": "ServiceDown",
                "severity": "critical",
                "service": "websocket-ingestion",
                "summary": "Service core-platform/homeiq-websocket:8001 is down",
                "starts_at": "2026-08-06T17:58:00.123456+00:00",
            }
        ]
        (device,) = (
            d
            for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
            if (DOMAIN, f"{entry.unique_id}_{WEBSOCKET_INGESTION}") in d.identifiers
        )
        assert (device.sw_version, device.hw_version) == ("1.0.0", "580788a")

        sim.set_figures(queue_size=9000)
        await sim.post_alerts([WebhookAlert("ServiceDown", status="resolved", fingerprint="f1")])
        await _poll(hass)
        assert float(state("sensor", "ingestion_queue_fill")) == 90.0
        assert state("binary_sensor", "alert_ingestion_backpressure") == STATE_ON
        assert state("sensor", "alertmanager_alerts_firing") == "0"
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_r3_entities_appear_once_r3_is_seen(hass: HomeAssistant) -> None:
    async with IngestorSimulatorR3(KEY, upstream_timeout=0.5) as sim:
        # Nothing readable at first: the revision cannot be told.
        await sim.set_fault(WEBSOCKET_INGESTION, Fault.GARBLED)
        await sim.set_fault("admin-api", Fault.GARBLED)
        entry = _entry(hass, sim)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert _entity_id(hass, entry, "sensor", "ingestion_queue_fill") is None

        await sim.clear_faults()
        await _poll(hass)
        assert float(entity_of(hass, entry, "sensor", "ingestion_queue_fill").state) == 0.0
        await _poll(hass)  # added once, not again on every refresh
        unique_ids = [
            e.unique_id
            for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        ]
        assert unique_ids.count(f"{entry.unique_id}_ingestion_queue_fill") == 1
        assert await hass.config_entries.async_unload(entry.entry_id)
