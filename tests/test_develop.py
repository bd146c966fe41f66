"""scripts/develop.py: its pure parts, and its config-flow answers against the real flow."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

from custom_components.ha_ingestor.api.core.models import Revision
from custom_components.ha_ingestor.const import DOMAIN
from tests.support.events import Schema
from tests.support.home_assistant import (
    UNAVOIDABLE_REPAIRS,
    User,
    http_store_document,
    local_country,
    running_home_assistant,
)
from tests.support.influxdb_server import free_port
from tests.support.scripts import load_script
from tests.support.simulator import EventWriter, IngestorSimulator

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

    from tests.support.influxdb_server import InfluxDBServer

develop = load_script("develop", "develop_script")


# --- configuration.yaml and the stored HTTP settings ------------------------------------------


def test_configuration_has_http_only_while_nothing_is_stored() -> None:
    with_http = develop.render_configuration(with_http=True)
    without = develop.render_configuration(with_http=False)
    assert "http:\n  server_host: 127.0.0.1\n  server_port: 8123\n" in with_http
    assert "http:" not in without
    for text in (with_http, without):
        assert "config:\n" in text
        assert "custom_components.ha_ingestor: debug" in text


def _store(
    stable: dict[str, Any] | None, pending: dict[str, Any] | None, *, done: bool = True
) -> dict[str, Any]:
    return {
        "version": 2,
        "minor_version": 2,
        "key": "http",
        "data": {"stable": stable or {}, "pending": pending, "yaml_migration_done": done},
    }


OURS = {"server_host": ["127.0.0.1"], "server_port": 8123, "error": None}
DEFAULT = {"server_port": 8123, "error": None}  # no server_host: every interface


@pytest.mark.parametrize(
    ("store", "usable"),
    [
        (None, False),
        (_store(OURS, None, done=False), False),
        (_store(OURS, None), True),
        (_store(DEFAULT, None), False),
        (_store({**OURS, "server_port": 8124}, None), False),
        (_store({**OURS, "server_host": ["0.0.0.0"]}, None), False),  # noqa: S104
        # A run stopped before promoting: ours is still on trial, this run promotes it.
        (_store(DEFAULT, OURS), True),
        # Our trial failed (not promoted in time): the server fell back to every interface.
        (_store(DEFAULT, {**OURS, "error": "not_promoted"}), False),
        (_store(OURS, {**DEFAULT, "server_host": ["0.0.0.0"]}), False),  # noqa: S104
    ],
)
def test_http_store_usable(store: dict[str, Any] | None, usable: bool) -> None:
    assert develop.http_store_usable(store) is usable


# Home Assistant 2026.x keeps its HTTP settings in a store; before, only in the YAML.
HAS_HTTP_STORE = http_store_document(develop.HOST, develop.HA_PORT) is not None


def _http_settings_are_ours(paths: Any) -> None:
    """Ours in the store where Home Assistant has one (no YAML to migrate), else in the YAML."""
    yaml = (paths.config / "configuration.yaml").read_text()
    if HAS_HTTP_STORE:
        assert develop.http_store_usable(json.loads(paths.http_store.read_text()))
        assert "http:" not in yaml
    else:
        assert not paths.http_store.exists()
        assert "http:" in yaml


def test_prepare_config_first_run(tmp_path: Path) -> None:
    paths = develop.Paths(tmp_path)
    (tmp_path / "custom_components").mkdir()
    develop.prepare_config(paths, fresh=False)
    link = tmp_path / "config" / "custom_components"
    assert link.is_symlink()
    assert link.readlink() == Path("..") / "custom_components"
    assert link.resolve() == (tmp_path / "custom_components").resolve()
    _http_settings_are_ours(paths)
    assert paths.runtime.is_dir()


def test_prepare_config_keeps_good_store_and_drops_bad_one(tmp_path: Path) -> None:
    paths = develop.Paths(tmp_path)
    paths.http_store.parent.mkdir(parents=True)
    paths.http_store.write_text(json.dumps(_store(OURS, None)))
    (paths.runtime / "influxdb").mkdir(parents=True)
    develop.prepare_config(paths, fresh=False)
    assert paths.http_store.exists()
    assert "http:" not in (paths.config / "configuration.yaml").read_text()
    # The previous run's runtime files are gone.
    assert not (paths.runtime / "influxdb").exists()

    paths.http_store.write_text(json.dumps(_store(DEFAULT, None)))
    develop.prepare_config(paths, fresh=False)
    _http_settings_are_ours(paths)


def test_prepare_config_fresh_and_foreign_custom_components(tmp_path: Path) -> None:
    paths = develop.Paths(tmp_path)
    (paths.config / "custom_components").mkdir(parents=True)
    (paths.config / "keep-me").write_text("x")
    with pytest.raises(develop.DevelopError, match="not the link"):
        develop.prepare_config(paths, fresh=False)
    develop.prepare_config(paths, fresh=True)
    assert not (paths.config / "keep-me").exists()
    assert (paths.config / "custom_components").is_symlink()


@pytest.mark.parametrize(
    ("environ", "country"),
    [
        ({"LANG": "de_DE.UTF-8"}, "DE"),
        ({"LC_ALL": "fr_CA.UTF-8", "LANG": "de_DE.UTF-8"}, "CA"),
        ({"LANG": "C.UTF-8"}, "US"),
        ({"LANG": "POSIX"}, "US"),
        ({}, "US"),
    ],
)
def test_local_country(environ: dict[str, str], country: str) -> None:
    assert local_country(environ) == country


async def test_a_new_home_assistant_shows_only_the_repairs_it_cannot_avoid(
    tmp_path: Path, socket_enabled: None
) -> None:
    """The demo's start-up against a real Home Assistant process: what a newcomer sees."""
    pytest.importorskip("hass_frontend")  # the demo's logbook and history need it
    async with running_home_assistant(
        tmp_path / "config",
        free_port(),
        User("Developer", "dev", "dev-password"),
        integrations=develop.CONFIGURED_INTEGRATIONS,
        limit=120.0,
    ) as running:
        client = running.client
        assert running.readiness.country == "US"
        assert (await client.request("GET", "/api/config"))["country"] == "US"
        # The installation-method check runs once Home Assistant has started.
        await client.wait_until_running(60.0)
        deadline = time.monotonic() + 15.0
        while not (repairs := await client.repairs()) >= UNAVOIDABLE_REPAIRS:
            assert time.monotonic() < deadline, repairs
            await asyncio.sleep(0.25)
    assert repairs == UNAVOIDABLE_REPAIRS


def test_choose_ports_prefers_compose_ports_when_free() -> None:
    busy = {8003}
    ports = develop.choose_ports(
        ["influxdb", "admin-api", "data-api", "unknown"], busy.__contains__
    )
    assert ports == {"influxdb": 8086, "data-api": 8006}


def test_free_port_is_free(socket_enabled: None) -> None:
    port = develop.free_port()
    assert 0 < port < 65536
    assert not develop.port_in_use(port)


# --- flows -------------------------------------------------------------------------------------


def test_fill_form_values_defaults_and_suggestions() -> None:
    schema = [
        {"name": "url", "required": False, "type": "string"},
        {"name": "backend", "required": True, "default": "flux", "type": "select"},
        {"name": "bucket", "required": False, "default": "home_assistant_events"},
        {"name": "period", "required": True, "description": {"suggested_value": "1h"}},
        {"name": "token", "required": False},
        {
            "name": "advanced",
            "type": "expandable",
            "schema": [{"name": "verify_ssl", "required": True, "default": True}],
        },
    ]
    answer = develop.fill_form(
        schema, {"url": "http://127.0.0.1:1", "backend": "influxql", "verify_ssl": False, "x": 1}
    )
    assert answer == {
        "url": "http://127.0.0.1:1",
        "backend": "influxql",
        "bucket": "home_assistant_events",
        "period": "1h",
        "advanced": {"verify_ssl": False},
    }


def test_fill_form_refuses_unknown_required_field() -> None:
    with pytest.raises(develop.FormError, match="'otp'"):
        develop.fill_form([{"name": "otp", "required": True}], {"url": "x"})


def test_describe_errors_names_fields_not_values() -> None:
    result = {"errors": {"base": "cannot_connect", "token": "invalid_auth"}, "token": "s3cret"}
    text = develop.describe_errors(result)
    assert text == "base: cannot_connect, token: invalid_auth"
    assert develop.describe_errors({}) == "none"


def test_failed_onboarding_entries() -> None:
    entries = [
        {"domain": "google_translate", "source": "onboarding", "state": "setup_error"},
        {"domain": "shopping_list", "source": "onboarding", "state": "loaded"},
        {"domain": "met", "source": "user", "state": "setup_error"},
        {"domain": "ha_ingestor", "source": "user", "state": "loaded"},
    ]
    assert [e["domain"] for e in develop.failed_onboarding_entries(entries)] == ["google_translate"]


# --- requirements ------------------------------------------------------------------------------


def test_integration_closure_follows_dependencies() -> None:
    manifests = {
        "frontend": {"dependencies": ["http", "lovelace"], "requirements": ["fe==1"]},
        "lovelace": {"dependencies": ["http"]},
        "http": {"requirements": ["aiohttp==3"]},
        "ha_ingestor": {"requirements": ["influxdb-client[async]==1.50.0"]},
    }
    closure = develop.integration_closure(["frontend", "ha_ingestor", "ghost"], manifests.get)
    assert set(closure) == {"frontend", "lovelace", "http", "ha_ingestor", "ghost"}
    assert closure["frontend"] == ["fe==1"]
    assert closure["ghost"] == []


def test_requirement_missing() -> None:
    installed = {"influxdb-client": "1.50.0", "hassil": "3.12.0"}.get
    assert not develop.requirement_missing("influxdb-client[async]==1.50.0", installed)
    assert develop.requirement_missing("hassil==3.12.1", installed)  # other version
    assert develop.requirement_missing("home-assistant-frontend==1", installed)
    assert not develop.requirement_missing("influxdb-client", installed)


def test_missing_requirements_lists_only_uninstalled_pins() -> None:
    missing = develop.missing_requirements()
    for requirement in missing:
        assert develop.requirement_missing(requirement, develop._installed_version)
    # The integration's own requirement is a test requirement: always installed here.
    assert not any(req.startswith("influxdb-client") for req in missing)


# --- the live picture -------------------------------------------------------------------------


def test_pick_showcase_prefers_key_statistics() -> None:
    entity = develop.EntityState
    entities = [
        entity("binary_sensor.ha_ingestor_alert", "uid_alert_ingestion_stalled", "off"),
        entity("sensor.ha_ingestor_lag", "uid_ingestion_lag", "3.2"),
        entity("sensor.ha_ingestor_rate", "uid_events_per_minute", "unknown"),
        entity("sensor.ha_ingestor_in_period", "uid_events_in_period", "3596"),
    ]
    assert develop.pick_showcase(entities).unique_id == "uid_events_in_period"
    assert develop.pick_showcase(entities[:2]).unique_id == "uid_ingestion_lag"
    # A binary sensor is not proof of statistics.
    assert develop.pick_showcase(entities[:1]) is None
    assert develop.pick_showcase([]) is None


def test_demo_rate_swings_and_stays_positive() -> None:
    rates = [develop.demo_rate(t) for t in range(0, int(develop.RATE_PERIOD), 10)]
    assert min(rates) < develop.BASE_RATE < max(rates)
    assert max(rates) - min(rates) > develop.BASE_RATE / 2
    assert develop.demo_rate(develop.RATE_PERIOD * 0.75, jitter=-5.0) == 1.0


# --- the demo's answers against the real flows, over Home Assistant's REST API -------------


async def test_demo_drives_the_real_flows_over_rest(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    influxdb_server: InfluxDBServer,
    socket_enabled: None,
) -> None:
    database = f"develop_{datetime.now(UTC):%H%M%S%f}"
    influxdb_server.create_database(database)
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "config", {})
    async with IngestorSimulator(Revision.R2, influx_url=influxdb_server.url) as simulator:
        writer = EventWriter(influxdb_server.url, database, Schema.B, 60.0, seed=1)
        now = datetime.now(UTC)
        await writer.backfill(120, now - timedelta(minutes=30), now)
        await writer.stop()
        demo = develop.Demo(develop.Paths(Path("/nonexistent")))
        demo.influx_url = influxdb_server.url
        demo.ingestor_values = {"admin_api_url": simulator.admin_api_url}
        client = develop.HomeAssistantClient(await hass_client(), base_url="")

        result = await client.run_flow(
            "/api/config/config_entries/flow",
            {"handler": DOMAIN, "show_advanced_options": True},
            {**demo.entry_values(), "bucket": database},
        )
        assert result["type"] == "create_entry"
        entry = hass.config_entries.async_get_entry(result["result"]["entry_id"])
        assert entry is not None
        assert entry.data["url"] == influxdb_server.url
        assert entry.data["backend"] == "influxql"
        assert entry.data["bucket"] == database
        assert entry.data["admin_api_url"] == simulator.admin_api_url

        options = await client.run_flow(
            "/api/config/config_entries/options/flow",
            {"handler": entry.entry_id},
            {"update_interval": develop.DEMO_UPDATE_INTERVAL},
        )
        assert options["type"] == "create_entry"
        await hass.async_block_till_done()
        assert entry.options["update_interval"] == develop.DEMO_UPDATE_INTERVAL

        await client.delete_entry(entry.entry_id)
        await hass.async_block_till_done()
        assert hass.config_entries.async_get_entry(entry.entry_id) is None


async def test_run_flow_reports_a_refused_step(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, socket_enabled: None
) -> None:
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "config", {})
    client = develop.HomeAssistantClient(await hass_client(), base_url="")
    # Nothing listens on port 9: the flow shows its form again, with an error.
    with pytest.raises(develop.DevelopError, match="refused the demo's values"):
        await client.run_flow(
            "/api/config/config_entries/flow",
            {"handler": DOMAIN},
            {"url": "http://127.0.0.1:9", "backend": "influxql", "verify_ssl": False},
        )


async def test_demo_creates_the_dashboard_from_the_example(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    socket_enabled: None,
) -> None:
    for component in ("http", "websocket_api", "lovelace"):
        assert await async_setup_component(hass, component, {})
    client = develop.HomeAssistantClient(await hass_client(), base_url="")
    client.access_token = hass_access_token
    demo = develop.Demo(develop.Paths(Path("/nonexistent")))
    example = develop.load_dashboard()

    await demo.ensure_dashboard(client)
    # Again at the next start: the dashboard exists, its configuration is written again.
    await demo.ensure_dashboard(client)

    listed, stored = await client.websocket([
        {"type": "lovelace/dashboards/list"},
        {"type": "lovelace/config", "url_path": develop.DASHBOARD_URL_PATH},
    ])  # fmt: skip
    dashboards = [d for d in listed["result"] if d["url_path"] == develop.DASHBOARD_URL_PATH]
    assert len(dashboards) == 1
    assert dashboards[0]["title"] == "HA Ingestor"
    assert dashboards[0]["mode"] == "storage"
    assert stored["result"] == example
    first_view = example["views"][0]["path"]
    assert demo.dashboard == f"{develop.HA_URL}/{develop.DASHBOARD_URL_PATH}/{first_view}"


# --- the delivery check: the demo's entry has it on, its feed loses events on purpose ----------


def test_demo_drop_loses_every_50th_event_of_one_entity_early_on() -> None:
    lost = [n for n in range(1, 151) if develop.demo_drop(develop.DROP_ENTITY, n)]
    assert lost == [5, 55, 105]
    assert not any(
        develop.demo_drop(entity_id, n)
        for entity_id in develop.FEED_ENTITIES
        if entity_id != develop.DROP_ENTITY
        for n in range(1, 151)
    )
    assert develop.DROP_ENTITY in develop.FEED_ENTITIES


async def test_demo_entry_checks_delivery_and_its_feed_loses_events(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    influxdb_server: InfluxDBServer,
    socket_enabled: None,
) -> None:
    """The demo's entry and feed against a Home Assistant: *Events lost* rises on its own.

    The feed fires real state changes over REST and ingests them over a real websocket; the
    first loss waits for its window to settle (30 s) and for a refresh (15 s): about a minute.
    """
    database = f"develop_delivery_{datetime.now(UTC):%H%M%S%f}"
    influxdb_server.create_database(database)
    # The integration before the client: its card needs the HTTP router before it starts.
    for component in ("http", "api", "websocket_api", "config", DOMAIN):
        assert await async_setup_component(hass, component, {})
    async with IngestorSimulator(Revision.R2, influx_url=influxdb_server.url) as simulator:
        demo = develop.Demo(develop.Paths(Path("/nonexistent")), database=database)
        demo.influx_url = influxdb_server.url
        demo.ingestor_values = {"admin_api_url": simulator.admin_api_url}
        client = develop.HomeAssistantClient(await hass_client(), base_url="")
        client.access_token = hass_access_token
        # Subscribed before the entry loads, as in the demo: nothing is lost but on purpose.
        feed = asyncio.create_task(
            develop.feed_delivery(client, influxdb_server, database, Schema.B, step=0.5)
        )
        try:
            await asyncio.sleep(1.0)
            await demo.ensure_entry(client)
            await hass.async_block_till_done()

            (entry,) = hass.config_entries.async_entries(DOMAIN)
            assert entry.options["delivery_check"] is True
            assert entry.options["update_interval"] == develop.DEMO_UPDATE_INTERVAL
            registry = er.async_get(hass)
            lost_id = next(
                e.entity_id
                for e in er.async_entries_for_config_entry(registry, entry.entry_id)
                if e.domain == "sensor" and e.unique_id.endswith("_events_lost")
            )
            deadline = time.monotonic() + 150.0
            while (state := hass.states.get(lost_id)) is None or state.state in {
                "unknown",
                "unavailable",
                "0",
            }:
                assert not feed.done(), feed
                assert time.monotonic() < deadline, state
                await asyncio.sleep(1.0)
        finally:
            await develop._cancel(feed)
        await client.delete_entry(entry.entry_id)
        await hass.async_block_till_done()

    assert int(state.state) >= 1
    lost = {e["entity_id"]: e["lost"] for e in state.attributes["entities_lost_most"]}
    assert lost.get(develop.DROP_ENTITY, 0) >= 1, lost
