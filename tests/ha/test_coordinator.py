"""The coordinator over the real source policy: fallback, recovery, reauth, repairs, logging.

Only the two sources are doubles (autospec'd classes answering typed results); the api's
`IngestorClient` decides about the fallback as it does in production.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import UpdateFailed
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorNotFoundError,
    Origin,
)
from custom_components.ha_ingestor.api.core.models import (
    AlertKey,
    DataSource,
    EventStatistics,
    ProcessingMetrics,
    ServiceState,
    ServiceStatus,
    Thresholds,
)
from custom_components.ha_ingestor.api.influx.backend import InfluxResult
from custom_components.ha_ingestor.api.ingestor.assembly import ServicesResult
from custom_components.ha_ingestor.clients import refresh_timeout, stats_timeout
from custom_components.ha_ingestor.const import DOMAIN
from custom_components.ha_ingestor.options import thresholds_from

from .conftest import ENTRY_DATA, MODULE, NOW, UNIQUE_ID, poll

if TYPE_CHECKING:
    from unittest.mock import MagicMock

    from freezegun.api import FrozenDateTimeFactory
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers import issue_registry as ir

    from custom_components.ha_ingestor.coordinators.statistics import StatisticsCoordinator

FALLBACK_LOG = "statistics come from the ingestor's services"
RECOVERY_LOG = "InfluxDB answers again"

INFLUX_RESULT = InfluxResult(
    events=EventStatistics(events_in_period=600, events_per_minute=10.0, last_event=NOW),
    version="v2.7.10",
)
SERVICES_RESULT = ServicesResult(
    events=EventStatistics(events_per_minute=9.5),
    metrics=ProcessingMetrics(error_rate=1.0, success_rate=99.0, processing_time_ms=50.0),
    services=(
        ServiceState(name="websocket-ingestion", status=ServiceStatus.HEALTHY, reachable=True),
        ServiceState(
            name="admin-api",
            status=ServiceStatus.UNHEALTHY,
            reachable=True,
            message="database locked",
        ),
    ),
    admin_api_connected=True,
    ingestor_version="1.0.0",
)


def _key_refused(message: str, services: tuple[ServiceState, ...] = ()) -> ServicesResult:
    """The services answered, but the Admin API refused (or wants) a key."""
    return ServicesResult(
        events=EventStatistics(),
        metrics=ProcessingMetrics(),
        services=services,
        admin_api_connected=True,
        admin_api_error=IngestorAuthenticationError(message, origin=Origin.SERVICES),
    )


@pytest.fixture
def flux(mock_sources: dict[str, MagicMock]) -> MagicMock:
    """The InfluxDB source: answers until a test says otherwise."""
    backend: MagicMock = mock_sources["flux"].return_value
    backend.async_fetch.return_value = INFLUX_RESULT
    return backend


@pytest.fixture
def services(mock_sources: dict[str, MagicMock]) -> MagicMock:
    """The services source: answers until a test says otherwise."""
    client: MagicMock = mock_sources["services"].return_value
    client.async_fetch.return_value = SERVICES_RESULT
    return client


async def _set_up(
    hass: HomeAssistant, data: dict[str, Any] | None = None, options: dict[str, Any] | None = None
) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="HA Ingestor (influxdb.local)",
        unique_id=UNIQUE_ID,
        data=data or ENTRY_DATA,
        options=options or {},
    )
    entry.add_to_hass(hass)
    with patch(f"{MODULE}.PLATFORMS", []):
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    if entry.state is ConfigEntryState.LOADED:
        # A coordinator only polls while someone listens; the platforms are not set up here.
        entry.async_on_unload(entry.runtime_data.coordinator.async_add_listener(lambda: None))
    return entry


def _coordinator(entry: MockConfigEntry) -> StatisticsCoordinator:
    coordinator: StatisticsCoordinator = entry.runtime_data.coordinator
    return coordinator


def _count(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


def _reauth_flows(hass: HomeAssistant) -> list[Any]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


@pytest.mark.usefixtures("services")
async def test_fallback_and_back_are_logged_once_each(
    hass: HomeAssistant,
    flux: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    entry = await _set_up(hass)
    coordinator = _coordinator(entry)
    assert coordinator.data.source is DataSource.INFLUXDB
    assert coordinator.data.events.events_in_period == 600

    flux.async_fetch.side_effect = IngestorConnectionError("influxdb.local:8086: refused",
                                                           origin=Origin.INFLUXDB)  # fmt: skip
    for _ in range(3):
        await poll(hass, freezer)
        assert coordinator.last_update_success
        assert coordinator.data.source is DataSource.SERVICES_FALLBACK
        # Event figures only InfluxDB has are unknown, never invented.
        assert coordinator.data.events.events_in_period is None
        assert coordinator.data.events.events_per_minute == 9.5
    assert _count(caplog, FALLBACK_LOG) == 1
    warning = next(r for r in caplog.records if FALLBACK_LOG in r.getMessage())
    assert warning.levelno == logging.WARNING
    assert warning.exc_info is None
    assert "refused" in warning.getMessage()
    alert = coordinator.data.alert(AlertKey.INFLUXDB_UNREACHABLE)
    assert alert is not None
    assert alert.active

    flux.async_fetch.side_effect = None
    for _ in range(3):
        await poll(hass, freezer)
        assert coordinator.data.source is DataSource.INFLUXDB
    assert _count(caplog, RECOVERY_LOG) == 1
    assert _count(caplog, FALLBACK_LOG) == 1
    assert not any(r.exc_info for r in caplog.records if r.name.startswith(MODULE))


async def test_both_sources_down_fail_the_update_once_logged(
    hass: HomeAssistant,
    flux: MagicMock,
    services: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    entry = await _set_up(hass)
    coordinator = _coordinator(entry)

    flux.async_fetch.side_effect = IngestorConnectionError("down", origin=Origin.INFLUXDB)
    services.async_fetch.side_effect = IngestorConnectionError("down", origin=Origin.SERVICES)
    for _ in range(3):
        await poll(hass, freezer)
        assert not coordinator.last_update_success
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is None
    assert "Neither InfluxDB nor the ingestor's services answered" in str(
        coordinator.last_exception
    )
    assert isinstance(coordinator.last_exception, UpdateFailed)
    assert coordinator.last_exception.translation_key == "both_failed"
    assert entry.state is ConfigEntryState.LOADED

    flux.async_fetch.side_effect = None
    services.async_fetch.side_effect = None
    await poll(hass, freezer)
    assert coordinator.last_update_success
    assert _count(caplog, "data recovered") == 1


async def test_refused_influxdb_token_starts_reauth_and_polling_goes_on(
    hass: HomeAssistant, flux: MagicMock, services: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    entry = await _set_up(hass)
    coordinator = _coordinator(entry)
    flux.async_fetch.side_effect = IngestorAuthenticationError("HTTP 401", origin=Origin.INFLUXDB)
    await poll(hass, freezer)

    # The services cover for InfluxDB: the entities keep their data.
    assert coordinator.last_update_success
    assert coordinator.data.source is DataSource.SERVICES_FALLBACK
    # InfluxDB answered (it refused the token): it is not "unreachable".
    assert coordinator.data.influxdb_connected is True
    flows = _reauth_flows(hass)
    assert len(flows) == 1
    assert flows[0]["context"]["entry_id"] == entry.entry_id

    # Polling goes on while the reauth flow waits for the user; still one flow.
    for _ in range(3):
        asked = flux.async_fetch.await_count, services.async_fetch.await_count
        await poll(hass, freezer)
        assert flux.async_fetch.await_count == asked[0] + 1
        assert services.async_fetch.await_count == asked[1] + 1
        assert coordinator.last_update_success
    assert len(_reauth_flows(hass)) == 1
    assert entry.state is ConfigEntryState.LOADED

    flux.async_fetch.side_effect = None
    await poll(hass, freezer)
    assert coordinator.data.source is DataSource.INFLUXDB


async def test_refused_credentials_everywhere_fail_with_reauth(
    hass: HomeAssistant, flux: MagicMock, services: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    entry = await _set_up(hass)
    coordinator = _coordinator(entry)
    flux.async_fetch.side_effect = IngestorAuthenticationError("HTTP 401", origin=Origin.INFLUXDB)
    services.async_fetch.side_effect = IngestorConnectionError("down", origin=Origin.SERVICES)
    await poll(hass, freezer)

    assert not coordinator.last_update_success
    assert isinstance(coordinator.last_exception, ConfigEntryAuthFailed)
    assert len(_reauth_flows(hass)) == 1


@pytest.mark.parametrize(
    ("options", "influx_error", "services_error", "key"),
    [
        (
            {"source_mode": "influxdb"},
            IngestorNotFoundError("no bucket", origin=Origin.INFLUXDB),
            None,
            "influxdb_failed",
        ),
        (
            {"source_mode": "services"},
            None,
            IngestorConnectionError("down", origin=Origin.SERVICES),
            "services_failed",
        ),
        (
            {},
            IngestorConnectionError("down", origin=Origin.INFLUXDB),
            IngestorConnectionError("down", origin=Origin.SERVICES),
            "both_failed",
        ),
    ],
)
async def test_failed_update_names_what_failed(  # noqa: PLR0913
    hass: HomeAssistant,
    flux: MagicMock,
    services: MagicMock,
    freezer: FrozenDateTimeFactory,
    *,
    options: dict[str, Any],
    influx_error: Exception | None,
    services_error: Exception | None,
    key: str,
) -> None:
    entry = await _set_up(hass, options=options)
    coordinator = _coordinator(entry)
    flux.async_fetch.side_effect = influx_error
    services.async_fetch.side_effect = services_error
    await poll(hass, freezer)

    assert not coordinator.last_update_success
    assert isinstance(coordinator.last_exception, UpdateFailed)
    assert coordinator.last_exception.translation_key == key
    assert "Neither" not in str(coordinator.last_exception) or key == "both_failed"


@pytest.mark.usefixtures("flux")
async def test_refused_admin_api_key_starts_reauth(
    hass: HomeAssistant, services: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    entry = await _set_up(hass)
    services.async_fetch.return_value = _key_refused("refused", SERVICES_RESULT.services)
    await poll(hass, freezer)
    assert len(_reauth_flows(hass)) == 1
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.usefixtures("flux")
async def test_admin_api_without_key_is_a_repair_not_a_reauth(
    hass: HomeAssistant,
    services: MagicMock,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    data = {k: v for k, v in ENTRY_DATA.items() if k != CONF_API_KEY}
    entry = await _set_up(hass, data)
    services.async_fetch.return_value = _key_refused("needs a key", SERVICES_RESULT.services)
    await poll(hass, freezer)

    coordinator = _coordinator(entry)
    assert coordinator.last_update_success
    assert coordinator.data.source is DataSource.INFLUXDB
    assert _reauth_flows(hass) == []
    issue = issue_registry.async_get_issue(DOMAIN, f"admin_api_key_required_{entry.entry_id}")
    assert issue is not None
    assert issue.translation_placeholders == {
        "title": "HA Ingestor (influxdb.local)",
        "host": "ingestor.local",
    }
    assert not issue.is_fixable

    services.async_fetch.return_value = SERVICES_RESULT
    await poll(hass, freezer)
    assert (
        issue_registry.async_get_issue(DOMAIN, f"admin_api_key_required_{entry.entry_id}") is None
    )


@pytest.mark.usefixtures("services")
async def test_missing_bucket_raises_a_repair_issue_until_fixed(
    hass: HomeAssistant,
    flux: MagicMock,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = await _set_up(hass)
    issue_id = f"bucket_not_found_{entry.entry_id}"
    flux.async_fetch.side_effect = IngestorNotFoundError("no bucket", origin=Origin.INFLUXDB)
    await poll(hass, freezer)

    assert _coordinator(entry).data.source is DataSource.SERVICES_FALLBACK
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "bucket_not_found"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["bucket"] == "home_assistant_events"

    flux.async_fetch.side_effect = None
    await poll(hass, freezer)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_missing_bucket_with_services_down(
    hass: HomeAssistant,
    flux: MagicMock,
    services: MagicMock,
    issue_registry: ir.IssueRegistry,
) -> None:
    flux.async_fetch.side_effect = IngestorNotFoundError("no bucket", origin=Origin.INFLUXDB)
    services.async_fetch.side_effect = IngestorConnectionError("down", origin=Origin.SERVICES)
    entry = await _set_up(hass)

    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert issue_registry.async_get_issue(DOMAIN, f"bucket_not_found_{entry.entry_id}")


@pytest.mark.usefixtures("flux")
async def test_issues_go_with_the_entry(
    hass: HomeAssistant, services: MagicMock, issue_registry: ir.IssueRegistry
) -> None:
    services.async_fetch.return_value = _key_refused("needs a key")
    data = {k: v for k, v in ENTRY_DATA.items() if k != CONF_API_KEY}
    entry = await _set_up(hass, data)
    assert issue_registry.async_get_issue(DOMAIN, f"admin_api_key_required_{entry.entry_id}")

    await hass.config_entries.async_unload(entry.entry_id)
    assert not issue_registry.async_get_issue(DOMAIN, f"admin_api_key_required_{entry.entry_id}")


@pytest.mark.usefixtures("flux", "services")
async def test_monitored_services_filter_devices_and_alerts(hass: HomeAssistant) -> None:
    entry = await _set_up(hass)
    alert = _coordinator(entry).data.alert(AlertKey.SERVICE_UNHEALTHY)
    assert alert is not None
    assert alert.active  # admin-api is unhealthy

    await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(
        entry, options={"monitored_services": ["websocket-ingestion"]}
    )
    with patch(f"{MODULE}.PLATFORMS", []):
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    snapshot = _coordinator(entry).data
    assert [s.name for s in snapshot.services] == ["websocket-ingestion"]
    # The options still offer every service the stack reports.
    assert _coordinator(entry).seen_services == {"websocket-ingestion", "admin-api"}
    alert = snapshot.alert(AlertKey.SERVICE_UNHEALTHY)
    assert alert is not None
    assert not alert.active


@pytest.mark.usefixtures("services")
async def test_services_mode_never_asks_influxdb_nor_warns(
    hass: HomeAssistant, flux: MagicMock, caplog: pytest.LogCaptureFixture
) -> None:
    entry = await _set_up(hass, options={"source_mode": "services"})
    assert _coordinator(entry).data.source is DataSource.SERVICES_FALLBACK
    flux.async_fetch.assert_not_called()
    assert _count(caplog, FALLBACK_LOG) == 0


@pytest.mark.usefixtures("flux")
async def test_influxdb_mode_never_asks_the_services(
    hass: HomeAssistant, services: MagicMock
) -> None:
    entry = await _set_up(hass, options={"source_mode": "influxdb"})
    assert _coordinator(entry).data.source is DataSource.INFLUXDB
    services.async_fetch.assert_not_called()


def test_refresh_budget_is_below_the_interval() -> None:
    assert 0 < refresh_timeout(timedelta(seconds=2)) < 2
    for seconds in (15, 20, 30, 60, 300, 3600):
        interval = timedelta(seconds=seconds)
        budget = refresh_timeout(interval)
        assert 0 < budget < seconds
        # The slow stats call ends inside the budget, and is longer than a normal request.
        assert 10 <= stats_timeout(interval) < budget
    assert stats_timeout(timedelta(minutes=5)) == 30.0
    assert refresh_timeout(timedelta(hours=1)) <= 45


def test_thresholds_from_options() -> None:
    assert thresholds_from({}) == Thresholds()
    chosen = thresholds_from(
        {"error_rate_warning": 1, "processing_time_error": 2500, "stalled_error_minutes": "20"}
    )
    assert chosen == Thresholds(
        error_rate_warning=1.0, processing_time_error=2500.0, stalled_error_minutes=20.0
    )
    assert thresholds_from({"processing_time_error": None}).processing_time_error is None


@pytest.mark.usefixtures("flux", "services")
async def test_client_gets_the_refresh_budget(hass: HomeAssistant) -> None:
    entry = await _set_up(hass, options={"update_interval": 15})
    client = _coordinator(entry).client
    assert client.timeout == refresh_timeout(timedelta(seconds=15))
    assert client.timeout is not None
    assert client.timeout < 15
