"""A real Home Assistant, the servers it watches, and headless Chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from custom_components.ha_ingestor.api.core.models import Revision
from tests.browser.ui import CHROMIUM, CHROMIUM_ARGS
from tests.support.events import Schema, event_line, generate_events
from tests.support.home_assistant import RunningHomeAssistant, User, running_home_assistant
from tests.support.influxdb_server import free_port
from tests.support.simulator import IngestorSimulator, create_simulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from playwright.async_api import Page

    from tests.support.influxdb_server import InfluxDBServer

# scripts/test sets it on the target it installed the browser on: there a missing piece
# is a failure, elsewhere (the minimum target, a bare `pytest`) a skip.
REQUIRED_ENV: Final = "HA_INGESTOR_BROWSER"

USER: Final = User("Browser Tester", "tester", "tester-password")
IN_PERIOD: Final = 137
OUT_OF_PERIOD: Final = 45
# The Admin API key of the simulated HomeIQ 2.0 (R3), which always checks one.
R3_API_KEY: Final = "browser-admin-key"


def _missing_piece() -> str | None:
    if not CHROMIUM.is_file():
        return f"Chromium is not installed ({CHROMIUM})"
    for module, package in (
        ("playwright", "playwright"),
        ("hass_frontend", "home-assistant-frontend"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"the Python package {package} is not installed"
    return None


@pytest.fixture(scope="session")
def browser_available() -> None:
    """Fail (scripts/test on the current target) or skip when the browser setup is missing."""
    missing = _missing_piece()
    if missing is None:
        return
    reason = (
        f"{missing}; scripts/test installs Chromium, Playwright and Home Assistant's"
        " frontend on the current target only (scripts/toolchain.sh: ensure_browser)"
    )
    if os.environ.get(REQUIRED_ENV) == "required":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass(frozen=True)
class Seeded:
    """The database the test seeded and what the integration must make of it."""

    url: str
    database: str
    events_in_period: int
    active_entities: int


@pytest.fixture
def seeded(influxdb_server: InfluxDBServer, socket_enabled: None) -> Seeded:
    """Schema B events, some inside the default 1 h period and some before it."""
    now = datetime.now(UTC)
    inside = generate_events(IN_PERIOD, now - timedelta(minutes=50), now - timedelta(minutes=1), 3)
    outside = generate_events(
        OUT_OF_PERIOD, now - timedelta(hours=3), now - timedelta(minutes=70), 4
    )
    database = f"browser_{now:%H%M%S%f}"
    influxdb_server.create_database(database)
    influxdb_server.write(database, [event_line(e, Schema.B) for e in inside + outside])
    return Seeded(
        influxdb_server.url,
        database,
        events_in_period=len(inside),
        active_entities=len(Counter(e.entity_id for e in inside)),
    )


@pytest.fixture
async def simulator(
    request: pytest.FixtureRequest, seeded: Seeded
) -> AsyncIterator[IngestorSimulator]:
    """The ingestor's services on loopback, writing (as it says) into the seeded influxd.

    R3 (what users install now) unless a test parametrises it indirectly with a Revision.
    """
    revision: Revision = getattr(request, "param", Revision.R3)
    api_key = R3_API_KEY if revision is Revision.R3 else None
    async with create_simulator(revision, api_key, influx_url=seeded.url) as sim:
        yield sim


@pytest.fixture
async def home_assistant(
    browser_available: None, tmp_path: Path, socket_enabled: None
) -> AsyncIterator[RunningHomeAssistant]:
    """A fresh Home Assistant with the frontend on a free port, onboarded with USER."""
    async with running_home_assistant(
        tmp_path / "config",
        free_port(),
        USER,
        logs={"custom_components.ha_ingestor": "debug"},
        limit=120.0,
    ) as running:
        yield running


def reap_orphaned_browser_processes() -> int:
    """Collect Chromium's helpers that exited after being handed to us; how many still run.

    Chromium's crash handler and zygotes detach from the browser. Inside scripts/test's
    PID namespace pytest is process 1, so once they exit they stay zombies of pytest
    until someone waits for them. Only those exact zombies are waited for: asyncio's
    watchers own every other child.
    """
    running = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid_text, rest = stat.read_text(encoding="utf-8").split(" (", 1)
            name, fields = rest.rsplit(") ", 1)
            state, ppid = fields.split()[:2]
            if int(ppid) != os.getpid() or not name.startswith("chrom"):
                continue
            if state == "Z":
                os.waitpid(int(pid_text), os.WNOHANG)
            else:
                running += 1
    return running


@pytest.fixture
async def page(browser_available: None, tmp_path: Path) -> AsyncIterator[Page]:
    """A page in headless Debian Chromium (never a browser Playwright downloads)."""
    from playwright.async_api import async_playwright  # noqa: PLC0415

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), timeout=30_000
        )
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 1000}, locale="en-US"
            )
            page = await context.new_page()
            page.set_default_timeout(20_000)
            yield page
            await context.close()
        finally:
            await browser.close()
    # Bounded: 50 x 0.1 s.
    for _ in range(50):
        if not reap_orphaned_browser_processes():
            break
        await asyncio.sleep(0.1)
