"""The data-flow card and the sidebar panel: served by the integration, offered by the frontend."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.components.frontend import async_register_built_in_panel
from homeassistant.config_entries import ConfigEntryState
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component

from custom_components.ha_ingestor.const import CONF_SHOW_PANEL, DOMAIN
from custom_components.ha_ingestor.frontend import CARD_DIRECTORY, CARD_FILE, PANEL_URL_PATH

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.common import MockConfigEntry
    from pytest_homeassistant_custom_component.typing import (
        ClientSessionGenerator,
        WebSocketGenerator,
    )

CARD_SOURCE = (CARD_DIRECTORY / CARD_FILE).read_bytes()
NEEDS_FRONTEND = pytest.mark.skipif(
    importlib.util.find_spec("hass_frontend") is None,
    reason="Home Assistant's frontend package is installed on the current target only",
)
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


@pytest.mark.usefixtures("stack", "frontend_storage")
@NEEDS_FRONTEND
async def test_every_frontend_page_loads_the_card(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_config_entry: MockConfigEntry,
) -> None:
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


@pytest.fixture
def frontend_storage(hass_storage: dict[str, Any]) -> None:
    """Onboarded: the frontend serves its pages, not the onboarding wizard."""
    hass_storage["onboarding"] = {
        "version": 4,
        "key": "onboarding",
        "data": {"done": ["user", "core_config", "analytics", "integration"]},
    }


async def _panels(hass: HomeAssistant, hass_ws_client: WebSocketGenerator) -> dict[str, Any]:
    """The panels the frontend offers this user, as the sidebar asks for them."""
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "get_panels"})
    response = await client.receive_json()
    assert response["success"], response
    panels: dict[str, Any] = response["result"]
    return panels


@pytest.mark.usefixtures("stack", "frontend_storage")
@NEEDS_FRONTEND
async def test_the_panel_is_in_the_sidebar_until_the_options_hide_it(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, mock_config_entry: MockConfigEntry
) -> None:
    assert await async_setup_component(hass, "frontend", {})
    await _set_up(hass, mock_config_entry)

    panel = (await _panels(hass, hass_ws_client))[PANEL_URL_PATH]
    assert panel["title"] == "HA Ingestor"
    assert panel["require_admin"] is False
    custom = panel["config"]["_panel_custom"]
    assert custom["name"] == "ha-ingestor-panel"
    # The panel's module is the card's own versioned file, which defines the panel element.
    assert MODULE_URL.fullmatch(f'"{custom["module_url"]}"')
    assert b"customElements.define(PANEL_TYPE" in CARD_SOURCE

    # Hidden in the options: the reload takes it away ...
    hass.config_entries.async_update_entry(mock_config_entry, options={CONF_SHOW_PANEL: False})
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert PANEL_URL_PATH not in await _panels(hass, hass_ws_client)
    # ... shown again, it comes back; the entry's unload takes it away with the last entry.
    hass.config_entries.async_update_entry(mock_config_entry, options={CONF_SHOW_PANEL: True})
    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert PANEL_URL_PATH in await _panels(hass, hass_ws_client)
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert PANEL_URL_PATH not in await _panels(hass, hass_ws_client)


@pytest.mark.parametrize("language", ["en", "de"])
async def test_home_assistant_serves_the_cards_words_in_each_language(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, language: str
) -> None:
    """What the card's `loadBackendTranslation("selector", ...)` gets: every word, parsed."""
    file = CARD_DIRECTORY.parent / "translations" / f"{language}.json"
    words = json.loads(file.read_text(encoding="utf-8"))["selector"]["card"]["options"]
    served = await async_get_translations(hass, language, "selector", [DOMAIN])
    prefix = f"component.{DOMAIN}.selector.card.options."
    assert {k.removeprefix(prefix): v for k, v in served.items() if k.startswith(prefix)} == words
    # Home Assistant refuses (and logs) a text its message parser cannot read.
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.usefixtures("stack", "frontend_storage")
@NEEDS_FRONTEND
async def test_a_panel_of_another_integration_at_our_address_stays(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await async_setup_component(hass, "frontend", {})
    async_register_built_in_panel(hass, "iframe", "Theirs", frontend_url_path=PANEL_URL_PATH)
    await _set_up(hass, mock_config_entry)

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert (await _panels(hass, hass_ws_client))[PANEL_URL_PATH]["title"] == "Theirs"
    assert caplog.text.count(f"already has a panel at /{PANEL_URL_PATH}") == 1
    # Unloading ours leaves theirs.
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    assert PANEL_URL_PATH in await _panels(hass, hass_ws_client)
