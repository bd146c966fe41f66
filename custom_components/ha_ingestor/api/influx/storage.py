"""How big the event store is, how many series it holds, how long it keeps them.

Slow-changing figures, fetched on their own schedule and never inside a statistics refresh.
Each figure is asked for on its own terms and a figure the server cannot give (no
self-monitoring, no permission, `/metrics` switched off, an older server) stays None: it is
never guessed. Sources, per server:

- InfluxQL (InfluxDB 1.x): one request of `SHOW RETENTION POLICIES ON`, `FIRST()` of the event
  fields, `SHOW SERIES EXACT CARDINALITY ON` (per measurement, InfluxDB 1.4+) and the newest
  `diskBytes` of every shard of the database in `_internal`'s `shard` measurement (only while
  the server's self-monitoring stores into `_internal`).
- Flux (InfluxDB 2.x): the bucket from `GET /api/v2/buckets` (id, retention rules), one Flux
  program with `influxdb.cardinality()`, `schema.measurements()` and the oldest event, a second
  one with the cardinality per measurement, and `storage_shard_disk_size` of the bucket's
  shards from the Prometheus text of `/metrics`.
"""

# S608: every piece of query text is a constant, a quoted identifier or string of a validated
# name, or a time we formatted; no caller text is ever interpolated.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from ..core.aggregate import EPOCH, as_utc
from ..core.bounded import JSON_ERRORS
from ..core.errors import IngestorError, IngestorResponseError, Origin
from ..core.storage import StorageFigures
from .backend import EVENT_FIELDS, MEASUREMENT
from .names import flux_string, influxql_identifier, influxql_string

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from .flux import FluxBackend
    from .flux_csv import Record
    from .influxql import InfluxQLBackend

_LOGGER = logging.getLogger(__name__)

# `_internal` keeps one sample per shard and store interval (10 s by default); a shard whose
# newest sample is this much older than the newest one overall has been dropped meanwhile.
SHARD_SAMPLE_WINDOW: Final = timedelta(minutes=5)
SHARD_STALE_AFTER: Final = timedelta(minutes=1)
# The per-measurement cardinality is one `influxdb.cardinality()` call each: bounded.
MAX_MEASUREMENTS: Final = 50
# Flux needs a start for cardinality and reads; everything ever stored is after this.
_FLUX_EPOCH: Final = "1970-01-01T00:00:00Z"
_GO_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_METRIC_LINE: Final = re.compile(r"^storage_shard_disk_size\{([^}]*)\}\s+(\S+)")
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def go_duration(text: str) -> timedelta:
    """A Go duration as InfluxQL prints it (`168h0m0s`, `1h30m0s`, `0s`).

    Raises:
        ValueError: not a Go duration.

    """
    if not text or _GO_DURATION.sub("", text):
        msg = f"not a duration: {text[:40]!r}"
        raise ValueError(msg)
    seconds = sum(float(n) * _GO_UNITS[u] for n, u in _GO_DURATION.findall(text))
    return timedelta(seconds=seconds)


def _problem(err: Exception) -> str:
    return str(err) if isinstance(err, IngestorError) else type(err).__name__


# --------------------------------------------------------------------------------------
# InfluxQL (InfluxDB 1.x)
# --------------------------------------------------------------------------------------

_RETENTION, _FIRST_A, _FIRST_B, _CARDINALITY = range(4)


def build_influxql_storage_query(database: str) -> str:
    """The statements of the main storage request, the likeliest to fail last.

    influxd stops at the first failing statement, and cardinality is 1.x only (InfluxDB 2.x
    and 3 refuse it), so it goes last.
    """
    on = influxql_identifier(database, "database")
    events = influxql_identifier(MEASUREMENT)
    return "; ".join(
        (
            f"SHOW RETENTION POLICIES ON {on}",
            *(f"SELECT FIRST({influxql_identifier(f)}) FROM {events}" for f in EVENT_FIELDS),
            f"SHOW SERIES EXACT CARDINALITY ON {on}",
        )
    )


def build_influxql_disk_query(database: str) -> str:
    """The newest `diskBytes` of each of the database's shards, from `_internal`.

    A request of its own: influxd authorizes every statement of a request before it runs
    any, so a user without read access to `_internal` would lose every other figure too.
    """
    shard = ".".join(influxql_identifier(name) for name in ("_internal", "monitor", "shard"))
    since = f"now() - {int(SHARD_SAMPLE_WINDOW.total_seconds())}s"
    return (
        f'SELECT LAST("diskBytes") FROM {shard} WHERE "database" = '
        f'{influxql_string(database)} AND time > {since} GROUP BY "id"'
    )


def _rows(result: Mapping[str, Any]) -> Iterable[tuple[Mapping[str, Any], dict[str, Any]]]:
    """(series, row as column -> value) of a statement result."""
    series = result.get("series") or []
    if not isinstance(series, list):
        raise _shape()
    for item in series:
        if not isinstance(item, dict) or not isinstance(item.get("columns"), list):
            raise _shape()
        for row in item.get("values") or []:
            if not isinstance(row, list):
                raise _shape()
            yield item, dict(zip(item["columns"], row, strict=False))


def _shape() -> IngestorResponseError:
    return IngestorResponseError("unexpected InfluxQL result shape", origin=Origin.INFLUXDB)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _shape()
    return int(value)


def _retention_of(result: Mapping[str, Any]) -> tuple[timedelta | None, bool]:
    """The default retention policy's duration; (None, True) when it keeps data for ever."""
    for _series, row in _rows(result):
        if row.get("default") is True:
            duration = go_duration(str(row.get("duration")))
            return (None, True) if not duration else (duration, False)
    msg = "no default retention policy"
    raise IngestorResponseError(msg, origin=Origin.INFLUXDB)


def _first_time(result: Mapping[str, Any]) -> datetime | None:
    times = [_int(row.get("time")) for _series, row in _rows(result)]
    return EPOCH + timedelta(microseconds=min(times) // 1000) if times else None


def _cardinality_of(result: Mapping[str, Any]) -> dict[str, int]:
    return {str(series.get("name")): _int(row.get("count")) for series, row in _rows(result)}


def _disk_bytes_of(result: Mapping[str, Any]) -> int:
    """Sum of the newest `diskBytes` of every shard still reported."""
    latest: list[tuple[int, int]] = [
        (_int(row.get("time")), _int(row.get("last"))) for _series, row in _rows(result)
    ]
    if not latest:
        msg = "no `_internal` shard samples for the database: is self-monitoring on?"
        raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
    newest = max(t for t, _ in latest)
    stale_ns = int(SHARD_STALE_AFTER.total_seconds() * 1e9)
    return sum(size for t, size in latest if newest - t <= stale_ns)


class InfluxQLStorage:
    """`StorageSource` for InfluxDB 1.x over the InfluxQL backend's own connection."""

    def __init__(self, backend: InfluxQLBackend) -> None:
        """Ask through `backend` (its URL, credentials and time limit)."""
        self._backend = backend

    async def async_fetch(self) -> StorageFigures:
        """Two requests at once; each statement's failure leaves only its own figure unknown."""
        database = self._backend.database
        main, disk = await asyncio.gather(
            self._settled(build_influxql_storage_query(database)),
            self._settled(build_influxql_disk_query(database)),
        )
        if isinstance(main, IngestorError):
            return _nothing(main)
        problems: dict[str, str] = {}

        def read[T](
            key: str, results: _Settled, index: int, parse: Callable[[Mapping[str, Any]], T]
        ) -> T | None:
            if isinstance(results, IngestorError):
                problems[key] = str(results)
                return None
            result = results.get(index)
            if result is None:
                problems[key] = "not executed: an earlier statement failed"
                return None
            if (error := result.get("error")) is not None:
                problems[key] = str(error)[:200]
                return None
            try:
                return parse(result)
            except (IngestorError, ValueError) as err:
                problems[key] = _problem(err)
                return None

        retention = read("retention", main, _RETENTION, _retention_of)
        firsts = [read("oldest_point", main, i, _first_time) for i in (_FIRST_A, _FIRST_B)]
        by_measurement = read("series", main, _CARDINALITY, _cardinality_of)
        size = read("size", disk, 0, _disk_bytes_of)
        known_firsts = [t for t in firsts if t is not None]
        return StorageFigures(
            size_bytes=size,
            series=None if by_measurement is None else sum(by_measurement.values()),
            series_by_measurement=by_measurement or {},
            retention=None if retention is None else retention[0],
            retention_infinite=retention is not None and retention[1],
            oldest_point=min(known_firsts) if known_firsts else None,
            problems=problems,
        )

    async def _settled(self, query: str) -> _Settled:
        try:
            return await self._backend.async_statements(query)
        except IngestorError as err:
            return err


type _Settled = dict[int, dict[str, Any]] | IngestorError


def _nothing(err: IngestorError) -> StorageFigures:
    _LOGGER.debug("Storage figures unavailable: %s", err)
    return StorageFigures(problems={"request": str(err)})


# --------------------------------------------------------------------------------------
# Flux (InfluxDB 2.x)
# --------------------------------------------------------------------------------------

RESULT_SERIES: Final = "series"
RESULT_MEASUREMENTS: Final = "measurements"
RESULT_OLDEST: Final = "oldest"


def build_flux_storage_query(bucket: str) -> str:
    """Series cardinality, the measurements and the oldest event of the bucket."""
    name = flux_string(bucket, "bucket")
    events = flux_string(MEASUREMENT)
    return "\n".join(
        (
            'import "influxdata/influxdb"',
            'import "influxdata/influxdb/schema"',
            "",
            (
                f"influxdb.cardinality(bucket: {name}, start: {_FLUX_EPOCH})"
                f' |> yield(name: "{RESULT_SERIES}")'
            ),
            (
                f"schema.measurements(bucket: {name}, start: {_FLUX_EPOCH})"
                f' |> yield(name: "{RESULT_MEASUREMENTS}")'
            ),
            # first() per series is answered from each series' first block; the rest is small.
            (
                f"from(bucket: {name}) |> range(start: {_FLUX_EPOCH})"
                f" |> filter(fn: (r) => r._measurement == {events}) |> first()"
                ' |> keep(columns: ["_time"]) |> group() |> sort(columns: ["_time"])'
                f' |> limit(n: 1) |> yield(name: "{RESULT_OLDEST}")'
            ),
        )
    )


def build_flux_cardinality_query(bucket: str, measurements: Sequence[str]) -> str:
    """The series cardinality of each measurement, one result each (`m0`, `m1`, ...)."""
    name = flux_string(bucket, "bucket")
    lines = ['import "influxdata/influxdb"', ""]
    lines.extend(
        f"influxdb.cardinality(bucket: {name}, start: {_FLUX_EPOCH},"
        f" predicate: (r) => r._measurement == {flux_string(measurement)})"
        f' |> yield(name: "m{index}")'
        for index, measurement in enumerate(measurements)
    )
    return "\n".join(lines)


def _flux_count(rows: Sequence[Record]) -> int:
    """The single `_value` of a cardinality result (no row: nothing stored, 0 series)."""
    values = [row.get("_value") for row in rows]
    return sum(_int(v) for v in values)


def parse_bucket(body: bytes, bucket: str) -> tuple[str, timedelta | None, bool]:
    """(id, retention, kept for ever) of `bucket` in a `GET /api/v2/buckets` answer."""
    try:
        document = json.loads(body)
    except JSON_ERRORS as err:
        msg = "buckets: not JSON"
        raise IngestorResponseError(msg, origin=Origin.INFLUXDB) from err
    buckets = document.get("buckets") if isinstance(document, dict) else None
    found = next(
        (b for b in buckets or [] if isinstance(b, dict) and b.get("name") == bucket), None
    )
    if found is None or not isinstance(found.get("id"), str):
        msg = "the bucket is not visible to this token"
        raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
    rules = found.get("retentionRules") or []
    seconds = [
        _int(rule.get("everySeconds", 0))
        for rule in rules
        if isinstance(rule, dict) and rule.get("type", "expire") == "expire"
    ]
    every = min((s for s in seconds if s > 0), default=0)
    return found["id"], (timedelta(seconds=every) if every else None), not every


def parse_shard_disk_size(text: str, bucket_id: str) -> int:
    """Sum of `storage_shard_disk_size` over the bucket's shards in Prometheus text."""
    total = 0.0
    seen = False
    for line in text.splitlines():
        match = _METRIC_LINE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        if labels.get("bucket") != bucket_id:
            continue
        try:
            value = float(match.group(2))
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            total += value
            seen = True
    if not seen:
        msg = "no storage_shard_disk_size for the bucket in /metrics"
        raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
    return int(total)


class FluxStorage:
    """`StorageSource` for InfluxDB 2.x over the Flux backend's own connection."""

    def __init__(self, backend: FluxBackend) -> None:
        """Ask through `backend` (its URL, token, organization and time limit)."""
        self._backend = backend

    async def async_fetch(self) -> StorageFigures:
        """Bucket, cardinality and disk size; each failure leaves only its figures unknown."""
        problems: dict[str, str] = {}
        figures = StorageFigures()
        bucket = self._backend.bucket
        bucket_id: str | None = None
        try:
            body = await self._backend.async_get(
                "/api/v2/buckets", {"name": bucket, "org": self._backend.org}
            )
            bucket_id, retention, infinite = parse_bucket(body, bucket)
            figures = replace(figures, retention=retention, retention_infinite=infinite)
        except IngestorError as err:
            problems["retention"] = problems["size"] = _problem(err)
        try:
            figures = replace(figures, **await self._cardinality(bucket))
        except IngestorError as err:
            problems["series"] = problems["oldest_point"] = _problem(err)
        if bucket_id is not None:
            try:
                metrics = await self._backend.async_get("/metrics", authorized=False)
                size = parse_shard_disk_size(metrics.decode("utf-8", "replace"), bucket_id)
                figures = replace(figures, size_bytes=size)
            except IngestorError as err:
                problems["size"] = _problem(err)
        if problems:
            _LOGGER.debug("Storage figures left unknown: %s", problems)
        return replace(figures, problems=problems)

    async def _cardinality(self, bucket: str) -> dict[str, Any]:
        tables = await self._backend.async_tables(build_flux_storage_query(bucket))
        series = _flux_count(tables.get(RESULT_SERIES, []))
        oldest = [
            as_utc(t)
            for row in tables.get(RESULT_OLDEST, [])
            if isinstance(t := row.get("_time"), datetime)
        ]
        measurements = sorted(
            {
                v
                for row in tables.get(RESULT_MEASUREMENTS, [])
                if isinstance(v := row.get("_value"), str)
            }
        )
        by_measurement: dict[str, int] = {}
        if len(measurements) == 1:
            by_measurement = {measurements[0]: series}
        elif 1 < len(measurements) <= MAX_MEASUREMENTS:
            counts = await self._backend.async_tables(
                build_flux_cardinality_query(bucket, measurements)
            )
            by_measurement = {
                m: _flux_count(counts.get(f"m{i}", [])) for i, m in enumerate(measurements)
            }
        return {
            "series": series,
            "series_by_measurement": by_measurement,
            "oldest_point": min(oldest, default=None),
        }
