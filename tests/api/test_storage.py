"""Storage figures: against the real influxd 1.6.7 (with and without self-monitoring, with a
read-only user) and against the InfluxDB 2.7 double, plus the growth fit and the alert."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from custom_components.ha_ingestor.api.core.storage import (
    Growth,
    GrowthHistory,
    StorageFigures,
    StorageSample,
    StorageThresholds,
    days_until,
    evaluate_storage_alert,
)
from custom_components.ha_ingestor.api.influx.flux import FluxBackend
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from custom_components.ha_ingestor.api.influx.storage import (
    FluxStorage,
    InfluxQLStorage,
    go_duration,
    parse_bucket,
    parse_shard_disk_size,
)
from tests.support.influx2_double import Influx2Double
from tests.support.influxdb_server import (
    InfluxDBServer,
    running_auth_influxdb,
    running_influxdb,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

PASSWORD = "pw-storage-secret"
TOKEN = "tok-storage-secret"
ORG = "ha-ingestor"
BUCKET = "home_assistant_events"
OTHER = "other_bucket"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _lines(count: int, start: datetime, measurement: str = "home_assistant_events") -> list[str]:
    """`count` series of `measurement` (one entity each), two points each."""
    lines = []
    for index in range(count):
        for offset in (0, 60):
            when = _ns(start + timedelta(minutes=index, seconds=offset))
            lines.append(
                f'{measurement},entity_id=sensor.s{index},domain=sensor state="{index}" {when}'
            )
    return lines


# --- InfluxDB 1.x ------------------------------------------------------------------------------


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


@pytest.fixture(scope="module")
def monitored_server() -> Iterator[InfluxDBServer]:
    """An influxd that stores its self-monitoring into `_internal` every second."""
    import pytest_socket  # noqa: PLC0415

    pytest_socket.enable_socket()
    try:
        with running_influxdb(monitor_interval="1s") as server:
            pytest_socket.disable_socket(allow_unix_socket=True)
            yield server
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)


async def test_influxql_figures_from_a_server_without_self_monitoring(
    influxdb_server: InfluxDBServer, database: str, session: aiohttp.ClientSession
) -> None:
    influxdb_server.write(database, _lines(7, T0) + _lines(3, T0 + timedelta(days=2), "other"))
    storage = InfluxQLStorage(InfluxQLBackend(session, influxdb_server.url, database))

    figures = await storage.async_fetch()

    assert figures.series == 10
    assert dict(figures.series_by_measurement) == {"home_assistant_events": 7, "other": 3}
    assert figures.top_measurement == ("home_assistant_events", 7)
    # `autogen` keeps everything: InfluxQL's `0s`.
    assert figures.retention_infinite
    assert figures.retention is None
    assert figures.oldest_point == T0
    # The session server does not store `_internal`: no size, and it says why.
    assert figures.size_bytes is None
    assert "_internal" in figures.problems["size"]


async def test_influxql_retention_follows_the_default_policy(
    influxdb_server: InfluxDBServer, database: str, session: aiohttp.ClientSession
) -> None:
    influxdb_server.query(
        f'CREATE RETENTION POLICY "ten_days" ON "{database}" DURATION 10d REPLICATION 1 DEFAULT'
    )
    storage = InfluxQLStorage(InfluxQLBackend(session, influxdb_server.url, database))

    figures = await storage.async_fetch()

    assert figures.retention == timedelta(days=10)
    assert not figures.retention_infinite
    # Nothing written: no series, no oldest point, and neither is invented.
    assert figures.series == 0
    assert figures.oldest_point is None


def _shard_stats(server: InfluxDBServer, database: str) -> int:
    """The live `diskBytes` of the database's shards, from SHOW STATS (not from `_internal`)."""
    result = server.query("SHOW STATS FOR 'shard'")
    total = 0
    for statement in result["results"]:  # type: ignore[union-attr]
        for series in statement.get("series", []):
            if series.get("tags", {}).get("database") == database:
                row = dict(zip(series["columns"], series["values"][0], strict=True))
                total += int(row["diskBytes"])
    return total


async def test_influxql_size_from_internal_matches_the_live_shard_statistics(
    monitored_server: InfluxDBServer, socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    monitored_server.create_database("sized")
    monitored_server.create_database("neighbour")
    monitored_server.write("sized", _lines(20, T0))
    monitored_server.write("neighbour", _lines(50, T0))
    storage = InfluxQLStorage(InfluxQLBackend(session, monitored_server.url, "sized"))
    expected = await asyncio.to_thread(_shard_stats, monitored_server, "sized")
    assert expected > 0

    deadline = time.monotonic() + 15
    figures = await storage.async_fetch()
    while figures.size_bytes != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        figures = await storage.async_fetch()

    assert figures.size_bytes == expected
    assert figures.series == 20

    monitored_server.write("sized", _lines(200, T0 + timedelta(days=1)))
    grown = await asyncio.to_thread(_shard_stats, monitored_server, "sized")
    assert grown > expected
    deadline = time.monotonic() + 15
    while figures.size_bytes != grown and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        figures = await storage.async_fetch()
    assert figures.size_bytes == grown


@pytest.fixture
def auth_server(socket_enabled: None) -> Iterator[InfluxDBServer]:
    with (
        tempfile.TemporaryDirectory(prefix="influxd-auth-") as tmp,
        running_auth_influxdb(Path(tmp), PASSWORD, monitor_interval="1s") as server,
    ):
        yield server


async def test_influxql_reader_without_rights_on_internal_gets_the_other_figures(
    auth_server: InfluxDBServer, session: aiohttp.ClientSession
) -> None:
    backend = InfluxQLBackend(session, auth_server.url, "events", username="reader",
                              password=PASSWORD)  # fmt: skip

    figures = await InfluxQLStorage(backend).async_fetch()

    assert figures.size_bytes is None
    assert "authorized" in figures.problems["size"]
    assert figures.retention_infinite
    assert figures.series == 0
    assert PASSWORD not in repr(figures)


async def test_influxql_unreachable_server_gives_no_figures(
    session: aiohttp.ClientSession,
) -> None:
    from tests.support.influxdb_server import free_port  # noqa: PLC0415

    backend = InfluxQLBackend(session, f"http://127.0.0.1:{free_port()}", "events", timeout=2)

    figures = await InfluxQLStorage(backend).async_fetch()

    assert figures == StorageFigures(problems=figures.problems)
    assert "cannot connect" in figures.problems["request"]


# --- InfluxDB 2.x (the double) -----------------------------------------------------------------


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    server = Influx2Double(tokens={TOKEN}, org=ORG, buckets=(BUCKET, OTHER), clock=lambda: _ns(NOW))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def flux(double: Influx2Double, session: aiohttp.ClientSession) -> FluxStorage:
    return FluxStorage(FluxBackend(session, double.url, TOKEN, ORG, BUCKET, timeout=2))


async def _metrics_of(session: aiohttp.ClientSession, double: Influx2Double) -> str:
    async with session.get(f"{double.url}/metrics") as response:
        return await response.text()


async def test_flux_figures_follow_the_points_written(
    double: Influx2Double, flux: FluxStorage, session: aiohttp.ClientSession
) -> None:
    double.write(ORG, BUCKET, _lines(6, T0 + timedelta(days=3)) + _lines(2, T0, "weather"))
    double.write(ORG, OTHER, _lines(40, T0))
    double.storage.retention_seconds[ORG, BUCKET] = 30 * 86_400

    figures = await flux.async_fetch()

    assert figures.series == 8
    assert dict(figures.series_by_measurement) == {"home_assistant_events": 6, "weather": 2}
    assert figures.retention == timedelta(days=30)
    assert not figures.retention_infinite
    # The oldest event, not the oldest point of another measurement.
    assert figures.oldest_point == T0 + timedelta(days=3)
    # The bucket's shards only: the other bucket's 40 series are left out.
    bucket_id = double.storage.bucket_id(double.orgs[ORG], BUCKET)
    ours = [size for b, _shard, size in double.storage.shards() if b == bucket_id]
    assert len(ours) == 2  # written 3 days apart into 1-day shard groups
    assert figures.size_bytes == sum(ours)
    assert figures.size_bytes == parse_shard_disk_size(
        await _metrics_of(session, double), bucket_id
    )
    assert not figures.problems

    double.write(ORG, BUCKET, _lines(30, T0 + timedelta(days=4)))
    grown = await flux.async_fetch()
    assert grown.series == 30 + 2  # sensor.s0..s29 (s0..s5 again) and the two weather series
    assert grown.size_bytes is not None
    assert grown.size_bytes > figures.size_bytes


async def test_flux_bucket_without_retention_is_kept_for_ever(
    double: Influx2Double, flux: FluxStorage
) -> None:
    double.write(ORG, BUCKET, _lines(1, T0))

    figures = await flux.async_fetch()

    assert figures.retention_infinite
    assert figures.retention is None
    assert figures.top_measurement == ("home_assistant_events", 1)


@pytest.mark.parametrize(
    "fault",
    [
        # What `influxd --metrics-disabled` answers: only the size is lost.
        ("/metrics", 404, {"size"}, "not found"),
        # A token that may query but not list buckets: no retention, and no id for the size.
        ("/api/v2/buckets", 403, {"size", "retention"}, "refused"),
    ],
)
async def test_flux_endpoint_faults_leave_only_their_figures_unknown(
    double: Influx2Double, flux: FluxStorage, fault: tuple[str, int, set[str], str]
) -> None:
    path, status, unknown, why = fault
    double.write(ORG, BUCKET, _lines(3, T0))
    double.storage.faults[path] = status

    figures = await flux.async_fetch()

    assert set(figures.problems) == unknown
    assert all(why in text for text in figures.problems.values())
    assert (figures.size_bytes is None) == ("size" in unknown)
    assert figures.retention_known == ("retention" not in unknown)
    assert figures.series == 3
    assert TOKEN not in json.dumps(dict(figures.problems))


async def test_flux_timeouts_and_query_errors_leave_figures_unknown(
    double: Influx2Double, flux: FluxStorage
) -> None:
    double.write(ORG, BUCKET, _lines(3, T0))
    double.storage.stall["/api/v2/buckets"] = 5
    double.query_override = (500, "application/json", '{"code":"internal error","message":"x"}')

    figures = await flux.async_fetch()

    assert figures == StorageFigures(problems=figures.problems)
    assert "no answer within 2 s" in figures.problems["retention"]
    assert "HTTP 500" in figures.problems["series"]


async def test_double_rejects_flux_it_does_not_know(
    double: Influx2Double, session: aiohttp.ClientSession
) -> None:
    backend = FluxBackend(session, double.url, TOKEN, ORG, BUCKET, timeout=2)
    with pytest.raises(Exception, match="only the integration's storage programs"):
        await backend.async_tables(
            'import "influxdata/influxdb"\ninfluxdb.cardinality(bucket: "x", start: -1h)'
        )
    with pytest.raises(Exception, match="undefined identifier schema"):
        await backend.async_tables(
            'import "influxdata/influxdb"\n'
            f'schema.measurements(bucket: "{BUCKET}", start: 1970-01-01T00:00:00Z)'
            ' |> yield(name: "m")'
        )


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("168h0m0s", timedelta(days=7)),
        ("1h30m0s", timedelta(hours=1, minutes=30)),
        ("1.5s", timedelta(seconds=1.5)),
    ],
)
def test_go_duration(text: str, expected: timedelta) -> None:
    assert go_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7d", "forever", "1h junk"])
def test_go_duration_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        go_duration(text)


def test_bucket_answers_that_cannot_be_read() -> None:
    with pytest.raises(Exception, match="not JSON"):
        parse_bucket(b"<html>", BUCKET)
    with pytest.raises(Exception, match="not visible"):
        parse_bucket(b'{"buckets": []}', BUCKET)
    # No rule at all (older servers) is kept for ever as well.
    assert parse_bucket(b'{"buckets": [{"id": "ab", "name": "b"}]}', "b") == ("ab", None, True)


def test_metrics_without_the_bucket_is_an_error() -> None:
    text = (
        'storage_shard_disk_size{bucket="other",id="1"} 5\nstorage_shard_disk_size{bucket="b"} x\n'
    )
    with pytest.raises(Exception, match="no storage_shard_disk_size"):
        parse_shard_disk_size(text, "b")


# --- growth and the alert ----------------------------------------------------------------------


def _history(points: list[tuple[float, int | None, int | None]]) -> GrowthHistory:
    history = GrowthHistory()
    for hours, size, series in points:
        history.add(StorageSample(NOW + timedelta(hours=hours), size, series))
    return history


def test_growth_is_the_fitted_slope_per_day() -> None:
    # 1 MB per hour, with a compaction dip that a last-minus-first would overrate.
    history = _history([(h, 100_000_000 + h * 1_000_000 - (500_000 if h == 2 else 0), 1000)
                        for h in range(5)])  # fmt: skip

    growth = history.growth()

    assert growth.size_bytes_per_day is not None
    assert growth.size_bytes_per_day == pytest.approx(24_000_000, rel=0.05)
    assert growth.size_percent_per_day == pytest.approx(24_000_000 / 104_000_000 * 100, rel=0.05)
    assert growth.series_per_day == pytest.approx(0)


def test_growth_needs_an_hour_of_history_and_forgets_after_a_day() -> None:
    assert _history([(0, 1, 1), (0.5, 2, 2)]).growth() == Growth()
    history = _history([(-30, 1, None), (0, 100, None), (2, 300, None)])
    assert [s.time for s in history.samples] == [NOW, NOW + timedelta(hours=2)]
    assert history.growth().series_per_day is None
    assert history.growth().size_bytes_per_day == pytest.approx(2400)


def test_history_survives_its_json_and_skips_garbage() -> None:
    history = _history([(0, 10, 3), (1, None, 4)])
    restored = GrowthHistory.from_json([*history.to_json(), {"time": "never"}, {"size": 1}])
    assert restored.samples == history.samples
    assert GrowthHistory.from_json(None).samples == ()


def test_days_until_the_budget() -> None:
    assert days_until(500, 100.0, 1000) == 5.0
    assert days_until(1000, 100.0, 1000) == 0.0
    assert days_until(500, 0.0, 1000) is None
    assert days_until(500, 100.0, None) is None
    assert days_until(None, 100.0, 1000) is None


def test_storage_alert() -> None:
    figures = StorageFigures(size_bytes=1_000, series=100)
    calm = Growth(size_bytes_per_day=10, size_percent_per_day=1.0, series_percent_per_day=0.0)
    fast = Growth(size_bytes_per_day=10, size_percent_per_day=1.0, series_percent_per_day=20.0)
    limits = StorageThresholds(growth_percent_per_day=5.0)

    assert evaluate_storage_alert(figures, Growth(), limits).active is None
    assert evaluate_storage_alert(figures, calm, limits).active is False
    alert = evaluate_storage_alert(figures, fast, limits)
    assert alert.active
    assert alert.reasons == ("series_growth",)

    budget = StorageThresholds(growth_percent_per_day=5.0, budget_bytes=1_200, budget_days=30)
    alert = evaluate_storage_alert(figures, calm, budget)
    assert alert.active
    assert alert.reasons == ("budget",)
    assert alert.days_until_budget == 20.0
    # A budget against a known size decides even without growth history.
    assert evaluate_storage_alert(figures, Growth(), budget).active is False


class _Answers:
    """A backend that answers given statement results: shapes influxd never sends."""

    database = "events"

    def __init__(
        self, main: dict[int, dict[str, object]], disk: dict[int, dict[str, object]]
    ) -> None:
        self.answers = {"SHOW": main, "SELECT LAST": disk}

    async def async_statements(self, query: str) -> dict[int, dict[str, object]]:
        return self.answers["SHOW" if query.startswith("SHOW") else "SELECT LAST"]


def _series(columns: list[str], *rows: list[object]) -> dict[str, object]:
    return {"series": [{"name": "x", "columns": columns, "values": list(rows)}]}


async def test_influxql_unreadable_answers_leave_their_figures_unknown() -> None:
    minute = 60 * 1_000_000_000
    main: dict[int, dict[str, object]] = {
        0: _series(["name", "duration", "default"], ["a", "1h0m0s", False]),
        1: {"series": "not a list"},
        2: _series(["time", "first"], "not a row"),
        # statement 3 (cardinality) missing: influxd stopped before it
    }
    # Shard 2's newest sample is older than shard 1's by more than a minute: it was dropped.
    disk = {0: _series(["time", "last"], [10 * minute, 1_000], [8 * minute, 500], [10 * minute, 7])}
    storage = InfluxQLStorage(_Answers(main, disk))  # type: ignore[arg-type]

    figures = await storage.async_fetch()

    assert figures.size_bytes == 1_007
    assert figures.series is None
    assert figures.oldest_point is None
    assert not figures.retention_known
    assert figures.problems["retention"] == "no default retention policy"
    assert figures.problems["series"] == "not executed: an earlier statement failed"
    assert "shape" in figures.problems["oldest_point"]

    no_samples = InfluxQLStorage(_Answers(main, {0: {}}))  # type: ignore[arg-type]
    assert "self-monitoring" in (await no_samples.async_fetch()).problems["size"]
