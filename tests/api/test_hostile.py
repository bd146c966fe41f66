"""Hostile servers: every client of the package stays bounded against a server that misbehaves.

Real sockets on 127.0.0.1 (an aiohttp server, or a bare TCP server for what aiohttp refuses to
send): an endless stream, a declared length of hundreds of MB, a JSON bomb, a server that
accepts and never answers, a redirect to another host. Each ends as a typed error or a handled
unhealthy state, never a MemoryError, a RecursionError or a credential sent elsewhere.
docs/architecture.md#hostile-servers
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from aiohttp import web

from custom_components.ha_ingestor.api.client import IngestorClient
from custom_components.ha_ingestor.api.core.bounded import INFLUXDB_CAP, MIB, SERVICES_CAP
from custom_components.ha_ingestor.api.core.bounded import (
    RedirectNotFollowedError as RedirectedError,
)
from custom_components.ha_ingestor.api.core.errors import (
    IngestorError,
    IngestorResponseError,
    IngestorTimeoutError,
)
from custom_components.ha_ingestor.api.core.models import (
    DataSource,
    Period,
    ServiceStatus,
    SourceMode,
    Thresholds,
    TrendWindow,
)
from custom_components.ha_ingestor.api.influx.flux import FluxBackend, error_for_status
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from custom_components.ha_ingestor.api.influx.storage import parse_bucket
from custom_components.ha_ingestor.api.influx.write import Precision
from custom_components.ha_ingestor.api.ingestor.services import ServicesClient
from tests.support.loopback import (
    Loopback,
    RawLoopback,
    endless_answer,
    json_answer,
    raw_answer,
    redirect_answer,
    start_loopback,
    start_raw_loopback,
    stop_raw_loopback,
)
from tests.support.simulator import ADMIN_API, CARBON_INTENSITY, Fault, IngestorSimulator

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator

    import aiohttp

    from tests.support.influxdb_server import InfluxDBServer

TOKEN = "hostile-token-s3cr3t"
KEY = "hostile-admin-key-s3cr3t"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TIMEOUT = 2.0
KINDS = ("influxql", "flux", "services")


async def _failure(kind: str, session: aiohttp.ClientSession, url: str) -> tuple[type, str]:
    """What the client of `kind` made of the server at `url`: the error's type and text.

    A service that answered something unusable is no error of the fetch: its state is
    unhealthy and says why, which is what the user sees.
    """
    try:
        if kind == "influxql":
            influxql = InfluxQLBackend(session, url, "db", token=TOKEN, timeout=TIMEOUT)
            await influxql.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
        elif kind == "flux":
            flux = FluxBackend(session, url, TOKEN, "org", "bucket", timeout=TIMEOUT)
            await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
        else:
            client = ServicesClient(session, None, KEY, {CARBON_INTENSITY: url}, TIMEOUT)
            result = await client.async_fetch(Period.HOUR_1)
            (state,) = result.services
            assert state.status is ServiceStatus.UNHEALTHY
            return IngestorResponseError, state.message or ""
    except IngestorError as err:
        for text in (str(err), repr(err)):
            assert TOKEN not in text
            assert KEY not in text
        return type(err), str(err)
    pytest.fail(f"{kind} read a hostile answer as a good one")


def _cap(kind: str) -> int:
    return SERVICES_CAP if kind == "services" else INFLUXDB_CAP


@pytest.fixture
async def other_host(socket_enabled: None) -> AsyncIterator[Loopback]:
    """A second server, the target of redirects: it must never be asked."""
    state, runner = await start_loopback()
    state.handler = json_answer({"status": "healthy"})
    yield state
    await runner.cleanup()


@pytest.fixture
async def raw_servers(socket_enabled: None) -> AsyncIterator[list[RawLoopback]]:
    """Bare TCP servers a test starts; all stopped at its end."""
    started: list[RawLoopback] = []
    yield started
    for raw in started:
        await stop_raw_loopback(raw)


# --- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_an_endless_stream_stops_at_the_cap(
    kind: str, session: aiohttp.ClientSession, loopback: Loopback
) -> None:
    cap = _cap(kind)
    loopback.handler = endless_answer(limit_mib=cap // MIB * 4)
    error, text = await _failure(kind, session, loopback.url)
    assert issubclass(error, IngestorResponseError)
    assert f"answer larger than {cap // MIB} MiB" in text


@pytest.mark.parametrize("kind", KINDS)
async def test_a_declared_length_of_hundreds_of_mb_is_refused_before_reading(
    kind: str, session: aiohttp.ClientSession, raw_servers: list[RawLoopback]
) -> None:
    async def declare(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: 524288000\r\n\r\n" + b"[0," * 1000
        )
        await writer.drain()  # ... and the other 500 MB never come: no waiting for them

    raw = await start_raw_loopback(declare)
    raw_servers.append(raw)
    error, text = await _failure(kind, session, raw.url)
    assert issubclass(error, IngestorResponseError)
    assert f"answer larger than {_cap(kind) // MIB} MiB" in text


@pytest.mark.parametrize("kind", KINDS)
async def test_a_gzip_bomb_is_capped_after_decompression(
    kind: str, session: aiohttp.ClientSession, loopback: Loopback
) -> None:
    inflated = b" " * (_cap(kind) + MIB)
    bomb = gzip.compress(inflated)
    assert len(bomb) < _cap(kind) // 10

    async def handle(_request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )

    loopback.handler = handle
    error, text = await _failure(kind, session, loopback.url)
    assert issubclass(error, IngestorResponseError)
    assert f"answer larger than {_cap(kind) // MIB} MiB" in text


# --- JSON bombs ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["influxql", "services"])
async def test_deeply_nested_json_is_unreadable_not_a_recursion_error(
    kind: str, session: aiohttp.ClientSession, loopback: Loopback
) -> None:
    depth = 200_000  # far past the interpreter's recursion limit, well under the cap
    loopback.handler = raw_answer(b"[" * depth + b"]" * depth)
    error, text = await _failure(kind, session, loopback.url)
    assert issubclass(error, IngestorResponseError)
    assert "RecursionError" not in text
    wanted = "unreadable body" if kind == "services" else "not an InfluxQL result"
    assert wanted in text


async def test_a_huge_array_of_services_is_read_as_nothing_usable(
    session: aiohttp.ClientSession, loopback: Loopback
) -> None:
    # Just under the cap: a valid document of half a million entries where objects belong.
    loopback.handler = raw_answer(b"[" + b"1," * (SERVICES_CAP // 2 - 8) + b"1]")
    client = ServicesClient(session, loopback.url, KEY, None, TIMEOUT)
    with pytest.raises(IngestorResponseError, match="nothing usable"):
        await client.async_fetch(Period.HOUR_1)


# --- a server that accepts and never answers -------------------------------------------------


async def _silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")  # reads the request, then says nothing


@pytest.mark.parametrize("kind", ["influxql", "flux"])
async def test_a_server_that_never_answers_is_bounded_by_the_request_timeout(
    kind: str, session: aiohttp.ClientSession, raw_servers: list[RawLoopback]
) -> None:
    raw = await start_raw_loopback(_silent)
    raw_servers.append(raw)
    error, text = await _failure(kind, session, raw.url)
    assert issubclass(error, IngestorTimeoutError)
    assert f"no answer within {TIMEOUT:g} s" in text


async def test_a_silent_service_is_unreachable_within_the_timeout(
    session: aiohttp.ClientSession, raw_servers: list[RawLoopback]
) -> None:
    raw = await start_raw_loopback(_silent)
    raw_servers.append(raw)
    client = ServicesClient(session, None, None, {CARBON_INTENSITY: raw.url}, TIMEOUT)
    with pytest.raises(IngestorTimeoutError, match=f"within {TIMEOUT:g} s"):
        await client.async_fetch(Period.HOUR_1)


async def test_influxdb_silent_the_services_fallback_answers(
    session: aiohttp.ClientSession, raw_servers: list[RawLoopback], r2: IngestorSimulator
) -> None:
    raw = await start_raw_loopback(_silent)
    raw_servers.append(raw)
    client = IngestorClient(
        InfluxQLBackend(session, raw.url, "db", timeout=TIMEOUT),
        ServicesClient(session, r2.admin_api_url, None, None, TIMEOUT),
        SourceMode.AUTO,
        timeout=TIMEOUT * 2,
    )
    result = await client.async_get_snapshot(
        Period.HOUR_1, TrendWindow.MINUTES_5, Thresholds(), NOW
    )
    assert result.snapshot is not None
    assert result.snapshot.source is DataSource.SERVICES_FALLBACK
    assert isinstance(result.influx_error, IngestorTimeoutError)
    assert result.snapshot.services


async def test_services_silent_influxdb_answers(
    session: aiohttp.ClientSession,
    raw_servers: list[RawLoopback],
    influxdb_server: InfluxDBServer,
) -> None:
    raw = await start_raw_loopback(_silent)
    raw_servers.append(raw)
    with influxdb_server.scratch_database("hostile") as database:
        client = IngestorClient(
            InfluxQLBackend(session, influxdb_server.url, database, timeout=TIMEOUT),
            ServicesClient(session, raw.url, KEY, {CARBON_INTENSITY: raw.url}, TIMEOUT),
            SourceMode.AUTO,
            timeout=TIMEOUT * 2,
        )
        result = await client.async_get_snapshot(
            Period.HOUR_1, TrendWindow.MINUTES_5, Thresholds(), datetime.now(UTC)
        )
    assert result.snapshot is not None
    assert result.snapshot.source is DataSource.INFLUXDB
    assert result.influx_error is None
    assert isinstance(result.services_error, IngestorTimeoutError)


# --- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("kind", KINDS)
async def test_a_redirect_to_another_host_is_not_followed(
    kind: str,
    status: int,
    session: aiohttp.ClientSession,
    loopback: Loopback,
    other_host: Loopback,
) -> None:
    loopback.handler = redirect_answer(other_host.url, status)
    error, text = await _failure(kind, session, loopback.url)
    assert issubclass(error, IngestorResponseError if kind == "services" else RedirectedError)
    assert f"redirected (HTTP {status}) to {other_host.url}" in text
    assert "configure the address it redirects to" in text
    # The token or key never went anywhere but to the configured host.
    assert other_host.requests == []
    assert loopback.requests


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("kind", ["influxql", "flux"])
async def test_a_backfill_write_never_follows_a_redirect(
    kind: str,
    status: int,
    session: aiohttp.ClientSession,
    loopback: Loopback,
    other_host: Loopback,
) -> None:
    loopback.handler = redirect_answer(other_host.url, status)
    backend: InfluxQLBackend | FluxBackend = (
        InfluxQLBackend(session, loopback.url, "db", token=TOKEN, timeout=TIMEOUT)
        if kind == "influxql"
        else FluxBackend(session, loopback.url, TOKEN, "org", "bucket", timeout=TIMEOUT)
    )
    with pytest.raises(RedirectedError, match=rf"redirected \(HTTP {status}\)") as caught:
        await backend.async_write(['home_assistant_events state="on" 1'], Precision.MS)
    assert TOKEN not in str(caught.value)
    # Neither the token nor the points went anywhere but to the configured host.
    assert other_host.requests == []
    assert loopback.requests


async def test_the_admin_api_key_never_follows_a_redirect(
    session: aiohttp.ClientSession, loopback: Loopback, other_host: Loopback
) -> None:
    loopback.handler = redirect_answer(other_host.url)
    client = ServicesClient(session, loopback.url, KEY, {CARBON_INTENSITY: loopback.url}, TIMEOUT)
    result = await client.async_fetch(Period.HOUR_1)
    admin = next(s for s in result.services if s.name == ADMIN_API)
    assert admin.status is ServiceStatus.UNHEALTHY
    assert "redirected (HTTP 307)" in (admin.message or "")
    assert other_host.requests == []
    assert any(r.headers.get("Authorization") == f"Bearer {KEY}" for r in loopback.requests)
    # Nothing else configured: the fetch fails with the redirect (the config flow says so).
    with pytest.raises(RedirectedError, match="configure the address it redirects to"):
        await ServicesClient(session, loopback.url, KEY, None, TIMEOUT).async_fetch(Period.HOUR_1)
    assert other_host.requests == []


# --- the Admin API's own health --------------------------------------------------------------


async def test_an_admin_api_answering_500_is_not_healthy(
    session: aiohttp.ClientSession, r2: IngestorSimulator
) -> None:
    direct = {CARBON_INTENSITY: r2.url_of(CARBON_INTENSITY)}
    client = ServicesClient(session, r2.admin_api_url, None, direct, TIMEOUT)
    await r2.set_fault(ADMIN_API, Fault.SERVER_ERROR)
    result = await client.async_fetch(Period.HOUR_1)
    admin = next(s for s in result.services if s.name == ADMIN_API)
    assert admin.status is ServiceStatus.UNHEALTHY
    assert admin.reachable is True  # it answered: a server error, not a network one
    assert "HTTP 500" in (admin.message or "")
    # Partly failing: degraded, not healthy.
    await r2.set_fault(ADMIN_API, Fault.SERVER_ERROR, paths=["/api/v1/health"])
    result = await client.async_fetch(Period.HOUR_1)
    admin = next(s for s in result.services if s.name == ADMIN_API)
    assert admin.status is ServiceStatus.DEGRADED
    assert "HTTP 500" in (admin.message or "")


@pytest.mark.parametrize("retry_after", ["nan", "inf", "-inf", "1e999"])
async def test_a_hostile_retry_after_still_backs_off(
    retry_after: str, session: aiohttp.ClientSession, loopback: Loopback
) -> None:
    loopback.handler = json_answer(
        {"detail": "Rate limit exceeded"}, status=429, headers={"Retry-After": retry_after}
    )
    client = ServicesClient(session, loopback.url, KEY, None, TIMEOUT)
    with pytest.raises(IngestorError):
        await client.async_fetch(Period.HOUR_1)
    asked = {r.path for r in loopback.requests}
    assert "/api/info" in asked
    loopback.requests.clear()
    with pytest.raises(IngestorError):
        await client.async_fetch(Period.HOUR_1)
    # Backing off: only the paths the rate limiter does not count are asked again.
    assert {r.path for r in loopback.requests} <= {"/health", "/api/health", "/api/v1/health"}


def test_a_nested_error_body_or_bucket_list_is_not_a_recursion_error() -> None:
    bomb = b"[" * 200_000 + b"]" * 200_000
    # A Flux error body that is a bomb: the status speaks, the body says nothing.
    error = error_for_status(500, bomb)
    assert isinstance(error, IngestorResponseError)
    assert "500" in str(error)
    with pytest.raises(IngestorResponseError, match="buckets: not JSON"):
        parse_bucket(bomb, "bucket")
