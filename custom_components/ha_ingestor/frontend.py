"""The data-flow card and the sidebar panel: served by the integration, no YAML needed.

The card is loaded into every frontend page; the panel "HA Ingestor" is the same module's
`ha-ingestor-panel` element, shown in the sidebar while a loaded entry asks for it (the
`show_panel` option, on by default). See docs/architecture.md "Frontend".
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

from homeassistant.components.frontend import (
    DATA_PANELS,
    add_extra_js_url,
    async_register_built_in_panel,
    async_remove_panel,
)

# Defined in `http.server` since 2026.x and re-exported without `__all__`; 2026.2 defines
# it here, so this is the one import that works on every supported version.
from homeassistant.components.http import StaticPathConfig  # type: ignore[attr-defined]
from homeassistant.core import callback
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .options import panel_shown

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

_LOGGER = logging.getLogger(__name__)

CARD_DIRECTORY: Final = Path(__file__).parent / "frontend"
CARD_FILE: Final = "ha-ingestor-flow-card.js"
STATIC_URL: Final = f"/{DOMAIN}/frontend"
# A dashboard's URL must have a hyphen, so a user's dashboard can never take this one.
PANEL_URL_PATH: Final = DOMAIN
PANEL_ELEMENT: Final = "ha-ingestor-panel"
PANEL_ICON: Final = "mdi:transit-connection-variant"
# The card's versioned URL once the frontend loads it; the panel's module is the same file.
CARD_URL: HassKey[str] = HassKey(f"{DOMAIN}_card_url")
PANEL_SHOWN: HassKey[bool] = HassKey(f"{DOMAIN}_panel_shown")


def _card_version() -> str:
    """A short hash of the card's source: a new card is a new URL, never a stale cached one."""
    return hashlib.sha256((CARD_DIRECTORY / CARD_FILE).read_bytes()).hexdigest()[:12]


async def async_register_card(hass: HomeAssistant) -> str | None:
    """Serve the card and have the frontend load it; its URL, or None without a frontend.

    Both are optional dependencies (manifest `after_dependencies`): a Home Assistant always
    loads them, but one without `http` (tests, some minimal set-ups) has nothing to serve to.
    """
    if "http" not in hass.config.components:
        return None
    await hass.http.async_register_static_paths(
        [StaticPathConfig(STATIC_URL, str(CARD_DIRECTORY), cache_headers=True)]
    )
    url = f"{STATIC_URL}/{CARD_FILE}?v={await hass.async_add_executor_job(_card_version)}"
    if "frontend" in hass.config.components:
        add_extra_js_url(hass, url)
        hass.data[CARD_URL] = url
    return url


@callback
def async_update_panel(hass: HomeAssistant, entry: ConfigEntry, *, loaded: bool) -> None:
    """Show the panel while a loaded entry asks for it; `entry` is being set up or unloaded.

    One panel for every entry (it shows them all): the first entry that asks adds it, the
    last one leaves or an options change that hides it removes it.
    """
    url = hass.data.get(CARD_URL)
    if url is None:
        return
    others = hass.config_entries.async_loaded_entries(DOMAIN)
    asking = [e for e in others if e.entry_id != entry.entry_id] + ([entry] if loaded else [])
    wanted = any(panel_shown(e) for e in asking)
    if wanted == hass.data.get(PANEL_SHOWN, False):
        return
    if wanted:
        if PANEL_URL_PATH in hass.data.get(DATA_PANELS, {}):
            # Another integration's panel: keep it, say so once (hidden again, asked again).
            _LOGGER.warning(
                "The sidebar already has a panel at /%s; not adding ours", PANEL_URL_PATH
            )
            return
        async_register_built_in_panel(
            hass,
            component_name="custom",
            sidebar_title="HA Ingestor",
            sidebar_icon=PANEL_ICON,
            frontend_url_path=PANEL_URL_PATH,
            config={
                "_panel_custom": {
                    "name": PANEL_ELEMENT,
                    "module_url": url,
                    "embed_iframe": False,
                    "trust_external": False,
                }
            },
            require_admin=False,
        )
    else:
        async_remove_panel(hass, PANEL_URL_PATH)
    hass.data[PANEL_SHOWN] = wanted
