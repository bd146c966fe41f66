"""Config, reauth, reconfigure and options flows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import (
    CONF_API_KEY,
    CONF_PASSWORD,
    CONF_TOKEN,
    CONF_URL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor import config_flow, const, diagnostics
from custom_components.ha_ingestor.api.core.bounded import RedirectNotFollowedError
from custom_components.ha_ingestor.api.core.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorNotFoundError,
    IngestorResponseError,
    IngestorSSLError,
    IngestorTimeoutError,
    InvalidNameError,
    Origin,
)
from custom_components.ha_ingestor.api.core.models import Period, TrendWindow
from custom_components.ha_ingestor.config_flow import unique_id_for
from custom_components.ha_ingestor.const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_DATA_API_URL,
    CONF_MONITORED_SERVICES,
    CONF_PERIOD,
    CONF_SOURCE_MODE,
    CONF_TREND_WINDOW,
    CONF_UPDATE_INTERVAL,
    CONF_WEBSOCKET_INGESTION_URL,
    DOMAIN,
)

from .conftest import ENTRY_DATA, INFLUX_INPUT, INGESTOR_INPUT, UNIQUE_ID

if TYPE_CHECKING:
    from unittest.mock import AsyncMock, MagicMock

    from _pytest.mark.structures import ParameterSet
    from homeassistant.config_entries import ConfigFlowResult
    from homeassistant.core import HomeAssistant
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator


@pytest.fixture(autouse=True)
def _flows_set_up_nothing(request: pytest.FixtureRequest) -> None:
    """Flow tests stop at the entry; the options tests need a really loaded one."""
    if "init_integration" not in request.fixturenames:
        request.getfixturevalue("mock_setup_entry")


INFLUX = Origin.INFLUXDB
SERVICES = Origin.SERVICES


@pytest.fixture
def services_entry(hass: HomeAssistant) -> MockConfigEntry:
    """An entry set up without InfluxDB: its Admin API server identifies it."""
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="ingestor.local:8003", data=dict(INGESTOR_INPUT)
    )
    entry.add_to_hass(hass)
    return entry


async def _start(hass: HomeAssistant) -> ConfigFlowResult:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result


async def _through_influx(hass: HomeAssistant, influx: dict[str, Any]) -> ConfigFlowResult:
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], influx)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "ingestor"
    return result


async def test_full_flow_influxdb_and_admin_api(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], mock_setup_entry: AsyncMock
) -> None:
    result = await _through_influx(hass, INFLUX_INPUT)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], INGESTOR_INPUT)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "HA Ingestor (influxdb.local)"
    assert result["data"] == ENTRY_DATA
    assert result["options"] == {}
    assert result["result"].unique_id == UNIQUE_ID
    assert mock_setup_entry.call_count == 1
    # Both sources were really asked, with what was entered.
    mock_sources["flux"].return_value.async_validate.assert_awaited_once()
    mock_sources["services"].return_value.async_validate.assert_awaited_once()
    args = mock_sources["flux"].call_args.args
    assert args[0] is async_get_clientsession(hass)
    assert args[1:5] == ("http://influxdb.local:8086", "influx-secret-token", "ha-ingestor",
                         "home_assistant_events")  # fmt: skip
    assert mock_sources["flux"].return_value.async_close.await_count == 1
    services_args = mock_sources["services"].call_args.args
    assert services_args[1:4] == ("http://ingestor.local:8003", "admin-secret-key", {})


async def test_influxql_with_user_and_service_urls(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock]
) -> None:
    influx = {
        CONF_URL: " https://influx1.local:8086/ ",
        CONF_BACKEND: "influxql",
        CONF_USERNAME: "reader",
        CONF_PASSWORD: "influx-password",
        CONF_BUCKET: "ha_events",
        CONF_VERIFY_SSL: False,
    }
    result = await _through_influx(hass, influx)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_WEBSOCKET_INGESTION_URL: "http://ws.local:8001"}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_URL] == "https://influx1.local:8086"
    assert CONF_ADMIN_API_URL not in result["data"]
    assert result["result"].unique_id == "influx1.local:8086"
    mock_sources["flux"].assert_not_called()
    mock_sources["influxql"].return_value.async_validate.assert_awaited_once()
    assert mock_sources["services"].call_args.args[3] == {
        "websocket-ingestion": "http://ws.local:8001"
    }


async def test_services_only(hass: HomeAssistant, mock_sources: dict[str, MagicMock]) -> None:
    result = await _through_influx(hass, {CONF_URL: "", CONF_BACKEND: "flux"})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], INGESTOR_INPUT)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "HA Ingestor (ingestor.local)"
    assert CONF_URL not in result["data"]
    assert result["result"].unique_id == "ingestor.local:8003"
    mock_sources["flux"].assert_not_called()


async def test_single_service_url_only(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock]
) -> None:
    result = await _through_influx(hass, {CONF_BACKEND: "flux"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DATA_API_URL: "http://data.local:8006"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "HA Ingestor (data.local)"
    assert result["result"].unique_id == "data.local:8006"


async def test_influxdb_only(hass: HomeAssistant, mock_sources: dict[str, MagicMock]) -> None:
    result = await _through_influx(hass, INFLUX_INPUT)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == INFLUX_INPUT
    mock_sources["services"].assert_not_called()


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """One way a set-up step refuses what was entered, and the input that then succeeds.

    `ingestor` None: step 1 (InfluxDB) refuses `influx`; else step 2 refuses `ingestor`.
    `source` names the mocked source class whose validation (or, `at_construction`, whose
    constructor) raises `error`; without an error the flow refuses before asking anyone.
    """

    influx: dict[str, Any]
    ingestor: dict[str, Any] | None = None
    errors: dict[str, str]
    source: str = "flux"
    error: Exception | None = None
    at_construction: bool = False
    fixed: dict[str, Any] | None = None


INFLUXQL_USER = {
    CONF_URL: "http://influx1.local:8086",
    CONF_BACKEND: "influxql",
    CONF_USERNAME: "reader",
    CONF_PASSWORD: "wrong",
    CONF_BUCKET: "ha",
    CONF_VERIFY_SSL: True,
}
NO_INFLUXDB = {CONF_BACKEND: "flux"}
WEBSOCKET = {CONF_WEBSOCKET_INGESTION_URL: "http://ws.local:8001"}


def _influxdb_refuses(error: Exception, field: str, key: str) -> ParameterSet:
    return pytest.param(
        Refusal(influx=INFLUX_INPUT, error=error, errors={field: key}),
        id=f"influxdb-{type(error).__name__}",
    )


def _services_refuse(error: Exception, field: str, key: str) -> ParameterSet:
    return pytest.param(
        Refusal(
            influx=INFLUX_INPUT,
            ingestor=INGESTOR_INPUT,
            source="services",
            error=error,
            errors={field: key},
        ),
        id=f"services-{type(error).__name__}",
    )


@pytest.mark.parametrize(
    "refusal",
    [
        _influxdb_refuses(IngestorSSLError("tls", origin=INFLUX), CONF_URL, "ssl_error"),
        _influxdb_refuses(
            IngestorConnectionError("refused", origin=INFLUX), CONF_URL, "cannot_connect"
        ),
        _influxdb_refuses(IngestorTimeoutError("slow", origin=INFLUX), CONF_URL, "cannot_connect"),
        _influxdb_refuses(
            IngestorAuthenticationError("401", origin=INFLUX), CONF_TOKEN, "invalid_auth"
        ),
        _influxdb_refuses(
            IngestorNotFoundError("no bucket", origin=INFLUX), CONF_BUCKET, "bucket_not_found"
        ),
        _influxdb_refuses(IngestorResponseError("html", origin=INFLUX), CONF_URL, "cannot_connect"),
        _influxdb_refuses(RedirectNotFollowedError("307", origin=INFLUX), CONF_URL, "redirected"),
        _influxdb_refuses(RuntimeError("boom"), "base", "unknown"),
        pytest.param(
            Refusal(
                influx=INFLUXQL_USER,
                source="influxql",
                error=IngestorAuthenticationError("403", origin=INFLUX),
                errors={CONF_PASSWORD: "invalid_auth"},
            ),
            id="influxql-password",
        ),
        *(
            pytest.param(
                Refusal(
                    influx={**INFLUX_INPUT, CONF_URL: url},
                    errors={CONF_URL: "invalid_url"},
                    fixed=INFLUX_INPUT,
                ),
                id=f"invalid-url-{url}",
            )
            for url in (
                "influxdb.local:8086",
                "ftp://influxdb.local",
                "http://",
                "http://[::1",
                # One rule with the backends: a query string would reach one of them only.
                "http://influxdb.local:8086/?org=x",
                "http://influxdb.local:8086/#x",
            )
        ),
        pytest.param(
            Refusal(
                influx={**INFLUX_INPUT, CONF_BUCKET: 'x" |> drop()'},
                error=InvalidNameError("bad bucket"),
                at_construction=True,
                errors={CONF_BUCKET: "invalid_bucket_name"},
                fixed=INFLUX_INPUT,
            ),
            id="invalid-bucket-name",
        ),
        _services_refuse(IngestorSSLError("tls", origin=SERVICES), CONF_ADMIN_API_URL, "ssl_error"),
        _services_refuse(
            IngestorConnectionError("refused", origin=SERVICES),
            CONF_ADMIN_API_URL,
            "cannot_connect",
        ),
        _services_refuse(
            IngestorAuthenticationError("401", origin=SERVICES), CONF_API_KEY, "invalid_auth"
        ),
        _services_refuse(
            IngestorResponseError("not json", origin=SERVICES), CONF_ADMIN_API_URL, "not_admin_api"
        ),
        _services_refuse(
            RedirectNotFollowedError("301", origin=SERVICES), CONF_ADMIN_API_URL, "redirected"
        ),
        _services_refuse(RuntimeError("boom"), "base", "unknown"),
        pytest.param(
            Refusal(
                influx=NO_INFLUXDB,
                ingestor={},
                errors={"base": "no_source"},
                fixed=INGESTOR_INPUT,
            ),
            id="no-source",
        ),
        pytest.param(
            Refusal(
                influx=NO_INFLUXDB,
                ingestor={CONF_WEBSOCKET_INGESTION_URL: "ws.local:8001"},
                errors={CONF_WEBSOCKET_INGESTION_URL: "invalid_url"},
                fixed=WEBSOCKET,
            ),
            id="invalid-service-url",
        ),
        # The service addresses keep InfluxDB's address rule: no query string, no fragment.
        *(
            pytest.param(
                Refusal(
                    influx=NO_INFLUXDB,
                    ingestor={key: url},
                    errors={key: "invalid_url"},
                    fixed=WEBSOCKET,
                ),
                id=f"invalid-service-url-{key}-{url}",
            )
            for key, url in (
                (CONF_WEBSOCKET_INGESTION_URL, "http://ws.local:8001/?token=x"),
                (CONF_WEBSOCKET_INGESTION_URL, "http://ws.local:8001#health"),
                (CONF_ADMIN_API_URL, "http://admin.local:8003?key=x"),
                (CONF_ADMIN_API_URL, "ftp://admin.local:8003"),
            )
        ),
        # A service URL is no Admin API: an odd answer there is just no connection.
        *(
            pytest.param(
                Refusal(
                    influx=NO_INFLUXDB,
                    ingestor=WEBSOCKET,
                    source="services",
                    error=error,
                    errors={"base": "cannot_connect"},
                ),
                id=f"service-url-{type(error).__name__}",
            )
            for error in (
                IngestorConnectionError("refused", origin=SERVICES),
                IngestorResponseError("not json", origin=SERVICES),
            )
        ),
    ],
)
async def test_errors_recover(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], refusal: Refusal
) -> None:
    source = mock_sources[refusal.source]
    failing = source if refusal.at_construction else source.return_value.async_validate
    failing.side_effect = refusal.error
    result = await _start(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], refusal.influx)
    if refusal.ingestor is not None:
        assert result["step_id"] == "ingestor"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], refusal.ingestor)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == ("user" if refusal.ingestor is None else "ingestor")
    assert result["errors"] == refusal.errors
    if refusal.error is None:
        for mocked in mock_sources.values():
            mocked.assert_not_called()

    # The same flow goes on once the cause is gone.
    failing.side_effect = None
    fixed = refusal.fixed or refusal.ingestor or refusal.influx
    result = await hass.config_entries.flow.async_configure(result["flow_id"], fixed)
    if refusal.ingestor is None:
        assert result["step_id"] == "ingestor"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], INGESTOR_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_influxdb_backend_is_closed_after_a_failed_validation(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock]
) -> None:
    backend = mock_sources["flux"].return_value
    backend.async_validate.side_effect = IngestorConnectionError("refused", origin=INFLUX)
    result = await _start(hass)
    await hass.config_entries.flow.async_configure(result["flow_id"], INFLUX_INPUT)
    assert backend.async_close.await_count == 1


@pytest.mark.parametrize(
    "url", ["HTTP://InfluxDB.local:8086/", "http://influxdb.local:8086/some/path"]
)
async def test_known_influxdb_aborts_before_anything_is_asked(
    hass: HomeAssistant,
    mock_sources: dict[str, MagicMock],
    mock_config_entry: MockConfigEntry,
    url: str,
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await _start(hass)
    # Same server, spelled differently, another bucket and token.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**INFLUX_INPUT, CONF_URL: url, CONF_BUCKET: "x", CONF_TOKEN: "other"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    mock_sources["flux"].assert_not_called()
    mock_sources["services"].assert_not_called()


async def test_known_admin_api_aborts_a_services_only_flow(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], services_entry: MockConfigEntry
) -> None:
    result = await _through_influx(hass, {CONF_BACKEND: "flux"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_ADMIN_API_URL: "http://INGESTOR.local:8003/"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_another_influxdb_next_to_a_services_entry_is_new(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], services_entry: MockConfigEntry
) -> None:
    result = await _through_influx(hass, INFLUX_INPUT)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == UNIQUE_ID


def test_unique_id_is_the_server() -> None:
    assert unique_id_for({CONF_URL: "http://InfluxDB.local"}) == "influxdb.local:80"
    assert unique_id_for({CONF_URL: "https://a.local/", CONF_BUCKET: "b"}) == "a.local:443"
    assert unique_id_for({CONF_URL: "http://[::1]:8086"}) == "[::1]:8086"
    # Bucket and the ingestor's addresses are settings of the same InfluxDB.
    assert unique_id_for({CONF_URL: "http://a.local", CONF_BUCKET: "x"}) == unique_id_for(
        {**INGESTOR_INPUT, CONF_URL: "http://a.local", CONF_BUCKET: "y"}
    )
    assert unique_id_for({CONF_URL: "http://a.local:8086"}) != unique_id_for(
        {CONF_URL: "http://a.local:8087"}
    )
    assert unique_id_for(INGESTOR_INPUT) == "ingestor.local:8003"
    assert unique_id_for({CONF_DATA_API_URL: "http://data.local:8006"}) == "data.local:8006"


async def test_reauth_replaces_only_the_secrets(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert set(result["data_schema"].schema) == {CONF_TOKEN, CONF_API_KEY}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "new-token"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data == {**ENTRY_DATA, CONF_TOKEN: "new-token"}
    assert mock_sources["flux"].call_args.args[2] == "new-token"


@pytest.mark.parametrize(
    ("source", "error", "errors"),
    [
        ("flux", IngestorAuthenticationError("401", origin=INFLUX), {CONF_TOKEN: "invalid_auth"}),
        ("flux", IngestorConnectionError("down", origin=INFLUX), {"base": "cannot_connect"}),
        (
            "services",
            IngestorAuthenticationError("401", origin=SERVICES),
            {CONF_API_KEY: "invalid_auth"},
        ),
    ],
)
async def test_reauth_errors_recover(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    mock_sources: dict[str, MagicMock],
    mock_config_entry: MockConfigEntry,
    source: str,
    error: Exception,
    errors: dict[str, str],
) -> None:
    mock_config_entry.add_to_hass(hass)
    validate = mock_sources[source].return_value.async_validate
    validate.side_effect = error
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-wrong", CONF_API_KEY: "still-wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors

    validate.side_effect = None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "right-key"}
    )
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data[CONF_API_KEY] == "right-key"


@pytest.mark.parametrize(
    ("entered", "asked", "down"),
    [
        ({CONF_TOKEN: "new-token"}, "flux", "services"),
        ({CONF_API_KEY: "new-key"}, "services", "flux"),
    ],
)
async def test_reauth_asks_only_the_source_of_the_new_secret(  # noqa: PLR0913, PLR0917
    hass: HomeAssistant,
    mock_sources: dict[str, MagicMock],
    mock_config_entry: MockConfigEntry,
    entered: dict[str, str],
    asked: str,
    down: str,
) -> None:
    """The other source being down must not keep a corrected secret out."""
    mock_config_entry.add_to_hass(hass)
    origin = SERVICES if down == "services" else INFLUX
    mock_sources[down].return_value.async_validate.side_effect = IngestorConnectionError(
        "down", origin=origin
    )
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], entered)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data == {**ENTRY_DATA, **entered}
    mock_sources[asked].return_value.async_validate.assert_awaited_once()
    mock_sources[down].assert_not_called()


async def test_reauth_without_new_secrets_is_kept_open_only_by_a_refusal(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    flux = mock_sources["flux"].return_value.async_validate
    services = mock_sources["services"].return_value.async_validate
    flux.side_effect = IngestorAuthenticationError("401", origin=INFLUX)
    services.side_effect = IngestorConnectionError("down", origin=SERVICES)
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    # The token was fixed in InfluxDB itself: the stored one works now.
    flux.side_effect = None
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["reason"] == "reauth_successful"
    assert mock_config_entry.data == ENTRY_DATA


async def test_reauth_influxql_user_asks_for_password(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock]
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="influx1.local:8086",
        data={
            CONF_URL: "http://influx1.local:8086",
            CONF_BACKEND: "influxql",
            CONF_USERNAME: "reader",
            CONF_PASSWORD: "old",
            CONF_BUCKET: "ha",
            CONF_VERIFY_SSL: True,
        },
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert set(result["data_schema"].schema) == {CONF_PASSWORD}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PASSWORD: "new"}
    )
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == "new"


async def test_reauth_services_only_asks_for_the_key(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock]
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id="ingestor.local:8003", data=dict(INGESTOR_INPUT)
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert set(result["data_schema"].schema) == {CONF_API_KEY}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "new-key"}
    )
    assert result["reason"] == "reauth_successful"
    assert entry.data == {**INGESTOR_INPUT, CONF_API_KEY: "new-key"}
    mock_sources["flux"].assert_not_called()


async def test_reconfigure_keeps_secrets_and_updates_the_rest(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    # Secrets are never sent back to the browser.
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested[CONF_URL] == ENTRY_DATA[CONF_URL]
    assert CONF_TOKEN not in suggested
    assert CONF_API_KEY not in suggested

    new_input = {**INFLUX_INPUT, CONF_ADMIN_API_URL: "http://admin.local:8003"}
    del new_input[CONF_TOKEN]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], new_input)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data == {
        **ENTRY_DATA,
        CONF_ADMIN_API_URL: "http://admin.local:8003",
    }


async def _reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> ConfigFlowResult:
    result = await entry.start_reconfigure_flow(hass)
    return await hass.config_entries.flow.async_configure(result["flow_id"], user_input)


async def test_reconfigure_fixes_bucket_and_everything_else_of_the_same_influxdb(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], mock_config_entry: MockConfigEntry
) -> None:
    """What the bucket_not_found repair and the options error send the user to do."""
    mock_config_entry.add_to_hass(hass)
    new_input = {
        CONF_URL: "HTTP://influxdb.local:8086/",
        CONF_BACKEND: "influxql",
        CONF_USERNAME: "reader",
        CONF_PASSWORD: "pw",
        CONF_BUCKET: "another_bucket",
        CONF_VERIFY_SSL: False,
        CONF_ADMIN_API_URL: "https://admin.other:9003",
        CONF_DATA_API_URL: "http://data.local:8006",
    }
    result = await _reconfigure(hass, mock_config_entry, new_input)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert mock_config_entry.data[CONF_BUCKET] == "another_bucket"
    assert mock_config_entry.data[CONF_ADMIN_API_URL] == "https://admin.other:9003"
    assert mock_config_entry.unique_id == UNIQUE_ID


@pytest.mark.parametrize(
    "user_input",
    [
        {**INFLUX_INPUT, CONF_URL: "http://influxdb.local:8087"},
        {**INFLUX_INPUT, CONF_URL: "http://other.local:8086"},
        # Dropping InfluxDB leaves nothing of the system the entry stands for.
        {**INGESTOR_INPUT, CONF_BACKEND: "flux", CONF_VERIFY_SSL: True},
    ],
)
async def test_reconfigure_to_another_influxdb_aborts(
    hass: HomeAssistant,
    mock_sources: dict[str, MagicMock],
    mock_config_entry: MockConfigEntry,
    user_input: dict[str, Any],
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await _reconfigure(hass, mock_config_entry, user_input)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "different_system"
    assert mock_config_entry.data == ENTRY_DATA


async def test_reconfigure_adds_influxdb_to_a_services_entry(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], services_entry: MockConfigEntry
) -> None:
    result = await _reconfigure(hass, services_entry, {**INFLUX_INPUT, **INGESTOR_INPUT})
    assert result["reason"] == "reconfigure_successful"
    assert services_entry.data == ENTRY_DATA
    assert services_entry.unique_id == "ingestor.local:8003"

    # Still the same system afterwards: its Admin API identifies it, the bucket may change.
    result = await _reconfigure(
        hass, services_entry, {**INFLUX_INPUT, **INGESTOR_INPUT, CONF_BUCKET: "b"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert services_entry.data[CONF_BUCKET] == "b"


@pytest.mark.parametrize(
    "user_input",
    [
        {CONF_ADMIN_API_URL: "http://other.local:8003", CONF_BACKEND: "flux"},
        # An InfluxDB does not stand in for the Admin API the entry was created with.
        {**INFLUX_INPUT},
    ],
)
async def test_reconfigure_services_entry_to_another_admin_api_aborts(
    hass: HomeAssistant,
    mock_sources: dict[str, MagicMock],
    services_entry: MockConfigEntry,
    user_input: dict[str, Any],
) -> None:
    result = await _reconfigure(hass, services_entry, {CONF_VERIFY_SSL: True, **user_input})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "different_system"
    assert services_entry.data == INGESTOR_INPUT


async def test_reconfigure_errors_recover(
    hass: HomeAssistant, mock_sources: dict[str, MagicMock], mock_config_entry: MockConfigEntry
) -> None:
    mock_config_entry.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_BACKEND: "flux", CONF_VERIFY_SSL: True}
    )
    assert result["errors"] == {"base": "no_source"}

    mock_sources["flux"].return_value.async_validate.side_effect = IngestorSSLError(
        "tls", origin=INFLUX
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], INFLUX_INPUT)
    assert result["errors"] == {CONF_URL: "ssl_error"}

    mock_sources["flux"].return_value.async_validate.side_effect = None
    result = await hass.config_entries.flow.async_configure(result["flow_id"], INFLUX_INPUT)
    assert result["reason"] == "reconfigure_successful"
    # Admin API cleared: the entry is InfluxDB-only now, token kept.
    assert mock_config_entry.data == {**INFLUX_INPUT, CONF_API_KEY: "admin-secret-key"}


OPTIONS = {
    CONF_SOURCE_MODE: "auto",
    CONF_PERIOD: "6h",
    CONF_TREND_WINDOW: "15m",
    CONF_UPDATE_INTERVAL: 30,
    "error_rate_warning": 3.0,
    "error_rate_error": 6.0,
    "success_rate_warning": 96.0,
    "success_rate_error": 91.0,
    "processing_time_warning": 800.0,
    "processing_time_error": 2000.0,
    "stalled_warning_minutes": 10.0,
    "stalled_error_minutes": 30.0,
    CONF_MONITORED_SERVICES: ["websocket-ingestion"],
}


async def test_options_flow_saves_and_reloads(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    coordinator_before = entry.runtime_data.coordinator
    listed = sorted(s.name for s in coordinator_before.data.services)
    assert len(listed) == 13

    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    services = next(
        key for key in result["data_schema"].schema if str(key) == CONF_MONITORED_SERVICES
    )
    selector = result["data_schema"].schema[services]
    # Offered from what the Admin API listed in the latest snapshot.
    assert selector.config["options"] == listed

    result = await hass.config_entries.options.async_configure(result["flow_id"], OPTIONS)
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == OPTIONS
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert coordinator is not coordinator_before
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 30
    assert coordinator.period == "6h"
    assert coordinator.thresholds.processing_time_error == 2000.0

    # Only websocket-ingestion is monitored now; the others are still offered to add back.
    result = await hass.config_entries.options.async_init(entry.entry_id)
    selector = result["data_schema"].schema[services]
    assert selector.config["options"] == listed
    assert [s.name for s in coordinator.data.services] == ["websocket-ingestion"]
    hass.config_entries.options.async_abort(result["flow_id"])


async def test_options_offer_the_chosen_services_no_longer_seen(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    mock_config_entry = init_integration
    listed = [s.name for s in mock_config_entry.runtime_data.coordinator.data.services]
    assert "enrichment-pipeline" not in listed
    hass.config_entries.async_update_entry(
        mock_config_entry, options={CONF_MONITORED_SERVICES: ["enrichment-pipeline"]}
    )
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    services = next(
        key for key in result["data_schema"].schema if str(key) == CONF_MONITORED_SERVICES
    )
    assert result["data_schema"].schema[services].config["options"] == sorted(
        [*listed, "enrichment-pipeline"]
    )
    hass.config_entries.options.async_abort(result["flow_id"])


@pytest.mark.parametrize(
    ("data", "changes", "errors"),
    [
        (
            INGESTOR_INPUT,
            {CONF_SOURCE_MODE: "influxdb"},
            {CONF_SOURCE_MODE: "influxdb_not_configured"},
        ),
        (
            INFLUX_INPUT,
            {CONF_SOURCE_MODE: "services"},
            {CONF_SOURCE_MODE: "services_not_configured"},
        ),
        (
            ENTRY_DATA,
            {"error_rate_error": 1.0, "success_rate_error": 97.0},
            {
                "error_rate_error": "error_below_warning",
                "success_rate_error": "error_above_warning",
            },
        ),
        (
            ENTRY_DATA,
            {CONF_PERIOD: "15m", CONF_TREND_WINDOW: "15m"},
            {CONF_TREND_WINDOW: "trend_window_not_shorter"},
        ),
        (
            ENTRY_DATA,
            {CONF_PERIOD: "1h", CONF_TREND_WINDOW: "1h"},
            {CONF_TREND_WINDOW: "trend_window_not_shorter"},
        ),
        (
            ENTRY_DATA,
            {CONF_PERIOD: "7d", CONF_TREND_WINDOW: "1m"},
            {CONF_TREND_WINDOW: "too_many_trend_windows"},
        ),
        (
            ENTRY_DATA,
            {"delivery_warning": 99.0, "delivery_error": 99.5},
            {"delivery_error": "error_above_warning"},
        ),
        (
            ENTRY_DATA,
            {"processing_time_error": 100.0, "stalled_error_minutes": 1.0},
            {
                "processing_time_error": "error_below_warning",
                "stalled_error_minutes": "error_below_warning",
            },
        ),
    ],
)
async def test_options_errors_recover(
    hass: HomeAssistant,
    data: dict[str, Any],
    changes: dict[str, Any],
    errors: dict[str, str],
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="x", data=data)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    # Not loaded: no services known yet, the current choice is still offered.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**OPTIONS, **changes}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors

    without_slow_error = {k: v for k, v in OPTIONS.items() if k != "processing_time_error"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**without_slow_error, CONF_SOURCE_MODE: "auto"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "processing_time_error" not in entry.options


@pytest.mark.parametrize(
    ("period", "window"), [("7d", "5m"), ("24h", "1m"), ("7d", "1h"), ("15m", "1m"), ("1h", "15m")]
)
async def test_options_accept_up_to_the_most_trend_windows(
    hass: HomeAssistant, period: str, window: str
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="x", data=ENTRY_DATA)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**OPTIONS, CONF_PERIOD: period, CONF_TREND_WINDOW: window}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_TREND_WINDOW] == window


def test_trend_window_limit_is_the_one_the_text_names() -> None:
    strings = json.loads((Path(const.__file__).parent / "strings.json").read_text("utf-8"))
    errors = strings["options"]["error"]
    assert f"at most {const.MAX_TREND_WINDOWS} " in errors["too_many_trend_windows"]
    assert Period.DAYS_7.duration / TrendWindow.MINUTES_5.duration == const.MAX_TREND_WINDOWS


async def test_options_form_shows_defaults(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="x", data=ENTRY_DATA)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested[CONF_SOURCE_MODE] == "auto"
    assert suggested[CONF_PERIOD] == "1h"
    assert suggested[CONF_TREND_WINDOW] == "5m"
    assert suggested[CONF_UPDATE_INTERVAL] == 60
    assert suggested["error_rate_warning"] == 2.0
    assert "processing_time_error" not in suggested


async def test_every_form_serializes_for_the_frontend(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_sources: dict[str, MagicMock],
    mock_config_entry: MockConfigEntry,
) -> None:
    """Drive the flows over Home Assistant's HTTP API, which serializes every form."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()

    def field_names(body: dict[str, Any]) -> set[str]:
        return {field["name"] for field in body["data_schema"]}

    response = await client.post("/api/config/config_entries/flow", json={"handler": DOMAIN})
    assert response.status == HTTPStatus.OK
    body = await response.json()
    assert field_names(body) == set(INFLUX_INPUT) | {CONF_USERNAME, CONF_PASSWORD}
    response = await client.post(f"/api/config/config_entries/flow/{body['flow_id']}", json={
        **INFLUX_INPUT, CONF_VERIFY_SSL: True
    })  # fmt: skip
    body = await response.json()
    assert body["step_id"] == "ingestor"
    assert field_names(body) == {
        CONF_ADMIN_API_URL, CONF_API_KEY, CONF_WEBSOCKET_INGESTION_URL, CONF_DATA_API_URL,
        "enrichment_pipeline_url",
    }  # fmt: skip

    mock_config_entry.add_to_hass(hass)
    for start in (mock_config_entry.start_reauth_flow, mock_config_entry.start_reconfigure_flow):
        result = await start(hass)
        response = await client.get(f"/api/config/config_entries/flow/{result['flow_id']}")
        assert response.status == HTTPStatus.OK
        assert field_names(await response.json())

    response = await client.post(
        "/api/config/config_entries/options/flow", json={"handler": mock_config_entry.entry_id}
    )
    assert response.status == HTTPStatus.OK
    assert CONF_UPDATE_INTERVAL in field_names(await response.json())


def test_address_fields_are_defined_once() -> None:
    """The flows trim the same address fields that diagnostics strip the host of."""
    assert config_flow.URL_KEYS is const.URL_KEYS
    assert diagnostics._URL_KEYS is const.URL_KEYS
    assert set(const.URL_KEYS) == {CONF_URL, *const.SERVICE_URL_KEYS, CONF_ADMIN_API_URL}
