"""The InfluxQL backend against a real influxd (and loopback servers for the faults)."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from custom_components.ha_ingestor.api.core.aggregate import trend_direction
from custom_components.ha_ingestor.api.core.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorError,
    IngestorNotFoundError,
    IngestorResponseError,
    IngestorSSLError,
    IngestorTimeoutError,
    InvalidNameError,
    InvalidURLError,
    Origin,
)
from custom_components.ha_ingestor.api.core.models import Period, TrendDirection, TrendWindow
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend, build_fetch_query
from custom_components.ha_ingestor.api.influx.influxql_json import decode_documents
from tests.support.events import (
    DEFAULT_ENTITIES,
    EntitySpec,
    Event,
    EventGenerator,
    Schema,
    ServiceMetricsSample,
    auxiliary_lines,
    event_line,
    service_metrics_lines,
    to_ns,
    truncate_to_ms,
)
from tests.support.influxdb_server import InfluxDBServer, free_port, running_auth_influxdb
from tests.support.loopback import Handler, Loopback
from tests.support.loopback import json_answer as _json
from tests.support.loopback import raw_answer as _raw
from tests.support.tls import self_signed_certificate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from pathlib import Path

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Not on any window boundary: the first and last trend windows are clipped.
NOW = datetime(2025, 11, 1, 17, 2, 30, 500000, tzinfo=UTC)
TOKEN = "tok-3f9a1c77e2d04b6b-secret"
PASSWORD = "pw-9d2b5e81-secret"


# --- fixtures ----------------------------------------------------------------------------------


@dataclass
class Client:
    """A caller-owned session that records every request it starts."""

    session: aiohttp.ClientSession
    requests: list[str] = field(default_factory=list)


@pytest.fixture
async def client(socket_enabled: None) -> AsyncIterator[Client]:
    requests: list[str] = []

    async def on_request_start(
        _session: aiohttp.ClientSession,
        _context: object,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        requests.append(f"{params.method} {params.url}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield Client(session, requests)
    assert session.closed


@dataclass(frozen=True)
class Point:
    """What the test knows about one stored event point."""

    time: datetime
    entity_id: str
    domain: str


def _constant(state: str) -> Callable[[Any, str | None], str]:
    return lambda _rng, _old: state


EXTRA_ENTITIES = tuple(
    EntitySpec(entity_id, _constant("on"), lambda _rng, _state: {"friendly_name": "x"})
    for entity_id in ("cover.garage", "fan.bedroom", "lock.front_door")
)
ENTITIES = (*DEFAULT_ENTITIES, *EXTRA_ENTITIES)


def _stored(event: Event, schema: Schema) -> Point:
    time = truncate_to_ms(event.time) if schema is Schema.B else event.time
    return Point(time, event.entity_id, event.domain)


def seed(server: InfluxDBServer, database: str) -> list[Point]:
    """Mixed schema A/B events over 8 days (rising in the last hour), plus other data."""
    generator = EventGenerator(seed=20251101, entities=ENTITIES)
    batches = [
        generator.events_between(400, NOW - timedelta(days=8), NOW - timedelta(days=1)),
        generator.events_between(400, NOW - timedelta(days=1), NOW - timedelta(hours=1)),
        generator.events_between(40, NOW - timedelta(hours=1), NOW - timedelta(minutes=30)),
        generator.events_between(200, NOW - timedelta(minutes=30), NOW),
        generator.events_between(30, NOW, NOW + timedelta(hours=1)),  # after `now`: not counted
    ]
    events = [event for batch in batches for event in batch]
    lines: list[str] = []
    points: list[Point] = []
    for index, event in enumerate(events):
        schema = Schema.A if index % 3 == 0 else Schema.B
        lines.append(event_line(event, schema))
        points.append(_stored(event, schema))
    # Range edges: the start is inside the period, `now` itself is not.
    start = NOW - timedelta(hours=1)
    lines.append(
        "home_assistant_events,domain=sensor,entity_id=sensor.edge,event_type=state_changed "
        f'state_value="x" {to_ns(start)}'
    )
    points.append(Point(start, "sensor.edge", "sensor"))
    lines.append(
        "home_assistant_events,entity_id=sensor.edge,event_type=state_changed "
        f'state="1" {to_ns(NOW)}'
    )
    points.append(Point(NOW, "sensor.edge", "sensor"))
    # A domain tag that disagrees with the prefix wins over the prefix.
    odd = NOW - timedelta(minutes=3)
    lines.append(
        "home_assistant_events,domain=custom,entity_id=sensor.oddball,event_type=state_changed "
        f'state_value="x" {to_ns(odd)}'
    )
    points.append(Point(odd, "sensor.oddball", "custom"))
    lines += auxiliary_lines(NOW - timedelta(hours=2), NOW, 50, seed=3)
    server.write(database, lines, precision="ns")
    return points


@dataclass(frozen=True)
class Expected:
    events: int
    per_minute: float
    last_event: datetime | None
    active: int
    domains: tuple[tuple[str, int], ...]
    trend: list[tuple[datetime, int]]
    complete_counts: list[int]


def expected(points: list[Point], period: Period, window: TrendWindow, now: datetime) -> Expected:
    """Every figure computed from the seeded points, independently of the backend."""

    def us(when: datetime) -> int:
        return (when - EPOCH) // timedelta(microseconds=1)

    start_us, now_us = us(now - period.duration), us(now)
    width = us(EPOCH + window.duration)
    inside = [p for p in points if start_us <= us(p.time) < now_us]
    fresh = [
        p.time for p in points if now_us - us(EPOCH + timedelta(days=7)) <= us(p.time) < now_us
    ]
    domains = Counter(p.domain for p in inside)
    per_window = Counter(min(us(p.time) // width * width + width, now_us) for p in inside)
    trend: list[tuple[datetime, int]] = []
    complete: list[int] = []
    boundary = start_us // width * width
    while boundary < now_us:
        end = min(boundary + width, now_us)
        trend.append((EPOCH + timedelta(microseconds=end), per_window[end]))
        if boundary >= start_us and boundary + width <= now_us:
            complete.append(per_window[end])
        boundary += width
    minutes = period.duration.total_seconds() / 60
    return Expected(
        events=len(inside),
        per_minute=round(len(inside) / minutes, 2),
        last_event=max(fresh, default=None),
        active=len({p.entity_id for p in inside}),
        domains=tuple(sorted(domains.items(), key=lambda kv: (-kv[1], kv[0]))[:10]),
        trend=trend,
        complete_counts=complete,
    )


def _server_version(server: InfluxDBServer) -> str:
    with urllib.request.urlopen(f"{server.url}/ping", timeout=10) as response:  # noqa: S310
        version: str = response.headers["X-Influxdb-Version"]
    assert version.startswith("1.6.7")
    return version


# --- figures against the real influxd ------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "window"),
    [
        (Period.MINUTES_15, TrendWindow.MINUTES_1),
        (Period.HOUR_1, TrendWindow.MINUTES_5),
        (Period.HOURS_6, TrendWindow.MINUTES_15),
        (Period.HOURS_24, TrendWindow.HOUR_1),
        (Period.DAYS_7, TrendWindow.HOUR_1),
        (Period.DAYS_7, TrendWindow.MINUTES_1),  # 10081 windows: more than one influxd chunk
        (Period.MINUTES_15, TrendWindow.HOUR_1),
    ],
)
async def test_every_figure_matches_the_seeded_events(
    influxdb_server: InfluxDBServer,
    database: str,
    client: Client,
    period: Period,
    window: TrendWindow,
) -> None:
    points = seed(influxdb_server, database)
    want = expected(points, period, window, NOW)
    backend = InfluxQLBackend(client.session, influxdb_server.url, database)

    result = await backend.async_fetch(period, window, NOW)

    assert len(client.requests) == 1
    assert client.requests[0].startswith("POST ")
    stats = result.events
    assert stats.events_in_period == want.events
    assert stats.events_per_minute == want.per_minute
    assert stats.last_event == want.last_event
    assert stats.active_entities == want.active
    assert stats.events_by_domain == want.domains
    assert [(p.time, p.count) for p in stats.trend] == want.trend
    assert stats.trend_direction is trend_direction(want.complete_counts)
    assert result.version == _server_version(influxdb_server)
    assert backend.version == result.version
    # No service_metrics rows: unknown, not 0.
    assert result.metrics.error_rate is None
    assert result.metrics.success_rate is None
    assert result.metrics.processing_time_ms is None
    await backend.async_close()
    assert not client.session.closed


async def test_seeded_hour_is_rising_with_more_than_ten_domains(
    influxdb_server: InfluxDBServer, database: str, client: Client
) -> None:
    points = seed(influxdb_server, database)
    backend = InfluxQLBackend(client.session, influxdb_server.url, database)
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    stats = result.events
    assert stats.trend_direction is TrendDirection.RISING
    assert len(stats.events_by_domain) == 10
    all_domains = {p.domain for p in points if NOW - timedelta(hours=1) <= p.time < NOW}
    assert len(all_domains) > 10
    # The edge point at the range start counts, the one at `now` does not.
    assert stats.events_in_period == sum(
        1 for p in points if NOW - timedelta(hours=1) <= p.time < NOW
    )
    assert stats.trend[-1].time == NOW
    assert len(stats.trend) == 13


async def test_empty_database_gives_zero_events_not_unknown(
    influxdb_server: InfluxDBServer, database: str, client: Client
) -> None:
    backend = InfluxQLBackend(client.session, influxdb_server.url, database)
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    stats = result.events
    assert stats.events_in_period == 0
    assert stats.events_per_minute == 0.0
    assert stats.last_event is None
    assert stats.active_entities == 0
    assert stats.events_by_domain == ()
    assert [p.count for p in stats.trend] == [0] * 13
    assert stats.trend_direction is TrendDirection.STEADY
    assert len(client.requests) == 1


async def test_service_metrics_when_rows_exist(
    influxdb_server: InfluxDBServer, database: str, client: Client
) -> None:
    base = datetime(2025, 11, 1, 16, 30, tzinfo=UTC)
    samples = [
        ServiceMetricsSample("websocket-ingestion", base, 1000, 1000, 7, 80.0, 50.0),
        ServiceMetricsSample(
            "websocket-ingestion", base + timedelta(minutes=5), 1250, 1250, 3, 42.7, 99.76
        ),
        ServiceMetricsSample(
            "enrichment-pipeline",
            base + timedelta(minutes=6),
            1247,
            1247,
            40,
            1350.0,
            93.2,
            error=2,
        ),
        # Outside the period: in no figure.
        ServiceMetricsSample(
            "enrichment-pipeline", NOW - timedelta(hours=2), 9, 9, 9, 1.0, 1.0, error=9
        ),
        ServiceMetricsSample("enrichment-pipeline", NOW + timedelta(minutes=1), 9, 9, 9, 1.0, 1.0),
    ]
    influxdb_server.write(database, service_metrics_lines(samples), precision="ns")
    backend = InfluxQLBackend(client.session, influxdb_server.url, database)

    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)

    start = NOW - timedelta(hours=1)
    inside = [s for s in samples if start <= s.time < NOW]
    errors = sum(s.write_errors + (s.error or 0) for s in inside)
    attempts = sum(s.write_attempts + s.events_processed for s in inside)
    latest = {s.service: s for s in sorted(inside, key=lambda s: s.time)}
    assert result.metrics.error_rate == round(errors / attempts * 100, 2)
    assert result.metrics.success_rate == round(
        sum(s.success_rate for s in latest.values()) / len(latest), 2
    )
    assert result.metrics.processing_time_ms == round(
        sum(s.processing_time_ms for s in latest.values()) / len(latest), 2
    )
    assert result.metrics.success_rate == 96.48
    assert len(client.requests) == 1


async def test_validate_reads_the_database_in_one_request(
    influxdb_server: InfluxDBServer, database: str, client: Client
) -> None:
    backend = InfluxQLBackend(client.session, influxdb_server.url, database)
    await backend.async_validate()
    assert len(client.requests) == 1
    assert backend.version == _server_version(influxdb_server)


async def test_missing_database(influxdb_server: InfluxDBServer, client: Client) -> None:
    backend = InfluxQLBackend(client.session, influxdb_server.url, "does_not_exist")
    with pytest.raises(IngestorNotFoundError) as err:
        await backend.async_validate()
    assert "does_not_exist" in str(err.value)
    assert err.value.origin is Origin.INFLUXDB
    with pytest.raises(IngestorNotFoundError):
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert len(client.requests) == 2


async def test_missing_retention_policy(
    influxdb_server: InfluxDBServer, database: str, client: Client
) -> None:
    backend = InfluxQLBackend(
        client.session, influxdb_server.url, database, retention_policy="no_such_rp"
    )
    with pytest.raises(IngestorNotFoundError):
        await backend.async_validate()
    with pytest.raises(IngestorNotFoundError):
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)


def _write_into_rp(server: InfluxDBServer, database: str, rp: str) -> None:
    line = 'home_assistant_events,entity_id=light.a,event_type=state_changed state="True"'
    when = to_ns(NOW - timedelta(minutes=1))
    params = urllib.parse.urlencode({"db": database, "rp": rp, "precision": "ns"})
    request = urllib.request.Request(  # noqa: S310
        f"{server.url}/write?{params}", data=f"{line} {when}".encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


async def test_named_retention_policy(
    influxdb_server: InfluxDBServer, database: str, client: Client
) -> None:
    influxdb_server.query(
        f'CREATE RETENTION POLICY "short" ON "{database}" DURATION 0s REPLICATION 1'
    )
    _write_into_rp(influxdb_server, database, "short")
    in_default = InfluxQLBackend(client.session, influxdb_server.url, database)
    in_short = InfluxQLBackend(
        client.session, influxdb_server.url, database, retention_policy="short"
    )
    default_result = await in_default.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    short_result = await in_short.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert default_result.events.events_in_period == 0
    assert short_result.events.events_in_period == 1


@pytest.mark.parametrize(
    "name",
    [
        '"; DROP DATABASE victim',
        'x" ; DROP DATABASE "victim',
        "victim; DROP DATABASE victim",
        "${victim}",
        '\\"victim',
    ],
)
async def test_database_name_cannot_inject(
    influxdb_server: InfluxDBServer, client: Client, name: str
) -> None:
    influxdb_server.create_database("victim")
    backend = InfluxQLBackend(client.session, influxdb_server.url, name)
    with pytest.raises(IngestorNotFoundError) as err:
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    # influxd looked for a database named exactly `name`, and ran nothing else.
    assert f"database not found: {name}" in str(err.value)
    shown = influxdb_server.query("SHOW DATABASES")
    names = {row[0] for row in shown["results"][0]["series"][0]["values"]}  # type: ignore[index]
    assert "victim" in names


def test_query_text_holds_no_caller_text() -> None:
    query = build_fetch_query(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert query.count(";") == 5
    assert "2025-11-01T16:02:30.500000Z" in query
    assert "2025-11-01T17:02:30.500000Z" in query
    assert "2025-10-25T17:02:30.500000Z" in query
    assert "GROUP BY time(5m) fill(0)" in query


# --- authentication (a second influxd with auth enabled) -------------------------------------


@pytest.fixture
def auth_server(tmp_path: Path, socket_enabled: None) -> Iterator[InfluxDBServer]:
    with running_auth_influxdb(tmp_path, PASSWORD) as server:
        yield server


async def test_basic_auth_reads(auth_server: InfluxDBServer, client: Client) -> None:
    backend = InfluxQLBackend(
        client.session, auth_server.url, "events", username="reader", password=PASSWORD
    )
    await backend.async_validate()
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert result.events.events_in_period == 0
    assert all(PASSWORD not in r for r in client.requests)


@pytest.mark.parametrize(
    ("username", "password", "token"),
    [
        (None, None, None),
        ("reader", "wrong-" + PASSWORD, None),
        ("nobody", PASSWORD, None),
        ("outsider", PASSWORD, None),  # valid user without READ on the database
        (None, None, TOKEN),
    ],
)
async def test_refused_credentials(
    auth_server: InfluxDBServer,
    client: Client,
    username: str | None,
    password: str | None,
    token: str | None,
) -> None:
    backend = InfluxQLBackend(
        client.session,
        auth_server.url,
        "events",
        username=username,
        password=password,
        token=token,
    )
    for call in (
        backend.async_validate(),
        backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW),
    ):
        with pytest.raises(IngestorAuthenticationError) as err:
            await call
        _assert_no_secret(err.value)


# --- faults (loopback servers) -----------------------------------------------------------------


def _assert_no_secret(error: BaseException) -> None:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    basic = base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    for item in seen:
        for text in (str(item), repr(item)):
            assert TOKEN not in text
            assert PASSWORD not in text
            assert basic not in text


def _ok_results() -> dict[str, Any]:
    return {"results": [{"statement_id": i} for i in range(6)]}


async def test_request_shape(loopback: Loopback, client: Client) -> None:
    loopback.handler = _json(_ok_results(), headers={"X-Influxdb-Version": "v2.7.10"})
    url = loopback.url.replace("http://", "http://someone:urlpass@") + "/influx/"
    backend = InfluxQLBackend(
        client.session, url, "home_assistant_events", token=TOKEN, retention_policy="autogen"
    )
    assert TOKEN not in repr(backend)
    assert "urlpass" not in repr(backend)

    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)

    assert result.version == "v2.7.10"
    assert len(loopback.requests) == 1
    sent = loopback.requests[0]
    assert sent.method == "POST"
    assert sent.path == "/influx/query"
    assert sent.query == {
        "db": "home_assistant_events",
        "rp": "autogen",
        "epoch": "ns",
        "chunked": "true",
    }
    assert sent.headers["Authorization"] == f"Token {TOKEN}"
    form = urllib.parse.parse_qs(sent.body.decode())
    assert form["q"] == [build_fetch_query(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)]
    assert "urlpass" not in json.dumps(sent.headers)
    assert all(TOKEN not in r and "urlpass" not in r for r in client.requests)
    # All-empty statements: zero events, unknown service metrics.
    assert result.events.events_in_period == 0
    assert result.metrics.error_rate is None


async def test_basic_auth_header(loopback: Loopback, client: Client) -> None:
    loopback.handler = _json({"results": [{"statement_id": 0}]})
    backend = InfluxQLBackend(
        client.session, loopback.url, "db", username="reader", password=PASSWORD
    )
    await backend.async_validate()
    expected_header = "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    assert loopback.requests[0].headers["Authorization"] == expected_header
    assert "u" not in loopback.requests[0].query
    assert "p" not in loopback.requests[0].query


async def test_no_auth_header_without_credentials(loopback: Loopback, client: Client) -> None:
    loopback.handler = _json({"results": [{"statement_id": 0}]})
    backend = InfluxQLBackend(client.session, loopback.url, "db")
    await backend.async_validate()
    assert "Authorization" not in loopback.requests[0].headers


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (_json({"error": f"bad token Token {TOKEN}"}, status=401), IngestorAuthenticationError),
        (_json({"error": "forbidden"}, status=403), IngestorAuthenticationError),
        (
            _raw(b"<html>nope</html>", status=401, content_type="text/html"),
            IngestorAuthenticationError,
        ),
        (
            _json({"code": "not found", "message": "no dbrp mapping"}, status=404),
            IngestorNotFoundError,
        ),
        (_json({"error": 'database not found: "x"'}, status=404), IngestorNotFoundError),
        (_json({"error": "database not found: x"}, status=400), IngestorNotFoundError),
        (
            _json({"code": "not found", "message": 'Database "x" not found'}, status=400),
            IngestorNotFoundError,
        ),
        (
            _json({"code": "invalid", "message": "error parsing query"}, status=400),
            IngestorResponseError,
        ),
        (
            _json({"code": "unauthorized", "message": "unauthorized access"}, status=200),
            IngestorAuthenticationError,
        ),
        (_json({"error": f"echo {TOKEN} Token {TOKEN}"}, status=500), IngestorResponseError),
        (_raw(b"Bad Gateway", status=502, content_type="text/plain"), IngestorConnectionError),
        (_raw(b"starting", status=503, content_type="text/plain"), IngestorConnectionError),
        (_raw(b"slow down", status=429, content_type="text/plain"), IngestorConnectionError),
        (_json({"error": "error parsing query: found EOF"}, status=400), IngestorResponseError),
        (_json({"error": "something odd"}), IngestorResponseError),
        (_raw(b"{not json"), IngestorResponseError),
        (_raw(b"\xff\xfe\x00garbage"), IngestorResponseError),
        (_raw(b""), IngestorResponseError),
        (_json([1, 2, 3]), IngestorResponseError),
        (_json({"results": "nope"}), IngestorResponseError),
        (_json({"results": ["nope"]}), IngestorResponseError),
        (_json({"results": []}), IngestorResponseError),
        (
            _json({"results": [{"statement_id": 0, "error": "database not found: db"}]}),
            IngestorNotFoundError,
        ),
        (
            _json({"results": [{"statement_id": 0, "error": "retention policy not found: rp"}]}),
            IngestorNotFoundError,
        ),
        (
            _json(
                {
                    "results": [
                        {"statement_id": 0, "error": "error authorizing query: not authorized"}
                    ]
                }
            ),
            IngestorAuthenticationError,
        ),
        (
            _json({"results": [{"statement_id": 0, "error": "max-select-point limit exceeed"}]}),
            IngestorResponseError,
        ),
        (_json({"results": [{"statement_id": 0, "error": 42}]}), IngestorResponseError),
        (_raw(b"", status=418, content_type="text/plain"), IngestorResponseError),
    ],
)
async def test_http_faults_map_to_typed_errors(
    loopback: Loopback, client: Client, handler: Handler, error: type[IngestorError]
) -> None:
    loopback.handler = handler
    backend = InfluxQLBackend(client.session, loopback.url, "db", token=TOKEN)
    for call in (
        backend.async_validate(),
        backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW),
    ):
        with pytest.raises(IngestorError) as raised:
            await call
        assert type(raised.value) is error
        assert raised.value.origin is Origin.INFLUXDB
        _assert_no_secret(raised.value)


async def test_missing_event_statements_are_a_response_error(
    loopback: Loopback, client: Client
) -> None:
    loopback.handler = _json({"results": [{"statement_id": i} for i in range(3)]})
    backend = InfluxQLBackend(client.session, loopback.url, "db")
    with pytest.raises(IngestorResponseError):
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)


async def test_failed_service_metrics_statements_leave_metrics_unknown(
    loopback: Loopback, client: Client
) -> None:
    results: list[dict[str, Any]] = [{"statement_id": i} for i in range(4)]
    results[0]["series"] = [{"name": "e", "columns": ["time", "a", "b"], "values": [[0, 4, 6]]}]
    # influxd stops at a failing statement: the sums never ran.
    results.append({"statement_id": 4, "error": "unsupported last type"})
    loopback.handler = _json({"results": results})
    backend = InfluxQLBackend(client.session, loopback.url, "db")
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert result.events.events_in_period == 10
    assert result.metrics.error_rate is None
    assert result.metrics.success_rate is None


def _series(
    columns: list[str], values: list[list[Any]], tags: dict[str, str] | None = None
) -> dict[str, Any]:
    return {"name": "m", "tags": tags or {}, "columns": columns, "values": values}


async def test_unexpected_shapes_leave_only_that_figure_unknown(
    loopback: Loopback, client: Client
) -> None:
    now_ns = to_ns(NOW)
    results: list[dict[str, Any]] = [
        {"statement_id": 0, "series": "garbage"},
        {"statement_id": 1, "series": [_series(["time", "a", "b"], [["not a time", 1, 1]])]},
        {"statement_id": 2, "series": [_series(["time", "last"], [[now_ns - 10**9, "x"]])]},
        {"statement_id": 3, "series": [_series(["time", "last"], [[True, "x"]])]},
        {
            "statement_id": 4,
            "series": [
                _series(
                    ["time", "success_rate", "processing_time_ms"],
                    [[0, "high", 12.5]],
                    {"service": "a"},
                )
            ],
        },
        {
            "statement_id": 5,
            "series": [
                _series(
                    ["time", "write_errors", "error", "write_attempts", "events_processed"],
                    [[0, 1, None, 50, 50]],
                )
            ],
        },
    ]
    loopback.handler = _json({"results": results})
    backend = InfluxQLBackend(client.session, loopback.url, "db")
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    stats = result.events
    assert stats.events_in_period is None
    assert stats.events_per_minute is None
    assert stats.active_entities is None
    assert stats.events_by_domain == ()
    assert stats.trend == ()
    assert stats.trend_direction is None
    assert stats.last_event is None  # one of the two LAST answers is unreadable
    assert result.metrics.success_rate is None
    assert result.metrics.processing_time_ms == 12.5
    assert result.metrics.error_rate == 1.0


async def test_rfc3339_times_are_read_too(loopback: Loopback, client: Client) -> None:
    results: list[dict[str, Any]] = [
        {
            "statement_id": 0,
            "series": [
                _series(
                    ["time", "a", "b"],
                    [["1970-01-01T00:00:00Z", 1, None]],
                    {"entity_id": "light.a", "domain": ""},
                )
            ],
        },
        {
            "statement_id": 1,
            "series": [_series(["time", "a", "b"], [["2025-11-01T16:55:00Z", 1, 0]])],
        },
        {
            "statement_id": 2,
            "series": [_series(["time", "last"], [["2025-11-01T16:58:00.123456789Z", "on"]])],
        },
        {"statement_id": 3},
    ]
    loopback.handler = _json({"results": results})
    backend = InfluxQLBackend(client.session, loopback.url, "db")
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert result.events.last_event == datetime(2025, 11, 1, 16, 58, 0, 123456, tzinfo=UTC)
    counts = {p.time: p.count for p in result.events.trend}
    assert counts[datetime(2025, 11, 1, 17, 0, tzinfo=UTC)] == 1
    assert result.events.events_by_domain == (("light", 1),)


async def test_timeout(loopback: Loopback, client: Client) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(loopback.release.wait(), 5)
        return web.json_response({"results": []})

    loopback.handler = slow
    backend = InfluxQLBackend(client.session, loopback.url, "db", token=TOKEN, timeout=0.2)
    with pytest.raises(IngestorTimeoutError) as err:
        await backend.async_validate()
    _assert_no_secret(err.value)


async def test_server_closing_the_connection(loopback: Loopback, client: Client) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    loopback.handler = hang_up
    backend = InfluxQLBackend(client.session, loopback.url, "db", token=TOKEN)
    with pytest.raises(IngestorConnectionError) as err:
        await backend.async_validate()
    assert not isinstance(err.value, (IngestorTimeoutError, IngestorSSLError))


async def test_connection_refused(client: Client) -> None:
    backend = InfluxQLBackend(client.session, f"http://127.0.0.1:{free_port()}", "db", token=TOKEN)
    with pytest.raises(IngestorConnectionError) as err:
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert type(err.value) is IngestorConnectionError
    _assert_no_secret(err.value)


async def test_dns_failure(client: Client) -> None:
    backend = InfluxQLBackend(client.session, "http://influxdb.invalid:8086", "db", timeout=10)
    with pytest.raises(IngestorConnectionError) as err:
        await backend.async_validate()
    assert type(err.value) is IngestorConnectionError


async def test_https_to_a_plain_http_port(influxdb_server: InfluxDBServer, client: Client) -> None:
    url = influxdb_server.url.replace("http://", "https://")
    backend = InfluxQLBackend(client.session, url, "db", token=TOKEN)
    with pytest.raises(IngestorSSLError) as err:
        await backend.async_validate()
    _assert_no_secret(err.value)


@dataclass
class TLSServer:
    url: str
    cert_file: Path
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def tls_server(tmp_path: Path, socket_enabled: None) -> Iterator[TLSServer]:
    """A self-signed HTTPS server in its own thread, so failed handshakes stay out of the loop."""
    cert_file, key_file = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            body = json.dumps({"results": [{"statement_id": 0}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Influxdb-Version", "3.0.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda *_args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield TLSServer(f"https://127.0.0.1:{server.server_address[1]}", cert_file, seen)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


async def test_self_signed_certificate_is_refused(tls_server: TLSServer, client: Client) -> None:
    backend = InfluxQLBackend(client.session, tls_server.url, "db", token=TOKEN)
    with pytest.raises(IngestorSSLError) as err:
        await backend.async_validate()
    assert "certificate" in str(err.value).lower()
    _assert_no_secret(err.value)
    assert tls_server.requests == []


@pytest.mark.usefixtures("socket_enabled")
async def test_the_sessions_tls_settings_apply(tls_server: TLSServer) -> None:
    # Home Assistant's shared sessions carry the TLS choice (verify_ssl); the backend adds none.
    trusting = ssl.create_default_context(cafile=str(tls_server.cert_file))
    for verify in (trusting, False):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=verify)) as session:
            backend = InfluxQLBackend(session, tls_server.url, "db")
            await backend.async_validate()
            assert backend.version == "3.0.0"
    assert tls_server.requests == ["/query?db=db&epoch=ns&chunked=true"] * 2


# --- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["", "influxdb:8086", "ftp://host/", "http://", "http://[::1", "/query"]
)
def test_unusable_url(url: str) -> None:
    with pytest.raises(InvalidURLError):
        InfluxQLBackend(None, url, "db")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a\nb", "nul\x00", "x" * 256])
def test_unusable_database_or_retention_policy(name: str) -> None:
    with pytest.raises(InvalidNameError):
        InfluxQLBackend(None, "http://h:8086", name)  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        InfluxQLBackend(None, "http://h:8086", "db", retention_policy=name)  # type: ignore[arg-type]


def test_token_and_password_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both") as err:
        InfluxQLBackend(  # type: ignore[arg-type]
            None, "http://h:8086", "db", token=TOKEN, username="u", password=PASSWORD
        )
    _assert_no_secret(err.value)


def test_repr_hides_credentials() -> None:
    backend = InfluxQLBackend(  # type: ignore[arg-type]
        None, "http://h:8086", "db", username="reader", password=PASSWORD
    )
    assert PASSWORD not in repr(backend)
    assert "h:8086" in repr(backend)


# --- chunked answers ---------------------------------------------------------------------------


def _chunks(*documents: object) -> bytes:
    return b"\n".join(json.dumps(d).encode() for d in documents) + b"\n"


def test_chunks_are_merged_and_the_first_error_wins() -> None:
    part = {"name": "m", "columns": ["time", "a"], "partial": True}
    body = _chunks(
        {"results": [{"statement_id": 0, "series": [{**part, "values": [[1, 1], [2, 2]]}]}]},
        {"results": [{"statement_id": 0, "series": [{**part, "values": [[3, 3]]}]}]},
        {"results": [{"statement_id": 1, "error": "database not found: x"}]},
        {"results": [{"statement_id": 1, "error": "not executed"}]},
        {"results": [{"statement_id": 2, "series": [{**part, "tags": {"e": "b"}, "values": []}]}]},
    )
    merged = decode_documents(body)
    assert merged == {
        "results": [
            {"statement_id": 0, "series": [{**part, "values": [[1, 1], [2, 2], [3, 3]]}]},
            {"statement_id": 1, "error": "database not found: x"},
            {"statement_id": 2, "series": [{**part, "tags": {"e": "b"}, "values": []}]},
        ]
    }


def test_one_document_passes_unchanged() -> None:
    assert decode_documents(b' {"results": []} \n') == {"results": []}
    assert decode_documents(b"[1]") == [1]


@pytest.mark.parametrize(
    "body",
    [b"", b"  \n", b"{oops", b'{"results": []} trailing', b"\xff\xfe", b'{"results": []}\n[1]'],
)
def test_unreadable_bodies(body: bytes) -> None:
    assert decode_documents(body) is None


def test_a_chunk_with_a_top_level_error_is_the_answer() -> None:
    body = _chunks({"results": [{"statement_id": 0}]}, {"error": "boom"})
    assert decode_documents(body) == {"error": "boom"}


def test_malformed_chunks() -> None:
    assert decode_documents(_chunks({"results": []}, {"results": "x"})) is None
    assert decode_documents(_chunks({"results": []}, {"results": [1]})) is None
    odd = decode_documents(
        _chunks(
            {"results": [{"statement_id": 0, "series": "garbage"}]},
            {"results": [{"statement_id": 1, "series": [7, {"values": "x"}]}]},
        )
    )
    assert odd == {
        "results": [
            {"statement_id": 0, "series": "garbage"},
            {"statement_id": 1, "series": [7, {"values": "x"}]},
        ]
    }


async def test_chunked_malformed_series_leave_figures_unknown(
    loopback: Loopback, client: Client
) -> None:
    results: list[dict[str, Any]] = [{"statement_id": i} for i in range(6)]
    results[0]["series"] = [7, {"name": "m", "tags": ["x"], "columns": ["time"], "values": []}]
    loopback.handler = _raw(_chunks({"results": results[:3]}, {"results": results[3:]}))
    backend = InfluxQLBackend(client.session, loopback.url, "db")
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert result.events.events_in_period is None
    assert result.events.active_entities is None
    assert len(result.events.trend) == 13


async def test_plain_404_means_no_influxql_endpoint(loopback: Loopback, client: Client) -> None:
    loopback.handler = _raw(b"404 page not found", status=404, content_type="text/plain")
    backend = InfluxQLBackend(client.session, loopback.url, "db")
    with pytest.raises(IngestorNotFoundError, match="no InfluxQL /query endpoint"):
        await backend.async_validate()


async def test_truncated_body(loopback: Loopback, client: Client) -> None:
    async def truncated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b'{"results": [')
        assert request.transport is not None
        request.transport.close()
        return response

    loopback.handler = truncated
    backend = InfluxQLBackend(client.session, loopback.url, "db", token=TOKEN)
    with pytest.raises(IngestorError) as err:
        await backend.async_validate()
    assert type(err.value) is IngestorResponseError, repr(err.value)
    _assert_no_secret(err.value)
