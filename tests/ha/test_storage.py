"""Storage entities in Home Assistant, against the real influxd and the InfluxDB 2.7 double.

No mocks: the figures come from what was written to the servers; the growth comes from the
storage coordinator's own timer (15 minutes) moved forward with the frozen clock.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from homeassistant.const import (
    CONF_TOKEN,
    CONF_URL,
    CONF_VERIFY_SSL,
    STATE_OFF,
    STATE_ON,
    STATE_UNKNOWN,
)
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.ha_ingestor.api.core.models import DataSource, SourceMode
from custom_components.ha_ingestor.clients import create_storage_source
from custom_components.ha_ingestor.config_flow import unique_id_for
from custom_components.ha_ingestor.const import (
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_ORGANIZATION,
    CONF_SOURCE_MODE,
    CONF_STORAGE_BUDGET_DAYS,
    CONF_STORAGE_BUDGET_GB,
    CONF_STORAGE_GROWTH_PERCENT,
    DOMAIN,
    STORAGE_UPDATE_INTERVAL,
)
from tests.support.influx2_double import Influx2Double

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant, State

    from tests.support.influxdb_server import InfluxDBServer

MODULE = "custom_components.ha_ingestor"
TOKEN = "tok-storage-ha-secret"
ORG = "ha-ingestor"
BUCKET = "home_assistant_events"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
T0 = NOW - timedelta(days=20)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _lines(first: int, count: int, start: datetime) -> list[str]:
    """Series `sensor.s<first>` ... of the event measurement, one point each."""
    return [
        f'home_assistant_events,entity_id=sensor.s{i},domain=sensor state="{i}" '
        f"{_ns(start + timedelta(seconds=i))}"
        for i in range(first, first + count)
    ]


def _entity_id(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.unique_id}_{key}")


def _state(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> State:
    entity_id = _entity_id(hass, entry, platform, key)
    assert entity_id, f"no {platform} entity {key}"
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


async def _storage_poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory | None = None) -> None:
    """Move on one storage interval and let both coordinators refresh."""
    if freezer is None:
        async_fire_time_changed(hass, dt_util.utcnow() + STORAGE_UPDATE_INTERVAL)
    else:
        freezer.tick(STORAGE_UPDATE_INTERVAL)
        async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


# --- InfluxDB 1.x: the real influxd -------------------------------------------------------------


def _entry(data: dict[str, Any], **options: Any) -> MockConfigEntry:
    """An InfluxDB-only entry as the config flow stores it."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor",
        unique_id=unique_id_for(data),
        data=data,
        options={CONF_SOURCE_MODE: SourceMode.INFLUXDB.value, **options},
        entry_id="01JSTORAGETESTENTRY000001",
    )


def _influxql_entry(url: str, database: str) -> MockConfigEntry:
    return _entry(
        {CONF_URL: url, CONF_BACKEND: "influxql", CONF_BUCKET: database, CONF_VERIFY_SSL: True}
    )


async def test_influxql_entities_are_those_the_server_answers(
    hass: HomeAssistant, influxdb_server: InfluxDBServer, database: str
) -> None:
    influxdb_server.write(database, _lines(0, 9, T0))
    influxdb_server.write(database, ["weather,station=home temperature=3.5 1700000000000000000"])
    entry = _influxql_entry(influxdb_server.url, database)

    await _set_up(hass, entry)

    series = _state(hass, entry, "sensor", "series_cardinality")
    assert series.state == "10"
    assert series.attributes["top_measurement"] == "home_assistant_events"
    assert series.attributes["top_measurement_series"] == 9
    retention = _state(hass, entry, "sensor", "retention")
    # Kept for ever: a duration cannot say so, the attribute does.
    assert retention.state == STATE_UNKNOWN
    assert retention.attributes["infinite"] is True
    assert retention.attributes["unit_of_measurement"] == "d"
    oldest = _state(hass, entry, "sensor", "oldest_point")
    assert dt_util.parse_datetime(oldest.state) == T0
    # No self-monitoring on this server: no size entity at all, rather than a made-up one.
    assert _entity_id(hass, entry, "sensor", "storage_size") is None
    assert _entity_id(hass, entry, "sensor", "storage_growth") is None
    # The growth alert exists (series are known) but has no history yet.
    assert _state(hass, entry, "binary_sensor", "alert_storage_growth").state == STATE_UNKNOWN
    registry = er.async_get(hass)
    oldest_entry = registry.async_get(_entity_id(hass, entry, "sensor", "oldest_point") or "")
    assert oldest_entry is not None
    assert oldest_entry.entity_category is not None  # diagnostic


@pytest.mark.parametrize(
    ("url", "mode", "asked"),
    [
        ("http://influxdb.local:8086", SourceMode.AUTO, True),
        ("http://influxdb.local:8086", SourceMode.INFLUXDB, True),
        ("http://influxdb.local:8086", SourceMode.SERVICES, False),
        ("", SourceMode.AUTO, False),
    ],
)
async def test_storage_is_asked_only_where_influxdb_is(
    hass: HomeAssistant, url: str, mode: SourceMode, *, asked: bool
) -> None:
    data = {CONF_URL: url, CONF_BACKEND: "influxql", CONF_BUCKET: "events"}
    entry = MockConfigEntry(domain=DOMAIN, data=data, options={CONF_SOURCE_MODE: mode.value})
    assert (create_storage_source(hass, entry) is not None) is asked


# --- InfluxDB 2.x: the double -------------------------------------------------------------------


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    """The double, its clock the frozen Home Assistant clock."""
    server = Influx2Double(tokens={TOKEN}, org=ORG, clock=lambda: _ns(dt_util.utcnow()))
    await server.start()
    yield server
    await server.stop()


def _flux_entry(double: Influx2Double, **options: Any) -> MockConfigEntry:
    data = {
        CONF_URL: double.url,
        CONF_BACKEND: "flux",
        CONF_TOKEN: TOKEN,
        CONF_ORGANIZATION: ORG,
        CONF_BUCKET: BUCKET,
        CONF_VERIFY_SSL: True,
    }
    return _entry(data, **options)


def _bucket_bytes(double: Influx2Double) -> int:
    bucket_id = double.storage.bucket_id(double.orgs[ORG], BUCKET)
    return sum(size for b, _shard, size in double.storage.shards() if b == bucket_id)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_flux_entities_growth_and_alert(
    hass: HomeAssistant, double: Influx2Double, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(NOW)
    double.write(ORG, BUCKET, _lines(0, 50, T0))
    double.storage.retention_seconds[ORG, BUCKET] = 90 * 86_400
    entry = _flux_entry(double)

    await _set_up(hass, entry)

    size = _state(hass, entry, "sensor", "storage_size")
    assert size.attributes["unit_of_measurement"] == "MB"
    assert float(size.state) * 1_000_000 == pytest.approx(_bucket_bytes(double))
    assert _state(hass, entry, "sensor", "series_cardinality").state == "50"
    assert float(_state(hass, entry, "sensor", "retention").state) == 90
    assert _state(hass, entry, "sensor", "retention").attributes["infinite"] is False
    # One sample is no growth yet.
    assert _state(hass, entry, "sensor", "storage_growth").state == STATE_UNKNOWN
    assert _state(hass, entry, "binary_sensor", "alert_storage_growth").state == STATE_UNKNOWN

    # 10 new series every 15 minutes: an hour later the fitted growth is known and large.
    sizes = [_bucket_bytes(double)]
    for step in range(1, 5):
        double.write(ORG, BUCKET, _lines(50 + 10 * step, 10, dt_util.utcnow()))
        sizes.append(_bucket_bytes(double))
        await _storage_poll(hass, freezer)
    per_day = (sizes[-1] - sizes[0]) / 1_000_000 * 24  # bytes grew linearly: slope = mean rate
    growth = _state(hass, entry, "sensor", "storage_growth")
    assert float(growth.state) == pytest.approx(per_day, rel=0.01)
    assert growth.attributes["percent_per_day"] > 10
    alert = _state(hass, entry, "binary_sensor", "alert_storage_growth")
    assert alert.state == STATE_ON
    assert set(alert.attributes["reasons"]) == {"size_growth", "series_growth"}
    assert _state(hass, entry, "sensor", "series_cardinality").attributes[
        "growth_per_day"
    ] == pytest.approx(40 * 24)


async def test_flux_budget_alert_with_a_high_growth_threshold(
    hass: HomeAssistant, double: Influx2Double, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(NOW)
    double.write(ORG, BUCKET, _lines(0, 50, T0))
    budget_gb = 2 * _bucket_bytes(double) / 1e9
    entry = _flux_entry(
        double,
        **{
            CONF_STORAGE_GROWTH_PERCENT: 1000.0,
            CONF_STORAGE_BUDGET_GB: budget_gb,
            CONF_STORAGE_BUDGET_DAYS: 7.0,
        },
    )
    await _set_up(hass, entry)
    # A budget against a known size decides at once: far from it, off.
    alert = _state(hass, entry, "binary_sensor", "alert_storage_growth")
    assert alert.state == STATE_OFF
    assert alert.attributes["days_until_budget"] is None

    for step in range(1, 5):
        double.write(ORG, BUCKET, _lines(50 + 5 * step, 5, dt_util.utcnow()))
        await _storage_poll(hass, freezer)

    alert = _state(hass, entry, "binary_sensor", "alert_storage_growth")
    # The budget (twice the start) is less than a day away at this rate; growth % is not over.
    assert alert.state == STATE_ON
    assert alert.attributes["reasons"] == ["budget"]
    assert 0 < alert.attributes["days_until_budget"] < 7


async def test_flux_faults_leave_figures_unknown_and_statistics_alone(
    hass: HomeAssistant,
    double: Influx2Double,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=MODULE)
    # Real time here: the time limits under test run on the event loop's clock.
    double.write(ORG, BUCKET, _lines(0, 5, dt_util.utcnow() - timedelta(minutes=5)))
    double.storage.faults["/metrics"] = 404  # influxd --metrics-disabled
    entry = _flux_entry(double)

    await _set_up(hass, entry)

    assert _entity_id(hass, entry, "sensor", "storage_size") is None
    assert _state(hass, entry, "sensor", "series_cardinality").state == "5"
    assert entry.runtime_data.coordinator.data.source is DataSource.INFLUXDB

    # The bucket API hangs past the storage refresh's own limit: unknown, never unavailable,
    # and the statistics refresh meanwhile is not held up.
    double.storage.stall["/api/v2/buckets"] = 5
    with patch(f"{MODULE}.coordinators.storage.STORAGE_REFRESH_TIMEOUT", timedelta(seconds=0.3)):
        await _storage_poll(hass)
    assert _state(hass, entry, "sensor", "series_cardinality").state == STATE_UNKNOWN
    assert _state(hass, entry, "sensor", "retention").state == STATE_UNKNOWN
    assert _state(hass, entry, "sensor", "events_in_period").state == "5"
    assert entry.runtime_data.coordinator.last_update_success
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert any("no answer within 0.3 s" in r.getMessage() for r in caplog.records)

    double.storage.stall.clear()
    await _storage_poll(hass)
    assert _state(hass, entry, "sensor", "series_cardinality").state == "5"


async def test_growth_history_is_restored_and_forgotten_with_the_entry(
    hass: HomeAssistant,
    double: Influx2Double,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    freezer.move_to(NOW)
    double.write(ORG, BUCKET, _lines(0, 20, T0))
    entry = _flux_entry(double)
    key = f"{DOMAIN}.{entry.entry_id}.storage_history"
    # Two hours ago the bucket held half of it: saved by an earlier run.
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": [{"time": (NOW - timedelta(hours=2)).isoformat(), "size_bytes": 0, "series": 10}],
    }

    await _set_up(hass, entry)

    # Known at the first refresh: the restored sample and this one span two hours.
    assert _state(hass, entry, "sensor", "series_cardinality").attributes[
        "growth_per_day"
    ] == pytest.approx(10 * 12)

    freezer.tick(timedelta(minutes=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(hass_storage[key]["data"]) == 2

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


async def test_options_flow_sets_the_storage_thresholds(
    hass: HomeAssistant, double: Influx2Double
) -> None:
    double.write(ORG, BUCKET, _lines(0, 3, T0))
    entry = _flux_entry(double)
    await _set_up(hass, entry)
    storage = entry.runtime_data.storage
    assert storage is not None
    assert storage.thresholds.budget_bytes is None

    result = await hass.config_entries.options.async_init(entry.entry_id)
    schema = {str(key): key for key in result["data_schema"].schema}
    # Shown with their current values (the defaults), the budget empty.
    assert schema[CONF_STORAGE_GROWTH_PERCENT].description["suggested_value"] == 10.0
    assert schema[CONF_STORAGE_BUDGET_DAYS].description["suggested_value"] == 30.0
    assert (schema[CONF_STORAGE_BUDGET_GB].description or {}).get("suggested_value") is None
    chosen = {
        CONF_STORAGE_GROWTH_PERCENT: 2.5,
        CONF_STORAGE_BUDGET_GB: 1.5,
        CONF_STORAGE_BUDGET_DAYS: 14,
    }
    answer = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {**{k: v for k, v in _current_options(result).items() if v is not None}, **chosen},
    )
    await hass.async_block_till_done(wait_background_tasks=True)

    assert answer["type"] == "create_entry"
    assert entry.options[CONF_STORAGE_BUDGET_GB] == 1.5
    storage = entry.runtime_data.storage
    assert storage is not None
    assert storage.thresholds.growth_percent_per_day == 2.5
    assert storage.thresholds.budget_bytes == 1_500_000_000
    assert storage.thresholds.budget_days == 14
    alert = _state(hass, entry, "binary_sensor", "alert_storage_growth")
    assert alert.attributes["budget_bytes"] == 1_500_000_000
    assert alert.attributes["growth_threshold_percent_per_day"] == 2.5


def _current_options(result: Any) -> dict[str, Any]:
    """The form's suggested values: what a user who only changes some fields submits."""
    return {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }
