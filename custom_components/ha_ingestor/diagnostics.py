"""Diagnostics download: entry, options, latest snapshot and last errors, secrets redacted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_API_KEY, CONF_PASSWORD, CONF_TOKEN, CONF_USERNAME
from yarl import URL

from .api.core.models import snapshot_as_dict
from .const import CONF_ORGANIZATION
from .const import URL_KEYS as _URL_KEYS
from .options import options_with_defaults

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .runtime import HaIngestorConfigEntry

# The organization is often a person's or company's name.
TO_REDACT: Final = {CONF_API_KEY, CONF_ORGANIZATION, CONF_PASSWORD, CONF_TOKEN, CONF_USERNAME}


def _redact_url(value: str) -> str:
    """Keep scheme, port and path (they help support); drop the host."""
    url = URL(value)
    return f"{url.scheme}://{REDACTED}:{url.port}{url.path.rstrip('/')}"


def _redact_entry_data(data: dict[str, Any]) -> dict[str, Any]:
    redacted = async_redact_data(data, TO_REDACT)
    return {
        key: _redact_url(value) if key in _URL_KEYS and isinstance(value, str) else value
        for key, value in redacted.items()
    }


def _error(error: BaseException | None) -> dict[str, str] | None:
    return None if error is None else {"type": type(error).__name__, "message": str(error)}


def _scrub(value: object, hosts: set[str]) -> object:
    """Replace the configured host names inside free texts (error and service messages).

    Only `message` texts: a host called `influxdb` must not rename the data source.
    """
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if key == "message" and isinstance(item, str):
                for host in hosts:
                    item = item.replace(host, REDACTED)  # noqa: PLW2901
                result[key] = item
            else:
                result[key] = _scrub(item, hosts)
        return result
    if isinstance(value, list):
        return [_scrub(item, hosts) for item in value]
    return value


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant,  # noqa: ARG001
    entry: HaIngestorConfigEntry,
) -> dict[str, Any]:
    """Everything support needs, nothing that opens the system to others."""
    coordinator = entry.runtime_data.coordinator
    hosts = {
        host
        for key in _URL_KEYS
        if isinstance(url := entry.data.get(key), str) and (host := URL(url).host)
    }
    diagnostics = {
        "entry": {
            "version": entry.version,
            "minor_version": entry.minor_version,
            # Title and unique_id are built from host names.
            "title": REDACTED,
            "unique_id": REDACTED,
            "data": _redact_entry_data(dict(entry.data)),
            "options": options_with_defaults(entry.options),
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "update_interval_seconds": (
                coordinator.update_interval.total_seconds()
                if coordinator.update_interval is not None
                else None
            ),
            "on_fallback": coordinator.on_fallback,
            "last_error": _error(coordinator.last_exception),
            "last_influxdb_error": _error(coordinator.last_influx_error),
            "last_services_error": _error(coordinator.last_services_error),
        },
        "snapshot": None if coordinator.data is None else snapshot_as_dict(coordinator.data),
    }
    return cast("dict[str, Any]", _scrub(diagnostics, hosts))
