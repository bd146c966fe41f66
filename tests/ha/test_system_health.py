"""System health info."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from aiohttp import web
from homeassistant.const import CONF_URL
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, get_system_health_info

from custom_components.ha_ingestor.const import CONF_ADMIN_API_URL, DOMAIN
from tests.support.influxdb_server import free_port

from .conftest import ENTRY_DATA, MODULE

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from homeassistant.core import HomeAssistant


@pytest.fixture
async def ping_server(socket_enabled: None) -> AsyncGenerator[str]:
    """A loopback server that answers /ping like InfluxDB."""

    async def ping(_request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Influxdb-Version": "1.8.10"})

    app = web.Application()
    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _resolved(info: dict[str, Any]) -> dict[str, Any]:
    return {
        key: await value if asyncio.iscoroutine(value) or asyncio.isfuture(value) else value
        for key, value in info.items()
    }


@pytest.mark.usefixtures("mock_client")
async def test_system_health(hass: HomeAssistant, ping_server: str) -> None:
    assert await async_setup_component(hass, "system_health", {})
    closed = f"http://127.0.0.1:{free_port()}"
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="health",
        data={**ENTRY_DATA, CONF_URL: ping_server, CONF_ADMIN_API_URL: closed},
    )
    entry.add_to_hass(hass)
    with patch(f"{MODULE}.PLATFORMS", []):
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()

        info = await _resolved(await get_system_health_info(hass, DOMAIN))

    assert info["can_reach_influxdb"] == "ok"
    assert info["can_reach_admin_api"] == {"type": "failed", "error": "unreachable"}
    assert info["data_source"] == "influxdb"
    assert info["influxdb_version"] == "v2.7.10"
    assert info["ingestor_version"] == "1.0.0"
    assert info["last_update_success"] is True


async def test_system_health_without_a_loaded_entry(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "system_health", {})
    assert await async_setup_component(hass, DOMAIN, {})
    assert await get_system_health_info(hass, DOMAIN) == {}
