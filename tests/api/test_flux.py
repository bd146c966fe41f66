"""FluxBackend against the InfluxDB 2.x protocol double, over real HTTP on loopback."""

from __future__ import annotations

import dataclasses
import inspect
import json
import ssl
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest

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
from custom_components.ha_ingestor.api.core.models import (
    Period,
    ProcessingMetrics,
    TrendDirection,
    TrendWindow,
)
from custom_components.ha_ingestor.api.influx.backend import InfluxBackend
from custom_components.ha_ingestor.api.influx.flux import (
    FluxBackend,
    build_refresh_query,
    result_from_records,
)
from custom_components.ha_ingestor.api.influx.flux_csv import Record, parse_annotated_csv
from tests.support.dataset import (
    build_dataset,
    expected_event_statistics,
    expected_processing_metrics,
)
from tests.support.events import contract_service_metrics, service_metrics_lines
from tests.support.influx2_double import VERSION, Influx2Double
from tests.support.influxdb_server import free_port
from tests.support.tls import self_signed_certificate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

TOKEN = "s3cr3t-t0ken-value"
ORG = "ha-ingestor"
BUCKET = "home_assistant_events"
NOW = datetime(2025, 11, 1, 16, 7, 30, 250000, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000


@pytest.fixture
def client_ssl() -> ssl.SSLContext:
    """The context of Home Assistant's shared session (built outside the event loop)."""
    return ssl.create_default_context()


@pytest.fixture
async def session(client_ssl: ssl.SSLContext) -> AsyncIterator[aiohttp.ClientSession]:
    """The caller's session, built like Home Assistant's: TLS settings on the connector."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as shared:
        yield shared


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    """A double whose clock stands still at NOW."""
    server = Influx2Double(tokens={TOKEN}, org=ORG, clock=lambda: _ns(NOW))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def backend(
    double: Influx2Double, session: aiohttp.ClientSession
) -> AsyncIterator[FluxBackend]:
    """A backend pointed at the double."""
    flux = FluxBackend(session, double.url, TOKEN, ORG, BUCKET, timeout=5)
    yield flux
    await flux.async_close()


def _load(double: Influx2Double, now: datetime = NOW) -> None:
    data = build_dataset(now)
    double.write(ORG, BUCKET, data.lines, data.precision)


def test_implements_the_backend_protocol() -> None:
    members = [m for m in vars(InfluxBackend) if m.startswith("async_")]
    assert members == ["async_fetch", "async_validate", "async_close"]
    for name in members:
        assert inspect.iscoroutinefunction(getattr(FluxBackend, name))
        assert inspect.signature(getattr(FluxBackend, name)) == inspect.signature(
            getattr(InfluxBackend, name)
        )


async def test_fetch_matches_independent_expectation(
    double: Influx2Double, backend: FluxBackend
) -> None:
    data = build_dataset(NOW)
    double.write(ORG, BUCKET, data.lines, data.precision)

    result = await backend.async_fetch(data.period, data.window, NOW)

    expected = expected_event_statistics(data)
    assert result.events == expected
    assert result.metrics == expected_processing_metrics(data)
    assert result.version == VERSION
    # The data set is built to exercise these, so check the expectation is not degenerate.
    assert expected.events_in_period == 261
    assert len(expected.events_by_domain) == 10
    assert expected.trend_direction is TrendDirection.RISING
    assert result.metrics.error_rate is not None


async def test_one_query_request_per_refresh(double: Influx2Double, backend: FluxBackend) -> None:
    _load(double)
    for refresh in range(1, 4):
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
        assert len(double.requests) == refresh
        assert len(double.query_requests()) == refresh
    request = double.query_requests()[-1]
    assert request.method == "POST"
    assert request.query == {"org": ORG}
    assert request.authorization == f"Token {TOKEN}"
    document = json.loads(request.body)
    assert document["type"] == "flux"
    assert document["query"] == build_refresh_query(
        BUCKET, Period.HOUR_1, TrendWindow.MINUTES_5, NOW
    )
    assert document["dialect"] == {
        "header": True,
        "delimiter": ",",
        "annotations": ["datatype", "group", "default"],
        "commentPrefix": "#",
        "dateTimeFormat": "RFC3339",
    }


@pytest.mark.parametrize("period", list(Period))
@pytest.mark.parametrize("window", [TrendWindow.MINUTES_1, TrendWindow.HOUR_1])
async def test_every_period_and_window(
    double: Influx2Double, backend: FluxBackend, period: Period, window: TrendWindow
) -> None:
    data = build_dataset(NOW, period=Period.HOUR_1, window=window)
    double.write(ORG, BUCKET, data.lines, data.precision)
    # Same points, judged over another period and window.
    wanted = dataclasses.replace(data, period=period, window=window)

    result = await backend.async_fetch(period, window, NOW)

    assert result.events == expected_event_statistics(wanted)
    assert result.metrics == expected_processing_metrics(wanted)


async def test_empty_bucket_counts_zero_and_metrics_unknown(backend: FluxBackend) -> None:
    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)

    assert result.events.events_in_period == 0
    assert result.events.events_per_minute == 0.0
    assert result.events.active_entities == 0
    assert result.events.events_by_domain == ()
    assert result.events.last_event is None
    assert result.metrics == ProcessingMetrics()


async def test_last_event_found_before_the_period(
    double: Influx2Double, backend: FluxBackend
) -> None:
    old = NOW - timedelta(days=3, minutes=7)
    head = "home_assistant_events,entity_id=light.a,event_type=state_changed"
    double.write(
        ORG,
        BUCKET,
        [
            f'{head} state="True" {_ns(old)}',
            f'{head} state="x" {_ns(NOW - timedelta(days=8))}',
            # Newer, but no event field: not an event.
            f"{head} attr_brightness=3.0 {_ns(NOW - timedelta(days=1))}",
        ],
    )

    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)

    assert result.events.last_event == old
    assert result.events.events_in_period == 0


async def test_service_metrics_contract_rows(double: Influx2Double, backend: FluxBackend) -> None:
    double.write(ORG, BUCKET, service_metrics_lines(contract_service_metrics()))
    when = datetime(2025, 11, 1, 16, 10, tzinfo=UTC)

    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, when)

    # (3 + 40 + 2) / (1250 + 1250 + 1247 + 1247) x 100; means of the two latest values.
    assert result.metrics == ProcessingMetrics(
        error_rate=0.9, success_rate=96.48, processing_time_ms=696.35
    )


async def test_latest_service_value_is_the_newest_of_all_its_series(
    double: Influx2Double, backend: FluxBackend
) -> None:
    double.write(
        ORG,
        BUCKET,
        [
            (
                "service_metrics,host=a,service=ws success_rate=90.0,processing_time_ms=10.0 "
                f"{_ns(NOW - timedelta(minutes=2))}"
            ),
            (
                "service_metrics,host=b,service=ws success_rate=99.0,processing_time_ms=30.0 "
                f"{_ns(NOW - timedelta(minutes=20))}"
            ),
            # No service tag: its own "unknown" service.
            f"service_metrics success_rate=50.0 {_ns(NOW - timedelta(minutes=3))}",
        ],
    )

    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)

    assert result.metrics == ProcessingMetrics(
        error_rate=None, success_rate=70.0, processing_time_ms=10.0
    )


async def test_service_metrics_of_a_foreign_type_leave_the_event_figures(
    double: Influx2Double, backend: FluxBackend
) -> None:
    # Real Flux fails the whole query when sum() meets a string or boolean column; one
    # service writing its `error` field as a message must cost only the figures it spoils.
    data = build_dataset(NOW)
    events_only = [line for line in data.lines if not line.startswith("service_metrics")]
    double.write(ORG, BUCKET, events_only, data.precision)
    double.write(
        ORG,
        BUCKET,
        'service_metrics,service=ws error="write timeout",write_attempts=100i,write_errors=2i,'
        f'success_rate=true,processing_time_ms="slow" {_ns(NOW - timedelta(minutes=2))}',
    )

    result = await backend.async_fetch(data.period, data.window, NOW)

    assert result.events == expected_event_statistics(data)
    assert result.metrics == ProcessingMetrics(
        error_rate=2.0, success_rate=None, processing_time_ms=None
    )


def test_metric_values_that_are_no_numbers_are_no_figures() -> None:
    # What a server without the type filter would answer: still a snapshot, never an error.
    records: dict[str, list[Record]] = {
        "metric_sums": [
            {"_field": "error", "_value": "write timeout"},
            {"_field": "write_errors", "_value": True},
            {"_field": "write_attempts", "_value": 40},
        ],
        "metric_latest": [
            {"_field": "success_rate", "_value": "high", "_time": NOW, "service": "ws"},
            {"_field": "processing_time_ms", "_value": 12.5, "_time": NOW, "service": "ws"},
        ],
    }

    result = result_from_records(records, Period.HOUR_1, TrendWindow.MINUTES_5, NOW, None)

    assert result.metrics == ProcessingMetrics(
        error_rate=None, success_rate=None, processing_time_ms=12.5
    )
    assert result.events.events_in_period == 0


async def test_a_tag_named_result_does_not_rename_a_result(
    double: Influx2Double, backend: FluxBackend
) -> None:
    double.write(
        ORG,
        BUCKET,
        "service_metrics,service=ws,result=ok,table=7 write_attempts=200i,write_errors=5i,"
        f"success_rate=99.0 {_ns(NOW - timedelta(minutes=2))}",
    )

    result = await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)

    assert result.metrics == ProcessingMetrics(
        error_rate=2.5, success_rate=99.0, processing_time_ms=None
    )


async def test_validate_succeeds_and_uses_one_bounded_query(
    double: Influx2Double, backend: FluxBackend
) -> None:
    await backend.async_validate()

    [request] = double.requests
    assert request.path == "/api/v2/query"
    assert "range(start: -1m)" in request.body
    assert "limit(n: 1)" in request.body
    assert "buckets" not in request.body


# ---- errors --------------------------------------------------------------------------------


def _assert_clean(err: IngestorError) -> None:
    assert err.origin is Origin.INFLUXDB
    assert TOKEN not in str(err)
    assert TOKEN not in repr(err)


@pytest.mark.parametrize("method", ["async_fetch", "async_validate"])
async def test_wrong_token(
    double: Influx2Double, session: aiohttp.ClientSession, method: str
) -> None:
    flux = FluxBackend(session, double.url, "wrong-token", ORG, BUCKET)
    call = (
        flux.async_validate()
        if method == "async_validate"
        else flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    )
    try:
        with pytest.raises(IngestorAuthenticationError) as caught:
            await call
    finally:
        await flux.async_close()
    _assert_clean(caught.value)
    assert "wrong-token" not in str(caught.value)


async def test_wrong_org(double: Influx2Double, session: aiohttp.ClientSession) -> None:
    flux = FluxBackend(session, double.url, TOKEN, "homeiq", BUCKET)
    try:
        with pytest.raises(IngestorNotFoundError, match="organization") as caught:
            await flux.async_validate()
    finally:
        await flux.async_close()
    _assert_clean(caught.value)


async def test_wrong_bucket(double: Influx2Double, session: aiohttp.ClientSession) -> None:
    flux = FluxBackend(session, double.url, TOKEN, ORG, "home_assistant")
    try:
        with pytest.raises(IngestorNotFoundError, match="bucket") as caught:
            await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    finally:
        await flux.async_close()
    _assert_clean(caught.value)


async def test_unreachable_host(socket_enabled: None, session: aiohttp.ClientSession) -> None:
    flux = FluxBackend(session, f"http://127.0.0.1:{free_port()}", TOKEN, ORG, BUCKET)
    try:
        with pytest.raises(IngestorConnectionError) as caught:
            await flux.async_validate()
    finally:
        await flux.async_close()
    assert type(caught.value) is IngestorConnectionError
    _assert_clean(caught.value)


async def test_dns_failure(socket_enabled: None, session: aiohttp.ClientSession) -> None:
    flux = FluxBackend(session, "http://nonexistent.invalid:8086", TOKEN, ORG, BUCKET, timeout=10)
    try:
        with pytest.raises(IngestorConnectionError) as caught:
            await flux.async_validate()
    finally:
        await flux.async_close()
    assert type(caught.value) is IngestorConnectionError
    _assert_clean(caught.value)


async def test_timeout_on_stalled_server(
    double: Influx2Double, session: aiohttp.ClientSession
) -> None:
    double.stall_seconds = 10
    flux = FluxBackend(session, double.url, TOKEN, ORG, BUCKET, timeout=0.3)
    try:
        with pytest.raises(IngestorTimeoutError) as caught:
            await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    finally:
        await flux.async_close()
    _assert_clean(caught.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, IngestorResponseError),
        (503, IngestorConnectionError),
        (400, IngestorResponseError),
        (403, IngestorAuthenticationError),
    ],
)
async def test_http_status_mapping(
    double: Influx2Double, backend: FluxBackend, status: int, error: type[IngestorError]
) -> None:
    double.query_override = (status, "application/json", '{"code":"x","message":"boom"}')
    with pytest.raises(error) as caught:
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    assert type(caught.value) is error
    _assert_clean(caught.value)


GARBLED = {
    "html": "<html><body>502 Bad Gateway</body></html>",
    "unknown datatype": (
        "#datatype,string,long,blob\r\n#group,false,false,false\r\n#default,x,,\r\n"
        ",result,table,_value\r\n,,0,abc\r\n\r\n"
    ),
    "non-numeric long": (
        "#datatype,string,long,long\r\n#group,false,false,false\r\n"
        "#default,entity_counts,,\r\n,result,table,_value\r\n,,0,many\r\n\r\n"
    ),
    "short row": (
        "#datatype,string,long,long\r\n#group,false,false,false\r\n"
        "#default,entity_counts,,\r\n,result,table,_value\r\n,,0\r\n\r\n"
    ),
    "no annotations": ",result,table,_value\r\n,_result,0,5\r\n",
    "bad time": (
        "#datatype,string,long,dateTime:RFC3339\r\n#group,false,false,false\r\n"
        "#default,last_event,,\r\n,result,table,_time\r\n,,0,yesterday\r\n\r\n"
    ),
    "count is a string": (
        "#datatype,string,long,string\r\n#group,false,false,false\r\n"
        "#default,entity_counts,,\r\n,result,table,_value\r\n,,0,12\r\n\r\n"
    ),
    "unterminated quote": (
        "#datatype,string,long,string\r\n#group,false,false,false\r\n"
        '#default,x,,\r\n,result,table,_value\r\n,,0,"abc\r\n'
    ),
    "flux error table": (
        "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n"
        ',"runtime error: out of memory",897\r\n\r\n'
    ),
    "not utf-8": "\udcff",
}


@pytest.mark.parametrize("case", list(GARBLED))
async def test_garbled_csv(double: Influx2Double, backend: FluxBackend, case: str) -> None:
    body = GARBLED[case]
    double.query_override = (200, "text/csv", b"\xff\xfe\xfa" if case == "not utf-8" else body)
    with pytest.raises(IngestorResponseError) as caught:
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    _assert_clean(caught.value)


# ---- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    return self_signed_certificate(tmp_path)


@pytest.fixture
async def tls_double(
    socket_enabled: None, certificate: tuple[Path, Path]
) -> AsyncIterator[Influx2Double]:
    """The double behind TLS with a self-signed certificate."""
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ssl.load_cert_chain(*certificate)
    server = Influx2Double(tokens={TOKEN}, org=ORG, ssl_context=server_ssl, clock=lambda: _ns(NOW))
    await server.start()
    yield server
    await server.stop()


async def test_tls_untrusted_certificate(
    tls_double: Influx2Double, session: aiohttp.ClientSession
) -> None:
    flux = FluxBackend(session, tls_double.url, TOKEN, ORG, BUCKET)
    try:
        with pytest.raises(IngestorSSLError) as caught:
            await flux.async_validate()
    finally:
        await flux.async_close()
    _assert_clean(caught.value)
    assert tls_double.requests == []


async def test_tls_trusted_certificate(
    tls_double: Influx2Double, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    _load(tls_double)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as session:
        flux = FluxBackend(session, tls_double.url, TOKEN, ORG, BUCKET)
        try:
            result = await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
        finally:
            await flux.async_close()
    assert result.events == expected_event_statistics(build_dataset(NOW))


async def test_tls_to_plain_http_server(
    double: Influx2Double, session: aiohttp.ClientSession
) -> None:
    url = double.url.replace("http://", "https://")
    flux = FluxBackend(session, url, TOKEN, ORG, BUCKET, timeout=5)
    try:
        with pytest.raises(IngestorConnectionError) as caught:
            await flux.async_validate()
    finally:
        await flux.async_close()
    _assert_clean(caught.value)


async def test_callers_session_is_used_and_left_open(
    double: Influx2Double, client_ssl: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def spy(name: str) -> object:
        def record(*_args: object, **_kwargs: object) -> None:
            calls.append(name)

        return record

    sent: list[aiohttp.TraceRequestStartParams] = []

    async def on_request_start(
        _session: aiohttp.ClientSession,
        _context: object,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        sent.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    _load(double)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_ssl), trace_configs=[trace]
    ) as shared:
        monkeypatch.setattr(ssl.SSLContext, "load_default_certs", spy("load_default_certs"))
        monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", spy("load_verify_locations"))
        monkeypatch.setattr(
            ssl.SSLContext, "set_default_verify_paths", spy("set_default_verify_paths")
        )
        flux = FluxBackend(shared, double.url, TOKEN, ORG, BUCKET)
        try:
            await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
        finally:
            await flux.async_close()

        # The one request went through the caller's session, which stays usable.
        [request] = sent
        assert request.method == "POST"
        assert request.url.path == "/api/v2/query"
        assert request.headers["Accept"] == "application/csv"
        assert len(double.requests) == 1
        assert not shared.closed
        async with shared.get(f"{double.url}/ping") as response:
            assert response.status == 204
    assert calls == []


# ---- injection and secrets ----------------------------------------------------------------

HOSTILE_NAMES = [
    'home_assistant_events") |> range(start: -100y) |> yield(name: "x") //',
    'a"b',
    "back\\slash\\",
    'tail\\"',
    "${bucket}",
    "dollar$ {x}",
    "ünïcödé bücket",
    'r._field == "state" or true',
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_bucket_name_is_read_literally(
    double: Influx2Double, session: aiohttp.ClientSession, name: str
) -> None:
    double.create_bucket(ORG, name)
    data = build_dataset(NOW)
    double.write(ORG, name, data.lines, data.precision)
    flux = FluxBackend(session, double.url, TOKEN, ORG, name)
    try:
        result = await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    finally:
        await flux.async_close()
    assert result.events == expected_event_statistics(data)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_missing_bucket_is_looked_up_literally(
    double: Influx2Double, session: aiohttp.ClientSession, name: str
) -> None:
    _load(double)  # the default bucket has data; the hostile name must not reach it
    flux = FluxBackend(session, double.url, TOKEN, ORG, name)
    try:
        with pytest.raises(IngestorNotFoundError, match="bucket"):
            await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    finally:
        await flux.async_close()


@pytest.mark.parametrize("org", ["ha&bucket=x", "org with space", 'o"rg', "a/b?c=d#e"])
async def test_hostile_org_name_is_sent_literally(
    double: Influx2Double, session: aiohttp.ClientSession, org: str
) -> None:
    double.add_org(org, (BUCKET,))
    data = build_dataset(NOW)
    double.write(org, BUCKET, data.lines, data.precision)
    flux = FluxBackend(session, double.url, TOKEN, org, BUCKET)
    try:
        result = await flux.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    finally:
        await flux.async_close()
    assert double.query_requests()[-1].query == {"org": org}
    assert result.events.events_in_period == expected_event_statistics(data).events_in_period


@pytest.mark.parametrize("name", ["", "   ", "new\nline", "nul\x00", "x" * 256])
async def test_unusable_names_are_refused(session: aiohttp.ClientSession, name: str) -> None:
    with pytest.raises(InvalidNameError):
        FluxBackend(session, "http://127.0.0.1:8086", TOKEN, ORG, name)
    with pytest.raises(InvalidNameError):
        FluxBackend(session, "http://127.0.0.1:8086", TOKEN, name, BUCKET)


def test_only_enum_periods_and_windows() -> None:
    with pytest.raises(TypeError):
        build_refresh_query(BUCKET, "1h) |> drop(", TrendWindow.MINUTES_5, NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        build_refresh_query(BUCKET, Period.HOUR_1, "5m", NOW)  # type: ignore[arg-type]


async def test_repr_hides_token(session: aiohttp.ClientSession) -> None:
    flux = FluxBackend(session, "http://user:pw@influx.local:8086", TOKEN, ORG, BUCKET)
    assert TOKEN not in repr(flux)
    assert "pw" not in repr(flux)
    assert "influx.local:8086" in repr(flux)


async def test_bad_url_is_refused(session: aiohttp.ClientSession) -> None:
    with pytest.raises(InvalidURLError, match="URL"):
        FluxBackend(session, "influx.local:8086", TOKEN, ORG, BUCKET)


def test_csv_reader_reads_defaults_and_nulls() -> None:
    text = (
        "#datatype,string,long,string,double,boolean,dateTime:RFC3339\r\n"
        "#group,false,false,true,false,false,false\r\n"
        "#default,r1,,dflt,,,\r\n"
        ",result,table,tag,_value,ok,_time\r\n"
        ",,0,,1.5,true,2025-11-01T16:05:00.123456789Z\r\n"
        ',,0,"a,b",,false,2025-11-01T16:05:00+02:00\r\n'
        "\r\n"
        "#datatype,string,long,unsignedLong\r\n"
        "#group,false,false,false\r\n"
        "#default,r2,,\r\n"
        ",result,table,_value\r\n"
        ",,0,18446744073709551615\r\n"
        "\r\n"
    )
    results = parse_annotated_csv(text)
    assert results["r1"] == [
        {
            "tag": "dflt",
            "_value": 1.5,
            "ok": True,
            "_time": datetime(2025, 11, 1, 16, 5, 0, 123456, tzinfo=UTC),
        },
        {
            "tag": "a,b",
            "_value": None,
            "ok": False,
            "_time": datetime(2025, 11, 1, 14, 5, tzinfo=UTC),
        },
    ]
    assert results["r2"] == [{"_value": 2**64 - 1}]


@pytest.mark.parametrize("status", [400, 401, 404, 500, 503])
async def test_server_messages_never_echo_the_token(
    double: Influx2Double, backend: FluxBackend, status: int
) -> None:
    body = json.dumps({"code": "invalid", "message": f"bad header: Token {TOKEN} rejected"})
    double.query_override = (status, "application/json", body)
    with pytest.raises(IngestorError) as caught:
        await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
    _assert_clean(caught.value)
    assert "rejected" in str(caught.value)  # the rest of the server's message is kept


async def test_in_band_query_errors_never_echo_the_token(
    double: Influx2Double, backend: FluxBackend
) -> None:
    csv_text = f",error,reference\r\n,runtime error: token {TOKEN} is not valid here,\r\n\r\n"
    double.query_override = (200, "text/csv", csv_text)
    with pytest.raises(IngestorResponseError) as caught:
        await backend.async_validate()
    _assert_clean(caught.value)
    assert "not valid here" in str(caught.value)
    assert caught.value.__cause__ is None
