"""Fixtures of the Home Assistant layer tests (core's model-integration layout)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, override
from unittest.mock import AsyncMock, MagicMock, patch

import pytest
from homeassistant.const import (
    CONF_API_KEY,
    CONF_TOKEN,
    CONF_URL,
    CONF_VERIFY_SSL,
    MAJOR_VERSION,
    MINOR_VERSION,
)
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension

from custom_components.ha_ingestor.api.core.models import Revision
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_ORGANIZATION,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
)

from .recorded import RecordedStack

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant, State
    from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
    from syrupy.assertion import SnapshotAssertion
    from syrupy.location import PyTestLocation

    from tests.support.simulator import IngestorSimulator

MODULE = "custom_components.ha_ingestor"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

INFLUX_INPUT: dict[str, Any] = {
    CONF_URL: "http://influxdb.local:8086",
    CONF_BACKEND: "flux",
    CONF_TOKEN: "influx-secret-token",
    CONF_ORGANIZATION: "ha-ingestor",
    CONF_BUCKET: "home_assistant_events",
    CONF_VERIFY_SSL: True,
}
INGESTOR_INPUT: dict[str, Any] = {
    CONF_ADMIN_API_URL: "http://ingestor.local:8003",
    CONF_API_KEY: "admin-secret-key",
}
ENTRY_DATA: dict[str, Any] = {**INFLUX_INPUT, **INGESTOR_INPUT}
# The InfluxDB server identifies an entry (config_flow.unique_id_for).
UNIQUE_ID = "influxdb.local:8086"
ENTRY_ID = "01JHAINGESTORTESTENTRY0001"


# The default update interval (const.DEFAULT_UPDATE_INTERVAL), as the time to travel per poll.
INTERVAL = timedelta(seconds=DEFAULT_UPDATE_INTERVAL)


async def poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Travel one update interval and let the coordinator's refresh finish."""
    freezer.tick(INTERVAL)
    async_fire_time_changed(hass)
    # Scheduled refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)


type Refresh = Callable[[], Awaitable[None]]


@pytest.fixture
def refresh(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> Refresh:
    """`poll` for this test's Home Assistant."""
    return partial(poll, hass, freezer)


def entity_state(hass: HomeAssistant, entity_id: str) -> State:
    """The state of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    """The state string of an entity that must exist."""
    return entity_state(hass, entity_id).state


class VersionedSnapshotExtension(HomeAssistantSnapshotExtension):
    """Home Assistant's serializer, one folder per Home Assistant version.

    Registry entries and state attribute keys serialise differently on the two targets, so
    each keeps its files in `snapshots-ha<major>.<minor>/`. Siblings, not subfolders of
    `snapshots/`: an update run on one target would delete the other's files as unused.
    """

    @classmethod
    @override
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        base = Path(super().dirname(test_location=test_location))
        return str(base.with_name(f"snapshots-ha{MAJOR_VERSION}.{MINOR_VERSION}"))


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Syrupy's own `snapshot` fixture wins over the plugin's: use Home Assistant's here."""
    return snapshot.use_extension(VersionedSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create even the entities that are disabled by default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
    ):
        yield


@pytest.fixture
def entry_data() -> dict[str, Any]:
    """The entry's data; tests of other set-ups override it."""
    return dict(ENTRY_DATA)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """The entry's options; tests of options override it."""
    return {}


@pytest.fixture
def mock_config_entry(entry_data: dict[str, Any], entry_options: dict[str, Any]) -> MockConfigEntry:
    """The InfluxDB (Flux) + Admin API entry, identified by its InfluxDB server."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor (influxdb.local)",
        unique_id=UNIQUE_ID,
        data=entry_data,
        options=entry_options,
        entry_id=ENTRY_ID,
    )


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """Keep flow tests from setting the entry up."""
    with patch(f"{MODULE}.async_setup_entry", return_value=True) as mock:
        yield mock


@pytest.fixture
def mock_sources() -> Generator[dict[str, MagicMock]]:
    """The source classes, patched where they are used: every validation succeeds."""
    with (
        patch(f"{MODULE}.clients.FluxBackend", autospec=True) as flux,
        patch(f"{MODULE}.clients.InfluxQLBackend", autospec=True) as influxql,
        patch(f"{MODULE}.clients.ServicesClient", autospec=True) as services,
        # The storage figures have their own tests (test_storage.py) against real servers.
        patch(f"{MODULE}.create_storage_source", return_value=None),
    ):
        yield {"flux": flux, "influxql": influxql, "services": services}


@pytest.fixture
def revision() -> Revision:
    """Which recorded ingestor answers; tests of R1 override it."""
    return Revision.R2


@pytest.fixture
def stack(aioclient_mock: AiohttpClientMocker, revision: Revision) -> RecordedStack:
    """The recorded stack, answering every request of Home Assistant's client sessions."""
    recorded = RecordedStack(revision, ENTRY_DATA[CONF_BUCKET])
    recorded.install(aioclient_mock)
    return recorded


@pytest.fixture
def platforms() -> list[str]:
    """Platforms to set up; the platform tests narrow this."""
    return []


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    mock_config_entry: MockConfigEntry,
    stack: RecordedStack,
    platforms: list[str],
) -> AsyncGenerator[MockConfigEntry]:
    """The entry at `NOW`, set up over the recorded stack with only `platforms`."""
    freezer.move_to(NOW)
    mock_config_entry.add_to_hass(hass)
    with patch(f"{MODULE}.PLATFORMS", platforms):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        yield mock_config_entry


@pytest.fixture
def simulator(r2: IngestorSimulator) -> IngestorSimulator:
    """The ingestor these tests watch unless they say otherwise: R2's services on loopback."""
    return r2
