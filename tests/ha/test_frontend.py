"""The data-flow card: served by the integration, and added to the pages the frontend renders."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.setup import async_setup_component

from custom_components.ha_ingestor.const import DOMAIN
from custom_components.ha_ingestor.frontend import CARD_DIRECTORY, CARD_FILE

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

CARD_SOURCE = (CARD_DIRECTORY / CARD_FILE).read_bytes()
# The URL the page loads as a module: the card's file, versioned.
MODULE_URL = re.compile(rf'"(/{DOMAIN}/[^"?]+/{re.escape(CARD_FILE)}\?v=[0-9a-f]+)"')


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.usefixtures("stack")
async def test_the_card_is_served_by_the_integration(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, mock_config_entry: MockConfigEntry
) -> None:
    assert await async_setup_component(hass, "http", {})
    await _set_up(hass, mock_config_entry)
    client = await hass_client()

    response = await client.get(f"/{DOMAIN}/frontend/{CARD_FILE}")

    assert response.status == HTTPStatus.OK
    assert response.content_type in {"application/javascript", "text/javascript"}
    assert await response.read() == CARD_SOURCE
    missing = await client.get(f"/{DOMAIN}/frontend/../manifest.json")
    assert missing.status == HTTPStatus.NOT_FOUND


@pytest.mark.usefixtures("stack")
async def test_without_http_the_integration_sets_up_without_the_card(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    await _set_up(hass, mock_config_entry)

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert "http" not in hass.config.components


@pytest.mark.usefixtures("stack")
@pytest.mark.skipif(
    importlib.util.find_spec("hass_frontend") is None,
    reason="Home Assistant's frontend package is installed on the current target only",
)
async def test_every_frontend_page_loads_the_card(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    hass_client: ClientSessionGenerator,
    mock_config_entry: MockConfigEntry,
) -> None:
    # Onboarded: the frontend serves its pages, not the onboarding wizard.
    hass_storage["onboarding"] = {
        "version": 4,
        "key": "onboarding",
        "data": {"done": ["user", "core_config", "analytics", "integration"]},
    }
    assert await async_setup_component(hass, "frontend", {})
    await _set_up(hass, mock_config_entry)
    client = await hass_client()

    page = await (await client.get("/")).text()

    urls = MODULE_URL.findall(page)
    assert len(urls) == 1
    loaded = await client.get(urls[0])
    assert loaded.status == HTTPStatus.OK
    assert await loaded.read() == CARD_SOURCE
    # The version changes with the card, so browsers never keep an old one.
    assert urls[0].endswith(f"?v={hashlib.sha256(CARD_SOURCE).hexdigest()[:12]}")
