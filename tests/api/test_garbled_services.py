"""An answer that cannot be read is not health: for the Admin API and for every service.

The simulated ingestor answers HTTP 200 with a truncated JSON body (`Fault.GARBLED`) over
real loopback HTTP; `ServicesClient` must report the service unhealthy, or degraded when only
part of what it says is unreadable, with a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.ha_ingestor.api.core.models import Period, Revision, ServiceStatus
from custom_components.ha_ingestor.api.ingestor.services import ServicesClient
from tests.support.simulator import ADMIN_API, WEBSOCKET_INGESTION, Fault, IngestorSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import aiohttp

    from custom_components.ha_ingestor.api.core.models import ServiceState

UNREADABLE = "HTTP 200 with an unreadable body"


# R3 answers other paths (no /api/v1/services): tests/api/test_services_r3.py covers it.
@pytest.fixture(params=[Revision.R1, Revision.R2])
async def sim(
    request: pytest.FixtureRequest, socket_enabled: None
) -> AsyncIterator[IngestorSimulator]:
    async with IngestorSimulator(revision=request.param, upstream_timeout=0.5) as simulator:
        yield simulator


async def _states(
    session: aiohttp.ClientSession, sim: IngestorSimulator, *, direct: bool
) -> dict[str, ServiceState]:
    urls = {k: v for k, v in sim.service_urls.items() if k != ADMIN_API} if direct else None
    client = ServicesClient(session, sim.admin_api_url, None, urls, 5.0)
    result = await client.async_fetch(Period.HOUR_1)
    return {state.name: state for state in result.services}


async def test_a_readable_admin_api_is_healthy(
    session: aiohttp.ClientSession, sim: IngestorSimulator
) -> None:
    admin = (await _states(session, sim, direct=True))[ADMIN_API]
    assert admin.status is ServiceStatus.HEALTHY
    assert admin.message is None


async def test_a_garbled_admin_api_is_unhealthy(
    session: aiohttp.ClientSession, sim: IngestorSimulator
) -> None:
    await sim.set_fault(ADMIN_API, Fault.GARBLED)
    admin = (await _states(session, sim, direct=True))[ADMIN_API]
    assert admin.status is ServiceStatus.UNHEALTHY
    assert admin.reachable is True  # it answered; what it said cannot be read
    assert admin.message is not None
    assert admin.message.startswith("Admin API /api/")
    assert UNREADABLE in admin.message
    assert "(and 4 more)" in admin.message


async def test_an_admin_api_garbled_in_part_is_degraded(
    session: aiohttp.ClientSession, sim: IngestorSimulator
) -> None:
    await sim.set_fault(ADMIN_API, Fault.GARBLED, paths=["/api/v1/services"])
    admin = (await _states(session, sim, direct=True))[ADMIN_API]
    assert admin.status is ServiceStatus.DEGRADED
    assert admin.message == f"Admin API /api/v1/services: {UNREADABLE}"


async def test_a_garbled_service_is_unhealthy_even_where_the_admin_api_calls_it_healthy(
    session: aiohttp.ClientSession, sim: IngestorSimulator
) -> None:
    await sim.set_fault(WEBSOCKET_INGESTION, Fault.GARBLED, paths=["/health"])
    ws = (await _states(session, sim, direct=True))[WEBSOCKET_INGESTION]
    assert ws.status is ServiceStatus.UNHEALTHY
    assert ws.reachable is True
    assert ws.message == UNREADABLE


async def test_a_service_whose_statistics_are_garbled_is_degraded(
    session: aiohttp.ClientSession, sim: IngestorSimulator
) -> None:
    # The statistics page of each revision's service that has one besides /health.
    path = "/api/v1/event-rate" if sim.revision is Revision.R2 else "/api/v1/stats"
    name = WEBSOCKET_INGESTION if sim.revision is Revision.R2 else "enrichment-pipeline"
    await sim.set_fault(name, Fault.GARBLED, paths=[path])
    state = (await _states(session, sim, direct=True))[name]
    assert state.status is ServiceStatus.DEGRADED
    assert state.message == f"{name}: {UNREADABLE}"
