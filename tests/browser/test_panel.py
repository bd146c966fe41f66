"""The first screen with no YAML: the sidebar panel, the card's visual editor, its words in German;
and names from the monitored stack shown as text, never as markup.

Home Assistant with its own frontend in headless Chromium, a real influxd seeded here and the
simulated HomeIQ 2.0 (R3) ingestor. Nothing is configured in YAML or pasted: the entry comes
from the config flow, the panel from the integration, the card from the dashboard's card picker.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final

import pytest

from custom_components.ha_ingestor.frontend import CARD_DIRECTORY, PANEL_URL_PATH
from tests.browser.test_flow_card import CARD, SLACK_S, UPDATE_INTERVAL, set_up_entry
from tests.browser.ui import WAIT_MS, log_in
from tests.support.simulator import WEBSOCKET_INGESTION, Fault

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.async_api import Dialog, Page

    from tests.browser.conftest import Seeded
    from tests.support.home_assistant import RunningHomeAssistant
    from tests.support.simulator import IngestorSimulator
    from tests.support.simulator_r3 import IngestorSimulatorR3

PANEL: Final = "ha-ingestor-panel"
TRANSLATIONS: Final = CARD_DIRECTORY.parent / "translations"
DE: Final[dict[str, Any]] = json.loads((TRANSLATIONS / "de.json").read_text(encoding="utf-8"))
DE_WORDS: Final[dict[str, str]] = DE["selector"]["card"]["options"]
EDIT_DASHBOARD: Final = "ingestor-edit"


@pytest.fixture
async def entry_id(
    page: Page, home_assistant: RunningHomeAssistant, seeded: Seeded, simulator: IngestorSimulator
) -> str:
    """The entry the config flow made, and the page logged in: nothing pasted, no YAML."""
    created = await set_up_entry(home_assistant, seeded, simulator)
    await log_in(page, home_assistant.url, home_assistant.user)
    return created


async def test_the_panel_is_in_the_sidebar_and_shows_the_card_live(
    page: Page,
    home_assistant: RunningHomeAssistant,
    simulator: IngestorSimulator,
    entry_id: str,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    try:
        item = page.locator("ha-sidebar").get_by_role("link", name="HA Ingestor", exact=True)
        await expect(item).to_have_attribute("href", f"/{PANEL_URL_PATH}", timeout=WAIT_MS)
        await item.click()
        await expect(page).to_have_url(re.compile(rf"/{PANEL_URL_PATH}$"))

        panel = page.locator(PANEL)
        nodes = panel.locator(f"{CARD} .node")
        devices = await home_assistant.client.devices()
        await expect(nodes).to_have_count(len(devices), timeout=WAIT_MS)
        # Home Assistant's own cards beside it: the alerts, and the event rate's trend.
        alerts = panel.locator("hui-entities-card").first
        await expect(alerts).to_contain_text("Alerts", timeout=WAIT_MS)
        await expect(alerts).to_contain_text("Ingestion stalled")
        await expect(panel.locator("hui-history-graph-card")).to_contain_text("Events per minute")

        # Live: the service turns unhealthy and the panel's card says so within two refreshes.
        ingestion = panel.locator(f'{CARD} .node[data-entity-id$="websocket_ingestion_status"]')
        await expect(ingestion).to_have_attribute("data-status", "ok", timeout=WAIT_MS)
        await simulator.set_fault(WEBSOCKET_INGESTION, Fault.UNHEALTHY)
        await expect(ingestion).to_have_attribute(
            "data-status", "error", timeout=(2 * UPDATE_INTERVAL + SLACK_S) * 1000
        )

        # On a phone the sidebar folds away behind the toolbar's menu button.
        await page.set_viewport_size({"width": 390, "height": 844})
        await expect(panel.locator("ha-menu-button")).to_be_visible()
        await page.screenshot(path=tmp_path / "panel-phone.png", full_page=True)
    except BaseException:
        await page.screenshot(path=tmp_path / "panel-failure.png", full_page=True)
        raise


async def test_the_visual_editor_makes_a_working_card(
    page: Page, home_assistant: RunningHomeAssistant, entry_id: str, tmp_path: Path
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    empty: dict[str, Any] = {"title": "Edit", "views": [{"path": "main", "cards": []}]}
    await home_assistant.client.save_dashboard(EDIT_DASHBOARD, "Edit test", empty)
    try:
        await page.goto(f"{home_assistant.url}/{EDIT_DASHBOARD}/main?edit=1")
        await page.get_by_role("button", name="Add card").click(timeout=WAIT_MS)
        picker = page.locator("hui-dialog-create-card")
        await picker.get_by_role("tab", name="By card").click()
        await (
            picker.locator("hui-card-picker")
            .get_by_placeholder(re.compile("Search", re.IGNORECASE))
            .fill("HA Ingestor")
        )
        # The picker previews each card under an overlay that takes the click.
        await picker.locator("div.card").filter(has_text="HA Ingestor data flow").click()

        editor = page.locator(f"{CARD}-editor")
        await expect(editor.locator("ha-form")).to_be_visible(timeout=WAIT_MS)
        title = editor.get_by_role("textbox", name="Title (empty hides the header)")
        await title.fill("Our ingestor")
        # The preview follows the editor: the card itself, with the title just typed.
        preview = page.locator(f"hui-dialog-edit-card {CARD}")
        await expect(preview.locator(".title")).to_have_text("Our ingestor", timeout=WAIT_MS)
        await page.locator("hui-dialog-edit-card").get_by_role("button", name="Save").click()

        card = page.locator(f"hui-masonry-view {CARD}, hui-sections-view {CARD}").first
        await expect(card.locator(".title")).to_have_text("Our ingestor", timeout=WAIT_MS)
        await expect(card.locator(".node").first).to_be_visible()
        (saved,) = await home_assistant.client.websocket(
            [{"type": "lovelace/config", "url_path": EDIT_DASHBOARD}]
        )
        cards = [c for view in saved["result"]["views"] for c in _cards_in(view)]
        assert {"type": f"custom:{CARD}", "entry_id": entry_id, "title": "Our ingestor"} in cards
    except BaseException:
        await page.screenshot(path=tmp_path / "editor-failure.png", full_page=True)
        raise


def _cards_in(view: dict[str, Any]) -> list[dict[str, Any]]:
    """A view's cards, in a masonry view or in the sections of a sections view."""
    return [*view.get("cards", []), *(c for s in view.get("sections", []) for c in s["cards"])]


async def test_a_german_user_sees_the_card_and_the_panel_in_german(
    page: Page,
    home_assistant: RunningHomeAssistant,
    entry_id: str,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect  # noqa: PLC0415

    try:
        # The language this user chose in their profile (the frontend keeps it per browser).
        await page.evaluate("localStorage.setItem('selectedLanguage', JSON.stringify('de'))")
        await page.goto(f"{home_assistant.url}/{PANEL_URL_PATH}")

        panel = page.locator(PANEL)
        await expect(panel.locator("hui-entities-card").first).to_contain_text(
            DE_WORDS["panel_alerts"], timeout=WAIT_MS
        )
        root = panel.locator(f"{CARD} .node.root .label")
        # "Keine Warnungen", "1 Warnung", "3 Warnungen": the German text, plural included.
        words = rf"{re.escape(DE_WORDS['no_alerts'])}|1 Warnung|\d+ Warnungen"
        await expect(root).to_have_text(re.compile(rf"^({words})$"), timeout=WAIT_MS)
        source = panel.locator(f"{CARD} .source")
        await expect(source).to_have_text(re.compile(r"^Quelle: "))
        await expect(panel.locator("hui-history-graph-card")).to_contain_text(
            DE_WORDS["panel_trend"]
        )
    except BaseException:
        await page.screenshot(path=tmp_path / "german-failure.png", full_page=True)
        raise


# Lower case without dashes or underscores: the device name keeps it as it is.
HOSTILE: Final = "<img src=x onerror=alert(document.domain)>"


async def test_names_from_the_stack_cannot_inject_markup(
    page: Page,
    home_assistant: RunningHomeAssistant,
    seeded: Seeded,
    simulator: IngestorSimulatorR3,
    tmp_path: Path,
) -> None:
    """A service the ingestor lists under a name that is markup, shown on the card as text."""
    from playwright.async_api import expect  # noqa: PLC0415

    simulator.deployed_elsewhere.append(HOSTILE)
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await set_up_entry(home_assistant, seeded, simulator)
    (device,) = [d for d in await home_assistant.client.devices() if d["model"] == HOSTILE]
    try:
        await log_in(page, home_assistant.url, home_assistant.user)
        await page.goto(f"{home_assistant.url}/{PANEL_URL_PATH}")
        node = page.locator(f'{PANEL} {CARD} .node[data-device-id="{device["id"]}"]')
        await expect(node.locator(".name")).to_have_text(str(device["name"]), timeout=WAIT_MS)
        assert "<img" in str(device["name"])
        # The name is text: no element was made of it, and its handler never ran.
        assert (
            await page.locator(f"{PANEL} {CARD}").evaluate(
                "el => el.shadowRoot.querySelectorAll('img').length"
            )
            == 0
        )
        await expect(page.locator(f"{PANEL} {CARD} .node")).not_to_have_count(0)
        assert dialogs == []
    except BaseException:
        await page.screenshot(path=tmp_path / "markup-failure.png", full_page=True)
        raise
