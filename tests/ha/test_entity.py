"""Devices: the main device, one per service along the data flow, services coming and going."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.const import CONF_URL, STATE_UNAVAILABLE, Platform
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType
from homeassistant.loader import async_get_integration
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.models import Revision, ServiceState, ServiceStatus
from custom_components.ha_ingestor.api.ingestor.stack import ADMIN_API
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_MONITORED_SERVICES,
    CONF_WEBSOCKET_INGESTION_URL,
    DOMAIN,
)
from custom_components.ha_ingestor.devices import (
    main_device_info,
    service_device_info,
    service_display_name,
    upstream_service,
)

from .conftest import ENTRY_DATA, ENTRY_ID, UNIQUE_ID, state_of

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .conftest import Refresh
    from .recorded import RecordedStack

MAIN = "HA Ingestor"
R1 = ("websocket-ingestion", "enrichment-pipeline", "influxdb", "admin-api", "data-retention")
R2 = ("websocket-ingestion", "influxdb", "admin-api", "data-api", "carbon-intensity")
# The auxiliary services of the recorded R2 stack; each writes InfluxDB on its own.
R2_HELPERS = (
    "Air Quality Service",
    "Carbon Intensity Service",
    "Data Retention",
    "Electricity Pricing Service",
    "Energy Correlator",
    "Log Aggregator",
    "Smart Meter Service",
    "Weather API",
)
# websocket-ingestion addressed directly: it stays known while the Admin API is away.
WEBSOCKET_DIRECT = {**ENTRY_DATA, CONF_WEBSOCKET_INGESTION_URL: "http://ingestor.local:8001"}


@pytest.fixture
def platforms() -> list[Platform]:
    """Both platforms: devices are shared between them."""
    return [Platform.BINARY_SENSOR, Platform.SENSOR]


@dataclass
class Devices:
    """The entry's devices, by service name."""

    registry: dr.DeviceRegistry

    def all(self) -> list[dr.DeviceEntry]:
        """Every device of the entry."""
        return dr.async_entries_for_config_entry(self.registry, ENTRY_ID)

    def __getitem__(self, name: str) -> dr.DeviceEntry:
        identifier = UNIQUE_ID if name == MAIN else f"{UNIQUE_ID}_{name}"
        device = next((d for d in self.all() if (DOMAIN, identifier) in d.identifiers), None)
        assert device is not None, name
        return device

    def via(self) -> dict[str, str | None]:
        """Device name -> name of its via device."""
        devices = self.all()
        names = {d.id: d.name for d in devices}
        return {
            str(d.name): names.get(d.via_device_id) if d.via_device_id else None for d in devices
        }


@pytest.fixture
def devices(device_registry: dr.DeviceRegistry) -> Devices:
    """The entry's devices."""
    return Devices(device_registry)


@pytest.mark.usefixtures("init_integration")
async def test_main_device(devices: Devices, stack: RecordedStack) -> None:
    device = devices[MAIN]
    assert device.name == MAIN
    assert device.manufacturer == "HA Ingestor"
    assert device.model == "Ingestor R2"
    assert device.entry_type is DeviceEntryType.SERVICE
    assert device.configuration_url == ENTRY_DATA[CONF_ADMIN_API_URL]
    assert device.sw_version == stack.payload(ADMIN_API, "/api/info")["data"]["version"]
    assert device.via_device_id is None


@pytest.mark.usefixtures("init_integration")
async def test_service_devices(devices: Devices, stack: RecordedStack) -> None:
    influxdb = devices["influxdb"]
    assert influxdb.name == "InfluxDB"
    assert influxdb.model == "influxdb"
    assert influxdb.entry_type is DeviceEntryType.SERVICE
    assert influxdb.configuration_url == ENTRY_DATA[CONF_URL]
    assert devices["admin-api"].configuration_url == ENTRY_DATA[CONF_ADMIN_API_URL]
    assert devices["data-api"].sw_version == stack.payload("data-api", "/health")["version"]
    assert devices["carbon-intensity-service"].name == "Carbon Intensity Service"
    assert devices["websocket-ingestion"].configuration_url is None


@pytest.mark.usefixtures("init_integration")
async def test_entities_belong_to_their_devices(
    devices: Devices, entity_registry: er.EntityRegistry
) -> None:
    main_entities = er.async_entries_for_device(entity_registry, devices[MAIN].id)
    assert {e.unique_id for e in main_entities} >= {
        f"{UNIQUE_ID}_events_per_minute",
        f"{UNIQUE_ID}_alert_high_error_rate",
        f"{UNIQUE_ID}_influxdb_connected",
    }
    services = [d for d in devices.all() if d.model is not None and d.name != MAIN]
    assert len(services) == 13
    for device in services:
        entities = er.async_entries_for_device(entity_registry, device.id)
        assert {e.unique_id for e in entities} == {
            f"{UNIQUE_ID}_{device.model}_status",
            f"{UNIQUE_ID}_{device.model}_connectivity",
        }


@pytest.mark.parametrize(
    ("revision", "entry_options", "expected"),
    [
        pytest.param(
            Revision.R2,
            {},
            # HA -> websocket-ingestion -> InfluxDB -> {Admin API, Data API}; helpers write
            # InfluxDB; the dashboard shows the Admin API.
            {
                MAIN: None,
                "WebSocket Ingestion": MAIN,
                "InfluxDB": "WebSocket Ingestion",
                "Admin API": "InfluxDB",
                "Data API": "InfluxDB",
                "Health Dashboard": "Admin API",
                **dict.fromkeys(R2_HELPERS, "InfluxDB"),
            },
            id="r2",
        ),
        pytest.param(
            Revision.R1,
            {},
            # HA -> websocket-ingestion -> enrichment-pipeline -> InfluxDB -> Admin API.
            {
                MAIN: None,
                "WebSocket Ingestion": MAIN,
                "Enrichment Pipeline": "WebSocket Ingestion",
                "InfluxDB": "Enrichment Pipeline",
                "Admin API": "InfluxDB",
                "Data Retention": "InfluxDB",
                "Health Dashboard": "Admin API",
            },
            id="r1",
        ),
        pytest.param(
            Revision.R2,
            {CONF_MONITORED_SERVICES: ["websocket-ingestion", "admin-api", "air-quality-service"]},
            # InfluxDB is not monitored: the Admin API hangs off the nearest upstream.
            {
                MAIN: None,
                "WebSocket Ingestion": MAIN,
                "Admin API": "WebSocket Ingestion",
                "Air Quality Service": MAIN,
            },
            id="unmonitored-hops-skipped",
        ),
    ],
)
@pytest.mark.usefixtures("init_integration")
async def test_devices_follow_the_data_flow(devices: Devices, expected: dict[str, Any]) -> None:
    assert devices.via() == expected


@pytest.mark.usefixtures("init_integration")
async def test_new_service_gets_its_device_and_entities(
    hass: HomeAssistant, stack: RecordedStack, refresh: Refresh, devices: Devices
) -> None:
    assert hass.states.get("sensor.enrichment_pipeline_status") is None

    stack.add("enrichment-pipeline", like="data-retention")
    await refresh()

    assert state_of(hass, "sensor.enrichment_pipeline_status") == "healthy"
    assert hass.states.get("binary_sensor.enrichment_pipeline_connectivity") is not None
    # The new hop is linked in, and InfluxDB now receives from it.
    via = devices.via()
    assert via["Enrichment Pipeline"] == "WebSocket Ingestion"
    assert via["InfluxDB"] == "Enrichment Pipeline"


@pytest.mark.usefixtures("init_integration")
async def test_gone_service_loses_device_and_entities(
    hass: HomeAssistant,
    stack: RecordedStack,
    refresh: Refresh,
    devices: Devices,
    entity_registry: er.EntityRegistry,
) -> None:
    gone = devices["carbon-intensity-service"]

    stack.remove("carbon-intensity-service")
    await refresh()

    assert gone.id not in {d.id for d in devices.all()}
    assert er.async_entries_for_device(entity_registry, gone.id) == []
    assert hass.states.get("sensor.carbon_intensity_service_status") is None
    assert hass.states.get("binary_sensor.carbon_intensity_service_connectivity") is None
    # The rest is untouched.
    assert hass.states.get("sensor.data_api_status") is not None
    assert devices["data-api"].id

    # It may come back later, with fresh entities.
    stack.reset()
    await refresh()
    assert hass.states.get("sensor.carbon_intensity_service_status") is not None
    assert hass.states.get("binary_sensor.carbon_intensity_service_connectivity") is not None


@pytest.mark.parametrize("entry_data", [WEBSOCKET_DIRECT])
@pytest.mark.usefixtures("init_integration")
async def test_listing_outage_keeps_devices(
    hass: HomeAssistant,
    stack: RecordedStack,
    refresh: Refresh,
    devices: Devices,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The Admin API does not answer: only the directly addressed service is known.
    stack.down.add(ADMIN_API)
    await refresh()

    assert devices["carbon-intensity-service"]
    assert state_of(hass, "sensor.carbon_intensity_service_status") == STATE_UNAVAILABLE
    assert state_of(hass, "sensor.websocket_ingestion_status") == "healthy"

    # Back again: the same entities, not a second set.
    stack.down.clear()
    await refresh()
    assert state_of(hass, "sensor.carbon_intensity_service_status") == "healthy"
    assert hass.states.get("sensor.carbon_intensity_service_status_2") is None
    assert "already exists" not in caplog.text


@pytest.mark.usefixtures("init_integration")
async def test_admin_api_info_without_listing_keeps_devices(
    hass: HomeAssistant, stack: RecordedStack, refresh: Refresh, devices: Devices
) -> None:
    # The Admin API answers /api/info, its listings fail: the snapshot is partial.
    for path in ("/api/v1/services", "/api/v1/stats", "/api/v1/health/services"):
        stack.answer(ADMIN_API, path, 500, b"Internal Server Error")
    await refresh()

    assert devices["carbon-intensity-service"]
    assert state_of(hass, "sensor.carbon_intensity_service_status") == STATE_UNAVAILABLE
    # Answering /api/info alone is not health: its failing listings make it degraded.
    assert state_of(hass, "sensor.admin_api_status") == "degraded"


@pytest.mark.parametrize("entry_data", [WEBSOCKET_DIRECT])
async def test_user_may_delete_only_gone_service_devices(
    hass: HomeAssistant,
    stack: RecordedStack,
    refresh: Refresh,
    devices: Devices,
    init_integration: MockConfigEntry,
) -> None:
    component = await (await async_get_integration(hass, DOMAIN)).async_get_component()
    remove = component.async_remove_config_entry_device
    entry = init_integration

    assert not await remove(hass, entry, devices[MAIN])
    assert not await remove(hass, entry, devices["data-api"])

    # data-api is not in the snapshot, but without the listing its device stays: the user may
    # delete it now.
    stack.down.add(ADMIN_API)
    await refresh()
    assert await remove(hass, entry, devices["data-api"])
    assert not await remove(hass, entry, devices["websocket-ingestion"])


@pytest.mark.usefixtures("init_integration")
async def test_versions_follow_the_recording(
    stack: RecordedStack, refresh: Refresh, devices: Devices
) -> None:
    stack.payload(ADMIN_API, "/api/info")["data"]["version"] = "2.0.0"
    await refresh()
    assert devices[MAIN].sw_version == "2.0.0"
    assert devices["admin-api"].sw_version == "2.0.0"


@pytest.mark.usefixtures("init_integration")
async def test_a_refresh_without_versions_keeps_the_known_ones(
    stack: RecordedStack, refresh: Refresh, devices: Devices
) -> None:
    assert (devices[MAIN].model, devices[MAIN].sw_version) == ("Ingestor R2", "1.0.0")

    # The ingestor's services missed this poll (InfluxDB answered): no revision, no versions.
    stack.down.update(stack.payloads)
    await refresh()

    assert (devices[MAIN].model, devices[MAIN].sw_version) == ("Ingestor R2", "1.0.0")
    assert devices["admin-api"].sw_version == "1.0.0"


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
    influxdb, admin_api = (
        ServiceState(name=name, status=ServiceStatus.HEALTHY, reachable=True)
        for name in ("influxdb", "admin-api")
    )
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
        # A service nobody named: its acronyms still read as acronyms.
        ("weather-api", "Weather API"),
        ("ha-ml-bridge", "HA ML Bridge"),
    ],
)
def test_service_display_name(service: str, expected: str) -> None:
    assert service_display_name(service) == expected
