"""A tiny custom integration the soak loads next to ha_ingestor: what only the loop can tell.

`soak_probe/stats` (WebSocket) answers the event loop's task count, its timers
(`loop._scheduled`, those of ha_ingestor apart) and the thread count. RSS and file
descriptors are read from /proc by the driver; these are not visible from outside.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import voluptuous as vol
from homeassistant.components import websocket_api
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv

DOMAIN = "soak_probe"
CONFIG_SCHEMA = cv.empty_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, _config: dict[str, Any]) -> bool:
    """Register the one command."""
    websocket_api.async_register_command(hass, _stats)
    return True


def _origin(thing: object, depth: int = 0) -> str:
    """Module and name of a callback, through bound methods, partials and HassJobs."""
    parts = [str(getattr(thing, "__module__", "")), str(getattr(thing, "__qualname__", ""))]
    code = getattr(thing, "cr_code", None) or getattr(thing, "__code__", None)
    if code is not None:
        parts.append(code.co_filename)
    if depth < 3:
        for name in ("__self__", "func", "target", "_callback", "job"):
            inner = getattr(thing, name, None)
            if inner is not None and inner is not thing:
                parts.append(_origin(inner, depth + 1))
    return " ".join(parts)


def _ours(thing: object) -> bool:
    return "ha_ingestor" in _origin(thing)


@websocket_api.websocket_command({vol.Required("type"): "soak_probe/stats"})
@callback
def _stats(
    hass: HomeAssistant, connection: websocket_api.ActiveConnection, msg: dict[str, Any]
) -> None:
    loop = hass.loop
    tasks = asyncio.all_tasks(loop)
    # A private attribute, read only: asyncio offers no public count of pending timers.
    scheduled = list(getattr(loop, "_scheduled", []))
    connection.send_result(
        msg["id"],
        {
            "tasks": len(tasks),
            "tasks_ours": sum(_ours(task.get_coro()) for task in tasks),
            "timers": len(scheduled),
            "timers_ours": sum(_ours(handle) for handle in scheduled),
            "threads": threading.active_count(),
        },
    )
