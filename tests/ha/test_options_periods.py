"""Every period the options offer works with the form's defaults, and so does the action.

The options form is the real one; the action runs against a real influxd (InfluxQL), so a
trend window that does not fit a period shows up in the trend the server returns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ha_ingestor.api.core.models import Period, TrendWindow
from custom_components.ha_ingestor.const import (
    CONF_PERIOD,
    CONF_SOURCE_MODE,
    CONF_TREND_WINDOW,
    DEFAULT_TREND_WINDOW,
    DOMAIN,
    MAX_TREND_WINDOWS,
)
from tests.support.events import Schema, event_line, generate_events

from .conftest import ENTRY_DATA
from .live import influx_data

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from tests.support.influxdb_server import InfluxDBServer


def _form_defaults(result: Any) -> dict[str, Any]:
    """What the form shows before the user touches it: its suggested values."""
    answer: dict[str, Any] = {}
    for key in result["data_schema"].schema:
        suggested = (key.description or {}).get("suggested_value")
        if suggested is not None:
            answer[str(key)] = suggested
    return answer


@pytest.mark.parametrize("period", list(Period))
async def test_every_period_is_accepted_with_the_form_defaults(
    hass: HomeAssistant, period: Period
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="x", data=ENTRY_DATA)
    entry.add_to_hass(hass)
    form = await hass.config_entries.options.async_init(entry.entry_id)
    answer = _form_defaults(form)
    assert answer[CONF_TREND_WINDOW] == DEFAULT_TREND_WINDOW

    result = await hass.config_entries.options.async_configure(
        form["flow_id"], {**answer, CONF_PERIOD: period.value}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    assert entry.options[CONF_PERIOD] == period.value


def test_the_default_window_fits_every_period() -> None:
    for period in Period:
        windows = period.duration / DEFAULT_TREND_WINDOW.duration
        assert 1 < windows <= MAX_TREND_WINDOWS, period


@pytest.mark.parametrize("chosen", [TrendWindow.MINUTES_1, TrendWindow.HOUR_1])
async def test_the_action_uses_a_window_that_fits_each_period(
    hass: HomeAssistant,
    influxdb_server: InfluxDBServer,
    socket_enabled: None,
    chosen: TrendWindow,
) -> None:
    database = f"periods_{chosen.value}_{datetime.now(UTC):%H%M%S%f}"
    influxdb_server.create_database(database)
    now = datetime.now(UTC)
    events = generate_events(60, now - timedelta(minutes=14), now - timedelta(seconds=30), 3)
    influxdb_server.write(database, [event_line(e, Schema.B) for e in events])
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"periods-{chosen.value}",
        data=influx_data(influxdb_server, database),
        # 1 h: the action's 15 min period is shorter than the entry's window; 1 min: 7 days
        # of it are 10,080 windows.
        options={CONF_SOURCE_MODE: "influxdb", CONF_PERIOD: "24h", CONF_TREND_WINDOW: chosen},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    for period in Period:
        response = await hass.services.async_call(
            DOMAIN,
            "get_statistics",
            {"config_entry_id": entry.entry_id, "period": period.value},
            blocking=True,
            return_response=True,
        )
        assert response is not None
        events_part: Any = response["events"]
        trend = events_part["trend"]
        fits = chosen.duration < period.duration <= chosen.duration * MAX_TREND_WINDOWS
        window = chosen.duration if fits else DEFAULT_TREND_WINDOW.duration
        times = [datetime.fromisoformat(point["time"]) for point in trend]
        # Epoch-aligned windows, clipped at both ends: every step but the last is one window.
        steps = {b - a for a, b in pairwise(times[:-1])}
        assert steps == {window}, (period, steps)
        assert len(trend) <= period.duration / window + 1, period
        assert events_part["events_in_period"] == 60, period
