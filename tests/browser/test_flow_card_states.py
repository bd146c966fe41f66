"""The data-flow card on its own, in Chromium, fed registries and states a test chooses.

The live test (test_flow_card.py) shows it in Home Assistant's frontend; this one covers what
a running demo does not show on demand: another revision's services, unknown and unavailable
states, another entry's devices, an entry chosen by device, no entry at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from custom_components.ha_ingestor.frontend import CARD_DIRECTORY, CARD_FILE

if TYPE_CHECKING:
    from playwright.async_api import Page

CARD_SOURCE: Final = (CARD_DIRECTORY / CARD_FILE).read_text(encoding="utf-8")
ENTRY: Final = "entry-r1"
OTHER_ENTRY: Final = "entry-other"


def _device(
    device_id: str, name: str, model: str | None, via: str | None, entry: str = ENTRY
) -> dict[str, Any]:
    return {
        "id": device_id,
        "name": name,
        "name_by_user": None,
        "model": model,
        "via_device_id": via,
        "config_entries": [entry],
        "identifiers": [["ha_ingestor", f"{entry}_{model or 'main'}"]],
    }


# An R1 stack: enrichment-pipeline between websocket-ingestion and InfluxDB, no data-api.
DEVICES: Final = {
    d["id"]: d
    for d in (
        _device("main", "HA Ingestor", "Ingestor R1", None),
        _device("ws", "WebSocket Ingestion", "websocket-ingestion", "main"),
        _device("enr", "Enrichment Pipeline", "enrichment-pipeline", "ws"),
        _device("influx", "InfluxDB", "influxdb", "enr"),
        _device("admin", "Admin API", "admin-api", "influx"),
        _device("retention", "Data Retention", "data-retention", "influx"),
        # Another entry's stack: never drawn for this entry.
        _device("other-main", "HA Ingestor", None, None, OTHER_ENTRY),
        _device("other-ws", "Other WebSocket", "websocket-ingestion", "other-main", OTHER_ENTRY),
        # Not an HA Ingestor device at all, though in a list of entries.
        {**_device("lamp", "Lamp", "lamp", None), "identifiers": [["hue", "lamp"]]},
    )
}


def _entity(entity_id: str, device: str, key: str | None) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "device_id": device,
        "platform": "ha_ingestor",
        "translation_key": key,
    }


ENTITIES: Final = {
    e["entity_id"]: e
    for e in (
        _entity("sensor.events_per_minute", "main", "events_per_minute"),
        _entity("sensor.active_alerts", "main", "active_alerts"),
        _entity("sensor.data_source", "main", "data_source"),
        _entity("sensor.ws_status", "ws", "service_status"),
        _entity("sensor.enr_status", "enr", "service_status"),
        _entity("sensor.influx_status", "influx", "service_status"),
        _entity("sensor.admin_status", "admin", "service_status"),
        # Its status sensor disabled: the connectivity sensor speaks for it.
        _entity("binary_sensor.retention_connectivity", "retention", None),
        _entity("sensor.other_ws_status", "other-ws", "service_status"),
    )
}


def _state(state: str, **attributes: Any) -> dict[str, Any]:
    return {"state": state, "attributes": attributes}


STATES: Final = {
    "sensor.events_per_minute": _state("42.5", unit_of_measurement="events/min"),
    "sensor.active_alerts": _state("2", alerts=[{"severity": "warning"}, {"severity": "error"}]),
    "sensor.data_source": _state("services_fallback"),
    "sensor.ws_status": _state("healthy"),
    "sensor.enr_status": _state("degraded"),
    "sensor.influx_status": _state("unavailable"),
    "sensor.admin_status": _state("unknown"),
    "binary_sensor.retention_connectivity": _state("off", device_class="connectivity"),
    "sensor.other_ws_status": _state("healthy"),
}

# Mounts the card in a blank page with a stand-in for the frontend's `hass` object; its
# formatEntityState marks what it formatted, so the test sees the card used it.
MOUNT: Final = """
async ([config, devices, entities, states]) => {
  const hass = {
    devices, entities,
    states: Object.fromEntries(
      Object.entries(states).map(([id, s]) => [id, {entity_id: id, ...s}])
    ),
    localize: (key) => key === "state.default.unknown" ? "Unknown (localized)" : "",
    formatEntityState: (s) => {
      const unit = s.attributes.unit_of_measurement;
      return `<${s.state}${unit ? " " + unit : ""}>`;
    },
  };
  document.body.innerHTML = "";
  window.moreInfo = [];
  document.addEventListener("hass-more-info", (e) => window.moreInfo.push(e.detail.entityId));
  const card = document.createElement("ha-ingestor-flow-card");
  card.setConfig(config);
  card.hass = hass;
  card.style.width = "700px";
  document.body.appendChild(card);
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  window.card = card;
  window.hass = hass;
}
"""

NODES: Final = """
() => [...window.card.shadowRoot.querySelectorAll(".node")].map((n) => ({
  device: n.dataset.deviceId, entity: n.dataset.entityId || null, status: n.dataset.status,
  name: n.querySelector(".name").textContent, label: n.querySelector(".label").textContent,
}))
"""


async def _mount(
    page: Page,
    config: dict[str, Any],
    devices: Any = DEVICES,
    entities: Any = ENTITIES,
    states: Any = STATES,
) -> None:
    await page.set_content("<!doctype html><html><body></body></html>")
    await page.add_script_tag(content=CARD_SOURCE, type="module")
    await page.wait_for_function("() => customElements.get('ha-ingestor-flow-card')")
    await page.evaluate(MOUNT, [config, devices, entities, states])


async def test_each_state_has_its_colour_class_and_words(page: Page) -> None:
    await _mount(page, {"entry_id": ENTRY})

    nodes = {n["device"]: n for n in await page.evaluate(NODES)}

    assert set(nodes) == {"main", "ws", "enr", "influx", "admin", "retention"}
    assert {key: value for key, value in nodes["main"].items() if key != "device"} == {
        "entity": "sensor.active_alerts",
        "status": "error",  # one of the two alerts is an error
        "name": "Home Assistant",
        "label": "2 alerts",
    }
    assert [(nodes[d]["status"], nodes[d]["label"]) for d in ("ws", "enr", "influx", "admin")] == [
        ("ok", "<healthy>"),
        ("warning", "<degraded>"),
        ("unavailable", "<unavailable>"),
        ("unknown", "<unknown>"),
    ]
    assert nodes["retention"]["entity"] == "binary_sensor.retention_connectivity"
    assert (nodes["retention"]["status"], nodes["retention"]["label"]) == ("error", "<off>")
    header = await page.evaluate(
        "() => window.card.shadowRoot.querySelector('.source').textContent"
    )
    assert header == "Source: <services_fallback>"


async def test_the_rate_labels_the_ingestion_path_of_this_revision(page: Page) -> None:
    await _mount(page, {"entry_id": ENTRY})

    rates = await page.evaluate(
        "() => [...window.card.shadowRoot.querySelectorAll('.rate')]"
        ".map((r) => [r.dataset.to, r.textContent])"
    )
    edges = await page.evaluate("() => window.card.shadowRoot.querySelectorAll('path.edge').length")

    # Home Assistant -> websocket-ingestion -> enrichment-pipeline -> InfluxDB.
    assert sorted(rates) == sorted([[d, "<42.5 events/min>"] for d in ("ws", "enr", "influx")])
    # Those three, and one to the group of InfluxDB's readers.
    assert edges == 4


async def test_a_click_asks_for_that_entitys_more_info(page: Page) -> None:
    await _mount(page, {"entry_id": ENTRY})

    await page.locator('ha-ingestor-flow-card .node[data-device-id="enr"]').click()

    assert await page.evaluate("() => window.moreInfo") == ["sensor.enr_status"]


async def test_a_device_id_chooses_its_entry(page: Page) -> None:
    await _mount(page, {"device_id": "other-main"})

    nodes = await page.evaluate(NODES)

    assert sorted(n["device"] for n in nodes) == ["other-main", "other-ws"]
    other = next(n for n in nodes if n["device"] == "other-ws")
    assert other["label"] == "<healthy>"
    # Its root has no entities: the alert count is not known, and says so.
    root = next(n for n in nodes if n["device"] == "other-main")
    assert (root["status"], root["label"], root["entity"]) == (
        "unknown",
        "Unknown (localized)",
        None,
    )


async def test_without_an_entry_the_card_says_what_to_do(page: Page) -> None:
    await _mount(page, {}, devices={"lamp": DEVICES["lamp"]})

    text = await page.evaluate("() => window.card.shadowRoot.textContent")

    assert "No HA Ingestor entry found" in text
    assert await page.evaluate("() => window.card.shadowRoot.querySelectorAll('.node').length") == 0


ADMIN_STATUS: Final = (
    "() => window.card.shadowRoot.querySelector('[data-device-id=\"admin\"]').dataset.status"
)


async def test_a_state_change_is_drawn(page: Page) -> None:
    await _mount(page, {"entry_id": ENTRY})
    assert await page.evaluate(ADMIN_STATUS) == "unknown"

    await page.evaluate(
        """() => {
          const healthy = {entity_id: "sensor.admin_status", state: "healthy", attributes: {}};
          const states = {...window.hass.states, "sensor.admin_status": healthy};
          window.card.hass = {...window.hass, states};
        }"""
    )

    assert await page.evaluate(ADMIN_STATUS) == "ok"


RATES: Final = (
    "() => [...window.card.shadowRoot.querySelectorAll('.rate')]"
    ".map((r) => [r.dataset.to, r.textContent])"
)
DELIVERY_ENTITIES: Final = {
    **ENTITIES,
    "sensor.delivery_completeness": _entity(
        "sensor.delivery_completeness", "main", "delivery_completeness"
    ),
}


async def test_the_delivery_completeness_labels_the_edge_leaving_home_assistant(
    page: Page,
) -> None:
    states = {**STATES, "sensor.delivery_completeness": _state("99.5", unit_of_measurement="%")}
    await _mount(page, {"entry_id": ENTRY}, entities=DELIVERY_ENTITIES, states=states)

    rates = dict(await page.evaluate(RATES))

    # Next to the rate on Home Assistant -> websocket-ingestion only: it measures the whole path.
    assert rates == {
        "ws": "<42.5 events/min> · <99.5 %> delivered",
        "enr": "<42.5 events/min>",
        "influx": "<42.5 events/min>",
    }


async def test_with_the_funnels_stages_each_edge_says_its_own_delivered_share(
    page: Page,
) -> None:
    entities = {
        **DELIVERY_ENTITIES,
        "sensor.events_lost": _entity("sensor.events_lost", "main", "events_lost"),
    }
    lost = _state(
        "25",
        events_fired=1000,
        lost_before_ingestor=10,
        lost_in_ingestor=5,
        lost_writing=20,
        filtered=15,
    )
    states = {
        **STATES,
        "sensor.delivery_completeness": _state("97.4", unit_of_measurement="%"),
        "sensor.events_lost": lost,
    }
    await _mount(page, {"entry_id": ENTRY}, entities=entities, states=states)

    rates = dict(await page.evaluate(RATES))

    # Into the ingestor 990 of 1,000; into InfluxDB 950 of the 975 it kept (15 filtered);
    # R1's enrichment hop has no counter of its own: no share.
    assert rates == {
        "ws": "<42.5 events/min> · 99 % delivered",
        "enr": "<42.5 events/min>",
        "influx": "<42.5 events/min> · 97.44 % delivered",
    }

    # A stage unknown (the ingestor restarted): that edge falls back, the other keeps its own.
    unknown = _state("25", events_fired=1000, lost_before_ingestor=10, lost_in_ingestor=None)
    await _mount(
        page,
        {"entry_id": ENTRY},
        entities=entities,
        states={**states, "sensor.events_lost": unknown},
    )
    rates = dict(await page.evaluate(RATES))
    assert rates["ws"] == "<42.5 events/min> · 99 % delivered"
    assert rates["influx"] == "<42.5 events/min>"


async def test_without_a_known_delivery_completeness_only_the_rate_is_shown(page: Page) -> None:
    # The check is off (no entity), or on but no window compared yet (unknown).
    for entities, states in (
        (ENTITIES, STATES),
        (DELIVERY_ENTITIES, {**STATES, "sensor.delivery_completeness": _state("unknown")}),
    ):
        await _mount(page, {"entry_id": ENTRY}, entities=entities, states=states)

        rates = dict(await page.evaluate(RATES))

        assert rates == dict.fromkeys(("ws", "enr", "influx"), "<42.5 events/min>")
        assert "delivered" not in await page.evaluate("() => window.card.shadowRoot.textContent")
