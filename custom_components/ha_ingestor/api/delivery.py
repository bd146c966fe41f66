"""The delivery check's arithmetic: events fired on the bus against points found in InfluxDB.

Pure and synchronous; the Home Assistant layer (`delivery.py`) feeds it events and InfluxDB's
answers. See docs/ingestor-contracts.md#delivery-check for what is compared and what cannot be
known.

Time is cut into *fine* windows (`FINE_SECONDS`) while counting, and into *buckets* (a fixed
share of the period) once compared. A fine window stays pending until it is settled (older
than `SETTLE_SECONDS`) and InfluxDB answered for it; then its counts are folded into its
bucket as one signed difference per entity (fired minus stored) and the window is gone. While
InfluxDB does not answer, pending windows older than `COMPACT_AGE_SECONDS` are merged per
bucket, so an outage of a day costs one counter per entity and bucket, not one per fine
window. Memory at 1,000 entities, 20 events/s and 24 h (1 h buckets) is bounded by
`tests/api/test_delivery.py::test_memory_bound` (under 10 MB, measured).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from .aggregate import rfc3339
from .backend import EVENT_FIELDS, MEASUREMENT
from .flux import FluxBackend
from .influxql import InfluxQLBackend
from .models import Severity
from .names import flux_string, influxql_identifier, validate_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from .backend import InfluxBackend

FINE_SECONDS: Final = 10
# R2/R3 batch up to 1,000 points or 5 s in two stages (up to ~10 s) and InfluxDB's client
# flushes asynchronously: a window is compared only once it is this old.
SETTLE_SECONDS: Final = 30
# Pending windows older than this are merged per bucket (only while InfluxDB does not answer).
COMPACT_AGE_SECONDS: Final = 600
# R2 stores `time_fired` truncated to the millisecond, R3 up to 1 ms earlier still: a point is
# at most this much before its event. Only the very first comparison needs it (see `settle`).
STORED_EARLY: Final = timedelta(milliseconds=2)
# How many entities the "lost most" attribute names.
TOP_ENTITIES: Final = 10
# A bucket is this share of the period (clamped), so a period is about 24 buckets.
_BUCKETS_PER_PERIOD: Final = 24
_MIN_BUCKET: Final = 60
_MAX_BUCKET: Final = 3600

RESULT_DELIVERY: Final = "delivery"


def bucket_seconds(period: timedelta) -> int:
    """The comparison's bucket for a period: a multiple of the fine window."""
    raw = int(period.total_seconds()) // _BUCKETS_PER_PERIOD
    clamped = min(max(raw, _MIN_BUCKET), _MAX_BUCKET)
    return clamped - clamped % FINE_SECONDS


def _floor(seconds: float, step: int) -> int:
    return int(seconds // step) * step


@dataclass(slots=True)
class _Pending:
    """Fired counts of a span not compared yet: [start, end) in Unix seconds."""

    start: int
    end: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Bucket:
    """What is compared of one bucket: totals and the entities whose counts differ."""

    fired: int = 0
    stored: int = 0
    # Points of entities that fired in the same comparison: 0 with `stored` > 0 means the
    # bucket's points come from somewhere else.
    matched: int = 0
    # fired - stored per entity, only where it is not 0.
    diff: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """The comparison over the compared span; figures are None when nothing was compared."""

    since: datetime | None
    until: datetime | None
    fired: int
    stored: int
    lost: int
    extra: int
    completeness: float | None
    top_lost: tuple[tuple[str, int], ...]
    # The events this Home Assistant fired have no points while other entities have some.
    not_source: bool
    # Events the ingestor's entity filter dropped on purpose while the compared span was
    # counted (None: it restarted meanwhile). Its statistics give totals, not entities or
    # times, so loss is unknown while this is not 0 rather than made up.
    filtered: int | None = 0


@dataclass(frozen=True, slots=True)
class Window:
    """One newly settled span to ask InfluxDB about, in Unix seconds."""

    start: datetime
    stop: datetime


class DeliveryCounter:
    """Counts fired events per entity and window, and compares settled spans with InfluxDB.

    `count` is what the bus listener calls: O(1), no allocation but the first count of an
    entity in a window and one list entry per new fine window.
    """

    def __init__(self, started: float, period: timedelta, settle: float = SETTLE_SECONDS) -> None:
        """Count from the first fine window boundary after `started` (Unix seconds)."""
        self.settle_seconds = settle
        self.bucket = bucket_seconds(period)
        self.period = int(period.total_seconds())
        self.origin = math.ceil(started / FINE_SECONDS) * FINE_SECONDS
        self._pending: deque[_Pending] = deque()
        self._current = _Pending(self.origin, self.origin + FINE_SECONDS)
        self._pending.append(self._current)
        self.compared_until = self.origin
        self._buckets: dict[int, _Bucket] = {}
        self._filter_seen: tuple[float, int] | None = None
        # (previous observation, this observation, filtered in between or None: restarted)
        self._filter_steps: deque[tuple[float, float, int | None]] = deque()

    def count(self, entity_id: str, fired: float) -> None:
        """One event fired at `fired` (Unix seconds); before counting began it is ignored."""
        current: _Pending | None = self._current
        if fired >= self._current.end:
            current = self._open(fired)
        elif fired < self._current.start:
            # Out of order by a window or more (clock step): count where it belongs, if pending.
            current = self._find(fired)
        if current is None:
            return
        counts = current.counts
        counts[entity_id] = counts.get(entity_id, 0) + 1

    def _open(self, fired: float) -> _Pending:
        start = _floor(fired, FINE_SECONDS)
        self._current = _Pending(start, start + FINE_SECONDS)
        self._pending.append(self._current)
        return self._current

    def _find(self, fired: float) -> _Pending | None:
        if fired < self.compared_until:
            return None
        return next((w for w in self._pending if w.start <= fired < w.end), None)

    def observe_filter(self, read_at: float, total: int | None) -> None:
        """The ingestor's filtered total since it started, as read at `read_at` (Unix s).

        What changed between two readings was filtered between their times, so it is
        attributed to the compared span only where those times overlap it.
        """
        seen = self._filter_seen
        if total is None or (seen is not None and read_at <= seen[0]):
            return  # it does not say, or the same (stale) reading again
        self._filter_seen = (read_at, total)
        if seen is None:
            return  # the first reading: nothing to compare it with yet
        before, last = seen
        if total != last:
            # A smaller total means the ingestor restarted: what it filtered since is unknown.
            self._filter_steps.append((before, read_at, total - last if total > last else None))

    def _filtered(self, since: int, until: int) -> int | None:
        steps = [n for start, end, n in self._filter_steps if start < until and end > since]
        return None if None in steps else sum(n or 0 for n in steps)

    # --- maintenance, once per refresh --------------------------------------------------

    def compact(self, now: float) -> None:
        """Merge pending windows older than `COMPACT_AGE_SECONDS`, one per bucket."""
        limit = now - COMPACT_AGE_SECONDS
        merged: deque[_Pending] = deque()
        for window in self._pending:
            last = merged[-1] if merged else None
            if (
                last is not None
                and window.end <= limit
                and last.end == window.start
                and _floor(last.start, self.bucket) == _floor(window.start, self.bucket)
                and window is not self._current
            ):
                for entity_id, n in window.counts.items():
                    last.counts[entity_id] = last.counts.get(entity_id, 0) + n
                last.end = window.end
            else:
                merged.append(window)
        self._pending = merged

    def settled_window(self, now: float) -> Window | None:
        """The span to ask InfluxDB about now, or None while nothing new has settled."""
        stop = _floor(now - self.settle_seconds, FINE_SECONDS)
        # A span older than the period is of no use: skip it (after a long outage).
        oldest = _floor(now - self.period, self.bucket)
        if self.compared_until < oldest:
            self._drop_before(oldest)
        if stop <= self.compared_until:
            return None
        start = _utc(self.compared_until)
        if self.compared_until == self.origin:
            start -= STORED_EARLY
        return Window(start, _utc(stop))

    def _drop_before(self, limit: int) -> None:
        while (
            self._pending
            and self._pending[0].end <= limit
            and self._pending[0] is not self._current
        ):
            self._pending.popleft()
        self.compared_until = max(self.compared_until, limit)

    def settle(self, window: Window, stored: Mapping[tuple[int, str], int]) -> None:
        """Fold InfluxDB's per-bucket, per-entity counts of `window` into the comparison.

        `stored` maps (bucket start in Unix seconds, entity_id) to points found. Points stored
        up to `STORED_EARLY` before the first window are taken in, so an event fired on the
        boundary is never lost by the ingestor's rounding.
        """
        stop = int(window.stop.timestamp())
        fired_now: dict[int, dict[str, int]] = {}
        while self._pending and self._pending[0].end <= stop:
            pending = self._pending.popleft()
            if pending is self._current:
                self._open(stop)
            per_entity = fired_now.setdefault(_floor(pending.start, self.bucket), {})
            for entity_id, n in pending.counts.items():
                per_entity[entity_id] = per_entity.get(entity_id, 0) + n
        if not self._pending:
            self._open(stop)
        stored_now: dict[int, dict[str, int]] = {}
        for (start, entity_id), n in stored.items():
            per_entity = stored_now.setdefault(_floor(max(start, self.origin), self.bucket), {})
            per_entity[entity_id] = per_entity.get(entity_id, 0) + n
        for start in fired_now.keys() | stored_now.keys():
            self._fold(start, fired_now.get(start, {}), stored_now.get(start, {}))
        self.compared_until = stop

    def _fold(self, start: int, fired: dict[str, int], stored: dict[str, int]) -> None:
        bucket = self._buckets.setdefault(start, _Bucket())
        bucket.fired += sum(fired.values())
        bucket.stored += sum(stored.values())
        bucket.matched += sum(n for e, n in stored.items() if e in fired)
        diff = bucket.diff
        for entity_id in fired.keys() | stored.keys():
            value = diff.get(entity_id, 0) + fired.get(entity_id, 0) - stored.get(entity_id, 0)
            if value:
                diff[entity_id] = value
            else:
                diff.pop(entity_id, None)

    def report(self, now: float) -> DeliveryReport:
        """The comparison of every bucket that overlaps the period ending at `now`."""
        oldest = _floor(now - self.period, self.bucket)
        for start in [s for s in self._buckets if s < oldest]:
            del self._buckets[start]
        while self._filter_steps and self._filter_steps[0][1] < oldest:
            self._filter_steps.popleft()
        buckets = self._buckets.values()
        fired = sum(b.fired for b in buckets)
        stored = sum(b.stored for b in buckets)
        matched = sum(b.matched for b in buckets)
        per_entity: dict[str, int] = {}
        for bucket in buckets:
            for entity_id, n in bucket.diff.items():
                per_entity[entity_id] = per_entity.get(entity_id, 0) + n
        lost = sum(n for n in per_entity.values() if n > 0)
        extra = sum(-n for n in per_entity.values() if n < 0)
        not_source = fired > 0 and matched == 0 and stored > 0
        compared = self.compared_until > self.origin and bool(self._buckets)
        top = sorted(((e, n) for e, n in per_entity.items() if n > 0), key=lambda p: (-p[1], p[0]))
        since = max(self.origin, min(self._buckets)) if compared else self.origin
        filtered = self._filtered(since, self.compared_until) if compared else 0
        return DeliveryReport(
            since=_utc(since) if compared else None,
            until=_utc(self.compared_until) if compared else None,
            fired=fired,
            stored=stored,
            lost=lost,
            extra=extra,
            completeness=(
                None
                if not_source or fired == 0 or filtered != 0
                else round(100.0 * (fired - lost) / fired, 3)
            ),
            top_lost=tuple(top[:TOP_ENTITIES]),
            not_source=not_source,
            filtered=filtered,
        )


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --------------------------------------------------------------------------------------
# Query text: one small query per refresh for the newly settled span
# --------------------------------------------------------------------------------------


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
type Sample = tuple[str, datetime, str]
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
    return _floor(seconds, bucket)


def merge_counts(rows: Iterable[tuple[int, str, int]]) -> dict[tuple[int, str], int]:
    """(bucket start, entity_id, points) rows summed per bucket and entity."""
    merged: dict[tuple[int, str], int] = {}
    for start, entity_id, n in rows:
        if n:
            merged[start, entity_id] = merged.get((start, entity_id), 0) + n
    return merged


def influxql_string(value: str, kind: str = "name") -> str:
    """An InfluxQL single-quoted string literal that is exactly `value` (validated first)."""
    validate_name(value, kind)
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


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


# --------------------------------------------------------------------------------------
# The alert rule, in the style of `alerts.py`: strict comparisons, unknown input is off
# --------------------------------------------------------------------------------------

DEFAULT_WARNING_BELOW: Final = 99.9
DEFAULT_ERROR_BELOW: Final = 99.0


@dataclass(frozen=True, slots=True)
class DeliveryAlert:
    """`events_lost`: on while completeness is strictly below a threshold."""

    active: bool
    severity: Severity | None
    value: float | None
    warning_threshold: float
    error_threshold: float
    message: str


def delivery_alert(completeness: float | None, warning: float, error: float) -> DeliveryAlert:
    """Severity of a completeness (percent); UNKNOWN and off when it is not known."""
    if completeness is None:
        severity: Severity | None = Severity.UNKNOWN
        message = "Delivery completeness is unknown."
    elif completeness < error:
        severity = Severity.ERROR
        message = (
            f"Delivery completeness {_fmt(completeness)} % is below the error threshold "
            f"of {_fmt(error)} %."
        )
    elif completeness < warning:
        severity = Severity.WARNING
        message = (
            f"Delivery completeness {_fmt(completeness)} % is below the warning threshold "
            f"of {_fmt(warning)} %."
        )
    else:
        severity = None
        message = f"Delivery completeness {_fmt(completeness)} % is within the thresholds."
    return DeliveryAlert(
        active=severity in {Severity.WARNING, Severity.ERROR},
        severity=severity,
        value=completeness,
        warning_threshold=warning,
        error_threshold=error,
        message=message,
    )


# --------------------------------------------------------------------------------------
# Latency: sampled real events, polled until their point is readable
# --------------------------------------------------------------------------------------

SAMPLE_EVERY_SECONDS: Final = 60
POLL_SECONDS: Final = 5
SAMPLE_TIMEOUT_SECONDS: Final = 120
# At most this many samples wait at once (SAMPLE_TIMEOUT / SAMPLE_EVERY, rounded up): one
# lookup request per poll while any waits, so at most 60 / POLL_SECONDS = 12 requests a
# minute, each with at most this many tiny point lookups.
MAX_WAITING: Final = 3


@dataclass(slots=True)
class LatencySampler:
    """About one real event a minute; how long until its point was readable."""

    period: int
    next_sample: float = 0.0
    waiting: list[tuple[Sample, float]] = field(default_factory=list)
    # (time found, latency in seconds), oldest first; at most one a minute of the period.
    found: deque[tuple[float, float]] = field(default_factory=deque)
    late: deque[float] = field(default_factory=deque)

    def offer(self, entity_id: str, fired: float, context_id: str) -> None:
        """The bus listener's O(1) check: take this event if a sample is due."""
        if fired < self.next_sample or len(self.waiting) >= MAX_WAITING:
            return
        self.next_sample = fired + SAMPLE_EVERY_SECONDS
        self.waiting.append(((entity_id, _utc(fired), context_id), fired))

    def resolve(self, found: list[bool], now: float) -> None:
        """Record what the last lookup found; samples past the timeout count as late."""
        still: list[tuple[Sample, float]] = []
        for (sample, fired), seen in zip(self.waiting, found, strict=False):
            if seen:
                self.found.append((now, now - fired))
            elif now - fired > SAMPLE_TIMEOUT_SECONDS:
                self.late.append(now)
            else:
                still.append((sample, fired))
        self.waiting = still + self.waiting[len(found) :]
        while self.late and self.late[0] < now - self.period:
            self.late.popleft()
        while self.found and self.found[0][0] < now - self.period:
            self.found.popleft()

    def figures(self) -> tuple[float | None, float | None, int, int]:
        """Median and p95 latency (s), samples found and late in the period."""
        values = sorted(latency for _, latency in self.found)
        if not values:
            return None, None, 0, len(self.late)
        median = statistics.median(values)
        p95 = values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
        return round(median, 3), round(p95, 3), len(values), len(self.late)


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
