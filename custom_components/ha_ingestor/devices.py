"""The device graph: a main device and one per monitored service, kept in the registry.

The devices follow the snapshot: created, linked along the ingestion path, removed when their
service is gone. Below the entities: they attach to these devices, this module knows no entity.

docs/architecture.md#the-device-graph
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from yarl import URL

from .api.ingestor.stack import ADMIN_API, DATA_API, ENRICHMENT_PIPELINE, WEBSOCKET_INGESTION
from .const import CONF_ADMIN_API_URL, DOMAIN

if TYPE_CHECKING:
    from .api.core.models import ServiceState, Snapshot
    from .runtime import HaIngestorConfigEntry

MANUFACTURER: Final = "HA Ingestor"
MAIN_DEVICE_NAME: Final = "HA Ingestor"

# api/ingestor has no public name for InfluxDB's service entry.
INFLUXDB: Final = "influxdb"

_DISPLAY_NAMES: Final = {
    WEBSOCKET_INGESTION: "WebSocket Ingestion",
    ENRICHMENT_PIPELINE: "Enrichment Pipeline",
    INFLUXDB: "InfluxDB",
    ADMIN_API: "Admin API",
    DATA_API: "Data API",
    "data-retention": "Data Retention",
    "health-dashboard": "Health Dashboard",
}

# Where each service gets its data from, nearest first (docs/architecture.md#the-device-graph:
# HA -> websocket-ingestion -> [enrichment-pipeline ->] InfluxDB -> admin-api/data-api).
# The first candidate that is itself monitored becomes the `via` device; when none is, the
# main device is. Services not listed here write or read InfluxDB on their own.
_UPSTREAM: Final[dict[str, tuple[str, ...]]] = {
    WEBSOCKET_INGESTION: (),
    ENRICHMENT_PIPELINE: (WEBSOCKET_INGESTION,),
    INFLUXDB: (ENRICHMENT_PIPELINE, WEBSOCKET_INGESTION),
    ADMIN_API: (INFLUXDB, ENRICHMENT_PIPELINE, WEBSOCKET_INGESTION),
    DATA_API: (INFLUXDB, ENRICHMENT_PIPELINE, WEBSOCKET_INGESTION),
    "health-dashboard": (ADMIN_API, DATA_API),
}
_DEFAULT_UPSTREAM: Final = (INFLUXDB,)


def entry_key(entry: HaIngestorConfigEntry) -> str:
    """Prefix of every unique_id and device identifier of this entry."""
    return entry.unique_id or entry.entry_id


# Words of service names that read as acronyms (`weather-api` -> `Weather API`).
_ACRONYMS: Final = {"api": "API", "ha": "HA", "ml": "ML", "ai": "AI", "mqtt": "MQTT"}


def service_display_name(service: str) -> str:
    """A readable device name for an ingestor service (`carbon-intensity` -> `Carbon Intensity`)."""
    if (name := _DISPLAY_NAMES.get(service)) is not None:
        return name
    parts = service.replace("_", "-").split("-")
    return " ".join(_ACRONYMS.get(part, part.capitalize()) for part in parts if part)


def upstream_service(service: str, monitored: set[str]) -> str | None:
    """The monitored service `service` receives its data from, or None for the main device."""
    return next(
        (s for s in _UPSTREAM.get(service, _DEFAULT_UPSTREAM) if s in monitored and s != service),
        None,
    )


def main_device_identifier(entry: HaIngestorConfigEntry) -> tuple[str, str]:
    """Identifier of the "HA Ingestor" device."""
    return (DOMAIN, entry_key(entry))


def service_device_identifier(entry: HaIngestorConfigEntry, service: str) -> tuple[str, str]:
    """Identifier of one service's device."""
    return (DOMAIN, f"{entry_key(entry)}_{service}")


def _url(entry: HaIngestorConfigEntry, key: str) -> str | None:
    """A configured URL fit for a device page: any `user:password@` is left out."""
    value = entry.data.get(key)
    if not isinstance(value, str) or not value:
        return None
    url = URL(value)
    if url.user is None and url.password is None:
        return value
    return str(url.with_user(None))


def _known(info: DeviceInfo, *keys: str) -> DeviceInfo:
    """`info` without those of `keys` that are None.

    Model and versions come from the snapshot, which misses them whenever a source did not
    answer; passed as None they would clear the registry's value until the next refresh
    writes it back. Left out, the registry keeps what it knows.
    """
    return cast("DeviceInfo", {k: v for k, v in info.items() if k not in keys or v is not None})


def main_device_info(entry: HaIngestorConfigEntry, snapshot: Snapshot | None) -> DeviceInfo:
    """The main device; its page links to the Admin API, else to InfluxDB."""
    info = DeviceInfo(
        identifiers={main_device_identifier(entry)},
        name=MAIN_DEVICE_NAME,
        manufacturer=MANUFACTURER,
        model=(
            f"Ingestor {snapshot.revision.upper()}"
            if snapshot is not None and snapshot.revision is not None
            else None
        ),
        entry_type=DeviceEntryType.SERVICE,
        configuration_url=_url(entry, CONF_ADMIN_API_URL) or _url(entry, CONF_URL),
        sw_version=snapshot.ingestor_version if snapshot is not None else None,
    )
    return _known(info, "model", "sw_version")


def service_device_info(entry: HaIngestorConfigEntry, state: ServiceState) -> DeviceInfo:
    """The device of one monitored service."""
    configuration_url = {
        INFLUXDB: _url(entry, CONF_URL),
        ADMIN_API: _url(entry, CONF_ADMIN_API_URL),
    }
    info = DeviceInfo(
        identifiers={service_device_identifier(entry, state.name)},
        name=service_display_name(state.name),
        manufacturer=MANUFACTURER,
        model=state.name,
        entry_type=DeviceEntryType.SERVICE,
        configuration_url=configuration_url.get(state.name),
        sw_version=state.version,
        hw_version=state.git_sha,  # the build (R3 reports its git commit)
    )
    return _known(info, "sw_version", "hw_version")


def known_services(snapshot: Snapshot) -> set[str] | None:
    """Services that exist now, or None when this snapshot cannot tell.

    Only a complete listing counts: without it (the Admin API answered, if at all, without
    its service listings) the snapshot holds just some services, and an outage must not
    delete devices the user may have renamed or placed in areas.
    """
    if not snapshot.services_complete:
        return None
    return {s.name for s in snapshot.services}


@callback
def async_sync_devices(hass: HomeAssistant, entry: HaIngestorConfigEntry) -> None:
    """Bring the device registry in line with the latest snapshot.

    Creates the main device and one device per service (idempotent: unchanged devices are not
    written), links each service to its upstream along the ingestion path, and removes the
    devices of services that are gone. The links are set here, not through `DeviceInfo`,
    because the upstream device must exist first and its key changed between Home Assistant
    versions (`via_device` vs `via_device_id`).
    """
    snapshot: Snapshot | None = entry.runtime_data.coordinator.data
    registry = dr.async_get(hass)
    main = registry.async_get_or_create(
        config_entry_id=entry.entry_id, **main_device_info(entry, snapshot)
    )
    if snapshot is None:
        return
    monitored = {s.name for s in snapshot.services}
    devices: dict[str, dr.DeviceEntry] = {}
    for state in snapshot.services:
        devices[state.name] = registry.async_get_or_create(
            config_entry_id=entry.entry_id, **service_device_info(entry, state)
        )
    for name, device in devices.items():
        upstream = upstream_service(name, monitored)
        via_id = main.id if upstream is None else devices[upstream].id
        if device.via_device_id != via_id:
            registry.async_update_device(device.id, via_device_id=via_id)
    if (existing := known_services(snapshot)) is not None:
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
            service = _service_of(entry, device)
            if service is not None and service not in existing:
                registry.async_remove_device(device.id)


def _service_of(entry: HaIngestorConfigEntry, device: dr.DeviceEntry) -> str | None:
    """The service a device stands for; None for the main device and foreign devices."""
    prefix = f"{entry_key(entry)}_"
    return next(
        (
            identifier.removeprefix(prefix)
            for domain, identifier in device.identifiers
            if domain == DOMAIN and identifier.startswith(prefix)
        ),
        None,
    )


async def async_remove_config_entry_device(
    hass: HomeAssistant,  # noqa: ARG001  (the signature Home Assistant calls)
    config_entry: HaIngestorConfigEntry,
    device_entry: dr.DeviceEntry,
) -> bool:
    """Let the user delete a service device, but only once that service is gone."""
    service = _service_of(config_entry, device_entry)
    if service is None:
        return False
    snapshot: Snapshot | None = config_entry.runtime_data.coordinator.data
    return snapshot is None or snapshot.service(service) is None
