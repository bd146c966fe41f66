"""System health info."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from aiohttp import web
from homeassistant.const import CONF_URL, CONF_VERIFY_SSL
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, get_system_health_info

from custom_components.ha_ingestor.api.core.models import Revision
from custom_components.ha_ingestor.api.ingestor.stack import ADMIN_API
from custom_components.ha_ingestor.const import CONF_ADMIN_API_URL, CONF_BUCKET, DOMAIN
from tests.support.influxdb_server import free_port
from tests.support.tls import server_context

from .conftest import ENTRY_DATA, MODULE
from .recorded import INFLUXDB, RecordedStack

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, Generator
    from pathlib import Path

    from homeassistant.core import HomeAssistant


async def _serve_ping(ssl_context: ssl.SSLContext | None) -> tuple[web.AppRunner, str]:
    async def ping(_request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"X-Influxdb-Version": "1.8.10"})

    app = web.Application()
    app.router.add_get("/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
    await site.start()
    scheme = "http" if ssl_context is None else "https"
    return runner, f"{scheme}://127.0.0.1:{port}"


@pytest.fixture
def stack(hass: HomeAssistant) -> Generator[RecordedStack]:
    """The recorded stack behind the coordinator's session; system health's own stay real."""
    recorded = RecordedStack(Revision.R2, ENTRY_DATA[CONF_BUCKET])
    with patch(f"{MODULE}.clients.async_get_clientsession", return_value=recorded.session(hass)):
        yield recorded


@pytest.fixture
async def ping_server(socket_enabled: None) -> AsyncGenerator[str]:
    """A loopback server that answers /ping like InfluxDB."""
    runner, url = await _serve_ping(None)
    try:
        yield url
    finally:
        await runner.cleanup()


@pytest.fixture
async def self_signed_ping_server(socket_enabled: None, tmp_path: Path) -> AsyncGenerator[str]:
    """The same over HTTPS, with a certificate no one trusts."""
    runner, url = await _serve_ping(server_context(tmp_path))
    try:
        yield url
    finally:
        await runner.cleanup()


async def _resolved(info: dict[str, Any]) -> dict[str, Any]:
    return {
        key: await value if asyncio.iscoroutine(value) or asyncio.isfuture(value) else value
        for key, value in info.items()
    }


async def test_system_health(hass: HomeAssistant, ping_server: str, stack: RecordedStack) -> None:
    # The recorded InfluxDB answers at the ping server's address; the Admin API is away.
    stack.serve_as(ping_server, INFLUXDB)
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
    assert info["ingestor_version"] is None
    assert info["last_update_success"] is True


async def _set_up(hass: HomeAssistant, *entries: MockConfigEntry) -> None:
    assert await async_setup_component(hass, "system_health", {})
    with patch(f"{MODULE}.PLATFORMS", []):
        for entry in entries:
            entry.add_to_hass(hass)
            await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()


def _entry(
    title: str, influxdb_url: str, *, verify_ssl: bool = True, admin_api_url: str | None = None
) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=title,
        data={
            **ENTRY_DATA,
            CONF_URL: influxdb_url,
            CONF_VERIFY_SSL: verify_ssl,
            CONF_ADMIN_API_URL: admin_api_url or f"http://127.0.0.1:{free_port()}",
        },
    )


async def test_system_health_checks_influxdb_with_the_entry_verify_ssl(
    hass: HomeAssistant, self_signed_ping_server: str, stack: RecordedStack
) -> None:
    stack.serve_as(self_signed_ping_server, INFLUXDB)
    # The user accepted the self-signed certificate (verify_ssl off): InfluxDB is reachable.
    # (The refusing side, verify_ssl on, makes the test server log a TLS reset as an error.)
    await _set_up(hass, _entry("self-signed", self_signed_ping_server, verify_ssl=False))

    info = await _resolved(await get_system_health_info(hass, DOMAIN))

    assert info["can_reach_influxdb"] == "ok"


async def test_system_health_reports_every_entry(
    hass: HomeAssistant, ping_server: str, stack: RecordedStack
) -> None:
    stack.serve_as(ping_server, INFLUXDB)
    # Stack B's InfluxDB is away; its statistics come from the recorded Admin API, at an
    # address system health (which asks for real) cannot reach either.
    stack_b_admin_api = f"http://127.0.0.1:{free_port()}"
    stack.serve_as(stack_b_admin_api, ADMIN_API)
    await _set_up(
        hass,
        _entry("Stack A", ping_server),
        _entry("Stack B", f"http://127.0.0.1:{free_port()}", admin_api_url=stack_b_admin_api),
    )

    info = await _resolved(await get_system_health_info(hass, DOMAIN))

    assert info["can_reach_influxdb"] == {"type": "failed", "error": "Stack B: unreachable"}
    assert info["can_reach_admin_api"] == {
        "type": "failed",
        "error": "Stack A: unreachable; Stack B: unreachable",
    }
    assert info["data_source"] == "Stack A: influxdb; Stack B: services_fallback"
    assert info["last_update_success"] == "Stack A: True; Stack B: True"


async def test_system_health_without_a_loaded_entry(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "system_health", {})
    assert await async_setup_component(hass, DOMAIN, {})
    assert await get_system_health_info(hass, DOMAIN) == {}
