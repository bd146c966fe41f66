"""Config, reauth, reconfigure and options flows for HA Ingestor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

try:
    import probatio as vol
except ImportError:  # pragma: no cover - Home Assistant before 2026.3 (the minimum target)
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]
from homeassistant.config_entries import (
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import (
    CONF_API_KEY,
    CONF_PASSWORD,
    CONF_TOKEN,
    CONF_URL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from yarl import URL

from .api.core.bounded import RedirectNotFollowedError
from .api.core.errors import (
    IngestorAuthenticationError,
    IngestorError,
    IngestorNotFoundError,
    IngestorResponseError,
    IngestorSSLError,
    InvalidNameError,
    InvalidURLError,
)
from .api.core.models import Backend, Period, SourceMode, TrendWindow
from .api.core.urls import is_http_url
from .api.influx.backend import influx_url
from .clients import create_influx_backend, create_services_client, services_configured
from .const import (
    CONF_ADMIN_API_URL,
    CONF_BACKEND,
    CONF_BUCKET,
    CONF_DELIVERY_CHECK,
    CONF_DELIVERY_ERROR,
    CONF_DELIVERY_WARNING,
    CONF_MONITORED_SERVICES,
    CONF_ORGANIZATION,
    CONF_PERIOD,
    CONF_SHOW_PANEL,
    CONF_SOURCE_MODE,
    CONF_STORAGE_BUDGET_DAYS,
    CONF_STORAGE_BUDGET_GB,
    CONF_STORAGE_GROWTH_PERCENT,
    CONF_TREND_WINDOW,
    CONF_UPDATE_INTERVAL,
    DEFAULT_BACKEND,
    DEFAULT_BUCKET,
    DEFAULT_ORGANIZATION,
    DOMAIN,
    INFLUXDB_KEYS,
    INGESTOR_KEYS,
    LOGGER,
    MAX_UPDATE_INTERVAL,
    MIN_UPDATE_INTERVAL,
    SECRET_KEYS,
    SERVICE_URL_KEYS,
    THRESHOLD_KEYS,
    URL_KEYS,
)
from .options import options_with_defaults, trend_window_error

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .runtime import HaIngestorConfigEntry

# HomeIQ 2.0 (R3) maps its Admin API to host port 8004, older ingestors to 8003: an address
# without a port (or the suggested one) is tried at both, the newer first.
ADMIN_API_PORTS: Final = (8004, 8003)
# InfluxDB organizations the ingestor's compose files create: newer (HomeIQ) first.
KNOWN_ORGANIZATIONS: Final = ("homeiq", DEFAULT_ORGANIZATION)

_URL_SELECTOR: Final = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_SECRET_SELECTOR: Final = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_TEXT_SELECTOR: Final = TextSelector()

INFLUXDB_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_URL): _URL_SELECTOR,
        vol.Required(CONF_BACKEND, default=DEFAULT_BACKEND.value): SelectSelector(
            SelectSelectorConfig(
                options=[b.value for b in Backend],
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_BACKEND,
            )
        ),
        vol.Optional(CONF_TOKEN): _SECRET_SELECTOR,
        vol.Optional(CONF_USERNAME): TextSelector(TextSelectorConfig(autocomplete="username")),
        vol.Optional(CONF_PASSWORD): _SECRET_SELECTOR,
        vol.Optional(CONF_ORGANIZATION, default=DEFAULT_ORGANIZATION): _TEXT_SELECTOR,
        vol.Optional(CONF_BUCKET, default=DEFAULT_BUCKET): _TEXT_SELECTOR,
        vol.Required(CONF_VERIFY_SSL, default=True): BooleanSelector(),
    }
)

INGESTOR_SCHEMA: Final = vol.Schema(
    {
        vol.Optional(CONF_ADMIN_API_URL): _URL_SELECTOR,
        vol.Optional(CONF_API_KEY): _SECRET_SELECTOR,
        **{vol.Optional(key): _URL_SELECTOR for key in SERVICE_URL_KEYS},
    }
)

# Reconfigure shows every connection field at once; empty secrets keep the stored ones.
RECONFIGURE_SCHEMA: Final = INFLUXDB_SCHEMA.extend(INGESTOR_SCHEMA.schema)


def _clean(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty fields and surrounding blanks: an absent key means "not used"."""
    cleaned: dict[str, Any] = {}
    for key, value in user_input.items():
        if isinstance(value, str):
            value = value.strip()  # noqa: PLW2901
            if not value:
                continue
            if key in URL_KEYS:
                value = value.rstrip("/")  # noqa: PLW2901
        cleaned[key] = value
    return cleaned


def _server(url: str) -> str:
    """Host and port in lower case, without scheme or path: the server an address names."""
    parsed = URL(url)
    host = (parsed.host or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parsed.port}"


def _services_servers(data: Mapping[str, Any]) -> list[str]:
    """The servers of the Admin API and of every service URL, the Admin API first."""
    return [_server(data[key]) for key in (CONF_ADMIN_API_URL, *SERVICE_URL_KEYS) if data.get(key)]


def unique_id_for(data: Mapping[str, Any]) -> str:
    """The identity of the watched system: its InfluxDB server, else its Admin API server.

    Bucket, organization, credentials and backend are settings of the same system, so
    Reconfigure can fix them; only the server decides which system it is.
    """
    if url := data.get(CONF_URL):
        return _server(url)
    return _services_servers(data)[0]


def _same_system(entry: HaIngestorConfigEntry, data: Mapping[str, Any]) -> bool:
    """Whether `data` still reaches the server the entry was created with.

    The identity keeps its kind: an entry identified by its InfluxDB stays tied to that
    InfluxDB; one created without InfluxDB stays tied to its Admin API (or service) server
    and may add an InfluxDB later.
    """
    old_url = entry.data.get(CONF_URL)
    if old_url and _server(old_url) == entry.unique_id:
        return bool(data.get(CONF_URL)) and _server(data[CONF_URL]) == entry.unique_id
    return entry.unique_id in _services_servers(data)


def _title_for(data: Mapping[str, Any]) -> str:
    url = data.get(CONF_URL) or data.get(CONF_ADMIN_API_URL)
    if url is None:
        url = data[next(key for key in SERVICE_URL_KEYS if data.get(key))]
    return f"HA Ingestor ({URL(url).host})"


def _influx_secret_field(data: Mapping[str, Any]) -> str:
    """The field a refused InfluxDB credential belongs to."""
    if data.get(CONF_BACKEND) == Backend.INFLUXQL and data.get(CONF_USERNAME):
        return CONF_PASSWORD
    return CONF_TOKEN


def _influx_error(err: IngestorError, data: Mapping[str, Any]) -> dict[str, str]:
    """The form field and error a failed InfluxDB validation shows."""
    if isinstance(err, IngestorSSLError):
        return {CONF_URL: "ssl_error"}
    if isinstance(err, RedirectNotFollowedError):
        return {CONF_URL: "redirected"}
    if isinstance(err, IngestorAuthenticationError):
        return {_influx_secret_field(data): "invalid_auth"}
    if isinstance(err, IngestorNotFoundError):
        return {CONF_BUCKET: "bucket_not_found"}
    return {CONF_URL: "cannot_connect"}


def _services_error(err: IngestorError, data: Mapping[str, Any]) -> dict[str, str]:
    """The form field and error a failed services validation shows."""
    if isinstance(err, IngestorAuthenticationError):
        # HomeIQ 2.0 always wants a key: say so, rather than "refused".
        return {CONF_API_KEY: "invalid_auth" if data.get(CONF_API_KEY) else "api_key_required"}
    url_field = CONF_ADMIN_API_URL if data.get(CONF_ADMIN_API_URL) else "base"
    if isinstance(err, IngestorSSLError):
        return {url_field: "ssl_error"}
    if isinstance(err, RedirectNotFollowedError):
        return {url_field: "redirected"}
    if isinstance(err, IngestorResponseError) and url_field == CONF_ADMIN_API_URL:
        return {url_field: "not_admin_api"}
    return {url_field: "cannot_connect"}


def admin_api_candidates(url: str, suggested: str | None = None) -> list[str]:
    """The Admin API addresses to try for what the user entered, in order."""
    parsed = URL(url)
    if parsed.explicit_port is not None and url != suggested:
        return [url]
    return [str(parsed.with_port(port)).rstrip("/") for port in ADMIN_API_PORTS]


def suggested_admin_api_url(data: Mapping[str, Any]) -> str | None:
    """The documented default: the Admin API on the InfluxDB's host, at the newer port."""
    if not (url := data.get(CONF_URL)) or not is_http_url(url):
        return None
    return str(URL(url).with_port(ADMIN_API_PORTS[0]).with_path("")).rstrip("/")


async def _async_validate_admin_candidates(
    hass: HomeAssistant, data: dict[str, Any], suggested: str | None
) -> dict[str, str]:
    """Validate the services, trying the Admin API at 8004 then 8003 where the port is open.

    The first address that answers at all (even refusing the key) is kept in `data`.
    """
    url = data.get(CONF_ADMIN_API_URL)
    if not url or not is_http_url(url):
        return await async_validate_input(hass, data, influxdb=False)
    errors: dict[str, str] = {}
    for candidate in admin_api_candidates(url, suggested):
        errors = await async_validate_input(
            hass, {**data, CONF_ADMIN_API_URL: candidate}, influxdb=False
        )
        if errors.get(CONF_ADMIN_API_URL) != "cannot_connect":
            data[CONF_ADMIN_API_URL] = candidate
            return errors
    return errors


async def _async_validate_influxdb(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, str]:
    """Validate InfluxDB; an unknown default organization is retried as the other default.

    HomeIQ 2.0 creates `homeiq`, older ingestors `ha-ingestor`: the one that works is kept.
    """
    errors, org_missing = await _async_validate_influxdb_once(hass, data)
    organization = data.get(CONF_ORGANIZATION, DEFAULT_ORGANIZATION)
    if org_missing and organization in KNOWN_ORGANIZATIONS:
        for other in KNOWN_ORGANIZATIONS:
            if (
                other != organization
                and not (
                    await _async_validate_influxdb_once(hass, {**data, CONF_ORGANIZATION: other})
                )[0]
            ):
                data[CONF_ORGANIZATION] = other
                return {}
    return errors


async def _async_validate_influxdb_once(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> tuple[dict[str, str], bool]:
    """Field errors, and whether InfluxDB said the organization does not exist."""
    try:
        influx_url(data[CONF_URL])
    except InvalidURLError:
        return {CONF_URL: "invalid_url"}, False
    try:
        backend = create_influx_backend(hass, data)
    except InvalidNameError:
        return {CONF_BUCKET: "invalid_bucket_name"}, False
    try:
        await backend.async_validate()
    except IngestorError as err:
        org_missing = isinstance(err, IngestorNotFoundError) and "organization" in str(err)
        return _influx_error(err, data), org_missing
    except Exception:  # noqa: BLE001 - whatever else fails must end in a form error
        LOGGER.exception("Unexpected error while validating InfluxDB")
        return {"base": "unknown"}, False
    finally:
        await backend.async_close()
    return {}, False


async def _async_validate_services(hass: HomeAssistant, data: Mapping[str, Any]) -> dict[str, str]:
    bad_urls = {
        key: "invalid_url"
        for key in (CONF_ADMIN_API_URL, *SERVICE_URL_KEYS)
        if data.get(key) and not is_http_url(data[key])
    }
    if bad_urls:
        return bad_urls
    try:
        await create_services_client(hass, data).async_validate()
    except IngestorError as err:
        return _services_error(err, data)
    except Exception:  # noqa: BLE001 - whatever else fails must end in a form error
        LOGGER.exception("Unexpected error while validating the ingestor services")
        return {"base": "unknown"}
    return {}


async def async_validate_input(
    hass: HomeAssistant,
    data: dict[str, Any],
    *,
    influxdb: bool = True,
    services: bool = True,
) -> dict[str, str]:
    """Connect to every configured source; return field errors (empty when all answered).

    The one validator behind the user, reauth and reconfigure steps.
    """
    errors: dict[str, str] = {}
    if influxdb and data.get(CONF_URL):
        errors |= await _async_validate_influxdb(hass, data)
    if services and services_configured(data):
        errors |= await _async_validate_services(hass, data)
    return errors


async def _async_validate_reauth(
    hass: HomeAssistant, data: dict[str, Any], entered: Mapping[str, Any]
) -> dict[str, str]:
    """Check the new secrets where they were entered, and only there.

    A source the user left alone must not block the one they fixed; with nothing entered,
    every source is asked again, but only a refused credential keeps the form open.
    """
    influxdb = any(key in entered for key in (CONF_TOKEN, CONF_PASSWORD))
    services = CONF_API_KEY in entered
    if influxdb or services:
        return await async_validate_input(hass, data, influxdb=influxdb, services=services)
    errors = await async_validate_input(hass, data)
    return {key: error for key, error in errors.items() if error == "invalid_auth"}


def _only_fields(errors: dict[str, str], schema: vol.Schema) -> dict[str, str]:
    """Errors of fields the form does not show go to the form as a whole."""
    shown = {str(key) for key in schema.schema}
    return {key if key in shown else "base": error for key, error in errors.items()}


class HaIngestorConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up HA Ingestor: InfluxDB first, then the ingestor's own APIs."""

    VERSION = 1
    # 2: the delivery check is on by default; older entries are turned on when they load.
    MINOR_VERSION = 2

    def __init__(self) -> None:
        """Start with nothing entered."""
        self._influxdb: dict[str, Any] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: HaIngestorConfigEntry) -> HaIngestorOptionsFlow:  # noqa: ARG004
        """Options: behaviour only, never connection data."""
        return HaIngestorOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """InfluxDB: where the ingestor writes its events (may stay empty)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _clean(user_input)
            if (url := data.get(CONF_URL)) and is_http_url(url):
                # A known InfluxDB ends the flow here, before anything is asked.
                await self.async_set_unique_id(unique_id_for(data))
                self._abort_if_unique_id_configured()
            errors = await async_validate_input(self.hass, data, services=False)
            if not errors:
                self._influxdb = data
                return await self.async_step_ingestor()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(INFLUXDB_SCHEMA, user_input or {}),
            errors=errors,
        )

    async def async_step_ingestor(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The ingestor's Admin API and services: the fallback source (may stay empty)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**self._influxdb, **_clean(user_input)}
            if not data.get(CONF_URL) and not services_configured(data):
                errors["base"] = "no_source"
            else:
                errors = await _async_validate_admin_candidates(
                    self.hass, data, suggested_admin_api_url(self._influxdb)
                )
            if not errors:
                if not data.get(CONF_URL):
                    await self.async_set_unique_id(unique_id_for(data))
                self._abort_if_unique_id_configured()
                return self.async_create_entry(title=_title_for(data), data=data)
        return self.async_show_form(
            step_id="ingestor",
            data_schema=self.add_suggested_values_to_schema(INGESTOR_SCHEMA, user_input or {}),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:  # noqa: ARG002
        """A source refused the stored credentials."""
        return await self.async_step_reauth_confirm()

    def _reauth_schema(self, data: Mapping[str, Any]) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {}
        if data.get(CONF_URL):
            fields[vol.Optional(_influx_secret_field(data))] = _SECRET_SELECTOR
        if data.get(CONF_ADMIN_API_URL):
            fields[vol.Optional(CONF_API_KEY)] = _SECRET_SELECTOR
        return vol.Schema(fields)

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the secrets only; an empty field keeps the stored one."""
        entry = self._get_reauth_entry()
        schema = self._reauth_schema(entry.data)
        errors: dict[str, str] = {}
        if user_input is not None:
            entered = _clean(user_input)
            data = {**entry.data, **entered}
            errors = _only_fields(await _async_validate_reauth(self.hass, data, entered), schema)
            if not errors:
                return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=schema,
            errors=errors,
            description_placeholders={"title": entry.title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change connection settings of the same system in place."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            entered = _clean(user_input)
            kept_secrets = {k: entry.data[k] for k in SECRET_KEYS if k in entry.data}
            data = {**kept_secrets, **entered}
            if not data.get(CONF_URL) and not services_configured(data):
                errors["base"] = "no_source"
            else:
                errors = await async_validate_input(self.hass, data)
            if not errors:
                if not _same_system(entry, data):
                    return self.async_abort(reason="different_system")
                return self.async_update_reload_and_abort(entry, data=data)
        suggested = user_input or {
            k: v for k, v in entry.data.items() if k in (*INFLUXDB_KEYS, *INGESTOR_KEYS)
        }
        suggested = {k: v for k, v in suggested.items() if k not in SECRET_KEYS}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(RECONFIGURE_SCHEMA, suggested),
            errors=errors,
        )


def _options_schema(known_services: list[str]) -> vol.Schema:
    def select(options: list[str], key: str) -> SelectSelector:
        return SelectSelector(
            SelectSelectorConfig(
                options=options, mode=SelectSelectorMode.DROPDOWN, translation_key=key
            )
        )

    def number(minimum: float, maximum: float, step: float, unit: str) -> NumberSelector:
        return NumberSelector(
            NumberSelectorConfig(
                min=minimum,
                max=maximum,
                step=step,
                unit_of_measurement=unit,
                mode=NumberSelectorMode.BOX,
            )
        )

    percent = number(0, 100, 0.1, "%")
    minutes = number(1, 1440, 1, "min")
    milliseconds = number(1, 600_000, 1, "ms")
    threshold_selectors = {
        "error_rate_warning": percent,
        "error_rate_error": percent,
        "success_rate_warning": percent,
        "success_rate_error": percent,
        "processing_time_warning": milliseconds,
        "processing_time_error": milliseconds,
        "stalled_warning_minutes": minutes,
        "stalled_error_minutes": minutes,
    }
    return vol.Schema(
        {
            vol.Required(CONF_SOURCE_MODE): select([m.value for m in SourceMode], CONF_SOURCE_MODE),
            vol.Required(CONF_PERIOD): select([p.value for p in Period], CONF_PERIOD),
            vol.Required(CONF_TREND_WINDOW): select(
                [w.value for w in TrendWindow], CONF_TREND_WINDOW
            ),
            vol.Required(CONF_UPDATE_INTERVAL): number(
                MIN_UPDATE_INTERVAL, MAX_UPDATE_INTERVAL, 1, "s"
            ),
            **{
                (
                    vol.Optional(key) if key == "processing_time_error" else vol.Required(key)
                ): threshold_selectors[key]
                for key in THRESHOLD_KEYS
            },
            # Optional without defaults: an absent key means the default (or no budget).
            vol.Optional(CONF_STORAGE_GROWTH_PERCENT): number(0.1, 1000, 0.1, "%"),
            vol.Optional(CONF_STORAGE_BUDGET_GB): number(0.1, 1_000_000, 0.1, "GB"),
            vol.Optional(CONF_STORAGE_BUDGET_DAYS): number(1, 3650, 1, "d"),
            vol.Optional(CONF_DELIVERY_CHECK): BooleanSelector(),
            vol.Optional(CONF_DELIVERY_WARNING): percent,
            vol.Optional(CONF_DELIVERY_ERROR): percent,
            vol.Optional(CONF_SHOW_PANEL): BooleanSelector(),
            vol.Optional(CONF_MONITORED_SERVICES): SelectSelector(
                SelectSelectorConfig(
                    options=known_services,
                    multiple=True,
                    custom_value=True,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
        }
    )


def _options_errors(options: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    mode = options[CONF_SOURCE_MODE]
    if mode == SourceMode.INFLUXDB and not data.get(CONF_URL):
        errors[CONF_SOURCE_MODE] = "influxdb_not_configured"
    elif mode == SourceMode.SERVICES and not services_configured(data):
        errors[CONF_SOURCE_MODE] = "services_not_configured"
    window_error = trend_window_error(
        Period(options[CONF_PERIOD]), TrendWindow(options[CONF_TREND_WINDOW])
    )
    if window_error is not None:
        errors[CONF_TREND_WINDOW] = window_error
    if options["error_rate_error"] < options["error_rate_warning"]:
        errors["error_rate_error"] = "error_below_warning"
    if options["success_rate_error"] > options["success_rate_warning"]:
        errors["success_rate_error"] = "error_above_warning"
    slow_error = options.get("processing_time_error")
    if slow_error is not None and slow_error < options["processing_time_warning"]:
        errors["processing_time_error"] = "error_below_warning"
    delivery = options_with_defaults(options)
    if delivery[CONF_DELIVERY_ERROR] > delivery[CONF_DELIVERY_WARNING]:
        errors[CONF_DELIVERY_ERROR] = "error_above_warning"
    if options["stalled_error_minutes"] < options["stalled_warning_minutes"]:
        errors["stalled_error_minutes"] = "error_below_warning"
    return errors


class HaIngestorOptionsFlow(OptionsFlowWithReload):
    """Source mode, period, trend window, update interval, thresholds, monitored services."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form; saving reloads the entry."""
        entry: HaIngestorConfigEntry = self.config_entry
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _options_errors(user_input, entry.data)
            if not errors:
                # Number selectors answer floats; the interval is whole seconds.
                interval = int(user_input[CONF_UPDATE_INTERVAL])
                return self.async_create_entry(data={**user_input, CONF_UPDATE_INTERVAL: interval})
        current = options_with_defaults(entry.options)
        known = set(current[CONF_MONITORED_SERVICES])
        # Every service seen, not only the monitored ones: the choice can grow again.
        if (runtime := getattr(entry, "runtime_data", None)) is not None:
            known.update(runtime.coordinator.seen_services)
        suggested = user_input or {k: v for k, v in current.items() if v is not None}
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                _options_schema(sorted(known)), suggested
            ),
            errors=errors,
        )
