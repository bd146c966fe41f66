"""The delivery funnel end to end: Home Assistant's bus, the R3 counters, a real influxd.

The subscribing test ingestor (tests/support/delivery_ingestor.py) reads `state_changed`
over Home Assistant's websocket API, keeps the simulated R3 services' running totals as the
real pipeline would (received, filtered, processed) and writes schema-B points into influxd;
each test plants losses at known stages and checks that the integration attributes exactly
those to each stage, and that the window event fires once per settled span with loss. Time is
real (the settle delay is shortened); the outage test moves the delivery check's clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from homeassistant.const import CONF_API_KEY, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.delivery import FINE_SECONDS
from custom_components.ha_ingestor.config_flow import unique_id_for
from custom_components.ha_ingestor.const import CONF_DELIVERY_CHECK, DOMAIN
from tests.conftest import R3_KEY
from tests.support.delivery_ingestor import DeliveryIngestor, Stage

from .live import entity_of, influx_data, ingestor_data

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from homeassistant.core import Event, EventStateChangedData, HomeAssistant
    from pytest_homeassistant_custom_component.typing import WebSocketGenerator

    from custom_components.ha_ingestor.coordinators.delivery import DeliveryCoordinator
    from tests.support.influxdb_server import InfluxDBServer
    from tests.support.simulator_r3 import IngestorSimulatorR3

SETTLE = 6.0
LOSSY, CLEAN = "light.lossy", "sensor.clean"
STAGES = ("lost_before_ingestor", "lost_in_ingestor", "lost_writing", "filtered")


@pytest.fixture
def database(influxdb_server: InfluxDBServer, socket_enabled: None) -> Iterator[str]:
    with influxdb_server.scratch_database("funnel") as name:
        yield name


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    influxdb_server: InfluxDBServer,
    database: str,
    r3: IngestorSimulatorR3,
) -> MockConfigEntry:
    """InfluxQL on the real server, the R3 services (filter on), the delivery check on."""
    r3.set_figures(filter_enabled=True, filtered_events=40, filter_passed_events=2270)
    data = {**influx_data(influxdb_server, database), **ingestor_data(r3), CONF_API_KEY: R3_KEY}
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor",
        unique_id=unique_id_for(data),
        data=data,
        options={CONF_DELIVERY_CHECK: True},
    )
    assert await async_setup_component(hass, DOMAIN, {})
    return entry


type Subscribe = Callable[[Callable[[str, int], Stage | None]], Awaitable[DeliveryIngestor]]


@pytest.fixture
def subscribed(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    influxdb_server: InfluxDBServer,
    database: str,
    r3: IngestorSimulatorR3,
) -> Subscribe:
    """The test ingestor (not started) with `plant` deciding each lost event's stage."""

    async def subscribe(plant: Callable[[str, int], Stage | None]) -> DeliveryIngestor:
        return DeliveryIngestor(
            await hass_ws_client(hass),
            influxdb_server,
            database,
            batch_seconds=0.5,
            counters=r3,
            plant=plant,
        )

    return subscribe


@pytest.fixture
def short_settle() -> Iterator[None]:
    with patch("custom_components.ha_ingestor.coordinators.delivery.SETTLE_SECONDS", SETTLE):
        yield


def _delivery(entry: MockConfigEntry) -> DeliveryCoordinator:
    delivery = entry.runtime_data.delivery
    assert delivery is not None
    return delivery


async def _start(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ingestor: DeliveryIngestor,
) -> None:
    await ingestor.start()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    origin = _delivery(entry).counter.origin
    await asyncio.sleep(max(0.0, origin - time.time()) + 0.05)


async def _read_ingestor(hass: HomeAssistant, entry: MockConfigEntry) -> float:
    """Let the ingestor take and write what was fired, then one statistics refresh reads it."""
    await hass.async_block_till_done()
    await asyncio.sleep(1.0)  # the websocket, and the ingestor's 0.5 s batches
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    return time.time()


async def _settle(hass: HomeAssistant, entry: MockConfigEntry, after: float) -> None:
    """Wait until the delivery check has settled past `after`, then refresh it."""
    wait = after + SETTLE + FINE_SECONDS - time.time()
    await asyncio.sleep(max(0.0, wait) + 0.2)
    await _delivery(entry).async_refresh()
    await hass.async_block_till_done()


def _events(hass: HomeAssistant, entity_id: str) -> list[dict[str, Any]]:
    """The attributes of every time the window event fires (its state changes)."""
    fired: list[dict[str, Any]] = []

    def changed(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.state not in {STATE_UNKNOWN, STATE_UNAVAILABLE}:
            fired.append(dict(new.attributes))

    async_track_state_change_event(hass, entity_id, changed)
    return fired


def _stages(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    lost = entity_of(hass, entry, "sensor", "events_lost")
    return {name: lost.attributes[name] for name in STAGES}


def _first_window(n: int) -> Stage | None:
    """Of every 10 events: 1 lost before the counter, 2 after it, 1 filtered, 3 not written."""
    return {
        1: Stage.BEFORE,
        2: Stage.AFTER,
        3: Stage.AFTER,
        4: Stage.FILTERED,
        5: Stage.WRITE,
        6: Stage.WRITE,
        7: Stage.WRITE,
    }.get(n % 10)


async def _second_window(
    hass: HomeAssistant, entry: MockConfigEntry, fired: list[dict[str, Any]]
) -> None:
    """Five of ten lost before the counter: a second event, and the period's sums grow."""
    first = fired[0]
    for i in range(10):
        hass.states.async_set(LOSSY, f"t{i}")
        await asyncio.sleep(0.01)
    second_read = await _read_ingestor(hass, entry)
    await _settle(hass, entry, second_read)
    assert len(fired) == 2
    assert (fired[1]["count"], fired[1]["stage"]) == (5, "lost_before_ingestor")
    assert fired[1]["lost_before_ingestor"] == 5
    assert fired[1]["start"] == first["end"]  # spans follow one another, none twice
    assert _stages(hass, entry) == {
        "lost_before_ingestor": 7,
        "lost_in_ingestor": 4,
        "lost_writing": 6,
        "filtered": 2,
    }
    # Nothing new settled: the event does not fire again.
    await _delivery(entry).async_refresh()
    await hass.async_block_till_done()
    assert len(fired) == 2


@pytest.mark.usefixtures("short_settle")
async def test_losses_are_attributed_to_their_stages_and_the_window_event_fires_once(
    hass: HomeAssistant, entry: MockConfigEntry, subscribed: Subscribe
) -> None:
    plant: list[Callable[[int], Stage | None]] = [_first_window]
    ingestor = await subscribed(lambda entity_id, n: plant[0](n) if entity_id == LOSSY else None)
    try:
        await _start(hass, entry, ingestor)
        event_id = entity_of(hass, entry, "event", "delivery_loss").entity_id
        fired = _events(hass, event_id)

        for i in range(20):
            hass.states.async_set(LOSSY, f"s{i}")
            hass.states.async_set(CLEAN, str(i))
            await asyncio.sleep(0.01)  # one entity's points in one millisecond are one point
        hass.states.async_set("switch.gone", "on")
        hass.states.async_remove("switch.gone")  # counted received, dropped while validating
        planted = time.time()
        first_read = await _read_ingestor(hass, entry)
        await _settle(hass, entry, first_read)

        assert ingestor.lost_at == {
            Stage.BEFORE: 2,
            Stage.AFTER: 4,
            Stage.FILTERED: 2,
            Stage.WRITE: 6,
        }
        assert _stages(hass, entry) == {
            "lost_before_ingestor": 2,
            "lost_in_ingestor": 4,
            "lost_writing": 6,
            "filtered": 2,
        }
        lost = entity_of(hass, entry, "sensor", "events_lost")
        # The filter's two are known: not lost, and no reason for an unknown figure any more.
        assert lost.state == "12"
        # 41 and the integration's own entities' state changes.
        until = datetime.fromisoformat(lost.attributes["until"]).timestamp()
        total = ingestor.fired_between(_delivery(entry).counter.origin, until)
        assert total >= 41
        assert (lost.attributes["events_fired"], lost.attributes["events_filtered"]) == (total, 2)
        completeness = entity_of(hass, entry, "sensor", "delivery_completeness")
        meant = total - 2
        assert float(completeness.state) == pytest.approx(100 * (meant - 12) / meant, abs=1e-3)
        assert len(fired) == 1
        window = fired[0]
        assert window["event_type"] == "loss"
        assert (window["count"], window["stage"]) == (12, "lost_writing")
        assert window["events_fired"] >= 41
        assert {name: window[name] for name in STAGES} == _stages(hass, entry)
        # The filter's share has no entity: the lossy one is named with it.
        assert window["entities_lost_most"] == [{"entity_id": LOSSY, "lost": 14}]
        start = datetime.fromisoformat(window["start"]).timestamp()
        end = datetime.fromisoformat(window["end"]).timestamp()
        assert start <= _delivery(entry).counter.origin
        assert planted < end <= first_read

        # A second window, every other event lost before the ingestor's counter.
        plant[0] = lambda n: Stage.BEFORE if n % 2 == 0 else None
        await _second_window(hass, entry, fired)
    finally:
        await ingestor.stop()


class _Clock:
    """The delivery check's clock (its `time` module): the real one plus what the test adds."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def time(self) -> float:
        return time.time() + self.ahead


async def _minutes_pass(
    hass: HomeAssistant, entry: MockConfigEntry, clock: _Clock, minutes: int
) -> None:
    """Minutes of the outage pass: a reading of the ingestor and a failed check each."""
    await _read_ingestor(hass, entry)
    for _ in range(minutes):
        clock.ahead += 60.0
        await _read_ingestor(hass, entry)
        await _delivery(entry).async_refresh()
        await hass.async_block_till_done()
        assert entity_of(hass, entry, "sensor", "events_lost").state == STATE_UNAVAILABLE


@pytest.mark.usefixtures("short_settle")
async def test_an_influxdb_outage_is_compared_whole_and_the_funnel_says_where(
    hass: HomeAssistant, entry: MockConfigEntry, subscribed: Subscribe
) -> None:
    clock = _Clock()
    # A few never reach the ingestor, outage or not.
    ingestor = await subscribed(
        lambda entity_id, n: Stage.BEFORE if entity_id == LOSSY and n % 7 == 0 else None
    )
    with patch("custom_components.ha_ingestor.coordinators.delivery.time", clock):
        try:
            await _start(hass, entry, ingestor)
            event_id = entity_of(hass, entry, "event", "delivery_loss").entity_id
            fired = _events(hass, event_id)
            for i in range(10):
                hass.states.async_set(LOSSY, f"before {i}")
                await asyncio.sleep(0.01)
            await _read_ingestor(hass, entry)

            # InfluxDB unreachable: the ingestor's writes fail, so does the check.
            ingestor.writes_fail = True
            await hass.async_add_executor_job(ingestor.influxdb.stop)
            try:
                for i in range(20):
                    hass.states.async_set(LOSSY, f"during {i}")
                    hass.states.async_set(CLEAN, f"during {i}")
                    await asyncio.sleep(0.01)
                await _minutes_pass(hass, entry, clock, 5)
            finally:
                await hass.async_add_executor_job(ingestor.influxdb.start)
                ingestor.writes_fail = False
            for i in range(4):
                hass.states.async_set(CLEAN, f"after {i}")
                await asyncio.sleep(0.01)
            clock.ahead += 60.0
            await _read_ingestor(hass, entry)
            # What that refresh changed reaches InfluxDB (the clock jumps, real time does not).
            await asyncio.sleep(1.0)
            clock.ahead += 60.0  # that reading settles too
            compared_at = time.time()  # later events are after the compared span
            await _delivery(entry).async_refresh()
            await hass.async_block_till_done()
        finally:
            await ingestor.stop()

    _compared_whole(hass, entry, ingestor, fired, compared_at)


def _compared_whole(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    ingestor: DeliveryIngestor,
    fired: list[dict[str, Any]],
    compared_at: float,
) -> None:
    """Every event fired since counting began is delivered or lost, and the funnel says where."""
    origin = _delivery(entry).counter.origin
    not_written = len(ingestor.write_failed)
    before = ingestor.lost_at[Stage.BEFORE]
    # Every event fired during the outage (3 of the light's were lost before), and the
    # integration's own entities' changes meanwhile.
    assert not_written >= 37
    assert before == 4  # the 7th, 14th, 21st and 28th of the lossy light
    lost = entity_of(hass, entry, "sensor", "events_lost")
    # Compared whole: every event fired since counting began is delivered or lost.
    total = ingestor.fired_between(origin, compared_at)
    assert total >= 54
    assert lost.attributes["events_fired"] == total
    assert int(lost.state) == not_written + before
    assert lost.attributes["events_stored"] + int(lost.state) == total
    assert _stages(hass, entry) == {
        "lost_before_ingestor": before,
        "lost_in_ingestor": 0,
        "lost_writing": not_written,
        "filtered": 0,
    }
    assert len(fired) == 1  # one span, compared once InfluxDB answered again
    window = fired[0]
    assert (window["count"], window["stage"]) == (not_written + before, "lost_writing")
    assert datetime.fromisoformat(window["start"]).timestamp() <= origin
    assert datetime.fromisoformat(window["end"]).timestamp() > max(ingestor.write_failed)
