"""Fixtures of the Home Assistant layer tests (core's model-integration layout)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
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

from custom_components.ha_ingestor.api.client import FetchResult
from custom_components.ha_ingestor.api.errors import IngestorError, Origin
from custom_components.ha_ingestor.api.models import (
    DataSource,
    EventStatistics,
    Period,
    ProcessingMetrics,
    ServiceState,
    ServiceStatus,
    Snapshot,
)
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_ORGANIZATION,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Generator

    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from syrupy.assertion import SnapshotAssertion
    from syrupy.location import PyTestLocation

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


# The default update interval (const.DEFAULT_UPDATE_INTERVAL), as the time to travel per poll.
INTERVAL = timedelta(seconds=DEFAULT_UPDATE_INTERVAL)


async def poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Travel one update interval and let the coordinator's refresh finish."""
    freezer.tick(INTERVAL)
    async_fire_time_changed(hass)
    # Scheduled refreshes run as background tasks.
    await hass.async_block_till_done(wait_background_tasks=True)


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    """The state string of an entity that must exist."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


def make_snapshot(source: DataSource = DataSource.INFLUXDB, **changes: Any) -> Snapshot:
    """A plausible snapshot; tests change what they look at."""
    snapshot = Snapshot(
        source=source,
        period=Period.HOUR_1,
        fetched_at=NOW,
        query_duration_ms=12.5,
        events=EventStatistics(
            events_in_period=1200 if source is DataSource.INFLUXDB else None,
            events_per_minute=20.0,
            last_event=NOW if source is DataSource.INFLUXDB else None,
            active_entities=42 if source is DataSource.INFLUXDB else None,
            events_by_domain=(("sensor", 900), ("light", 300)),
        ),
        metrics=ProcessingMetrics(error_rate=0.5, success_rate=99.5, processing_time_ms=40.0),
        services=(
            ServiceState(name="websocket-ingestion", status=ServiceStatus.HEALTHY, reachable=True),
            ServiceState(
                name="admin-api", status=ServiceStatus.HEALTHY, reachable=True, version="1.0.0"
            ),
        ),
        influxdb_connected=source is DataSource.INFLUXDB,
        admin_api_connected=True,
        influxdb_version="v2.7.10" if source is DataSource.INFLUXDB else None,
        ingestor_version="1.0.0",
    )
    return replace(snapshot, **changes)


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
def mock_config_entry() -> MockConfigEntry:
    """The InfluxDB (Flux) + Admin API entry, identified by its InfluxDB server."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor (influxdb.local)",
        unique_id=UNIQUE_ID,
        data=dict(ENTRY_DATA),
        entry_id="01JHAINGESTORTESTENTRY0001",
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
    ):
        yield {"flux": flux, "influxql": influxql, "services": services}


@pytest.fixture
def snapshots() -> list[Snapshot | Exception]:
    """What the client answers, one item per refresh (the last one repeats)."""
    return [make_snapshot()]


@pytest.fixture
def mock_client(
    mock_sources: dict[str, MagicMock], snapshots: list[Snapshot | Exception]
) -> Generator[MagicMock]:
    """The api client, patched where it is used, answering from `snapshots`."""

    async def answer(*_args: Any, **_kwargs: Any) -> FetchResult:
        item = snapshots.pop(0) if len(snapshots) > 1 else snapshots[0]
        if isinstance(item, IngestorError):
            if item.origin is Origin.INFLUXDB:
                return FetchResult(None, influx_error=item)
            return FetchResult(None, services_error=item)
        if isinstance(item, Exception):
            raise item
        return FetchResult(item)

    with patch(f"{MODULE}.clients.IngestorClient", autospec=True) as client_class:
        client = client_class.return_value
        client.async_get_snapshot.side_effect = answer
        yield client


@pytest.fixture
def platforms() -> list[str]:
    """Platforms to set up; the platform tests narrow this."""
    return []


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    mock_client: MagicMock,
    platforms: list[str],
) -> AsyncGenerator[MockConfigEntry]:
    """The entry, set up with the mocked client and only `platforms`."""
    mock_config_entry.add_to_hass(hass)
    with patch(f"{MODULE}.PLATFORMS", platforms):
        await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        yield mock_config_entry


@pytest.fixture
def snapshot_factory() -> Callable[..., Snapshot]:
    """`make_snapshot` for tests outside this module."""
    return make_snapshot
