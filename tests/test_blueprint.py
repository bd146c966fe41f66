"""The automation blueprint, the example dashboard and the README, checked against the code.

The blueprint is validated with Home Assistant's own automation blueprint schema and then run:
an automation is created from it the way the UI does (`use_blueprint`), alert states change,
and the notify calls are counted. The entity IDs the dashboard and the README name are checked
against the entities the integration really registers, and the README against the fields,
options, errors and repair issues the integration really has (quality_scale.yaml claims the
`docs-*` rules on the strength of these).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
import yaml
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint.models import Blueprint
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.ha_ingestor.api.core.models import AlertKey, Revision
from custom_components.ha_ingestor.api.core.storage import (
    StorageFigures,
)
from custom_components.ha_ingestor.config_flow import (
    INFLUXDB_SCHEMA,
    INGESTOR_SCHEMA,
    _options_schema,
)
from custom_components.ha_ingestor.const import CONF_BUCKET, CONF_DELIVERY_CHECK, DOMAIN
from tests.ha.conftest import ENTRY_DATA, NOW, UNIQUE_ID
from tests.ha.recorded import RecordedStack

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from homeassistant.core import HomeAssistant, ServiceCall
    from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

ROOT = Path(__file__).parent.parent
BLUEPRINT_PATH = "ha_ingestor/notify_on_alert.yaml"
BLUEPRINT = ROOT / "blueprints" / "automation" / BLUEPRINT_PATH
DASHBOARD = ROOT / "examples" / "dashboard.yaml"
README = ROOT / "README.md"
MODULE = "custom_components.ha_ingestor"

STALLED = "binary_sensor.ha_ingestor_ingestion_stalled"
ERROR_RATE = "binary_sensor.ha_ingestor_high_error_rate"
NOT_SELECTED = "binary_sensor.ha_ingestor_slow_processing"
AUTOMATION = "automation.notify_on_ha_ingestor_alerts"
ENTITY_ID = re.compile(r"\b(?:binary_sensor|sensor|event)\.[a-z0-9_]+[a-z0-9]\b")


def _blueprint() -> Blueprint:
    return Blueprint(
        load_yaml_dict(str(BLUEPRINT)),
        path=BLUEPRINT_PATH,
        expected_domain="automation",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


def test_blueprint_passes_home_assistants_automation_blueprint_schema() -> None:
    blueprint = _blueprint()
    assert blueprint.domain == "automation"
    assert blueprint.validate() is None, "this Home Assistant would refuse the blueprint"
    assert set(blueprint.inputs) == {"alerts", "notify_action", "minimum_severity", "on_for"}


def test_blueprint_requires_no_newer_home_assistant_than_the_integration() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    assert _blueprint().metadata["homeassistant"]["min_version"] == hacs["homeassistant"]


def test_blueprint_offers_only_ha_ingestor_problem_sensors() -> None:
    selector = _blueprint().inputs["alerts"]["selector"]["entity"]
    assert selector["multiple"] is True
    # Home Assistant's selector schema turns single values into lists; accept both.
    filters = [
        {key: value if isinstance(value, list) else [value] for key, value in entry.items()}
        for entry in selector["filter"]
    ]
    assert filters == [
        {"integration": [DOMAIN], "domain": ["binary_sensor"], "device_class": ["problem"]}
    ]


type MakeAutomation = Callable[..., Awaitable[list[ServiceCall]]]


@pytest.fixture
def make_automation(hass: HomeAssistant, tmp_path: Path) -> MakeAutomation:
    """Create an automation from the blueprint, as the UI does; returns the notify calls."""

    async def make(**inputs: Any) -> list[ServiceCall]:
        folder = tmp_path / "blueprints" / "automation" / "ha_ingestor"
        folder.mkdir(parents=True)
        shutil.copy(BLUEPRINT, folder / BLUEPRINT.name)
        hass.config.config_dir = str(tmp_path)
        for entity_id in (STALLED, ERROR_RATE, NOT_SELECTED):
            hass.states.async_set(entity_id, STATE_OFF, {"severity": None, "message": "Fine."})
        calls = async_mock_service(hass, "notify", "test_phone")
        config = {
            "alias": "Notify on HA Ingestor alerts",
            "use_blueprint": {
                "path": BLUEPRINT_PATH,
                "input": {"alerts": [STALLED, ERROR_RATE], "notify_action": "notify.test_phone"}
                | inputs,
            },
        }
        assert await async_setup_component(hass, "automation", {"automation": config})
        await hass.async_block_till_done()
        assert hass.states.get(AUTOMATION).state == STATE_ON, "the blueprint did not load"
        return calls

    return make


def _alert(hass: HomeAssistant, entity_id: str, severity: str | None, message: str) -> None:
    state = STATE_OFF if severity is None else STATE_ON
    hass.states.async_set(entity_id, state, {"severity": severity, "message": message})


async def test_an_alert_turning_on_sends_its_severity_and_message(
    hass: HomeAssistant, make_automation: MakeAutomation
) -> None:
    calls = await make_automation()
    _alert(hass, STALLED, "warning", "No new event for 6 min is above the warning threshold.")
    await hass.async_block_till_done()
    assert len(calls) == 1
    assert calls[0].data["message"] == "No new event for 6 min is above the warning threshold."
    assert calls[0].data["title"].endswith(": warning")

    # Staying on with a new message is no new alert; an unselected alert is not watched.
    _alert(hass, STALLED, "warning", "No new event for 7 min is above the warning threshold.")
    _alert(hass, NOT_SELECTED, "warning", "Processing time 1500 ms is above the warning.")
    await hass.async_block_till_done()
    assert len(calls) == 1

    _alert(hass, ERROR_RATE, "error", "Error rate 7 % is above the error threshold of 5 %.")
    await hass.async_block_till_done()
    assert len(calls) == 2
    assert calls[1].data["message"] == "Error rate 7 % is above the error threshold of 5 %."
    assert calls[1].data["title"].endswith(": error")


async def test_coming_back_from_unavailable_is_not_an_alert(
    hass: HomeAssistant, make_automation: MakeAutomation
) -> None:
    calls = await make_automation()
    hass.states.async_set(STALLED, STATE_UNAVAILABLE)
    await hass.async_block_till_done()
    _alert(hass, STALLED, "warning", "No new event for 6 min is above the warning threshold.")
    await hass.async_block_till_done()
    assert calls == []


async def test_error_only_skips_warnings_but_reports_the_escalation(
    hass: HomeAssistant, make_automation: MakeAutomation
) -> None:
    calls = await make_automation(minimum_severity="error")
    _alert(hass, STALLED, "warning", "No new event for 6 min is above the warning threshold.")
    await hass.async_block_till_done()
    assert calls == []

    _alert(hass, STALLED, "error", "No new event for 16 min is above the error threshold.")
    await hass.async_block_till_done()
    assert len(calls) == 1
    assert calls[0].data["message"] == "No new event for 16 min is above the error threshold."
    assert calls[0].data["title"].endswith(": error")


async def test_only_after_waits_and_forgets_a_short_blip(
    hass: HomeAssistant, make_automation: MakeAutomation
) -> None:
    calls = await make_automation(on_for={"minutes": 5})
    _alert(hass, STALLED, "warning", "Blip.")
    await hass.async_block_till_done()
    _alert(hass, STALLED, None, "Fine again.")
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done()
    assert calls == []

    _alert(hass, STALLED, "warning", "Still stalled.")
    await hass.async_block_till_done()
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=4))
    await hass.async_block_till_done()
    assert calls == []
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=6))
    await hass.async_block_till_done()
    assert [call.data["message"] for call in calls] == ["Still stalled."]


# --- Entity IDs in the dashboard and the README ----------------------------------------------

# Every service the examples name: those both revisions run, plus enrichment-pipeline (R1)
# and data-api (R2).
SERVICES = (
    "websocket-ingestion",
    "enrichment-pipeline",
    "influxdb",
    "admin-api",
    "data-api",
    "data-retention",
)


class _EveryStorageFigure:
    async def async_fetch(self) -> StorageFigures:
        return StorageFigures(size_bytes=1, series=1, retention_infinite=True, oldest_point=NOW)


@pytest.fixture
async def registered_entity_ids(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> set[str]:
    """The entity IDs one entry registers (disabled ones too), with every service listed."""
    # The recorded R2 stack, with R1's enrichment pipeline joined.
    stack = RecordedStack(Revision.R2, ENTRY_DATA[CONF_BUCKET])
    stack.add("enrichment-pipeline", like="data-retention")
    # An R3 `/api/info` (it has a rate limit): R3 offers every entity, its own ones too.
    stack.payload("admin-api", "/api/info")["data"]["rate_limit"] = {"requests_per_minute": 60}
    stack.install(aioclient_mock)
    # The delivery check on (the default): its entities are named in the README too.
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=UNIQUE_ID,
        data=dict(ENTRY_DATA),
        options={CONF_DELIVERY_CHECK: True},
    )
    entry.add_to_hass(hass)
    # A server that answers every storage figure: all storage entities are created.
    with patch(f"{MODULE}.create_storage_source", return_value=_EveryStorageFigure()):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
    ids = {
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }
    assert {s.name for s in entry.runtime_data.coordinator.data.services} >= set(SERVICES)
    assert await hass.config_entries.async_unload(entry.entry_id)
    return ids


def _entity_ids_named_in(path: Path) -> set[str]:
    return set(ENTITY_ID.findall(path.read_text(encoding="utf-8")))


def _readme() -> str:
    """The README with every run of white space made one blank, as a reader sees it."""
    return " ".join(README.read_text(encoding="utf-8").split())


@pytest.mark.parametrize("path", [DASHBOARD, README], ids=lambda p: p.name)
async def test_examples_name_only_entities_the_integration_creates(
    registered_entity_ids: set[str], path: Path
) -> None:
    named = _entity_ids_named_in(path)
    assert named, f"{path.name} names no entity"
    assert named <= registered_entity_ids, sorted(named - registered_entity_ids)


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = yaml.safe_load(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def _cards(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The cards of a view, masonry (`cards`) or sections (`sections[].cards`)."""
    cards: list[dict[str, Any]] = list(view.get("cards", []))
    for section in view.get("sections", []):
        cards += section.get("cards", [])
    return cards


async def test_dashboard_shows_every_alert(registered_entity_ids: set[str]) -> None:
    dashboard = _dashboard()
    cards = _cards(dashboard["views"][0])
    assert cards[0]["type"] == "custom:ha-ingestor-flow-card"
    shown = {
        condition["entity"]
        for card in cards
        if card["type"] == "conditional"
        for condition in card["conditions"]
        if condition.get("state") == STATE_ON
    }
    alerts = {f"binary_sensor.ha_ingestor_{key.value}" for key in AlertKey}
    assert shown == alerts
    assert alerts <= registered_entity_ids
    graphs = [card for card in cards if card["type"] == "history-graph"]
    assert {"entity": "sensor.ha_ingestor_events_per_minute"} in graphs[0]["entities"]


# --- The README documents what the code has --------------------------------------------------


async def test_readme_lists_every_entity_of_the_main_device(
    registered_entity_ids: set[str],
) -> None:
    main = {e for e in registered_entity_ids if e.split(".", 1)[1].startswith("ha_ingestor_")}
    # 24 of every revision, 5 of R3 only, 5 of the delivery check (its loss event among them)
    assert len(main) == 34
    named = _entity_ids_named_in(README)
    assert main <= named, sorted(main - named)


def test_readme_documents_every_config_flow_field_and_option() -> None:
    readme = _readme()
    options = _options_schema([])
    for schema in (INFLUXDB_SCHEMA, INGESTOR_SCHEMA, options):
        for key in schema.schema:
            assert f"(`{key}`)" in readme, f"{key} is not documented"


def _strings() -> dict[str, Any]:
    strings: dict[str, Any] = json.loads(
        (ROOT / "custom_components" / DOMAIN / "strings.json").read_text(encoding="utf-8")
    )
    return strings


def _lead(message: str) -> str:
    """What the user reads first: the message up to its first colon or full stop."""
    return re.split(r"[.:]", message, maxsplit=1)[0]


def test_readme_explains_every_error_the_flows_show() -> None:
    readme = _readme()
    strings = _strings()
    messages = [
        *strings["config"]["error"].values(),
        *(
            message
            for key, message in strings["config"]["abort"].items()
            if not key.endswith("_successful")
        ),
        *strings["options"]["error"].values(),
    ]
    for message in messages:
        assert _lead(message) in readme, f"not in the README: {message}"


def test_readme_explains_every_repair_issue() -> None:
    readme = _readme()
    for issue in _strings()["issues"].values():
        # Placeholders such as {bucket} are shown in italics as *name*.
        title = re.escape(issue["title"])
        pattern = re.sub(r"\\\{\w+\\\}", r"\\*\\w+\\*", title)
        assert re.search(pattern, readme), f"not in the README: {issue['title']}"
