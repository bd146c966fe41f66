"""Backfill end to end: Home Assistant's bus and recorder, the subscribing test ingestor, InfluxDB.

The test ingestor (`tests/support/delivery_ingestor.py`) subscribes over the websocket API and
drops a known set of events; the delivery check counts them lost; the `ha_ingestor.backfill`
action reads them back from the recorder (SQLite, with one entity excluded) and writes them.
The points it writes are held against `DeliveryIngestor.missed`, the points the ingestor itself
would have written for the dropped events: the same measurement, tags, fields and timestamps.
Both InfluxDB paths: the real influxd 1.x (InfluxQL `/write`) and the 2.x double (Flux,
`/api/v2/write`) with a read-only token first, then a writing one.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from homeassistant.components.recorder import get_instance
from homeassistant.const import CONF_TOKEN, CONF_URL, CONF_VERIFY_SSL
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ha_ingestor.api.core.delivery import FINE_SECONDS, POLL_SECONDS
from custom_components.ha_ingestor.const import (
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_DELIVERY_CHECK,
    CONF_ORGANIZATION,
    DOMAIN,
    SERVICE_BACKFILL,
)
from tests.support.delivery_ingestor import DeliveryIngestor
from tests.support.influx2_double import Influx2Double, running_double

from .live import entity_of, influx_data, live_entry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import (
        RecorderInstanceGenerator,
        WebSocketGenerator,
    )

    from custom_components.ha_ingestor.api.influx.write import Point
    from custom_components.ha_ingestor.coordinators.delivery import DeliveryCoordinator
    from tests.support.influxdb_server import InfluxDBServer

SETTLE = 6.0
LOSSY, STEADY, EXCLUDED = "light.lossy", "sensor.steady", "sensor.excluded"
TOKEN, READER, ORG, BUCKET = "writer-token", "reader-token", "ha-ingestor", "home_assistant_events"


@pytest.fixture
def recorder_config() -> dict[str, Any]:
    """The recorder as a user may have it: one entity excluded."""
    return {"exclude": {"entities": [EXCLUDED]}}


@pytest.fixture
def mock_recorder_before_hass(async_setup_recorder_instance: RecorderInstanceGenerator) -> None:
    """The recorder starts before Home Assistant, as it does for a user."""


@pytest.fixture
def short_settle() -> Iterator[None]:
    """The settle delay shortened (the ingestor's batches still take their real 5 s)."""
    with patch("custom_components.ha_ingestor.coordinators.delivery.SETTLE_SECONDS", SETTLE):
        yield


@pytest.fixture
def database(influxdb_server: InfluxDBServer, socket_enabled: None) -> Iterator[str]:
    with influxdb_server.scratch_database("backfill") as name:
        yield name


def _delivery(entry: MockConfigEntry) -> DeliveryCoordinator:
    delivery = entry.runtime_data.delivery
    assert delivery is not None
    return delivery


async def _set_up(hass: HomeAssistant, data: dict[str, Any]) -> MockConfigEntry:
    entry = live_entry(hass, data, {CONF_DELIVERY_CHECK: True})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _lose_events(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[datetime, datetime]:
    """Fire the changes (the ingestor drops some), settle, compare; the compared span."""
    counter = _delivery(entry).counter
    await asyncio.sleep(max(0.0, counter.origin - time.time()) + 0.05)
    for i in range(30):
        attributes = {"friendly_name": "Lossy, light", "brightness": i * 8}
        hass.states.async_set(LOSSY, "on" if i % 2 else "off", attributes)
        hass.states.async_set(STEADY, str(i), {"unit_of_measurement": "°C"})
        if i % 10 == 0:
            hass.states.async_set(EXCLUDED, str(i))
        await asyncio.sleep(0.01)  # one entity's changes in one millisecond are one point
    fired = time.time()
    await hass.async_block_till_done()
    await asyncio.sleep(POLL_SECONDS)  # the ingestor's 5 s batch is written
    await asyncio.sleep(max(0.0, fired + SETTLE + FINE_SECONDS - time.time()) + 0.2)
    await _delivery(entry).async_refresh()
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)
    return (
        datetime.fromtimestamp(counter.origin, UTC),
        datetime.fromtimestamp(counter.compared_until, UTC),
    )


async def _backfill(
    hass: HomeAssistant, entry: MockConfigEntry, span: tuple[datetime, datetime], **extra: Any
) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        SERVICE_BACKFILL,
        {
            "config_entry_id": entry.entry_id,
            "start": span[0].isoformat(),
            "end": span[1].isoformat(),
            **extra,
        },
        blocking=True,
        return_response=True,
    )
    assert isinstance(response, dict)
    return response


def _compared(point: Point) -> tuple[int, dict[str, str], dict[str, Any]]:
    return point.time_ns, dict(point.tags), dict(point.fields)


def _influxql_points(server: InfluxDBServer, database: str, entity_id: str) -> list[Any]:
    result: Any = server.query(
        f"SELECT * FROM home_assistant_events WHERE entity_id = '{entity_id}' GROUP BY *",  # noqa: S608
        database,
    )
    points = []
    for series in result["results"][0].get("series", []):
        for values in series["values"]:
            row = dict(zip(series["columns"], values, strict=True))
            when = row.pop("time")
            fields = {k: v for k, v in row.items() if v is not None}
            points.append((when, series["tags"], fields))
    return sorted(points, key=lambda p: p[0])


@pytest.mark.usefixtures("recorder_mock", "short_settle")
async def test_backfill_gives_back_exactly_what_the_ingestor_lost(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    influxdb_server: InfluxDBServer,
    database: str,
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    ingestor = DeliveryIngestor(
        await hass_ws_client(hass),
        influxdb_server,
        database,
        drop=lambda entity_id, n: (entity_id == LOSSY and n % 3 == 0) or entity_id == EXCLUDED,
    )
    await ingestor.start()
    try:
        entry = await _set_up(hass, influx_data(influxdb_server, database))
        span = await _lose_events(hass, entry)
        assert ingestor.dropped == {LOSSY: 10, EXCLUDED: 3}
        assert entity_of(hass, entry, "sensor", "events_lost").state == "13"
        stored_before = _influxql_points(influxdb_server, database, LOSSY)

        dry = await _backfill(hass, entry, span)
        assert dry["dry_run"] is True
        assert dry["schema"] == "B"
        assert (dry["missing"], dry["written"], dry["not_in_recorder"]) == (10, 0, 3)
        assert (dry["same_millisecond"], dry["could_not"]) == (0, 0)
        assert dry["skipped"] >= 20 + 30  # the stored lossy and steady changes, ours too
        assert _influxql_points(influxdb_server, database, LOSSY) == stored_before

        real = await _backfill(hass, entry, span, dry_run=False)
        assert (real["missing"], real["written"], real["not_in_recorder"]) == (10, 10, 3)
        assert real["skipped"] == dry["skipped"]
        assert real["requests"] == dry["requests"] + 1  # the one batch
        # What the ingestor would have written for the lost events, point for point.
        expected = sorted(
            _compared(point) for point in ingestor.missed if point.tags["entity_id"] == LOSSY
        )
        assert len(expected) == 10
        now_stored = _influxql_points(influxdb_server, database, LOSSY)
        assert len(now_stored) == 30
        backfilled = [p for p in now_stored if p not in stored_before]
        assert [(t, tags, fields) for t, tags, fields in backfilled] == expected
        # The delivery check: the lossy entity's loss is gone; the excluded one's cannot be.
        lost = entity_of(hass, entry, "sensor", "events_lost")
        assert lost.state == "3"
        assert lost.attributes["entities_lost_most"] == [{"entity_id": EXCLUDED, "lost": 3}]

        again = await _backfill(hass, entry, span, dry_run=False)
        assert (again["missing"], again["written"]) == (0, 0)
        assert again["skipped"] == real["skipped"] + 10
        assert _influxql_points(influxdb_server, database, LOSSY) == now_stored
    finally:
        await ingestor.stop()


class _DoubleWriter:
    """The double behind the test ingestor's `influxdb.write(database, lines, precision)`."""

    def __init__(self, double: Influx2Double) -> None:
        self.double = double

    def write(self, database: str, lines: list[str], precision: str = "ns") -> None:
        self.double.write(ORG, database, lines, precision)


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    async with running_double(tokens={TOKEN}, read_only_tokens={READER}, org=ORG) as server:
        yield server


def _double_points(double: Influx2Double, entity_id: str) -> dict[int, Any]:
    """The double's event points of an entity: time -> (tags, fields), as stored."""
    points: dict[int, tuple[dict[str, str], dict[str, Any]]] = {}
    for (measurement, tags, name), values in double.orgs[ORG].buckets[BUCKET].series.items():
        if measurement != "home_assistant_events" or dict(tags).get("entity_id") != entity_id:
            continue
        for when, (_type, value) in values.items():
            points.setdefault(when, (dict(tags), {}))[1][name] = value
    return points


@pytest.mark.usefixtures("recorder_mock", "short_settle")
async def test_backfill_on_influxdb_2_refuses_a_read_only_token_then_writes(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, double: Influx2Double
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    ingestor = DeliveryIngestor(
        await hass_ws_client(hass),
        _DoubleWriter(double),  # type: ignore[arg-type]
        BUCKET,
        drop=lambda entity_id, n: (entity_id == LOSSY and n % 3 == 0) or entity_id == EXCLUDED,
    )
    data = {
        CONF_URL: double.url,
        CONF_BACKEND: "flux",
        CONF_TOKEN: READER,
        CONF_ORGANIZATION: ORG,
        CONF_BUCKET: BUCKET,
        CONF_VERIFY_SSL: True,
    }
    await ingestor.start()
    try:
        entry = await _set_up(hass, data)
        span = await _lose_events(hass, entry)
        assert entity_of(hass, entry, "sensor", "events_lost").state == "13"
        dry = await _backfill(hass, entry, span)
        assert (dry["missing"], dry["not_in_recorder"], dry["written"]) == (10, 3, 0)
        assert len(_double_points(double, LOSSY)) == 20

        with pytest.raises(HomeAssistantError) as refused:
            await _backfill(hass, entry, span, dry_run=False)
        assert refused.value.translation_key == "backfill_read_only"
        assert READER not in str(refused.value)
        assert len(_double_points(double, LOSSY)) == 20

        # A token that may write: the 2.x path writes what the ingestor would have.
        hass.config_entries.async_update_entry(entry, data={**data, CONF_TOKEN: TOKEN})
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        real = await _backfill(hass, entry, span, dry_run=False)
        assert (real["missing"], real["written"]) == (10, 10)
        stored = _double_points(double, LOSSY)
        assert len(stored) == 30
        missed = [_compared(p) for p in ingestor.missed if p.tags["entity_id"] == LOSSY]
        assert len(missed) == 10
        assert [(when, *stored[when]) for when, _tags, _fields in missed] == missed
        again = await _backfill(hass, entry, span, dry_run=False)
        assert (again["missing"], again["written"]) == (0, 0)
    finally:
        await ingestor.stop()


@pytest.mark.usefixtures("recorder_mock")
async def test_a_span_the_recorder_no_longer_holds_or_an_empty_one_is_refused(
    hass: HomeAssistant, influxdb_server: InfluxDBServer, database: str
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    entry = await _set_up(hass, influx_data(influxdb_server, database))
    now = datetime.now(UTC)
    keep_days = get_instance(hass).keep_days
    with pytest.raises(ServiceValidationError) as past:
        await _backfill(hass, entry, (now - timedelta(days=keep_days + 1), now))
    assert past.value.translation_key == "backfill_past_retention"
    assert past.value.translation_placeholders["days"] == str(keep_days)
    with pytest.raises(ServiceValidationError) as empty:
        await _backfill(hass, entry, (now, now - timedelta(minutes=1)))
    assert empty.value.translation_key == "backfill_empty_span"
    # Within the retention: no ingestor runs here, so our own entities' first states are
    # recorded and not in InfluxDB; they are written once.
    span = (now - timedelta(minutes=5), datetime.now(UTC))
    result = await _backfill(hass, entry, span, dry_run=False)
    assert result["written"] == result["missing"] > 0
    assert result["could_not"] == 0
    assert (await _backfill(hass, entry, span, dry_run=False))["missing"] == 0
