"""A user sets HA Ingestor up entirely in Home Assistant's frontend and sees its entities.

Real pieces only: Home Assistant 2026.10's own frontend in headless Chromium, a real
influxd seeded here, the simulated R2 ingestor. The browser logs in, adds the integration
from the integrations page, first with an InfluxDB address nobody listens on (the form
must say so), then with the right one, and reads the device page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from tests.support.influxdb_server import free_port

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

    from tests.browser.conftest import Seeded
    from tests.support.home_assistant import RunningHomeAssistant
    from tests.support.simulator import IngestorSimulator

SCREENSHOT: Final = Path("/tmp/ha-ingestor-browser.png")  # noqa: S108
FAILURE_SCREENSHOT: Final = Path("/tmp/ha-ingestor-browser-failure.png")  # noqa: S108
# Generous for a cold cache; every wait is bounded by it.
WAIT_MS: Final = 20_000


@pytest.fixture(autouse=True)
def no_stale_screenshots() -> None:
    """A screenshot left by an earlier run must not pass for this run's."""
    SCREENSHOT.unlink(missing_ok=True)
    FAILURE_SCREENSHOT.unlink(missing_ok=True)


def _number(value: int) -> re.Pattern[str]:
    """The value as a whole number of its own in a row's text (137, not 1370)."""
    return re.compile(rf"(?<![\d.,]){value}(?![\d.,])")


def _field(page: Page, label: str) -> Locator:
    """The text input of a flow form field, by its translated label."""
    return page.get_by_role("textbox", name=label, exact=True)


async def _log_in(page: Page, home_assistant: RunningHomeAssistant) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    await page.goto(home_assistant.url)
    await _field(page, "Username").fill(home_assistant.user.username)
    await page.get_by_label("Password", exact=True).fill(home_assistant.user.password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).not_to_have_url(re.compile(r"/auth/"), timeout=WAIT_MS)


async def _add_integration(page: Page, home_assistant: RunningHomeAssistant) -> None:
    await page.goto(f"{home_assistant.url}/config/integrations/dashboard")
    await page.get_by_role("button", name="Add integration").click()
    await page.get_by_placeholder("Search for a brand name").fill("HA Ingestor")
    await page.get_by_text("HA Ingestor", exact=True).click()


async def _submit(page: Page) -> None:
    await page.get_by_role("button", name=re.compile(r"^(Next|Submit)$")).click()


async def test_user_sets_the_integration_up_in_the_ui(
    page: Page,
    home_assistant: RunningHomeAssistant,
    seeded: Seeded,
    simulator: IngestorSimulator,
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    try:
        await _log_in(page, home_assistant)
        await _add_integration(page, home_assistant)

        # The InfluxDB step, first with a port nobody listens on.
        url = _field(page, "InfluxDB address")
        await url.fill(f"http://127.0.0.1:{free_port()}")
        await page.get_by_role("radio", name=re.compile(r"^InfluxQL")).check()
        await _field(page, "Bucket or database").fill(seeded.database)
        await _submit(page)
        await expect(page.get_by_text("Failed to connect.")).to_be_visible(timeout=WAIT_MS)

        # The same form recovers once the address is right.
        await url.fill(seeded.url)
        await _submit(page)

        # The ingestor step.
        await _field(page, "Admin API address").fill(simulator.admin_api_url)
        await _submit(page)
        await page.get_by_role("button", name="Finish").click()

        (entry,) = await home_assistant.client.entries()
        assert entry["state"] == "loaded"
        devices = await home_assistant.client.devices()
        main = next(d for d in devices if d["name"] == "HA Ingestor")
        await page.goto(f"{home_assistant.url}/config/devices/device/{main['id']}")

        events = page.locator("hui-generic-entity-row", has_text="Events in period")
        await expect(events).to_contain_text(_number(seeded.events_in_period), timeout=WAIT_MS)
        active = page.locator("hui-generic-entity-row", has_text="Active entities")
        await expect(active).to_contain_text(_number(seeded.active_entities), timeout=WAIT_MS)
        source = page.locator("hui-generic-entity-row", has_text="Data source")
        await expect(source).to_contain_text("InfluxDB", timeout=WAIT_MS)
        await page.screenshot(path=SCREENSHOT, full_page=True)
    except BaseException:
        await page.screenshot(path=FAILURE_SCREENSHOT, full_page=True)
        raise
