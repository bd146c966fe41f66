"""The delivery check end to end: Home Assistant's bus, a simulated ingestor, a real influxd.

The simulated ingestor subscribes to `state_changed` over Home Assistant's websocket API with
an access token and writes schema-B points into influxd in batches (up to 1,000 points or
5 s), dropping a known set. The test changes states and checks the entities against what the
simulator really dropped. Time is real (the batches and the settle delay are); the settle
delay is shortened to keep the test short, nothing else is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.delivery import (
    FINE_SECONDS,
    POLL_SECONDS,
)
from custom_components.ha_ingestor.config_flow import unique_id_for
from custom_components.ha_ingestor.const import (
    CONF_DELIVERY_CHECK,
    DOMAIN,
    ISSUE_DELIVERY_NOT_SOURCE,
)
from tests.support.delivery_ingestor import DeliveryIngestor
from tests.support.events import Event, Schema, event_line

from .live import entity_of, influx_data

if TYPE_CHECKING:
    from collections.abc import Iterator

    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.typing import (
        ClientSessionGenerator,
        WebSocketGenerator,
    )

    from custom_components.ha_ingestor.coordinators.delivery import DeliveryCoordinator
    from tests.support.influxdb_server import InfluxDBServer

SETTLE = 6.0
DELAY = 2.0
LOSSY, STEADY = "light.lossy", "sensor.steady"


@pytest.fixture
def database(influxdb_server: InfluxDBServer, socket_enabled: None) -> Iterator[str]:
    with influxdb_server.scratch_database("delivery") as name:
        yield name


@pytest.fixture
async def entry(
    hass: HomeAssistant, influxdb_server: InfluxDBServer, database: str
) -> MockConfigEntry:
    """An InfluxQL entry on the real server with the delivery check on."""
    data = influx_data(influxdb_server, database)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor",
        unique_id=unique_id_for(data),
        data=data,
        options={CONF_DELIVERY_CHECK: True},
    )
    # The integration first (its card needs the HTTP router before a websocket client
    # starts it), the entry later, once the test is ready to count.
    assert await async_setup_component(hass, DOMAIN, {})
    return entry


@pytest.fixture
def short_settle() -> Iterator[None]:
    """The settle delay shortened (the ingestor's batches still take their real 5 s)."""
    with patch("custom_components.ha_ingestor.coordinators.delivery.SETTLE_SECONDS", SETTLE):
        yield


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def _delivery(entry: MockConfigEntry) -> DeliveryCoordinator:
    delivery = entry.runtime_data.delivery
    assert delivery is not None
    return delivery


async def _counting(entry: MockConfigEntry) -> None:
    """Wait (at most one fine window) until counting has begun."""
    origin = _delivery(entry).counter.origin
    await asyncio.sleep(max(0.0, origin - time.time()) + 0.05)


async def _settle_and_refresh(hass: HomeAssistant, entry: MockConfigEntry, fired: float) -> None:
    """Wait until everything fired by `fired` is settled, then refresh the check."""
    wait = fired + SETTLE + FINE_SECONDS - time.time()
    await asyncio.sleep(max(0.0, wait) + 0.2)
    await _delivery(entry).async_refresh()
    await hass.async_block_till_done()


async def _restart_counts_afresh(
    hass: HomeAssistant, entry: MockConfigEntry, ingestor: DeliveryIngestor
) -> None:
    # A restart counts afresh: the losses before it are not claimed again.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entity_of(hass, entry, "sensor", "events_lost").state == STATE_UNKNOWN
    await _counting(entry)
    origin = _delivery(entry).counter.origin
    for i in range(4):
        hass.states.async_set(STEADY, f"after {i}")
        await asyncio.sleep(0.01)  # one entity's points in one millisecond are one point
    fired = time.time()
    await hass.async_block_till_done()
    await asyncio.sleep(POLL_SECONDS + 0.5)
    await _settle_and_refresh(hass, entry, fired)
    lost = entity_of(hass, entry, "sensor", "events_lost")
    assert lost.state == "0"
    until = datetime.fromisoformat(lost.attributes["until"]).timestamp()
    assert lost.attributes["events_fired"] == ingestor.fired_between(origin, until) >= 4
    assert float(entity_of(hass, entry, "sensor", "delivery_completeness").state) == 100.0
    assert entity_of(hass, entry, "binary_sensor", "alert_events_lost").state == "off"


@pytest.mark.usefixtures("short_settle")
async def test_lost_events_latency_and_restart(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    entry: MockConfigEntry,
    influxdb_server: InfluxDBServer,
    database: str,
) -> None:
    # The ingestor subscribes first: every event after the check starts counting reaches it.
    ingestor = DeliveryIngestor(
        await hass_ws_client(hass),
        influxdb_server,
        database,
        drop=lambda entity_id, n: entity_id == LOSSY and n % 3 == 0,
        delay=DELAY,
    )
    await ingestor.start()
    try:
        await _set_up(hass, entry)
        await _counting(entry)
        origin = _delivery(entry).counter.origin
        for i in range(30):
            hass.states.async_set(LOSSY, f"s{i}")
            hass.states.async_set(STEADY, str(i))
            await asyncio.sleep(0.02)
        outage_start = time.time()  # everything fired during the outage is lost
        for i in range(5):
            hass.states.async_set(STEADY, f"outage {i}")
        ingestor.outages.append((outage_start, time.time()))
        hass.states.async_set("switch.gone", "on")
        hass.states.async_remove("switch.gone")  # a removal: not counted, not stored
        fired = time.time()
        await hass.async_block_till_done()
        await asyncio.sleep(POLL_SECONDS)  # the batch timer and a latency poll or two
        await _settle_and_refresh(hass, entry, fired)

        assert ingestor.dropped == {LOSSY: 10, STEADY: 5}
        lost = entity_of(hass, entry, "sensor", "events_lost")
        assert int(lost.state) == ingestor.lost == 15
        assert lost.attributes["entities_lost_most"] == [
            {"entity_id": LOSSY, "lost": 10},
            {"entity_id": STEADY, "lost": 5},
        ]
        until = datetime.fromisoformat(lost.attributes["until"]).timestamp()
        fired_total = ingestor.fired_between(origin, until)
        assert fired_total >= 66  # 30 + 30 + 5 + the switch turned on
        assert lost.attributes["events_fired"] == fired_total
        assert lost.attributes["events_extra"] == 0
        completeness = entity_of(hass, entry, "sensor", "delivery_completeness")
        assert float(completeness.state) == pytest.approx(
            100 * (fired_total - 15) / fired_total, abs=1e-3
        )
        alert = entity_of(hass, entry, "binary_sensor", "alert_events_lost")
        assert alert.state == "on"
        assert alert.attributes["severity"] == "error"

        # Latency: the first event is sampled; its point became readable after the batch
        # wait plus the injected delay, and a poll sees it within one poll interval of that.
        latency = entity_of(hass, entry, "sensor", "delivery_latency")
        first_fired, readable = min(v for v in ingestor.readable.values() if v[0] >= origin)
        true_latency = readable - first_fired
        assert true_latency >= DELAY
        assert true_latency - 0.5 <= float(latency.state) <= true_latency + POLL_SECONDS + 0.5
        assert latency.attributes["samples"] == 1

        await _restart_counts_afresh(hass, entry, ingestor)
    finally:
        await ingestor.stop()


async def _only_another_home_assistant_arrives(
    hass: HomeAssistant, entry: MockConfigEntry, influxdb_server: InfluxDBServer, database: str
) -> None:
    """Set up; ours fire, another Home Assistant's events fill the bucket, none of ours."""
    await _set_up(hass, entry)
    await _counting(entry)
    for i in range(3):
        hass.states.async_set("light.mine", f"s{i}")
    fired = time.time()
    theirs = [
        event_line(
            Event(
                entity_id="light.theirs",
                time=datetime.fromtimestamp(fired + i / 10, UTC),
                state="on",
                old_state="off",
            ),
            Schema.B,
        )
        for i in range(4)
    ]
    influxdb_server.write(database, theirs)
    await _settle_and_refresh(hass, entry, fired)


@pytest.mark.usefixtures("short_settle")
async def test_not_this_home_assistant_and_influxdb_down(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    influxdb_server: InfluxDBServer,
    database: str,
) -> None:
    await _only_another_home_assistant_arrives(hass, entry, influxdb_server, database)

    assert entity_of(hass, entry, "sensor", "delivery_completeness").state == STATE_UNKNOWN
    assert entity_of(hass, entry, "sensor", "events_lost").state == STATE_UNKNOWN
    issue_id = f"{ISSUE_DELIVERY_NOT_SOURCE}_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == ISSUE_DELIVERY_NOT_SOURCE

    fired_before = entity_of(hass, entry, "sensor", "events_lost").attributes["events_fired"]
    # InfluxDB down: the figures are unavailable, counting goes on.
    await hass.async_add_executor_job(influxdb_server.stop)
    try:
        hass.states.async_set("light.mine", "during")
        await _settle_and_refresh(hass, entry, time.time())
        assert entity_of(hass, entry, "sensor", "events_lost").state == STATE_UNAVAILABLE
    finally:
        await hass.async_add_executor_job(influxdb_server.start)
    await _delivery(entry).async_refresh()
    await hass.async_block_till_done()
    lost = entity_of(hass, entry, "sensor", "events_lost")
    assert lost.state == STATE_UNKNOWN  # still not the source, and known to be not
    assert lost.attributes["events_fired"] > fired_before  # counted during the outage

    await hass.config_entries.async_unload(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def _ingestor_filtered(hass: HomeAssistant, entry: MockConfigEntry, total: int) -> None:
    """The ingestor's filter statistics as R3 reports them: a total since it started."""
    coordinator = entry.runtime_data.coordinator
    data = coordinator.data
    ingestion = dataclasses.replace(data.ingestion, filter_enabled=True, filtered_events=total)
    fetched_at = datetime.now(UTC)
    coordinator.async_set_updated_data(
        dataclasses.replace(data, fetched_at=fetched_at, ingestion=ingestion)
    )
    await _delivery(entry).async_refresh()
    await hass.async_block_till_done()


@pytest.mark.usefixtures("short_settle")
async def test_events_the_ingestors_filter_dropped_are_not_claimed_lost(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    await _set_up(hass, entry)
    await _counting(entry)
    await _ingestor_filtered(hass, entry, 100)
    for i in range(3):
        hass.states.async_set("sensor.noisy", str(i))  # the ingestor's filter drops all three
    fired = time.time()
    await _ingestor_filtered(hass, entry, 103)
    await _settle_and_refresh(hass, entry, fired)

    # The filter's counter is known: its three are not lost, and the figures are known.
    lost = entity_of(hass, entry, "sensor", "events_lost")
    assert lost.state == "0"
    assert (lost.attributes["events_fired"], lost.attributes["events_filtered"]) == (3, 3)
    assert entity_of(hass, entry, "sensor", "delivery_completeness").state == STATE_UNKNOWN
    assert entity_of(hass, entry, "binary_sensor", "alert_events_lost").state == "off"

    # The ingestor restarted (its total fell): what it filtered since is unknown, so is loss.
    await _ingestor_filtered(hass, entry, 1)
    hass.states.async_set("sensor.noisy", "again")
    fired = time.time()
    await _ingestor_filtered(hass, entry, 2)
    await _settle_and_refresh(hass, entry, fired)
    lost = entity_of(hass, entry, "sensor", "events_lost")
    assert (lost.state, lost.attributes["events_filtered"]) == (STATE_UNKNOWN, None)


@pytest.mark.usefixtures("short_settle")
async def test_the_repair_turns_the_check_off_in_one_click(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    entry: MockConfigEntry,
    influxdb_server: InfluxDBServer,
    database: str,
) -> None:
    await _only_another_home_assistant_arrives(hass, entry, influxdb_server, database)
    issue_id = f"{ISSUE_DELIVERY_NOT_SOURCE}_{entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert await async_setup_component(hass, "repairs", {})
    client = await hass_client()

    # What the Repairs page does: open the fix flow, then submit its one step.
    started = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    flow = await started.json()
    assert flow["type"] == "form", flow
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"] == {"title": entry.title}
    finished = await (await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}")).json()
    assert finished["type"] == "create_entry", finished
    await hass.async_block_till_done()

    assert entry.options[CONF_DELIVERY_CHECK] is False
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.delivery is None
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert entity_of(hass, entry, "sensor", "events_lost").state == STATE_UNAVAILABLE
