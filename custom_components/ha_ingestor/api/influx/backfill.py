"""Backfill's InfluxDB side: which recorded state changes have no point, and the stored points.

Per entity, the times of the state changes Home Assistant's recorder holds are matched with the
times of the points InfluxDB holds (docs/ingestor-contracts.md#delivery-check):

- schema B (R2/R3) stores `time_fired` cut to the millisecond, R3 up to 1 ms earlier still: a
  change matches a point in its own millisecond or the one before. Two changes of one entity in
  one millisecond share a series and a timestamp, so InfluxDB keeps one point for both: the
  others are `same_millisecond`, never written (a write would replace the stored point);
- schema A (R1) stores its ingestion clock, up to `SCHEMA_A_LAG` after `time_fired`: a change
  matches the first unused point of the entity in [fired - 2 ms, fired + lag].

Matching is greedy in time order, one point per change, so a rerun after a backfill finds every
written point and writes nothing (the points land at the very times it looks for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from ..core.aggregate import rfc3339
from ..core.delivery import STORED_EARLY
from .backend import EVENT_FIELDS, FRESHNESS_LOOKBACK, MEASUREMENT
from .flux import FluxBackend
from .influxql import InfluxQLBackend
from .names import flux_string, influxql_identifier
from .write import Schema

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .backend import InfluxBackend
    from .flux_csv import Record

# R1's enrichment pipeline writes its own wall clock, seconds after the event fired.
SCHEMA_A_LAG: Final = timedelta(seconds=60)
_MS: Final = 1_000_000
_EARLY_NS: Final = int(STORED_EARLY / timedelta(microseconds=1)) * 1000
# The small field each schema's point always has: its presence is the point, its value unread.
# Schema A: `state`; schema B: `context_id` (the repr in `state_value` is kilobytes).
_MARKERS: Final = {"state": Schema.A, "context_id": Schema.B}
RESULT_STORED: Final = "stored"
RESULT_RECENT: Final = "recent"


@dataclass(slots=True)
class Matched:
    """What matching one entity's changes found: the indexes of the changes to write."""

    missing: list[int] = field(default_factory=list)
    stored: int = 0
    same_millisecond: int = 0


def match_changes(fired_ns: Sequence[int], stored_ns: Sequence[int], schema: Schema) -> Matched:
    """Match one entity's changes (fired times, ns, ascending) with its stored points.

    `stored_ns` is sorted ascending. Schema B: of several changes in one millisecond only the
    last is written when none is stored (the ingestor's later write wins there too).
    """
    result = Matched()
    j = 0
    if schema is Schema.A:
        lag = int(SCHEMA_A_LAG / timedelta(microseconds=1)) * 1000
        for index, fired in enumerate(fired_ns):
            while j < len(stored_ns) and stored_ns[j] < fired - _EARLY_NS:
                j += 1
            if j < len(stored_ns) and stored_ns[j] <= fired + lag:
                result.stored += 1
                j += 1
            else:
                result.missing.append(index)
        return result
    index = 0
    while index < len(fired_ns):
        ms = fired_ns[index] // _MS * _MS
        last = index
        while last + 1 < len(fired_ns) and fired_ns[last + 1] // _MS * _MS == ms:
            last += 1
        result.same_millisecond += last - index
        while j < len(stored_ns) and stored_ns[j] < ms - _MS:
            j += 1
        if j < len(stored_ns) and stored_ns[j] <= ms:
            result.stored += 1
            j += 1
        else:
            result.missing.append(last)
        index = last + 1
    return result


@dataclass(slots=True)
class StoredPoints:
    """The event points of a span, per entity (ns, ascending), and the schema they show."""

    times: dict[str, list[int]] = field(default_factory=dict)
    # Per schema: the newest point's time (ns), to tell which writer is writing now.
    newest: dict[Schema, int] = field(default_factory=dict)
    # The schema of the newest point of the week before, when asked for.
    recent: Schema | None = None

    def add(self, entity_id: str, time_ns: int, schema: Schema) -> None:
        """One point (of either schema)."""
        self.times.setdefault(entity_id, []).append(time_ns)
        if time_ns > self.newest.get(schema, -1):
            self.newest[schema] = time_ns

    def sort(self) -> None:
        """Sort every entity's times (the answers need not be in order)."""
        for times in self.times.values():
            times.sort()

    @property
    def schema(self) -> Schema | None:
        """The schema of the newest point of the span, else of the week before (if asked)."""
        return _newest(self.newest) or self.recent


def build_influxql_stored_query(start: datetime, stop: datetime) -> str:
    """Each event point of [start, stop) with its entity: only the small marker fields."""
    markers = ", ".join(influxql_identifier(name) for name in _MARKERS)
    return (
        f"SELECT {markers} FROM {influxql_identifier(MEASUREMENT)} "  # noqa: S608
        f"WHERE time >= '{rfc3339(start)}' AND time < '{rfc3339(stop)}' "
        f"GROUP BY {influxql_identifier('entity_id')}"
    )


def build_flux_stored_query(bucket: str, start: datetime, stop: datetime) -> str:
    """Each event point of [start, stop): time, entity and which marker field it has."""
    fields = " or ".join(f"r._field == {flux_string(name, 'field')}" for name in _MARKERS)
    return "\n".join(
        (
            f"from(bucket: {flux_string(bucket, 'bucket')})",
            f"  |> range(start: {rfc3339(start)}, stop: {rfc3339(stop)})",
            (
                f"  |> filter(fn: (r) => r._measurement == "
                f"{flux_string(MEASUREMENT, 'measurement')} and ({fields}))"
            ),
            '  |> keep(columns: ["_time", "_field", "entity_id"])',
            "  |> group()",
            f'  |> yield(name: "{RESULT_STORED}")',
        )
    )


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


async def async_stored_points(
    backend: InfluxBackend,
    bucket: str | None,
    start: datetime,
    stop: datetime,
    *,
    recent_before: datetime | None = None,
) -> StoredPoints:
    """The event points of [start, stop) per entity: one request.

    With `recent_before`, the same request asks which schema the newest point of the week
    before it has (`StoredPoints.recent`), for a span that holds none.

    Raises:
        IngestorError: the request failed or the answer is unreadable.

    """
    stored = StoredPoints()
    if isinstance(backend, FluxBackend):
        await _flux_stored(backend, bucket or backend.bucket, (start, stop), recent_before, stored)
    elif isinstance(backend, InfluxQLBackend):
        await _influxql_stored(backend, (start, stop), recent_before, stored)
    stored.sort()
    return stored


async def _flux_stored(
    backend: FluxBackend,
    bucket: str,
    span: tuple[datetime, datetime],
    recent_before: datetime | None,
    stored: StoredPoints,
) -> None:
    query = build_flux_stored_query(bucket, *span)
    if recent_before is not None:
        query += "\n" + build_flux_schema_query(bucket, recent_before)
    records = await backend.async_tables(query)
    for record in records.get(RESULT_STORED, []):
        when, name, entity_id = record.get("_time"), record.get("_field"), record.get("entity_id")
        if isinstance(when, datetime) and isinstance(name, str) and name in _MARKERS:
            stored.add(str(entity_id or ""), _ns(when), _MARKERS[name])
    stored.recent = _flux_recent(records.get(RESULT_RECENT, []))


async def _influxql_stored(
    backend: InfluxQLBackend,
    span: tuple[datetime, datetime],
    recent_before: datetime | None,
    stored: StoredPoints,
) -> None:
    query = build_influxql_stored_query(*span)
    if recent_before is not None:
        query += "; " + build_influxql_schema_query(recent_before)
    rows, *recent = await backend.async_statement_rows(query)
    for row in rows:
        when = row.get("time")
        if not isinstance(when, int) or isinstance(when, bool):
            continue
        for name, schema in _MARKERS.items():
            if row.get(name) is not None:
                stored.add(str(row.get("entity_id") or ""), when, schema)
                break
    stored.recent = _influxql_recent(recent)


def build_influxql_schema_query(stop: datetime) -> str:
    """The newest point of each schema's event field in the week before `stop`."""
    start = rfc3339(stop - FRESHNESS_LOOKBACK)
    return "; ".join(
        f"SELECT LAST({influxql_identifier(name)}) FROM {influxql_identifier(MEASUREMENT)} "  # noqa: S608
        f"WHERE time >= '{start}' AND time < '{rfc3339(stop)}'"
        for name in EVENT_FIELDS
    )


def build_flux_schema_query(bucket: str, stop: datetime) -> str:
    """The newest point of each schema's event field in the week before `stop`."""
    fields = " or ".join(f"r._field == {flux_string(name, 'field')}" for name in EVENT_FIELDS)
    return "\n".join(
        (
            f"from(bucket: {flux_string(bucket, 'bucket')})",
            f"  |> range(start: {rfc3339(stop - FRESHNESS_LOOKBACK)}, stop: {rfc3339(stop)})",
            (
                f"  |> filter(fn: (r) => r._measurement == "
                f"{flux_string(MEASUREMENT, 'measurement')} and ({fields}))"
            ),
            '  |> group(columns: ["_field"])',
            "  |> last()",
            '  |> keep(columns: ["_time", "_field"])',
            f'  |> yield(name: "{RESULT_RECENT}")',
        )
    )


_BY_FIELD: Final = dict(zip(EVENT_FIELDS, (Schema.A, Schema.B), strict=True))


def _newest(newest: dict[Schema, int]) -> Schema | None:
    return max(newest, key=lambda s: newest[s]) if newest else None


def _flux_recent(records: list[Record]) -> Schema | None:
    newest: dict[Schema, int] = {}
    for record in records:
        when, name = record.get("_time"), record.get("_field")
        if isinstance(when, datetime) and isinstance(name, str) and name in _BY_FIELD:
            newest[_BY_FIELD[name]] = _ns(when)
    return _newest(newest)


def _influxql_recent(statements: list[list[dict[str, Any]]]) -> Schema | None:
    newest: dict[Schema, int] = {}
    for schema, rows in zip((Schema.A, Schema.B), statements, strict=False):
        times = [r["time"] for r in rows if isinstance(r.get("time"), int)]
        if times:
            newest[schema] = max(times)
    return _newest(newest)
