"""The delivery check's arithmetic: events fired on the bus against points found in InfluxDB.

Pure and synchronous; the delivery coordinator feeds it events and InfluxDB's answers (the
queries are in `api/influx/delivery.py`). See docs/ingestor-contracts.md#delivery-check for
what is compared and what cannot be known.

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

from .models import Severity

if TYPE_CHECKING:
    from collections.abc import Mapping


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


# A sampled event: (entity_id, time fired, context id).
type Sample = tuple[str, datetime, str]


def bucket_seconds(period: timedelta) -> int:
    """The comparison's bucket for a period: a multiple of the fine window."""
    raw = int(period.total_seconds()) // _BUCKETS_PER_PERIOD
    clamped = min(max(raw, _MIN_BUCKET), _MAX_BUCKET)
    return clamped - clamped % FINE_SECONDS


def floor_seconds(seconds: float, step: int) -> int:
    """The start of the `step`-second slot that holds `seconds` (epoch seconds)."""
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
        start = floor_seconds(fired, FINE_SECONDS)
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
                and floor_seconds(last.start, self.bucket)
                == floor_seconds(window.start, self.bucket)
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
        stop = floor_seconds(now - self.settle_seconds, FINE_SECONDS)
        # A span older than the period is of no use: skip it (after a long outage).
        oldest = floor_seconds(now - self.period, self.bucket)
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
            per_entity = fired_now.setdefault(floor_seconds(pending.start, self.bucket), {})
            for entity_id, n in pending.counts.items():
                per_entity[entity_id] = per_entity.get(entity_id, 0) + n
        if not self._pending:
            self._open(stop)
        stored_now: dict[int, dict[str, int]] = {}
        for (start, entity_id), n in stored.items():
            per_entity = stored_now.setdefault(
                floor_seconds(max(start, self.origin), self.bucket), {}
            )
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
        oldest = floor_seconds(now - self.period, self.bucket)
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


# --------------------------------------------------------------------------------------
# Backfill: what the counter says was lost, and points written later for compared windows
# --------------------------------------------------------------------------------------


def lost_per_entity(counter: DeliveryCounter) -> dict[str, int]:
    """Events lost per entity over the compared buckets (only entities with a loss)."""
    per_entity: dict[str, int] = {}
    for bucket in counter._buckets.values():  # noqa: SLF001  (the counter's own module)
        for entity_id, n in bucket.diff.items():
            per_entity[entity_id] = per_entity.get(entity_id, 0) + n
    return {entity_id: n for entity_id, n in per_entity.items() if n > 0}


def credit_backfilled(counter: DeliveryCounter, entity_id: str, fired: float) -> None:
    """A point written by the backfill for an event fired at `fired` (Unix seconds).

    A window already compared is never asked again, so its bucket is credited here; a window
    not compared yet will find the point in InfluxDB itself.
    """
    if fired >= counter.compared_until or fired < counter.origin - STORED_EARLY.total_seconds():
        return
    bucket = counter._buckets.get(floor_seconds(max(fired, counter.origin), counter.bucket))  # noqa: SLF001
    if bucket is None:
        return
    bucket.stored += 1
    bucket.matched += 1
    value = bucket.diff.get(entity_id, 0) - 1
    if value:
        bucket.diff[entity_id] = value
    else:
        bucket.diff.pop(entity_id, None)
