"""The delivery check's queries: points per bucket and entity, and sampled events' points.

One small request per refresh for the newly settled span, in the backend's own dialect; the
counting they feed is in `api/core/delivery.py`. See docs/ingestor-contracts.md#delivery-check.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from ..core.aggregate import rfc3339
from ..core.delivery import STORED_EARLY, Sample, Window, floor_seconds
from .backend import EVENT_FIELDS, MEASUREMENT
from .flux import FluxBackend
from .influxql import InfluxQLBackend
from .names import flux_string, influxql_identifier, influxql_string

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .backend import InfluxBackend

RESULT_DELIVERY: Final = "delivery"


def build_influxql_delivery_query(window: Window, bucket: int) -> str:
    """Points per bucket and entity in `window` (InfluxQL labels a bucket with its start)."""
    field_a, field_b = (influxql_identifier(name) for name in EVENT_FIELDS)
    return (
        f'SELECT COUNT({field_a}) AS "a", COUNT({field_b}) AS "b" '  # noqa: S608
        f"FROM {influxql_identifier(MEASUREMENT)} "
        f"WHERE time >= '{rfc3339(window.start)}' AND time < '{rfc3339(window.stop)}' "
        f"GROUP BY time({int(bucket)}s), {influxql_identifier('entity_id')} fill(none)"
    )


def build_flux_delivery_query(bucket_name: str, window: Window, bucket: int) -> str:
    """Points per bucket and entity in `window` (`_time` is the bucket's end, clipped)."""
    fields = " or ".join(f"r._field == {flux_string(name, 'field')}" for name in EVENT_FIELDS)
    return "\n".join(
        (
            f"from(bucket: {flux_string(bucket_name, 'bucket')})",
            f"  |> range(start: {rfc3339(window.start)}, stop: {rfc3339(window.stop)})",
            (
                f"  |> filter(fn: (r) => r._measurement == "
                f"{flux_string(MEASUREMENT, 'measurement')} and ({fields}))"
            ),
            '  |> group(columns: ["entity_id"])',
            f"  |> aggregateWindow(every: {int(bucket)}s, fn: count, createEmpty: false)",
            f'  |> yield(name: "{RESULT_DELIVERY}")',
        )
    )


# A sampled event's point lies in [time_fired - STORED_EARLY, time_fired + 1 ms).
_SAMPLE_AFTER: Final = timedelta(milliseconds=1)
# Schema B stores the event's context in this field; schema A has none (no latency for R1).
CONTEXT_FIELD: Final = "context_id"


def _sample_range(fired: datetime) -> tuple[str, str]:
    return rfc3339(fired - STORED_EARLY), rfc3339(fired + _SAMPLE_AFTER)


def build_influxql_sample_query(samples: Iterable[Sample]) -> str:
    """One statement per sampled event: is its point (entity, context, time) readable yet?"""
    context = influxql_identifier(CONTEXT_FIELD)
    statements = []
    for entity_id, fired, context_id in samples:
        start, stop = _sample_range(fired)
        statements.append(
            f'SELECT COUNT({context}) AS "n" FROM {influxql_identifier(MEASUREMENT)} '  # noqa: S608
            f"WHERE {influxql_identifier('entity_id')} = {influxql_string(entity_id)} "
            f"AND {context} = {influxql_string(context_id, 'context')} "
            f"AND time >= '{start}' AND time < '{stop}'"
        )
    return "; ".join(statements)


def build_flux_sample_query(bucket_name: str, samples: Iterable[Sample]) -> str:
    """One named result per sampled event (`s0`, `s1`, ...): its point, if readable yet."""
    lines = []
    for index, (entity_id, fired, context_id) in enumerate(samples):
        start, stop = _sample_range(fired)
        lines += [
            f"from(bucket: {flux_string(bucket_name, 'bucket')})",
            f"  |> range(start: {start}, stop: {stop})",
            (
                f"  |> filter(fn: (r) => r._measurement == "
                f"{flux_string(MEASUREMENT, 'measurement')}"
                f" and r._field == {flux_string(CONTEXT_FIELD)}"
                f" and r.entity_id == {flux_string(entity_id)}"
                f" and r._value == {flux_string(context_id, 'context')})"
            ),
            "  |> limit(n: 1)",
            '  |> keep(columns: ["_time"])',
            f'  |> yield(name: "s{index}")',
        ]
    return "\n".join(lines)


async def async_samples_found(backend: InfluxBackend, samples: list[Sample]) -> list[bool]:
    """Whether each sampled event's point is readable now: one request for all of them.

    Raises:
        IngestorError: the request failed or the answer is unreadable.

    """
    if not samples:
        return []
    if isinstance(backend, FluxBackend):
        records = await backend.async_tables(build_flux_sample_query(backend.bucket, samples))
        return [bool(records.get(f"s{index}")) for index in range(len(samples))]
    if isinstance(backend, InfluxQLBackend):
        statements = await backend.async_statement_rows(build_influxql_sample_query(samples))
        return [any(_int(row.get("n")) for row in rows) for rows in statements[: len(samples)]]
    return [False] * len(samples)


def bucket_of_label(label: datetime, bucket: int, *, label_is_end: bool) -> int:
    """The bucket start a backend's window label stands for (Flux: end, InfluxQL: start)."""
    seconds = label.timestamp()
    if label_is_end:
        # The end is exclusive (and clipped to the range's stop): step back inside.
        seconds -= 1e-6
    return floor_seconds(seconds, bucket)


def merge_counts(rows: Iterable[tuple[int, str, int]]) -> dict[tuple[int, str], int]:
    """(bucket start, entity_id, points) rows summed per bucket and entity."""
    merged: dict[tuple[int, str], int] = {}
    for start, entity_id, n in rows:
        if n:
            merged[start, entity_id] = merged.get((start, entity_id), 0) + n
    return merged


async def async_stored_counts(
    backend: InfluxBackend, bucket_name: str | None, window: Window, bucket: int
) -> dict[tuple[int, str], int]:
    """InfluxDB's points per (bucket start, entity_id) in `window`: one request.

    Raises:
        IngestorError: the request failed or the answer is unreadable.

    """
    rows: list[tuple[int, str, int]] = []
    if isinstance(backend, FluxBackend):
        records = await backend.async_tables(
            build_flux_delivery_query(bucket_name or backend.bucket, window, bucket)
        )
        for record in records.get(RESULT_DELIVERY, []):
            label, entity_id, n = record.get("_time"), record.get("entity_id"), record.get("_value")
            if isinstance(label, datetime) and isinstance(n, int) and not isinstance(n, bool):
                start = bucket_of_label(label, bucket, label_is_end=True)
                rows.append((start, str(entity_id or ""), n))
    elif isinstance(backend, InfluxQLBackend):
        (statement,) = await backend.async_statement_rows(
            build_influxql_delivery_query(window, bucket)
        )
        for row in statement:
            label = _ns_time(row.get("time"))
            n = _int(row.get("a")) + _int(row.get("b"))
            if label is not None:
                start = bucket_of_label(label, bucket, label_is_end=False)
                rows.append((start, str(row.get("entity_id") or ""), n))
    return merge_counts(rows)


def _ns_time(value: object) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value // 1000)
    return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
