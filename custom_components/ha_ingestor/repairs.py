"""Repair flows: the one repair issue a click can fix.

`delivery_not_source` says the delivery check cannot work here (this Home Assistant is not the
ingestor's source); its fix turns the check off for that entry. The other issues need a change
outside Home Assistant or a Reconfigure, so they stay plain issues (issues.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow

from .const import CONF_DELIVERY_CHECK, ISSUE_DELIVERY_NOT_SOURCE

if TYPE_CHECKING:
    # Only for the types: Home Assistant 2026.2 has no RepairsFlowResult (it says FlowResult).
    from homeassistant.components.repairs import RepairsFlowResult
    from homeassistant.core import HomeAssistant


class TurnDeliveryCheckOffFlow(RepairsFlow):
    """Confirm, then the entry's delivery check is off and the entry reloads without it."""

    def __init__(self, entry_id: str) -> None:
        """The entry whose check cannot work."""
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:  # noqa: ARG002
        """Straight to the confirmation (what comes in here is the issue's data, no answer)."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Turn the check off once the user confirms."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is None:
            return self.async_show_form(
                step_id="confirm", description_placeholders={"title": entry.title}
            )
        self.hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_DELIVERY_CHECK: False}
        )
        # The reload stops the check, its entities become unavailable and the issue goes.
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant,  # noqa: ARG001
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """The fix flow of one of our issues."""
    if issue_id.startswith(f"{ISSUE_DELIVERY_NOT_SOURCE}_") and data and data.get("entry_id"):
        return TurnDeliveryCheckOffFlow(str(data["entry_id"]))
    return ConfirmRepairFlow()
