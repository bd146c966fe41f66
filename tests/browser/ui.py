"""What a user does in the frontend: shared by the browser tests and scripts/screenshots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

    from tests.support.home_assistant import User

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# Generous for a cold cache; every wait is bounded by it.
WAIT_MS: Final = 20_000


def field(page: Page, label: str) -> Locator:
    """The text input of a flow form field, by its translated label."""
    return page.get_by_role("textbox", name=label, exact=True)


async def log_in(page: Page, url: str, user: User) -> None:
    """Home Assistant's login page, filled in as a user would."""
    from playwright.async_api import expect  # noqa: PLC0415

    await page.goto(url)
    await field(page, "Username").fill(user.username)
    await page.get_by_label("Password", exact=True).fill(user.password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).not_to_have_url(re.compile(r"/auth/"), timeout=WAIT_MS)
    # The frontend trades the login's code for tokens after the redirect; a page opened
    # before it has stored them ("Keep me logged in") is sent back to the login.
    await page.wait_for_function(
        "() => localStorage.getItem('hassTokens') !== null", timeout=WAIT_MS
    )


async def add_integration(page: Page, url: str) -> None:
    """Settings -> Devices & services -> Add integration -> HA Ingestor."""
    await page.goto(f"{url}/config/integrations/dashboard")
    await page.get_by_role("button", name="Add integration").click()
    await page.get_by_placeholder("Search for a brand name").fill("HA Ingestor")
    # In the dialog: the sidebar or the integrations page may name HA Ingestor too.
    await page.locator("dialog-add-integration").get_by_text("HA Ingestor", exact=True).click()
