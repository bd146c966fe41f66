"""Devices: the main device, one per service along the data flow, services coming and going."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from homeassistant.const import CONF_URL, STATE_UNAVAILABLE, Platform
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType
from homeassistant.loader import async_get_integration
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.ha_ingestor.api.models import (
    Revision,
    ServiceState,
    ServiceStatus,
)
from custom_components.ha_ingestor.const import CONF_ADMIN_API_URL, DOMAIN
from custom_components.ha_ingestor.devices import (
    main_device_info,
    service_device_info,
    service_display_name,
    upstream_service,
)

from .conftest import ENTRY_DATA, NOW, UNIQUE_ID, make_snapshot, poll

if TYPE_CHECKING:
    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant

    from custom_components.ha_ingestor.api.models import Snapshot

ENTRY_ID = "01JHAINGESTORTESTENTRY0001"  # the conftest entry's id
MAIN = "HA Ingestor"
R1 = ("websocket-ingestion", "enrichment-pipeline", "influxdb", "admin-api", "data-retention")
R2 = ("websocket-ingestion", "influxdb", "admin-api", "data-api", "carbon-intensity")


def _services(*names: str) -> tuple[ServiceState, ...]:
    return tuple(
        ServiceState(name=n, status=ServiceStatus.HEALTHY, reachable=True, version=f"{n}-1")
        for n in names
    )


def _with_services(*names: str, listed: bool = True) -> Snapshot:
    """A snapshot listing `names`; `listed` says whether the Admin API answered the listing."""
    return make_snapshot(
        services=_services(*names), admin_api_connected=listed, services_complete=listed
    )


@pytest.fixture(autouse=True)
def frozen_now(freezer: FrozenDateTimeFactory) -> None:
    """Refreshes happen when the test moves the clock."""
    freezer.move_to(NOW)


@pytest.fixture
def platforms() -> list[Platform]:
    """Both platforms: devices are shared between them."""
    return [Platform.BINARY_SENSOR, Platform.SENSOR]


@pytest.fixture
def snapshots() -> list[Snapshot | Exception]:
    """An R2-era stack."""
    return [_with_services(*R2)]


def _entry_devices(registry: dr.DeviceRegistry) -> list[dr.DeviceEntry]:
    return dr.async_entries_for_config_entry(registry, ENTRY_ID)


def _device(registry: dr.DeviceRegistry, name: str) -> dr.DeviceEntry:
    identifier = UNIQUE_ID if name == MAIN else f"{UNIQUE_ID}_{name}"
    device = next(
        (d for d in _entry_devices(registry) if (DOMAIN, identifier) in d.identifiers), None
    )
    assert device is not None, name
    return device


def _via(registry: dr.DeviceRegistry) -> dict[str, str | None]:
    """Device name -> name of its via device, for every device of the entry."""
    devices = _entry_devices(registry)
    names = {d.id: d.name for d in devices}
    return {str(d.name): names.get(d.via_device_id) if d.via_device_id else None for d in devices}


@pytest.mark.usefixtures("init_integration")
async def test_main_device(hass: HomeAssistant, device_registry: dr.DeviceRegistry) -> None:
    device = _device(device_registry, MAIN)
    assert device.name == MAIN
    assert device.manufacturer == "HA Ingestor"
    assert device.entry_type is DeviceEntryType.SERVICE
    assert device.configuration_url == ENTRY_DATA[CONF_ADMIN_API_URL]
    assert device.sw_version == "1.0.0"
    assert device.via_device_id is None


@pytest.mark.usefixtures("init_integration")
async def test_service_devices(hass: HomeAssistant, device_registry: dr.DeviceRegistry) -> None:
    influxdb = _device(device_registry, "influxdb")
    assert influxdb.name == "InfluxDB"
    assert influxdb.model == "influxdb"
    assert influxdb.sw_version == "influxdb-1"
    assert influxdb.entry_type is DeviceEntryType.SERVICE
    assert influxdb.configuration_url == ENTRY_DATA[CONF_URL]
    assert _device(device_registry, "admin-api").configuration_url == ENTRY_DATA[CONF_ADMIN_API_URL]
    assert _device(device_registry, "carbon-intensity").name == "Carbon Intensity"
    assert _device(device_registry, "websocket-ingestion").configuration_url is None


@pytest.mark.usefixtures("init_integration")
async def test_entities_belong_to_their_devices(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry, entity_registry: er.EntityRegistry
) -> None:
    main = _device(device_registry, MAIN)
    main_entities = er.async_entries_for_device(entity_registry, main.id)
    assert {e.unique_id for e in main_entities} >= {
        f"{UNIQUE_ID}_events_per_minute",
        f"{UNIQUE_ID}_alert_high_error_rate",
        f"{UNIQUE_ID}_influxdb_connected",
    }
    for name in R2:
        entities = er.async_entries_for_device(entity_registry, _device(device_registry, name).id)
        assert {e.unique_id for e in entities} == {
            f"{UNIQUE_ID}_{name}_status",
            f"{UNIQUE_ID}_{name}_connectivity",
        }


@pytest.mark.usefixtures("init_integration")
async def test_r2_devices_follow_the_data_flow(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    # HA -> websocket-ingestion -> InfluxDB -> {Admin API, Data API}; helpers write InfluxDB.
    assert _via(device_registry) == {
        MAIN: None,
        "WebSocket Ingestion": MAIN,
        "InfluxDB": "WebSocket Ingestion",
        "Admin API": "InfluxDB",
        "Data API": "InfluxDB",
        "Carbon Intensity": "InfluxDB",
    }


@pytest.mark.parametrize("snapshots", [[_with_services(*R1, "health-dashboard")]])
@pytest.mark.usefixtures("init_integration")
async def test_r1_devices_follow_the_data_flow(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    # HA -> websocket-ingestion -> enrichment-pipeline -> InfluxDB -> Admin API -> dashboard.
    assert _via(device_registry) == {
        MAIN: None,
        "WebSocket Ingestion": MAIN,
        "Enrichment Pipeline": "WebSocket Ingestion",
        "InfluxDB": "Enrichment Pipeline",
        "Admin API": "InfluxDB",
        "Data Retention": "InfluxDB",
        "Health Dashboard": "Admin API",
    }


@pytest.mark.parametrize(
    "snapshots", [[_with_services("websocket-ingestion", "admin-api", "air-quality")]]
)
@pytest.mark.usefixtures("init_integration")
async def test_unmonitored_hops_are_skipped(
    hass: HomeAssistant, device_registry: dr.DeviceRegistry
) -> None:
    # InfluxDB is not a monitored service here: the Admin API hangs off the nearest upstream.
    assert _via(device_registry) == {
        MAIN: None,
        "WebSocket Ingestion": MAIN,
        "Admin API": "WebSocket Ingestion",
        "Air Quality": MAIN,
    }


@pytest.mark.usefixtures("init_integration")
async def test_new_service_gets_its_device_and_entities(
    hass: HomeAssistant,
    snapshots: list[Snapshot | Exception],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    assert hass.states.get("sensor.enrichment_pipeline_status") is None

    snapshots[:] = [_with_services(*R2, "enrichment-pipeline")]
    await poll(hass, freezer)

    assert hass.states.get("sensor.enrichment_pipeline_status") is not None
    assert hass.states.get("binary_sensor.enrichment_pipeline_connectivity") is not None
    # The new hop is linked in, and InfluxDB now receives from it.
    via = _via(device_registry)
    assert via["Enrichment Pipeline"] == "WebSocket Ingestion"
    assert via["InfluxDB"] == "Enrichment Pipeline"


@pytest.mark.usefixtures("init_integration")
async def test_gone_service_loses_device_and_entities(
    hass: HomeAssistant,
    snapshots: list[Snapshot | Exception],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    gone = _device(device_registry, "carbon-intensity")

    snapshots[:] = [_with_services("websocket-ingestion", "influxdb", "admin-api", "data-api")]
    await poll(hass, freezer)

    assert gone.id not in {d.id for d in _entry_devices(device_registry)}
    assert er.async_entries_for_device(entity_registry, gone.id) == []
    assert hass.states.get("sensor.carbon_intensity_status") is None
    assert hass.states.get("binary_sensor.carbon_intensity_connectivity") is None
    # The rest is untouched.
    assert hass.states.get("sensor.data_api_status") is not None
    assert _device(device_registry, "data-api").id

    # It may come back later, with fresh entities.
    snapshots[:] = [_with_services(*R2)]
    await poll(hass, freezer)
    assert hass.states.get("sensor.carbon_intensity_status") is not None
    assert hass.states.get("binary_sensor.carbon_intensity_connectivity") is not None


@pytest.mark.usefixtures("init_integration")
async def test_listing_outage_keeps_devices(
    hass: HomeAssistant,
    snapshots: list[Snapshot | Exception],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The Admin API did not answer: only the directly addressed services are known.
    snapshots[:] = [_with_services("websocket-ingestion", listed=False)]
    await poll(hass, freezer)

    assert _device(device_registry, "carbon-intensity")
    assert hass.states.get("sensor.carbon_intensity_status").state == STATE_UNAVAILABLE  # type: ignore[union-attr]
    assert hass.states.get("sensor.websocket_ingestion_status").state == "healthy"  # type: ignore[union-attr]

    # Back again: the same entities, not a second set.
    snapshots[:] = [_with_services(*R2)]
    await poll(hass, freezer)
    assert hass.states.get("sensor.carbon_intensity_status").state == "healthy"  # type: ignore[union-attr]
    assert hass.states.get("sensor.carbon_intensity_status_2") is None
    assert "already exists" not in caplog.text


@pytest.mark.usefixtures("init_integration")
async def test_admin_api_info_without_listing_keeps_devices(
    hass: HomeAssistant,
    snapshots: list[Snapshot | Exception],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    # The Admin API answered (/api/info), its listings did not: the snapshot is partial.
    snapshots[:] = [
        make_snapshot(
            services=_services("websocket-ingestion", "admin-api"),
            admin_api_connected=True,
            services_complete=False,
        )
    ]
    await poll(hass, freezer)

    assert _device(device_registry, "carbon-intensity")
    assert hass.states.get("sensor.carbon_intensity_status").state == STATE_UNAVAILABLE  # type: ignore[union-attr]


@pytest.mark.usefixtures("init_integration")
async def test_user_may_delete_only_gone_service_devices(
    hass: HomeAssistant,
    snapshots: list[Snapshot | Exception],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
    init_integration: MockConfigEntry,
) -> None:
    component = await (await async_get_integration(hass, DOMAIN)).async_get_component()
    remove = component.async_remove_config_entry_device
    entry = init_integration

    assert not await remove(hass, entry, _device(device_registry, MAIN))
    assert not await remove(hass, entry, _device(device_registry, "data-api"))

    # data-api is not in the snapshot, but without the listing its device stays: the user may
    # delete it now.
    snapshots[:] = [
        replace(_with_services(*R2, listed=False), services=_services("websocket-ingestion"))
    ]
    await poll(hass, freezer)
    assert await remove(hass, entry, _device(device_registry, "data-api"))
    assert not await remove(hass, entry, _device(device_registry, "websocket-ingestion"))


@pytest.mark.usefixtures("init_integration")
async def test_versions_follow_the_snapshot(
    hass: HomeAssistant,
    snapshots: list[Snapshot | Exception],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    services = tuple(
        replace(s, version="2.0.0") if s.name == "admin-api" else s for s in _services(*R2)
    )
    snapshots[:] = [make_snapshot(services=services, ingestor_version="2.0.0")]
    await poll(hass, freezer)
    assert _device(device_registry, MAIN).sw_version == "2.0.0"
    assert _device(device_registry, "admin-api").sw_version == "2.0.0"


@pytest.mark.usefixtures("init_integration")
async def test_a_refresh_without_versions_keeps_the_known_ones(
    hass: HomeAssistant,
    snapshots: list[Snapshot | Exception],
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    snapshots[:] = [make_snapshot(services=_services(*R2), revision=Revision.R2)]
    await poll(hass, freezer)
    main = _device(device_registry, MAIN)
    assert (main.model, main.sw_version) == ("Ingestor R2", "1.0.0")

    # The Admin API missed this poll: no revision, no versions.
    unversioned = tuple(replace(s, version=None) for s in _services(*R2))
    snapshots[:] = [make_snapshot(services=unversioned, ingestor_version=None, revision=None)]
    await poll(hass, freezer)

    main = _device(device_registry, MAIN)
    assert (main.model, main.sw_version) == ("Ingestor R2", "1.0.0")
    assert _device(device_registry, "admin-api").sw_version == "admin-api-1"


def test_configuration_url_leaves_out_credentials() -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="userinfo",
        data={
            **ENTRY_DATA,
            CONF_URL: "https://reader:influx-pass@influxdb.local:8086/base",
            CONF_ADMIN_API_URL: "http://admin@ingestor.local:8003",
        },
    )
    assert main_device_info(entry, None).get("configuration_url") == "http://ingestor.local:8003"
    influxdb, admin_api = _services("influxdb", "admin-api")
    assert (
        service_device_info(entry, influxdb).get("configuration_url")
        == "https://influxdb.local:8086/base"
    )
    assert (
        service_device_info(entry, admin_api).get("configuration_url")
        == "http://ingestor.local:8003"
    )


def test_main_device_links_to_influxdb_without_admin_api() -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="influx-only",
        data={**ENTRY_DATA, CONF_ADMIN_API_URL: ""},
    )
    info = main_device_info(entry, None)
    assert info.get("configuration_url") == ENTRY_DATA[CONF_URL]
    assert info.get("identifiers") == {(DOMAIN, "influx-only")}
    assert info.get("sw_version") is None


@pytest.mark.parametrize(
    ("service", "monitored", "expected"),
    [
        ("websocket-ingestion", set(R1), None),
        ("enrichment-pipeline", set(R1), "websocket-ingestion"),
        ("influxdb", set(R1), "enrichment-pipeline"),
        ("influxdb", set(R2), "websocket-ingestion"),
        ("admin-api", {"admin-api"}, None),
        ("something-new", set(R2), "influxdb"),
        ("something-new", {"something-new"}, None),
    ],
)
def test_upstream_service(service: str, monitored: set[str], expected: str | None) -> None:
    assert upstream_service(service, monitored) == expected


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("websocket-ingestion", "WebSocket Ingestion"),
        ("data-api", "Data API"),
        ("electricity-pricing", "Electricity Pricing"),
        ("smart_meter", "Smart Meter"),
    ],
)
def test_service_display_name(service: str, expected: str) -> None:
    assert service_display_name(service) == expected
