"""The data-flow card in Home Assistant's real frontend, fed by a real entry.

Home Assistant 2026.10 with its own frontend in headless Chromium, a real influxd seeded
here and the simulated HomeIQ 2.0 (R3) ingestor, the revision users install now. The entry
is set up over REST (the UI set-up has its own test, on R2 and R3); the card sits on a
storage-mode dashboard created through Home Assistant's WebSocket commands, as
scripts/develop does.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any, Final

from custom_components.ha_ingestor.api.core.models import Revision
from custom_components.ha_ingestor.const import SERVICE_URL_KEYS
from tests.browser.test_setup_in_the_ui import EN, MAIN_DEVICE
from tests.browser.ui import WAIT_MS, log_in
from tests.support.simulator import Fault

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.async_api import ConsoleMessage, Locator, Page

    from tests.browser.conftest import Seeded
    from tests.support.home_assistant import RunningHomeAssistant
    from tests.support.simulator import IngestorSimulator

CARD: Final = "ha-ingestor-flow-card"
DASHBOARD: Final = "ingestor-test"
# The coordinator's shortest interval: two refreshes fit in a test's patience.
UPDATE_INTERVAL: Final = 15
# Time for a refresh to reach the browser after the coordinator's interval.
SLACK_S: Final = 8
STATUS: Final = EN["entity"]["sensor"]["service_status"]["state"]
# How far the card's content reaches beyond its width (> 0: it does not wrap).
OVERFLOW: Final = (
    "el => { const c = el.shadowRoot.querySelector('ha-card');"
    " return c.scrollWidth - c.clientWidth; }"
)


async def set_up_entry(
    home_assistant: RunningHomeAssistant, seeded: Seeded, simulator: IngestorSimulator
) -> str:
    """InfluxDB, then the Admin API with its key and the services' own addresses."""
    client = home_assistant.client
    by_service = simulator.service_urls
    result = await client.run_flow(
        "/api/config/config_entries/flow",
        {"handler": "ha_ingestor", "show_advanced_options": True},
        {
            "url": seeded.url,
            "backend": "influxql",
            "bucket": seeded.database,
            "verify_ssl": False,
            "admin_api_url": simulator.admin_api_url,
            **({"api_key": simulator.api_key} if simulator.api_key else {}),
            **{
                key: by_service[name]
                for key, name in SERVICE_URL_KEYS.items()
                if name in by_service
            },
        },
    )
    assert result["type"] == "create_entry", result
    entry_id = str(result["result"]["entry_id"])
    options = await client.run_flow(
        "/api/config/config_entries/options/flow",
        {"handler": entry_id},
        {"update_interval": UPDATE_INTERVAL},
    )
    assert options["type"] == "create_entry", options
    return entry_id


def _card_nodes(page: Page) -> Locator:
    return page.locator(f"{CARD} .node")


def _node_of(page: Page, entity_id: str) -> Locator:
    return page.locator(f'{CARD} .node[data-entity-id="{entity_id}"]')


async def _status_colour(node: Locator) -> tuple[int, int, int]:
    """The node's status colour (its thick left border) as red, green, blue."""
    text = await node.evaluate("el => getComputedStyle(el).borderLeftColor")
    red, green, blue = (int(part) for part in re.findall(r"\d+", text)[:3])
    return red, green, blue


async def test_the_flow_card_shows_each_service_live(  # noqa: PLR0915
    page: Page,
    home_assistant: RunningHomeAssistant,
    seeded: Seeded,
    simulator: IngestorSimulator,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    console_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))

    entry_id = await set_up_entry(home_assistant, seeded, simulator)
    config: dict[str, Any] = {
        "title": "HA Ingestor",
        "views": [{"path": "flow", "cards": [{"type": f"custom:{CARD}", "entry_id": entry_id}]}],
    }
    assert await home_assistant.client.save_dashboard(DASHBOARD, "Ingestor test", config)
    devices = await home_assistant.client.devices()
    services = {str(d["model"]): str(d["id"]) for d in devices if d.get("via_device_id")}
    states = {e.entity_id: e for e in await home_assistant.client.entity_states()}
    status_of = {
        service: entity_id
        for entity_id, entity in states.items()
        for service in services
        if entity.unique_id.endswith(f"_{service}_status")
    }
    assert set(status_of) == set(services)
    # HomeIQ 2.0's stack: what the simulator runs, InfluxDB, and the health dashboard its
    # core platform always deploys (the Admin API vouches for it; nothing simulates it).
    assert simulator.revision is Revision.R3
    assert set(services) == {*simulator.services, "influxdb", "health-dashboard"}
    (main,) = (d for d in devices if d["name"] == MAIN_DEVICE)
    assert main["model"] == "Ingestor R3"
    try:
        await log_in(page, home_assistant.url, home_assistant.user)
        await page.goto(f"{home_assistant.url}/{DASHBOARD}/flow")

        # A node per service, plus Home Assistant at the root.
        await expect(_card_nodes(page)).to_have_count(len(services) + 1, timeout=WAIT_MS)
        for service, entity_id in status_of.items():
            node = _node_of(page, entity_id)
            await expect(node).to_have_attribute("data-device-id", services[service])
        ingestion = _node_of(page, status_of["websocket-ingestion"])
        await expect(ingestion).to_contain_text(STATUS["healthy"], timeout=WAIT_MS)
        red, green, _ = await _status_colour(ingestion)
        assert green > red, "a healthy service is not drawn green"
        # The ingestion path carries the event rate.
        await expect(page.locator(f"{CARD} .rate").first).to_contain_text("/min")

        # A click opens that entity's more-info dialog.
        data_api = _node_of(page, status_of["data-api"])
        await data_api.click()
        dialog = page.locator("ha-more-info-dialog")
        await expect(dialog).to_contain_text("Data API", timeout=WAIT_MS)
        await expect(dialog).not_to_contain_text("WebSocket Ingestion")
        await page.keyboard.press("Escape")

        # On a phone, in the dark theme: the graph wraps instead of overflowing.
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.emulate_media(color_scheme="dark")
        await expect(_card_nodes(page)).to_have_count(len(services) + 1)
        # The edges and rates follow the new width a frame later: bounded, 50 x 0.1 s.
        for _ in range(50):
            overflow = await page.locator(CARD).evaluate(OVERFLOW)
            if overflow <= 0:
                break
            await asyncio.sleep(0.1)
        assert overflow <= 0, f"the card overflows a phone's screen by {overflow} px"
        await page.screenshot(path=tmp_path / "flow-card-phone-dark.png", full_page=True)
        await page.set_viewport_size({"width": 1280, "height": 1000})
        await page.emulate_media(color_scheme="light")

        # The simulated service turns unhealthy: within two refreshes the node says so. On R3
        # its /health stays a healthy stub; only /health/detailed tells.
        await simulator.set_fault("websocket-ingestion", Fault.UNHEALTHY)
        started = time.monotonic()
        await expect(ingestion).to_have_attribute(
            "data-status", "error", timeout=(2 * UPDATE_INTERVAL + SLACK_S) * 1000
        )
        took = time.monotonic() - started
        await expect(ingestion).to_contain_text(STATUS["unhealthy"])
        red, green, _ = await _status_colour(ingestion)
        assert red > green, "an unhealthy service is not drawn red"
        assert took <= 2 * UPDATE_INTERVAL + SLACK_S

        await page.screenshot(path=tmp_path / "flow-card.png", full_page=True)
        assert console_errors == []
    except BaseException:
        await page.screenshot(path=tmp_path / "flow-card-failure.png", full_page=True)
        raise
