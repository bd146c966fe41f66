"""An entry's repair issues: one id per kind and entry, created and deleted by the refreshes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant


def entry_issue_id(key: str, entry: ConfigEntry) -> str:
    """The issue registry id of one of an entry's repair issues."""
    return f"{key}_{entry.entry_id}"


def set_entry_issue(  # noqa: PLR0913
    hass: HomeAssistant,
    entry: ConfigEntry,
    key: str,
    *,
    active: bool,
    placeholders: dict[str, str],
    severity: ir.IssueSeverity = ir.IssueSeverity.ERROR,
    fixable: bool = False,
) -> None:
    """Create or delete one of an entry's repair issues.

    A fixable one carries the entry's id for its fix flow (repairs.py).
    """
    issue_id = entry_issue_id(key, entry)
    if active:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=fixable,
            data={"entry_id": entry.entry_id} if fixable else None,
            severity=severity,
            translation_key=key,
            translation_placeholders=placeholders,
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


def delete_entry_issues(hass: HomeAssistant, entry: ConfigEntry, *keys: str) -> None:
    """Remove these repair issues of an entry (on unload)."""
    for key in keys:
        ir.async_delete_issue(hass, DOMAIN, entry_issue_id(key, entry))
