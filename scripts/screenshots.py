"""The program behind `scripts/screenshots`; it runs inside the `current` Debian root.

It runs the demo of scripts/develop in a temporary configuration, waits until the entities
have a few refreshes of history, then photographs four pages as a newcomer sees them and
stores them as small palette PNGs under docs/images/ (the README embeds them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

REPO: Final = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from custom_components.ha_ingestor.frontend import PANEL_URL_PATH  # noqa: E402
from tests.browser.ui import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    WAIT_MS,
    add_integration,
    field,
    log_in,
)
from tests.support.scripts import load_script  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from playwright.async_api import Page

IMAGES: Final = REPO / "docs" / "images"
WIDTH: Final = 1000
HEIGHT: Final = 800
READY_TIMEOUT: Final = 300.0
# Palette PNGs: the UI's flat colours survive 256 of them, at a fraction of the size.
COLOURS: Final = 256


develop = load_script("develop")
log = develop.log


def optimise(path: Path) -> int:
    """Rewrite `path` as an optimised palette PNG; its new size in bytes."""
    from PIL import Image  # noqa: PLC0415  (Home Assistant's requirement)

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(COLOURS, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path.stat().st_size


async def _wait_for(ready: Callable[[], bool], task: asyncio.Task[int], what: str) -> None:
    """Until `ready()`, unless the demo stops first."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        if task.done():
            await task  # its error, if any
            msg = "the demo stopped before it was ready"
            raise develop.DevelopError(msg)
        if time.monotonic() > deadline:
            msg = f"the demo was not ready for {what} within {READY_TIMEOUT:.0f} s"
            raise develop.DevelopError(msg)
        await asyncio.sleep(1)


async def _shoot(page: Page, name: str) -> None:
    path = IMAGES / f"{name}.png"
    # The first screen only: what a newcomer sees without scrolling.
    await page.screenshot(path=path)
    size = optimise(path)
    log(f"{path.relative_to(REPO)}: {size // 1024} KiB")


async def take_screenshots(dashboard: str, settle: float) -> None:
    """Dashboard, sidebar panel, device page and config flow, in one browser."""
    from playwright.async_api import async_playwright, expect  # noqa: PLC0415

    log(f"letting the demo refresh for {settle:.0f} s (history for the graphs)")
    await asyncio.sleep(settle)
    IMAGES.mkdir(parents=True, exist_ok=True)
    import aiohttp  # noqa: PLC0415

    async with aiohttp.ClientSession() as session:
        client = develop.HomeAssistantClient(session)
        await client.login()
        try:
            devices = await client.devices()
        finally:
            await client.revoke()
    main = next(d for d in devices if not d.get("via_device_id"))

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), timeout=30_000
        )
        try:
            context = await browser.new_context(
                viewport={"width": WIDTH, "height": HEIGHT}, locale="en-US"
            )
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            await log_in(page, develop.HA_URL, develop.DEV_USER)

            await page.goto(dashboard)
            await expect(page.locator("ha-ingestor-flow-card .node").first).to_be_visible()
            await expect(page.locator("hui-history-graph-card").first).to_be_visible()
            await page.wait_for_timeout(3000)  # the graphs draw after their data arrives
            await _shoot(page, "dashboard")

            # The sidebar panel the integration adds by itself: no YAML behind it.
            await page.goto(f"{develop.HA_URL}/{PANEL_URL_PATH}")
            await expect(
                page.locator("ha-ingestor-panel ha-ingestor-flow-card .node").first
            ).to_be_visible()
            await expect(
                page.locator("ha-ingestor-panel hui-history-graph-card").first
            ).to_be_visible()
            await page.wait_for_timeout(3000)
            await _shoot(page, "panel")

            await page.goto(f"{develop.HA_URL}/config/devices/device/{main['id']}")
            await expect(page.locator("hui-generic-entity-row").first).to_be_visible()
            await page.wait_for_timeout(1000)
            await _shoot(page, "device")

            await add_integration(page, develop.HA_URL)
            await expect(field(page, "InfluxDB address")).to_be_visible()
            await page.wait_for_timeout(1000)
            await _shoot(page, "config-flow")
            await context.close()
        finally:
            await browser.close()


async def run(settle: float) -> int:
    """The demo in a temporary configuration, photographed, then stopped."""
    with tempfile.TemporaryDirectory(prefix="ha-ingestor-screenshots-") as tmp:
        base = Path(tmp)
        # develop.prepare_config links ./config/custom_components to ../custom_components.
        (base / "custom_components").symlink_to(REPO / "custom_components")
        demo = develop.Demo(develop.Paths(base), fresh=True)
        task = asyncio.create_task(demo.run(), name="demo")
        try:
            # The dashboard is created once everything else is set up.
            await _wait_for(lambda: demo.dashboard != develop.HA_URL, task, "screenshots")
            await take_screenshots(demo.dashboard, settle)
        except develop.DevelopError as err:
            log(f"error: {err}")
            return 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, develop.DevelopError):
                await task
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `[--wait SECONDS]`."""
    parser = argparse.ArgumentParser(prog="scripts/screenshots", description=__doc__)
    parser.add_argument(
        "--wait", type=float, default=60.0, help="seconds the demo runs before the pictures"
    )
    args = parser.parse_args(argv)
    return asyncio.run(run(args.wait))


if __name__ == "__main__":
    sys.exit(main())
