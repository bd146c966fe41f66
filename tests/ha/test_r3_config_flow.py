"""Config flow and reauth against HomeIQ 2.0 (R3): ports, a required key, the org default."""

from __future__ import annotations

from typing import TYPE_CHECKING
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER
from homeassistant.const import CONF_API_KEY, CONF_TOKEN, CONF_URL
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor import config_flow
from custom_components.ha_ingestor.config_flow import admin_api_candidates
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_ORGANIZATION,
    CONF_WEBSOCKET_INGESTION_URL,
    DOMAIN,
)
from tests.support.influx2_double import Influx2Double
from tests.support.simulator import WEBSOCKET_INGESTION
from tests.support.simulator_r3 import IngestorSimulatorR3

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from homeassistant.core import HomeAssistant

pytestmark = pytest.mark.usefixtures("socket_enabled")

KEY = "r3-key"
TOKEN = "homeiq-token"


@pytest.fixture
async def r3() -> AsyncIterator[IngestorSimulatorR3]:
    async with IngestorSimulatorR3(KEY, upstream_timeout=0.5) as sim:
        yield sim


@pytest.fixture
async def homeiq_influx() -> AsyncIterator[Influx2Double]:
    """InfluxDB 2 as HomeIQ 2.0 creates it: org `homeiq`."""
    server = Influx2Double(tokens={TOKEN}, org="homeiq")
    await server.start()
    yield server
    await server.stop()


def test_admin_api_candidates() -> None:
    assert admin_api_candidates("http://10.0.0.5") == [
        "http://10.0.0.5:8004",
        "http://10.0.0.5:8003",
    ]
    assert admin_api_candidates("http://10.0.0.5:8003") == ["http://10.0.0.5:8003"]
    suggested = "http://10.0.0.5:8004"
    assert admin_api_candidates(suggested, suggested) == [suggested, "http://10.0.0.5:8003"]


async def _to_ingestor_step(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["step_id"] == "ingestor"
    return str(result["flow_id"])


async def test_a_host_without_port_tries_the_newer_port_then_the_older(
    hass: HomeAssistant, r3: IngestorSimulatorR3, unused_tcp_port: int
) -> None:
    port = int(r3.admin_api_url.rsplit(":", 1)[1])
    flow_id = await _to_ingestor_step(hass)
    # The simulator's port stands in for 8003, a closed one for 8004.
    with patch.object(config_flow, "ADMIN_API_PORTS", (unused_tcp_port, port)):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_ADMIN_API_URL: "http://127.0.0.1", CONF_API_KEY: KEY}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ADMIN_API_URL] == f"http://127.0.0.1:{port}"


async def test_a_required_key_is_asked_for(hass: HomeAssistant, r3: IngestorSimulatorR3) -> None:
    flow_id = await _to_ingestor_step(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_ADMIN_API_URL: r3.admin_api_url}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_API_KEY: "api_key_required"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_ADMIN_API_URL: r3.admin_api_url, CONF_API_KEY: "wrong"}
    )
    assert result["errors"] == {CONF_API_KEY: "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_ADMIN_API_URL: r3.admin_api_url, CONF_API_KEY: KEY}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_the_default_org_falls_back_to_homeiq(
    hass: HomeAssistant, homeiq_influx: Influx2Double
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: homeiq_influx.url, CONF_TOKEN: TOKEN, CONF_BACKEND: "flux"},
    )
    assert result["step_id"] == "ingestor", result.get("errors")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_ORGANIZATION] == "homeiq"


async def test_a_wrong_org_that_is_not_a_default_stays_an_error(
    hass: HomeAssistant, homeiq_influx: Influx2Double
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_URL: homeiq_influx.url,
            CONF_TOKEN: TOKEN,
            CONF_BACKEND: "flux",
            CONF_ORGANIZATION: "someone-else",
            CONF_BUCKET: "home_assistant_events",
        },
    )
    assert result["errors"] == {CONF_BUCKET: "bucket_not_found"}


async def test_a_refused_r3_key_asks_to_reauthenticate(
    hass: HomeAssistant, r3: IngestorSimulatorR3
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor (127.0.0.1)",
        unique_id="127.0.0.1:1",
        data={
            CONF_ADMIN_API_URL: r3.admin_api_url,
            CONF_API_KEY: "revoked",
            CONF_WEBSOCKET_INGESTION_URL: r3.url_of(WEBSOCKET_INGESTION),
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {CONF_API_KEY: KEY}
    )
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_API_KEY] == KEY
    await hass.async_block_till_done()
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert await hass.config_entries.async_unload(entry.entry_id)
