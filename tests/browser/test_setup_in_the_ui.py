"""A user sets HA Ingestor up entirely in Home Assistant's frontend and sees its entities.

Real pieces only: Home Assistant 2026.10's own frontend in headless Chromium, a real
influxd seeded here, the simulated R2 or HomeIQ 2.0 (R3) ingestor. The browser logs in, adds
the integration from the integrations page, first with an InfluxDB address nobody listens on
(the form must say so), then with the right one; on R3 the Admin API refuses the form until
its key is entered. The device page shows the revision's entities.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any, Final

import pytest

from custom_components.ha_ingestor.api.core.models import Revision
from tests.browser.ui import WAIT_MS, add_integration, field, log_in
from tests.support.home_assistant import REPO
from tests.support.influxdb_server import free_port
from tests.support.simulator import WEBSOCKET_INGESTION

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from playwright.async_api import Page

    from tests.browser.conftest import Seeded
    from tests.support.home_assistant import RunningHomeAssistant
    from tests.support.simulator import IngestorSimulator

MAIN_DEVICE: Final = "HA Ingestor"

# What the user reads is what the integration's English translation says.
EN: Final[Mapping[str, Any]] = json.loads(
    (REPO / "custom_components" / "ha_ingestor" / "translations" / "en.json").read_text(
        encoding="utf-8"
    )
)
FLOW: Final = EN["config"]
SENSORS: Final = EN["entity"]["sensor"]


def _number(value: int) -> re.Pattern[str]:
    """The value as a whole number of its own in a row's text (137, not 1370)."""
    return re.compile(rf"(?<![\d.,]){value}(?![\d.,])")


async def _main_device_id(home_assistant: RunningHomeAssistant) -> str:
    """The id of the integration's main device, once the new entry has registered it."""
    for _ in range(WAIT_MS // 250):
        devices = await home_assistant.client.devices()
        for device in devices:
            if device["name"] == MAIN_DEVICE:
                return str(device["id"])
        await asyncio.sleep(0.25)
    msg = f"no device {MAIN_DEVICE!r} within {WAIT_MS / 1000:.0f} s"
    raise AssertionError(msg)


async def _expect_row(page: Page, sensor: str, value: str | re.Pattern[str]) -> None:
    """The device page shows this sensor's row, by its translated name, with `value`."""
    from playwright.async_api import expect  # noqa: PLC0415

    row = page.locator("hui-generic-entity-row", has_text=SENSORS[sensor]["name"])
    await expect(row).to_contain_text(value, timeout=WAIT_MS)


async def _submit(page: Page) -> None:
    await page.get_by_role("button", name=re.compile(r"^(Next|Submit)$")).click()


# 2500 of the simulated queue's 10000 places.
QUEUE_SIZE: Final = 2500
QUEUE_FILL: Final = re.compile(r"(?<![\d.,])25\.0\s?%")


@pytest.mark.parametrize(
    "simulator", [Revision.R2, Revision.R3], indirect=True, ids=lambda r: r.value
)
async def test_user_sets_the_integration_up_in_the_ui(
    page: Page,
    home_assistant: RunningHomeAssistant,
    seeded: Seeded,
    simulator: IngestorSimulator,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    try:
        await log_in(page, home_assistant.url, home_assistant.user)
        await add_integration(page, home_assistant.url)

        # The InfluxDB step, first with a port nobody listens on.
        influxdb = FLOW["step"]["user"]["data"]
        url = field(page, influxdb["url"])
        await url.fill(f"http://127.0.0.1:{free_port()}")
        influxql = EN["selector"]["backend"]["options"]["influxql"]
        await page.get_by_role("radio", name=influxql, exact=True).check()
        await field(page, influxdb["bucket"]).fill(seeded.database)
        await _submit(page)
        cannot_connect = page.get_by_text(FLOW["error"]["cannot_connect"], exact=True)
        await expect(cannot_connect).to_be_visible(timeout=WAIT_MS)

        # The same form recovers once the address is right.
        await url.fill(seeded.url)
        await _submit(page)
        await expect(cannot_connect).to_be_hidden(timeout=WAIT_MS)

        # The ingestor step.
        r3 = simulator.revision is Revision.R3
        simulator.set_figures(queue_size=QUEUE_SIZE)
        ingestor = FLOW["step"]["ingestor"]["data"]
        await field(page, ingestor["admin_api_url"]).fill(simulator.admin_api_url)
        await _submit(page)
        if r3:
            # HomeIQ 2.0's Admin API answers nothing without its key: the form asks for it.
            key_required = page.get_by_text(FLOW["error"]["api_key_required"], exact=True)
            await expect(key_required).to_be_visible(timeout=WAIT_MS)
            assert simulator.api_key is not None
            await field(page, ingestor["api_key"]).fill(simulator.api_key)
            # The queue is websocket-ingestion's own figure: only its address brings it.
            websocket = field(page, ingestor["websocket_ingestion_url"])
            await websocket.fill(simulator.url_of(WEBSOCKET_INGESTION))
            await _submit(page)
        await page.get_by_role("button", name="Finish").click()

        device_id = await _main_device_id(home_assistant)
        await page.goto(f"{home_assistant.url}/config/devices/device/{device_id}")
        await _expect_row(page, "events_in_period", _number(seeded.events_in_period))
        await _expect_row(page, "active_entities", _number(seeded.active_entities))
        await _expect_row(page, "data_source", SENSORS["data_source"]["state"]["influxdb"])
        if r3:
            await _expect_row(page, "ingestion_queue_fill", QUEUE_FILL)
        else:
            # R2 reports no queue: the R3-only sensor is not created at all.
            queue_row = page.locator(
                "hui-generic-entity-row", has_text=SENSORS["ingestion_queue_fill"]["name"]
            )
            await expect(queue_row).to_have_count(0)
        (entry,) = await home_assistant.client.entries()
        assert entry["state"] == "loaded"
        assert entry["title"] == "HA Ingestor (127.0.0.1)"
        await page.screenshot(path=tmp_path / "device-page.png", full_page=True)
    except BaseException:
        await page.screenshot(path=tmp_path / "failure.png", full_page=True)
        raise
