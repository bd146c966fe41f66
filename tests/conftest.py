"""Fixtures shared by every test."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
import pytest_socket

# Imported first so this checkout's `custom_components` wins over the plugin's own
# testing_config/custom_components package, whichever test happens to run first.
import custom_components.ha_ingestor  # noqa: F401
from custom_components.ha_ingestor.api.core.models import Revision
from tests.support.influxdb_server import running_influxdb
from tests.support.simulator import IngestorSimulator
from tests.support.simulator_r3 import IngestorSimulatorR3, ManualClock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from tests.support.influxdb_server import InfluxDBServer


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/ha_ingestor in every test."""


@pytest.fixture(scope="session")
def influxdb_server() -> Iterator[InfluxDBServer]:
    """A real influxd (1.6.7) for the whole session; request `socket_enabled` to talk to it."""
    # The plugin blocks sockets per test; starting the server needs one to see /ping.
    pytest_socket.enable_socket()
    try:
        with running_influxdb() as server:
            pytest_socket.disable_socket(allow_unix_socket=True)
            yield server
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)


@pytest.fixture
def database(influxdb_server: InfluxDBServer, socket_enabled: None) -> Iterator[str]:
    """A fresh database on the session's influxd, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    influxdb_server.create_database(name)
    yield name
    influxdb_server.query(f'DROP DATABASE "{name}"')


# The Admin API key the R3 simulator of these tests wants (tests of a wrong key use others).
R3_KEY = "r3-key"


@pytest.fixture
async def r1(socket_enabled: None) -> AsyncIterator[IngestorSimulator]:
    """The R1 ingestor's services on loopback."""
    async with IngestorSimulator(Revision.R1, upstream_timeout=0.5) as sim:
        yield sim


@pytest.fixture
async def r2(socket_enabled: None) -> AsyncIterator[IngestorSimulator]:
    """The R2 ingestor's services on loopback."""
    async with IngestorSimulator(Revision.R2, upstream_timeout=0.5) as sim:
        yield sim


@pytest.fixture
def clock() -> ManualClock:
    """The R3 Admin API's clock (its rate limit and alert TTL), moved by the test."""
    return ManualClock()


@pytest.fixture
async def r3(socket_enabled: None, clock: ManualClock) -> AsyncIterator[IngestorSimulatorR3]:
    """The R3 (HomeIQ 2.0) services on loopback, keyed with `R3_KEY`."""
    async with IngestorSimulatorR3(R3_KEY, upstream_timeout=0.5, clock=clock) as sim:
        yield sim
