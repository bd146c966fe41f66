"""System health: can Home Assistant reach InfluxDB and the Admin API, and what answers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from homeassistant.const import CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import CONF_ADMIN_API_URL, DOMAIN

if TYPE_CHECKING:
    from collections.abc import Callable

    from homeassistant.components import system_health

    from .runtime import HaIngestorConfigEntry

_TIMEOUT: Final = aiohttp.ClientTimeout(total=5)
_OK: Final = "ok"


@callback
def async_register(hass: HomeAssistant, register: system_health.SystemHealthRegistration) -> None:  # noqa: ARG001
    """Register the info callback."""
    register.async_register_info(system_health_info)


async def _can_reach(session: aiohttp.ClientSession, url: str) -> str | dict[str, str]:
    """Home Assistant's reachability answer, but through the entry's own session.

    `system_health.async_check_can_reach_url` always verifies certificates, so an InfluxDB
    with a self-signed certificate the user accepted would show as unreachable.
    """
    try:
        async with session.get(url, timeout=_TIMEOUT, allow_redirects=False):
            return _OK
    except aiohttp.ClientError:
        return {"type": "failed", "error": "unreachable"}
    except TimeoutError:
        return {"type": "failed", "error": "timeout"}


async def _can_reach_all(
    hass: HomeAssistant, targets: list[tuple[HaIngestorConfigEntry, str]], *, several: bool
) -> str | dict[str, str]:
    """Ok when every entry reaches its URL; else which entries failed and why."""
    results = await asyncio.gather(
        *(
            _can_reach(
                async_get_clientsession(
                    hass, verify_ssl=bool(entry.data.get(CONF_VERIFY_SSL, True))
                ),
                url,
            )
            for entry, url in targets
        )
    )
    if not several:
        return results[0]
    failed = [
        f"{entry.title}: {result['error']}"
        for (entry, _), result in zip(targets, results, strict=True)
        if isinstance(result, dict)
    ]
    return {"type": "failed", "error": "; ".join(failed)} if failed else _OK


def _per_entry(
    entries: list[HaIngestorConfigEntry], value_fn: Callable[[HaIngestorConfigEntry], object]
) -> object:
    """The value of the only entry, or every entry's value after its title."""
    if len(entries) == 1:
        return value_fn(entries[0])
    return "; ".join(f"{entry.title}: {value_fn(entry)}" for entry in entries)


async def system_health_info(hass: HomeAssistant) -> dict[str, Any]:
    """Reachability, data source and versions of every loaded HA Ingestor entry.

    With one entry the values are its own; with several, each value names every entry
    (by title) and a reachability check fails when any entry's fails.
    """
    entries: list[HaIngestorConfigEntry] = hass.config_entries.async_loaded_entries(DOMAIN)
    if not entries:
        return {}
    several = len(entries) > 1
    info: dict[str, Any] = {}
    # /ping answers without credentials on InfluxDB 1.x, 2.x and 3.
    if influxdb := [(e, f"{url}/ping") for e in entries if (url := e.data.get(CONF_URL))]:
        info["can_reach_influxdb"] = _can_reach_all(hass, influxdb, several=several)
    if admin_api := [
        (e, f"{url}/health") for e in entries if (url := e.data.get(CONF_ADMIN_API_URL))
    ]:
        info["can_reach_admin_api"] = _can_reach_all(hass, admin_api, several=several)
    info["last_update_success"] = _per_entry(
        entries, lambda e: e.runtime_data.coordinator.last_update_success
    )
    if all(e.runtime_data.coordinator.data is not None for e in entries):
        info["data_source"] = _per_entry(
            entries, lambda e: e.runtime_data.coordinator.data.source.value
        )
        info["influxdb_version"] = _per_entry(
            entries, lambda e: e.runtime_data.coordinator.data.influxdb_version
        )
        info["ingestor_version"] = _per_entry(
            entries, lambda e: e.runtime_data.coordinator.data.ingestor_version
        )
    return info
