"""The InfluxDB 2.x protocol double speaks the wire format and computes Flux honestly."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
import pytest
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write.point import Point as ClientPoint

from tests.support.influx2_double import (
    VERSION,
    FluxError,
    Influx2Double,
    parse_line,
    rfc3339_nano,
    scan_flux_string,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

TOKEN = "double-token"
ORG = "ha-ingestor"
BUCKET = "home_assistant_events"
T0 = 1_762_013_100_000_000_000  # 2025-11-01T16:05:00Z
MIN = 60_000_000_000
NOW = T0 + 30 * MIN + 7_000_000_000


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    """A double at a fixed clock."""
    server = Influx2Double(tokens={TOKEN}, org=ORG, clock=lambda: NOW)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _query(
    http: aiohttp.ClientSession,
    double: Influx2Double,
    flux: str,
    *,
    org: str = ORG,
    token: str = TOKEN,
) -> tuple[int, str]:
    async with http.post(
        f"{double.url}/api/v2/query",
        params={"org": org},
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        json={
            "query": flux,
            "type": "flux",
            "dialect": {"header": True, "annotations": ["datatype", "group", "default"]},
        },
    ) as response:
        assert response.headers["X-Influxdb-Version"] == VERSION
        return response.status, await response.text()


def _rows(csv_text: str) -> list[list[str]]:
    return [line.split(",") for line in csv_text.split("\r\n")]


# ---- endpoints ----------------------------------------------------------------------------


async def test_health_and_ping(double: Influx2Double, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{double.url}/health") as response:
        assert response.status == 200
        body = await response.json()
    assert body == {
        "name": "influxdb",
        "message": "ready for queries and writes",
        "status": "pass",
        "checks": [],
        "version": VERSION,
        "commit": body["commit"],
    }
    async with http.get(f"{double.url}/ping") as response:
        assert response.status == 204
        assert response.headers["X-Influxdb-Version"] == VERSION
        assert response.headers["X-Influxdb-Build"] == "OSS"


async def test_official_client_writes_and_reads_back(double: Influx2Double) -> None:
    async with InfluxDBClientAsync(url=double.url, token=TOKEN, org=ORG) as client:
        assert await client.ping()
        assert await client.version() == VERSION
        point = (
            ClientPoint("home_assistant_events")
            .tag("entity_id", "light.kitchen")
            .tag("domain", "light")
            .field("state_value", "on")
            .time(datetime(2025, 11, 1, 16, 20, tzinfo=UTC))
        )
        await client.write_api().write(bucket=BUCKET, record=point)
        tables = await client.query_api().query(
            f'from(bucket: "{BUCKET}") |> range(start: -1h) |> yield(name: "all")'
        )
    [table] = tables
    [record] = table.records
    assert record.values["result"] == "all"
    assert record.get_value() == "on"
    assert record.get_field() == "state_value"
    assert record.values["entity_id"] == "light.kitchen"
    assert record.get_time() == datetime(2025, 11, 1, 16, 20, tzinfo=UTC)
    assert table.get_group_key()[0].label == "_start"


async def test_write_errors(double: Influx2Double, http: aiohttp.ClientSession) -> None:
    auth = {"Authorization": f"Token {TOKEN}"}
    cases = [
        ({"org": ORG, "bucket": BUCKET}, {"Authorization": "Token nope"}, "m f=1", 401),
        ({"org": "other", "bucket": BUCKET}, auth, "m f=1", 404),
        ({"org": ORG, "bucket": "other"}, auth, "m f=1", 404),
        ({"bucket": BUCKET}, auth, "m f=1", 400),
        ({"org": ORG, "bucket": BUCKET}, auth, "m f=", 400),
        ({"org": ORG, "bucket": BUCKET, "precision": "h"}, auth, "m f=1", 400),
    ]
    for params, headers, body, status in cases:
        async with http.post(
            f"{double.url}/api/v2/write", params=params, headers=headers, data=body
        ) as response:
            assert response.status == status, (params, body)
            document = await response.json()
            assert set(document) == {"code", "message"}
    assert double.orgs[ORG].buckets[BUCKET].series == {}


async def test_field_type_conflict_is_refused(
    double: Influx2Double, http: aiohttp.ClientSession
) -> None:
    double.write(ORG, BUCKET, "m f=1i 1")
    async with http.post(
        f"{double.url}/api/v2/write",
        params={"org": ORG, "bucket": BUCKET},
        headers={"Authorization": f"Token {TOKEN}"},
        data="m f=1.5 2",
    ) as response:
        assert response.status == 422
        assert "field type conflict" in (await response.json())["message"]


async def test_query_error_bodies(double: Influx2Double, http: aiohttp.ClientSession) -> None:
    status, body = await _query(http, double, "x", token="bad")
    assert (status, json.loads(body)) == (
        401,
        {"code": "unauthorized", "message": "unauthorized access"},
    )
    status, body = await _query(http, double, 'from(bucket: "nope") |> range(start: -1h)')
    assert (status, json.loads(body)) == (
        404,
        {
            "code": "not found",
            "message": 'failed to initialize execute state: could not find bucket "nope"',
        },
    )
    status, body = await _query(http, double, "x", org="homeiq")
    assert (status, json.loads(body)) == (
        404,
        {"code": "not found", "message": 'organization name "homeiq" not found'},
    )


# ---- line protocol ------------------------------------------------------------------------


def test_line_protocol_types_and_escapes() -> None:
    point = parse_line(
        r'my\ meas\,x,tag\=k=v\ 1\,2,a=b s="x \"q\" \\ y",i=-3i,u=4u,f=1.5e3,t=T,F=false 1500',
        "ms",
        0,
    )
    assert point.measurement == "my meas,x"
    assert point.tags == (("a", "b"), ("tag=k", "v 1,2"))
    assert {k: (t, v) for k, t, v in point.fields} == {
        "F": ("boolean", False),
        "f": ("double", 1500.0),
        "i": ("long", -3),
        "s": ("string", 'x "q" \\ y'),
        "t": ("boolean", True),
        "u": ("unsignedLong", 4),
    }
    assert point.time_ns == 1_500_000_000
    assert parse_line("m f=1", "ns", 42).time_ns == 42


@pytest.mark.parametrize("bad", ["m", "m f", "m f=x", 'm f="open', "m,t f=1", "m f=1 x"])
def test_line_protocol_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_line(bad, "ns", 0)


def test_rfc3339_nano_trims_zeros() -> None:
    assert rfc3339_nano(T0) == "2025-11-01T16:05:00Z"
    assert rfc3339_nano(T0 + 250_000_000) == "2025-11-01T16:05:00.25Z"
    assert rfc3339_nano(T0 + 1) == "2025-11-01T16:05:00.000000001Z"


# ---- Flux semantics ------------------------------------------------------------------------


def _seed(double: Influx2Double) -> None:
    double.write(
        ORG,
        BUCKET,
        [
            f'ev,entity_id=a.x state="1",old_state="0",attr_n=1.0 {T0 + 1 * MIN}',
            f'ev,entity_id=a.x state="2" {T0 + 7 * MIN}',
            f'ev,domain=b,entity_id=b.y state_value="s",context_id="c" {T0 + 8 * MIN}',
            f'ev,domain=b,entity_id=b.y state_value="t" {T0 + 29 * MIN}',
            f'other,entity_id=a.x state="9" {T0 + 9 * MIN}',
            f'ev,entity_id=a.x state="old" {T0 - 90 * MIN}',
        ],
    )


async def test_group_count_by_columns_absent_in_some_tables(
    double: Influx2Double, http: aiohttp.ClientSession
) -> None:
    _seed(double)
    flux = """
    from(bucket: "home_assistant_events")
      |> range(start: -1h)
      |> filter(fn: (r) => r._measurement == "ev"
          and (r._field == "state" or r["_field"] == "state_value"))
      |> group(columns: ["entity_id", "domain"])
      |> count()
      |> yield(name: "per_entity")
    """
    status, body = await _query(http, double, flux)
    assert status == 200
    assert body == (
        # Series come in series-key order: "ev,domain=b,..." sorts before "ev,entity_id=...".
        "#datatype,string,long,string,string,long\r\n"
        "#group,false,false,true,true,false\r\n"
        "#default,per_entity,,,,\r\n"
        ",result,table,domain,entity_id,_value\r\n"
        ",,0,b,b.y,2\r\n"
        "\r\n"
        "#datatype,string,long,string,long\r\n"
        "#group,false,false,true,false\r\n"
        "#default,per_entity,,,\r\n"
        ",result,table,entity_id,_value\r\n"
        ",,1,a.x,2\r\n"
        "\r\n"
    )


async def test_aggregate_window_is_epoch_aligned_and_clipped(
    double: Influx2Double, http: aiohttp.ClientSession
) -> None:
    _seed(double)
    flux = """
    from(bucket: "home_assistant_events")
      |> range(start: 2025-11-01T16:03:00Z, stop: 2025-11-01T16:22:30Z)
      |> filter(fn: (r) => r._measurement == "ev")
      |> filter(fn: (r) => r._field == "state" or r._field == "state_value")
      |> group()
      |> aggregateWindow(every: 5m, fn: count, createEmpty: true)
      |> yield(name: "trend")
    """
    status, body = await _query(http, double, flux)
    assert status == 200
    rows = _rows(body)
    assert rows[3] == ["", "result", "table", "_start", "_stop", "_time", "_value"]
    data = [(row[5], row[6]) for row in rows[4:] if len(row) > 1]
    assert data == [
        ("2025-11-01T16:05:00Z", "0"),
        ("2025-11-01T16:10:00Z", "1"),  # 16:06
        ("2025-11-01T16:15:00Z", "2"),  # 16:12, 16:13
        ("2025-11-01T16:20:00Z", "0"),
        ("2025-11-01T16:22:30Z", "0"),
    ]


async def test_last_sort_limit_keep_sum(double: Influx2Double, http: aiohttp.ClientSession) -> None:
    _seed(double)
    double.write(ORG, BUCKET, [f"sm,service=a n=2i {T0}", f"sm,service=a n=5i {T0 + MIN}"])
    flux = """
    events = from(bucket: "home_assistant_events")
      |> range(start: -1d)
      |> filter(fn: (r) => r._measurement == "ev" and r._field != "old_state"
          and r._field != "attr_n" and r._field != "context_id")
    events |> last() |> group() |> sort(columns: ["_time"], desc: true) |> limit(n: 1)
      |> keep(columns: ["_time", "entity_id"]) |> yield(name: "newest")
    from(bucket: "home_assistant_events") |> range(start: -1d)
      |> filter(fn: (r) => r._measurement == "sm") |> sum() |> yield(name: "sums")
    """
    status, body = await _query(http, double, flux)
    assert status == 200, body
    blocks = body.split("\r\n\r\n")
    assert blocks[0].endswith(",result,table,_time,entity_id\r\n,,0,2025-11-01T16:34:00Z,b.y")
    assert blocks[1].split("\r\n")[-2:] == [
        ",result,table,_start,_stop,_field,_measurement,service,_value",
        ",,0,2025-10-31T16:35:07Z,2025-11-01T16:35:07Z,n,sm,a,7",
    ]


SRC = 'from(bucket: "home_assistant_events") |> range(start: -1h)'


@pytest.mark.parametrize(
    ("flux", "message"),
    [
        (SRC + " |> mean()", "mean"),
        ('from(bucket: "home_assistant_events")', "unbounded"),
        ('import "strings"\nfrom(bucket: "b") |> range(start: -1h)', "import"),
        (SRC + ' |> filter(fn: (r) => r.x > "a")', "operator"),
        (SRC + " |> filter(fn: (r) => true)", "undefined identifier true"),
        ('from(bucket: "${b}") |> range(start: -1h)', "interpolation"),
        (SRC + ' |> group(mode: "except")', "mode"),
        (SRC + ' |> count(col: "x")', "parameter"),
        (SRC + " |> aggregateWindow(every: 5m, fn: mean)", "mean"),
        ("a = 1", "expected"),
        ('x |> yield(name: "a")', "undefined identifier x"),
        (SRC + ' |> yield(name: "a")\n' + SRC + ' |> yield(name: "a")', "duplicate"),
        (SRC + "\n" + SRC, "yield"),
        (SRC + ' |> limit(n: "1")', "invalid type"),
        (SRC + " |> range(start: -1h)", "range"),
        ('from(bucket: "a\\qb") |> range(start: -1h)', "escape"),
        # A `$` takes the next character with it: here the `\`, so `${b}` interpolates ...
        ('from(bucket: "$\\${b}") |> range(start: -1h)', "interpolation"),
        # ... and here the `\`, so `\"` escapes the closing quote.
        ('from(bucket: "a$\\\\") |> range(start: -1h)', "unterminated"),
        ('from(bucket: "\\$b") |> range(start: -1h)', "escape"),
        ('from(bucket: "\\x2") |> range(start: -1h)', "escape"),
        ('from(bucket: "\\xff") |> range(start: -1h)', "utf-8"),
        (SRC + ' |> filter(fn: (r) => types.isType(v: r._value, type: "int"))', "types"),
        ('import "types"\n' + SRC + " |> filter(fn: (r) => types.isType(v: r.x))", "isType"),
    ],
)  # fmt: skip
async def test_unsupported_flux_is_rejected(
    double: Influx2Double, http: aiohttp.ClientSession, flux: str, message: str
) -> None:
    status, body = await _query(http, double, flux)
    assert status == 400, body
    document = json.loads(body)
    assert document["code"] == "invalid"
    assert message in document["message"]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"$$"', "$$"),
        ('"a$"', "a$"),
        ('"$"', "$"),
        ('"$ {x}"', "$ {x}"),
        ('"$${x}"', "$${x}"),
        ('"\\${x}"', "${x}"),
        ('"\\x24{x}"', "${x}"),
        ('"\\xc3\\xbc"', "\u00fc"),
        ('"\\n\\t\\"\\\\"', '\n\t"\\'),
    ],
)
def test_string_literals_read_as_libflux_reads_them(literal: str, value: str) -> None:
    assert scan_flux_string(literal + ")", 0) == (value, len(literal))


async def test_no_tables_gives_an_empty_answer(
    double: Influx2Double, http: aiohttp.ClientSession
) -> None:
    status, body = await _query(http, double, SRC + " |> count()")
    assert (status, body) == (200, "\r\n")


async def test_stall_is_released_on_stop(socket_enabled: None) -> None:
    server = Influx2Double(tokens={TOKEN})
    await server.start()
    server.stall_seconds = 30
    async with aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.get(f"{server.url}/health"))
        await asyncio.sleep(0.2)
        assert not request.done()
        started = asyncio.get_running_loop().time()
        await server.stop()
        # Released: it answers or the connection closes, either way at once.
        try:
            response = await asyncio.wait_for(request, 5)
            response.release()
        except aiohttp.ClientError:
            pass
        assert asyncio.get_running_loop().time() - started < 5


def test_flux_error_carries_http_mapping() -> None:
    err = FluxError("x", status=404, code="not found")
    assert (err.status, err.code, str(err)) == (404, "not found", "x")
