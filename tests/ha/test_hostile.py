"""A hostile server in a real Home Assistant: the entry's other parts go on, the log stays quiet.

Real parts: the session's influxd (behind a loopback that forwards to it until the test makes it
hostile), the simulated R2 services, Home Assistant's own timer and HTTP session. The hostile
answers are those of tests/api/test_hostile.py: an endless stream, a redirect to another host.
docs/architecture.md#hostile-servers
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web
from homeassistant.const import CONF_URL, STATE_UNAVAILABLE

from custom_components.ha_ingestor.const import CONF_ADMIN_API_URL, CONF_UPDATE_INTERVAL
from tests.support.loopback import (
    Handler,
    Loopback,
    endless_answer,
    json_answer,
    redirect_answer,
    start_loopback,
)

from .live import (
    entity_of,
    influx_data,
    ingestor_data,
    let_interval_pass,
    live_entry,
    write_recent_events,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from homeassistant.core import HomeAssistant

    from tests.support.influxdb_server import InfluxDBServer
    from tests.support.simulator import IngestorSimulator

INTERVAL = 60
MODULE = "custom_components.ha_ingestor"
FALLBACK_LOG = "did not answer"
RECOVERY_LOG = "InfluxDB answers again"


@pytest.fixture
async def other_host(socket_enabled: None) -> AsyncIterator[Loopback]:
    """The target of the redirects: it must never be asked."""
    state, runner = await start_loopback()
    state.handler = json_answer({"results": []})
    yield state
    await runner.cleanup()


@pytest.fixture
async def front(
    influxdb_server: InfluxDBServer, socket_enabled: None
) -> AsyncIterator[tuple[Loopback, Handler]]:
    """A loopback in front of the real influxd, and the handler that forwards to it."""
    state, runner = await start_loopback()
    async with aiohttp.ClientSession() as upstream:

        async def forward(request: web.Request) -> web.StreamResponse:
            headers = {
                k: v for k in ("Content-Type", "Authorization") if (v := request.headers.get(k))
            }
            async with upstream.request(
                request.method,
                f"{influxdb_server.url}{request.path_qs}",
                data=await request.read(),
                headers=headers,
            ) as answer:
                return web.Response(
                    body=await answer.read(),
                    status=answer.status,
                    headers={
                        k: v
                        for k in ("Content-Type", "X-Influxdb-Version")
                        if (v := answer.headers.get(k))
                    },
                )

        state.handler = forward
        yield state, forward
        state.release.set()
        await runner.cleanup()


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(MODULE)]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_a_hostile_influxdb_falls_back_once_and_comes_back_once(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    influxdb_server: InfluxDBServer,
    database: str,
    simulator: IngestorSimulator,
    front: tuple[Loopback, Handler],
    other_host: Loopback,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=MODULE)
    loopback, forward = front
    write_recent_events(influxdb_server, database, 30, 1)
    simulator.set_figures(events_per_minute=12.5)
    data = influx_data(influxdb_server, database) | {CONF_URL: loopback.url}
    entry = live_entry(hass, data | ingestor_data(simulator), {CONF_UPDATE_INTERVAL: INTERVAL})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entity_of(hass, entry, "sensor", "data_source").state == "influxdb"
    assert entity_of(hass, entry, "sensor", "events_in_period").state == "30"

    # An endless stream, then a redirect to another host: the services carry on meanwhile.
    for hostile in (endless_answer(), redirect_answer(other_host.url), endless_answer()):
        loopback.handler = hostile
        await let_interval_pass(hass, INTERVAL)
        assert entity_of(hass, entry, "sensor", "data_source").state == "services_fallback"
        assert entity_of(hass, entry, "sensor", "events_in_period").state == STATE_UNAVAILABLE
        assert float(entity_of(hass, entry, "sensor", "events_per_minute").state) == 12.5
        assert entity_of(hass, entry, "sensor", "websocket-ingestion_status").state == "healthy"
    assert other_host.requests == []

    loopback.handler = forward
    await let_interval_pass(hass, INTERVAL)
    assert entity_of(hass, entry, "sensor", "data_source").state == "influxdb"
    assert entity_of(hass, entry, "sensor", "events_in_period").state == "30"

    messages = [r.getMessage() for r in _ours(caplog)]
    fallbacks = [m for m in messages if FALLBACK_LOG in m]
    assert len(fallbacks) == 1, messages
    assert "answer larger than 16 MiB" in fallbacks[0]
    assert sum(RECOVERY_LOG in m for m in messages) == 1, messages
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_a_hostile_admin_api_leaves_influxdb_and_the_other_services_working(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    influxdb_server: InfluxDBServer,
    database: str,
    simulator: IngestorSimulator,
    other_host: Loopback,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=MODULE)
    admin, runner = await start_loopback()
    try:
        admin.handler = redirect_answer(other_host.url)
        write_recent_events(influxdb_server, database, 20, 1)
        data = influx_data(influxdb_server, database) | ingestor_data(simulator)
        data[CONF_ADMIN_API_URL] = admin.url
        entry = live_entry(hass, data, {CONF_UPDATE_INTERVAL: INTERVAL})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        for hostile in (
            redirect_answer(other_host.url),
            endless_answer(),
            redirect_answer(other_host.url),
        ):
            admin.handler = hostile
            await let_interval_pass(hass, INTERVAL)
            assert entity_of(hass, entry, "sensor", "data_source").state == "influxdb"
            assert entity_of(hass, entry, "sensor", "events_in_period").state == "20"
            assert entity_of(hass, entry, "sensor", "websocket-ingestion_status").state == "healthy"
            assert entity_of(hass, entry, "sensor", "admin-api_status").state == "unhealthy"
        assert other_host.requests == []
        assert admin.requests
    finally:
        admin.release.set()
        await runner.cleanup()
    loud = [r for r in _ours(caplog) if r.levelno >= logging.WARNING]
    assert len(loud) <= 1, [r.getMessage() for r in loud]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_both_sources_hostile_is_one_failure_and_one_recovery_in_the_log(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    influxdb_server: InfluxDBServer,
    database: str,
    front: tuple[Loopback, Handler],
    other_host: Loopback,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=MODULE)
    loopback, forward = front
    admin, runner = await start_loopback()
    try:
        admin.handler = redirect_answer(other_host.url)
        write_recent_events(influxdb_server, database, 10, 1)
        data = influx_data(influxdb_server, database) | {
            CONF_URL: loopback.url,
            CONF_ADMIN_API_URL: admin.url,
        }
        entry = live_entry(hass, data, {CONF_UPDATE_INTERVAL: INTERVAL})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entity_of(hass, entry, "sensor", "events_in_period").state == "10"

        for hostile in (endless_answer(), redirect_answer(other_host.url), endless_answer()):
            loopback.handler = hostile
            await let_interval_pass(hass, INTERVAL)
            assert entity_of(hass, entry, "sensor", "events_in_period").state == STATE_UNAVAILABLE
            assert entity_of(hass, entry, "sensor", "data_source").state == STATE_UNAVAILABLE
        loopback.handler = forward
        await let_interval_pass(hass, INTERVAL)
        assert entity_of(hass, entry, "sensor", "events_in_period").state == "10"
        assert other_host.requests == []
    finally:
        admin.release.set()
        await runner.cleanup()
    messages = [r.getMessage() for r in _ours(caplog)]
    failures = [m for m in messages if "Error fetching" in m]
    assert len(failures) == 1, messages
    assert "answer larger than 16 MiB" in failures[0]
    assert sum("recovered" in m for m in messages) == 1, messages
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
