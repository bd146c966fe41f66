"""The real influxd the other tests rely on: it answers, stores, and survives a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

if TYPE_CHECKING:
    from tests.support.influxdb_server import InfluxDBServer


@pytest.mark.usefixtures("socket_enabled")
async def test_influxd_answers_ping_and_reports_its_version(
    influxdb_server: InfluxDBServer,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{influxdb_server.url}/ping") as response,
    ):
        assert response.status == 204
        assert response.headers["X-Influxdb-Version"].startswith("1.")


@pytest.mark.usefixtures("socket_enabled")
def test_written_points_are_queried_back_after_a_restart(influxdb_server: InfluxDBServer) -> None:
    influxdb_server.create_database("fixture_check")
    influxdb_server.write(
        "fixture_check",
        [
            'home_assistant_events,entity_id=light.kitchen state="True" 1760299530000000000',
            'home_assistant_events,entity_id=light.kitchen state="False" 1760299590000000000',
        ],
    )
    port = influxdb_server.http_port

    influxdb_server.stop()
    influxdb_server.start()

    assert influxdb_server.http_port == port
    result = influxdb_server.query(
        'SELECT COUNT("state") FROM home_assistant_events', "fixture_check"
    )
    series = result["results"][0]["series"][0]  # type: ignore[index]
    assert series["values"][0][1] == 2
