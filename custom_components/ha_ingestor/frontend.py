"""The data-flow card: served by the integration itself and loaded into every frontend page."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Final

from homeassistant.components.frontend import add_extra_js_url

# Defined in `http.server` since 2026.x and re-exported without `__all__`; 2026.2 defines
# it here, so this is the one import that works on every supported version.
from homeassistant.components.http import StaticPathConfig  # type: ignore[attr-defined]

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

CARD_DIRECTORY: Final = Path(__file__).parent / "frontend"
CARD_FILE: Final = "ha-ingestor-flow-card.js"
STATIC_URL: Final = f"/{DOMAIN}/frontend"


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
    return url
