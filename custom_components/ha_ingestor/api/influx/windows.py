"""Incremental refresh: per-window counts kept in memory, so a refresh reads only what changed.

A full recount scans the whole period on the server every refresh. This store keeps what the
statistics are made of and asks the server, in a steady state, only for three thin slices:

* the **leaving** slice ``[previous start, start)``: what just fell out of the period, counted
  per entity and per trend window, and subtracted. The period start is ``now - period`` to the
  microsecond, so no granularity of stored counts could make an arbitrary start exact: the
  slice is either read, or counted from the **prefetch** (below) by bisection;
* the **settling** slice ``[S_prev, S)``: fine windows (1 min, epoch aligned) that have just left
  the overlap, per entity and per window. They are added to the settled totals and never read
  again (``settled_windows`` keeps them for whoever compares windows, e.g. a delivery check);
* the **head** ``[S, now)``, with ``S = floor(now - overlap, 1 min)``: re-read every refresh,
  so a point that arrives up to ``overlap`` after its own timestamp is still counted. The trend's
  fine windows and the newest event are re-read from ``S_prev``.

On the wire that is two windowed parts (`LEAVE` per entity and trend window, `RECENT` from
``S_prev``) and the newest event: a handful of statements, each over a range of about one
refresh interval plus the overlap, whatever the period. `RECENT` is read as times (every
counted value's microsecond per entity, `PartKind.TIMES`): the store counts them per minute
and takes the newest event from them, one statement where counts per minute and the newest
event took three (influxd makes a pass over every series per statement, however short its
range). The times grow with the event rate, so once a refresh counted more than
`recent_times` values there (`RECENT_TIMES`, 10,000), the next ones read counts per minute
and the newest event on its own again, until the values fall below it.

The **prefetch** (periods of at least `PREFETCH_FROM` times `recount_every`: 24 h and 7 d).
There the leaving slice lies in old, compacted data, where influxd decodes a whole block of
every series to count one minute of it (at 10M events / 7 d / 1,000 entities about 300 ms a
refresh, more than everything else the refresh reads; benchmarks/README.md). So the first
steady refresh after each full recount reads, instead of its leaving slice, every counted
value's time per entity and domain of ``[start, min(start of the last full recount +
recount_every, S_prev))``: everything that will leave before the next full recount, from the
settled part only (a point still in the head may yet arrive, and is never in it). One cold
read an hour instead of one a minute. The steady refreshes until the next full recount take
their leaving slices from it (`Plan.kept`: parts the store answers itself, never sent): per
entity two bisections of a sorted ``array('q')`` of microseconds (exact: every period bound
is a whole microsecond). When the prefetch does not cover a leaving slice (a period too short
for it, more than `prefetch_limit` times, a slice past its end), that slice is read.

What is kept (bounded, whatever the event rate): events per entity of the settled part and of
the head (one integer per entity and domain each), events per window of the period (per trend
window for what the last full recount read, per minute since: at most 10,080 + 288 integers
at 7 days), the newest event, and the settling windows of the last refresh. At 7 days and
1,000 entities, every window filled and 50 minutes of settling windows of every entity, that
is about 2.4 MiB (tests/api/test_windows.py measures it against the stated bound, 15 MB).
The prefetch adds 8 bytes per value of the hour it covers: it grows with the event rate, so
it is kept only up to `prefetch_limit` values (`MAX_PREFETCH`, 8 MB: 10.2 MiB in all with
the figures above, still under the bound); at 10M events / 7 d that is about 60,000 values,
470 KiB.

A **full recount** (every figure from ``[start, now)``, split at ``S``) happens at the first
refresh, after `invalidate` (InfluxDB failed, the caller changed period, trend window or
source), when the clock went backwards, when the period is too short to leave a settled part,
when the leaving slice would reach into the head (an interval longer than the period minus the
overlap), and every `recount_every` as a safety net.

Exactness: every point whose arrival is at most ``overlap`` after its own timestamp is counted
exactly once while it is in the period and subtracted exactly once when it leaves, so the
figures equal a full recount of the same moment. A point that arrives later than that, inside
the previous refresh's period, is never added but is subtracted when it leaves: the figures are
one lower per such point until the next full recount (at most `recount_every`). Points
deleted from inside the period stay counted until then too. In the prefetched range both
are corrected earlier when they change after the prefetch was read: a point deleted then was
counted and is still subtracted when it leaves, one written too late then was not counted
and is not subtracted, so the figures are exact again once it left (tests/api/test_windows.py).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Final

from ..core.aggregate import EPOCH, EntityCount, as_utc, build_event_statistics, period_bounds
from ..core.models import TrendPoint, TrendWindow

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from ..core.models import EventStatistics, Period

# The finest trend window: every trend window is a whole number of fine windows.
FINE: Final = TrendWindow.MINUTES_1.duration
# How late (after its own timestamp) a point may arrive and still be counted exactly. The
# ingestor writes in batches of at most 5 s (R2/R3) or 1,000 points; two minutes is ample.
OVERLAP: Final = timedelta(minutes=2)
RECOUNT_EVERY: Final = timedelta(hours=1)
# How far back the newest event is looked for in a full recount (both backends).
LOOKBACK: Final = timedelta(days=7)
# Periods at least this many times `recount_every` long get the prefetch (module docstring):
# there the leaving slice lies in old, compacted blocks, and what is prefetched is at most a
# twenty-fourth of the period's events (24 h and 7 d with the hourly recount).
PREFETCH_FROM: Final = 24
# At most this many prefetched times are kept (8 bytes each: 8 MB); more and the leaving
# slices are read from the server as without a prefetch.
MAX_PREFETCH: Final = 1_000_000
# A steady refresh reads the recent part as times (one row per value, the newest event among
# them) when the last refresh counted at most this many values there, else per minute plus
# the newest event's own statements: those cost influxd a pass over every series each, the
# times grow with the event rate.
RECENT_TIMES: Final = 10_000
_US: Final = timedelta(microseconds=1)

# (entity_id, domain tag or None): one server-side group of the per-entity statements.
type EntityKey = tuple[str, str | None]

LEAVE_ENTITIES: Final = "leave_entities"
LEAVE_FINE: Final = "leave_fine"
SETTLE: Final = "settle"
HEAD: Final = "head"
FINE_COUNTS: Final = "fine"
TREND_SETTLED: Final = "trend_settled"
# A steady refresh asks for two windowed parts only (each statement costs influxd a pass
# over the cached series, however short its range): what left, per entity and trend window,
# and what is recent, per entity and minute. `apply` splits them into the parts above.
LEAVE: Final = "leave"
RECENT: Final = "recent"
_SPLIT_FROM: Final = {LEAVE_FINE: LEAVE, FINE_COUNTS: RECENT}
LAST: Final = "last"
# The read-ahead of what will leave the period before the next full recount.
PREFETCH: Final = "prefetch"


class PartKind(Enum):
    """What one part of a refresh asks the server for, over its time range."""

    # Events per entity and domain.
    ENTITIES = "entities"
    # Events per entity and domain per fine window.
    ENTITY_WINDOWS = "entity_windows"
    # Events per window of the part's `width`.
    FINE = "fine"
    # The newest event's time.
    LAST = "last"
    # The time of every counted value per entity and domain (`Answer.times`): a point with
    # both event fields twice, as the counting kinds count it.
    TIMES = "times"


@dataclass(frozen=True, slots=True)
class Part:
    """One statement (InfluxQL) or result (Flux) of a refresh: `[start, stop)`.

    `width` is the window width of the windowed kinds (epoch aligned, as servers group).
    """

    name: str
    kind: PartKind
    start: datetime
    stop: datetime
    width: TrendWindow = TrendWindow.MINUTES_1


@dataclass(frozen=True, slots=True)
class Plan:
    """What one refresh asks the server for; `full` = a recount of the whole period.

    `kept` are parts the store answers itself, from its prefetch: never sent.
    """

    full: bool
    now: datetime
    start: datetime
    settle_until: datetime
    parts: tuple[Part, ...]
    kept: tuple[Part, ...] = ()

    def part(self, name: str) -> Part | None:
        """The part of that name, if this refresh has one (sent or kept)."""
        return next((p for p in (*self.parts, *self.kept) if p.name == name), None)


@dataclass(frozen=True, slots=True)
class Row:
    """One counted group: `entity` for the per-entity kinds, `window` for the windowed ones.

    `window` is the server's window label as a start (Flux's stop labels are turned into
    starts with `window_of_stop`); a window clipped by the part's range keeps its label.
    """

    count: int
    entity: EntityKey | None = None
    window: datetime | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server answered for a plan, backend-neutral. A missing part has no rows.

    `times` answers the plan's `TIMES` parts, by part name: per entity and domain,
    microseconds since the epoch, in any order.
    """

    rows: Mapping[str, Sequence[Row]] = field(default_factory=dict)
    last_event: datetime | None = None
    times: Mapping[str, Mapping[EntityKey, Sequence[int]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SettledWindow:
    """One fine window that will not be read again, with its events per entity."""

    start: datetime
    counts: Mapping[EntityKey, int]


def floor_to(value: datetime, width: timedelta) -> datetime:
    """`value` rounded down to a multiple of `width` since the Unix epoch."""
    return EPOCH + ((as_utc(value) - EPOCH) // width) * width


def window_of_stop(stop: datetime, width: timedelta = FINE) -> datetime:
    """The start of the window a (possibly clipped) window stop labels, as Flux labels them."""
    return floor_to(as_utc(stop) - timedelta(microseconds=1), width)


def microseconds(value: datetime) -> int:
    """`value` as whole microseconds since the Unix epoch (how prefetched times are kept)."""
    return (as_utc(value) - EPOCH) // _US


def _add(target: dict[EntityKey, int], key: EntityKey, count: int) -> None:
    total = target.get(key, 0) + count
    if total:
        target[key] = total
    else:
        target.pop(key, None)


class WindowStore:
    """The counts behind one period and trend window, kept between refreshes (module docstring).

    Use: ``plan = store.plan(now)``; send the plan's parts; ``store.apply(plan, answer)``;
    ``store.statistics()``. On any failure in between, call `invalidate`.
    """

    def __init__(  # noqa: PLR0913
        self,
        period: Period,
        window: TrendWindow,
        *,
        overlap: timedelta = OVERLAP,
        recount_every: timedelta = RECOUNT_EVERY,
        lookback: timedelta = LOOKBACK,
        prefetch_limit: int = MAX_PREFETCH,
        recent_times: int = RECENT_TIMES,
    ) -> None:
        """An empty store: its first plan is a full recount."""
        if overlap <= timedelta(0):
            msg = "overlap must be positive"
            raise ValueError(msg)
        self.period = period
        self.window = window
        self.overlap = overlap
        self.recount_every = recount_every
        self.lookback = lookback
        self.prefetch_limit = prefetch_limit
        self.recent_times = recent_times
        # Values the last refresh counted from its settled boundary on (`RECENT_TIMES`).
        self._recent_values = 0
        self._valid = False
        self._now = EPOCH
        self._start = EPOCH
        self._settled_until = EPOCH
        self._last_full = EPOCH
        self._settled: dict[EntityKey, int] = {}
        self._head: dict[EntityKey, int] = {}
        self._fine: dict[datetime, int] = {}
        self._last_event: datetime | None = None
        # The prefetch: sorted times per entity and the range they cover; due once after
        # each full recount (whose period started at `_full_start`).
        self._ahead: dict[EntityKey, array[int]] = {}
        self._ahead_range: tuple[datetime, datetime] | None = None
        self._prefetch_due = False
        self._full_start = EPOCH
        self.settled_windows: tuple[SettledWindow, ...] = ()
        # Whether the last applied refresh was a full recount, and whether it took its
        # leaving slice from the prefetch (diagnostics, benchmarks).
        self.recounted = False
        self.leaving_from_memory = False

    def tracks(self, period: Period, window: TrendWindow) -> bool:
        """Whether this store keeps the counts of that period and trend window."""
        return (period, window) == (self.period, self.window)

    def invalidate(self) -> None:
        """Forget everything: the next refresh is a full recount."""
        self._valid = False
        self._settled.clear()
        self._head.clear()
        self._fine.clear()
        self._last_event = None
        self._ahead = {}
        self._ahead_range = None
        self.settled_windows = ()

    def plan(self, now: datetime) -> Plan:
        """What the refresh at `now` must read (module docstring)."""
        start, now = period_bounds(self.period, now)
        settle = max(floor_to(now - self.overlap, FINE), start)
        if (
            not self._valid
            or now < self._now
            or now - self._last_full >= self.recount_every
            or start > self._settled_until
            or settle <= start
        ):
            return self._full_plan(now, start, settle)
        settle = max(settle, self._settled_until)
        parts: list[Part] = []
        kept: list[Part] = []
        if start > self._start:
            leave = Part(LEAVE, PartKind.ENTITY_WINDOWS, self._start, start, self.window)
            ahead = self._prefetch_part(start)
            if ahead is not None:
                parts.append(ahead)
            (kept if ahead is not None or self._prefetched(leave) else parts).append(leave)
        if self._recent_values <= self.recent_times:
            parts.append(Part(RECENT, PartKind.TIMES, self._settled_until, now))
        else:
            parts += [
                Part(RECENT, PartKind.ENTITY_WINDOWS, self._settled_until, now),
                Part(LAST, PartKind.LAST, self._settled_until, now),
            ]
        return Plan(
            full=False,
            now=now,
            start=start,
            settle_until=settle,
            parts=tuple(parts),
            kept=tuple(kept),
        )

    def _prefetch_part(self, start: datetime) -> Part | None:
        """The prefetch, if due now: from the leaving slice on, until the next full recount.

        It stops at the settled boundary of the last refresh: a point counted later (in the
        head) is never in it, so never subtracted without having been added.
        """
        if (
            not self._prefetch_due
            or self.prefetch_limit <= 0
            or self.period.duration < PREFETCH_FROM * self.recount_every
        ):
            return None
        stop = min(self._full_start + self.recount_every, self._settled_until)
        return Part(PREFETCH, PartKind.TIMES, self._start, stop) if start <= stop else None

    def _prefetched(self, part: Part) -> bool:
        """Whether the prefetch holds every point of `part`'s range."""
        covered = self._ahead_range
        return covered is not None and covered[0] <= part.start and part.stop <= covered[1]

    def _full_plan(self, now: datetime, start: datetime, settle: datetime) -> Plan:
        # The settled part's trend is read per trend window: 288 rows at most, where fine
        # windows would be 10,080 at 7 days (and cost influxd as much again).
        parts = []
        if settle > start:
            parts += [
                Part(SETTLE, PartKind.ENTITIES, start, settle),
                Part(TREND_SETTLED, PartKind.FINE, start, settle, self.window),
            ]
        parts += [
            Part(HEAD, PartKind.ENTITIES, settle, now),
            Part(FINE_COUNTS, PartKind.FINE, settle, now),
            Part(LAST, PartKind.LAST, now - max(self.lookback, self.period.duration), now),
        ]
        return Plan(full=True, now=now, start=start, settle_until=settle, parts=tuple(parts))

    def apply(self, plan: Plan, answer: Answer) -> None:
        """Take in the server's answer to `plan` (the last plan made)."""
        last_event = answer.last_event
        if plan.full:
            rows = answer.rows
            self._recent_values = sum(row.count for row in rows.get(FINE_COUNTS, ()))
            self.invalidate()
            self._last_full = plan.now
            self._full_start = plan.start
            self._prefetch_due = True
        else:
            rows, newest = self._steady_rows(plan, answer)
            last_event = max(filter(None, (last_event, newest)), default=None)
        for row in rows.get(LEAVE_ENTITIES, ()):
            if row.entity is not None:
                _add(self._settled, row.entity, -row.count)
        self.settled_windows = self._settle(plan, rows.get(SETTLE, ()))
        self._head = {}
        for row in rows.get(HEAD, ()):
            if row.entity is not None:
                _add(self._head, row.entity, row.count)
        self._update_fine(plan, rows)
        known = self._last_event
        if known is not None and known < plan.now - max(self.lookback, self.period.duration):
            known = None
        self._last_event = max(filter(None, (known, last_event)), default=None)
        self._now, self._start, self._settled_until = plan.now, plan.start, plan.settle_until
        self.recounted = plan.full
        self.leaving_from_memory = bool(plan.kept)
        self._valid = True

    def _steady_rows(
        self, plan: Plan, answer: Answer
    ) -> tuple[dict[str, list[Row]], datetime | None]:
        """A steady answer as the parts `apply` takes in, and the newest of the recent times."""
        ahead = plan.part(PREFETCH)
        if ahead is not None:
            self._prefetch_due = False
            self._keep_prefetch(ahead, answer.times.get(PREFETCH, {}))
        given = dict(answer.rows)
        newest = None
        recent = plan.part(RECENT)
        if recent is not None and recent.kind is PartKind.TIMES:
            times = answer.times.get(RECENT, {})
            given[RECENT] = _per_window(times)
            latest = max((max(values) for values in times.values() if values), default=None)
            newest = None if latest is None else EPOCH + latest * _US
        self._recent_values = sum(row.count for row in given.get(RECENT, ()))
        for part in plan.kept:
            given[part.name] = self._from_prefetch(part)
        if ahead is not None and self.prefetched > self.prefetch_limit:
            # Used for this refresh's leaving slice, not kept: the later ones are read.
            self._ahead, self._ahead_range = {}, None
        return _split(plan, given), newest

    def _keep_prefetch(self, part: Part, times: Mapping[EntityKey, Sequence[int]]) -> None:
        self._ahead = {key: array("q", sorted(values)) for key, values in times.items() if values}
        self._ahead_range = (part.start, part.stop)

    def _from_prefetch(self, part: Part) -> list[Row]:
        """What the server would answer for `part` (an `ENTITY_WINDOWS` part), from memory."""
        low, high = microseconds(part.start), microseconds(part.stop)
        inside = {}
        for key, times in self._ahead.items():
            first, stop = bisect_left(times, low), bisect_left(times, high)
            if first < stop:  # most entities have nothing in a minute's slice
                inside[key] = times[first:stop]
        return _per_window(inside, part.width.duration)

    def _update_fine(self, plan: Plan, rows: Mapping[str, Sequence[Row]]) -> None:
        """Subtract the leaving slice, drop what left, take the fresh counts from S_prev on.

        A count is kept under the start of what it counted (the window label, or the part's
        start for a clipped window): inside one trend window, so the trend can add counts up
        whatever their width, and at or after S_prev exactly when read from S_prev on.
        """
        width = self.window.duration
        fresh_from = plan.settle_until if plan.full else self._settled_until
        for name, sign in ((LEAVE_FINE, -1), (TREND_SETTLED, 1), (FINE_COUNTS, 1)):
            part = plan.part(name) or plan.part(_SPLIT_FROM.get(name, name))
            if part is None:
                continue
            if name == FINE_COUNTS:
                self._fine = {
                    key: count
                    for key, count in self._fine.items()
                    if key < fresh_from and floor_to(key, width) + width > plan.start and count
                }
            for row in rows.get(name, ()):
                if row.window is not None and row.count:
                    key = max(row.window, part.start)
                    self._fine[key] = self._fine.get(key, 0) + sign * row.count

    def _settle(self, plan: Plan, rows: Sequence[Row]) -> tuple[SettledWindow, ...]:
        by_window: dict[datetime, dict[EntityKey, int]] = {}
        for row in rows:
            if row.entity is None:
                continue
            _add(self._settled, row.entity, row.count)
            if not plan.full and row.window is not None:
                _add(by_window.setdefault(row.window, {}), row.entity, row.count)
        return tuple(SettledWindow(start, counts) for start, counts in sorted(by_window.items()))

    @property
    def prefetched(self) -> int:
        """How many times the prefetch keeps (diagnostics, benchmarks)."""
        return sum(map(len, self._ahead.values()))

    @property
    def ready(self) -> bool:
        """Whether the store holds a whole refresh (else `statistics` has nothing to say)."""
        return self._valid

    def entity_counts(self) -> list[EntityCount]:
        """Events per entity and domain in the period (settled part plus head)."""
        totals = dict(self._settled)
        for key, count in self._head.items():
            _add(totals, key, count)
        return [
            EntityCount(entity_id=entity_id, count=count, domain=domain)
            for (entity_id, domain), count in totals.items()
        ]

    def trend(self) -> list[TrendPoint]:
        """Events per trend window (its end, clipped to `now`), from the fine windows."""
        width = self.window.duration
        per_window: dict[datetime, int] = {}
        for start, count in self._fine.items():
            end = min(floor_to(start, width) + width, self._now)
            per_window[end] = per_window.get(end, 0) + count
        return [TrendPoint(time=end, count=count) for end, count in sorted(per_window.items())]

    def statistics(self) -> EventStatistics:
        """The event figures of the last applied refresh, as a full recount computes them."""
        rows = self.entity_counts()
        return build_event_statistics(
            events_in_period=sum(row.count for row in rows),
            last_event=self._last_event,
            entity_counts=rows,
            trend=self.trend(),
            period=self.period,
            window=self.window,
            now=self._now,
        )


def _per_window(times: Mapping[EntityKey, Sequence[int]], width: timedelta = FINE) -> list[Row]:
    """Times as the server counts them per entity and window (labelled with its start)."""
    step = width // _US
    # One dict for all entities (a Counter each costs more than the counting at 1,000).
    counts: dict[tuple[EntityKey, int], int] = {}
    for key, values in times.items():
        for t in values:
            group = (key, t // step)
            counts[group] = counts.get(group, 0) + 1
    return [
        Row(count, entity=key, window=EPOCH + window * step * _US)
        for (key, window), count in counts.items()
    ]


def _split(plan: Plan, rows: Mapping[str, Sequence[Row]]) -> dict[str, list[Row]]:
    """A steady plan's two windowed answers as the parts `apply` takes in."""
    leave = rows.get(LEAVE, ())
    recent = [row for row in rows.get(RECENT, ()) if row.window is not None]
    settled = [row for row in recent if row.window is not None and row.window < plan.settle_until]
    return {
        LEAVE_ENTITIES: [Row(row.count, entity=row.entity) for row in leave],
        LEAVE_FINE: [Row(row.count, window=row.window) for row in leave],
        SETTLE: settled,
        HEAD: [
            Row(row.count, entity=row.entity)
            for row in recent
            if row.window is not None and row.window >= plan.settle_until
        ],
        FINE_COUNTS: [Row(row.count, window=row.window) for row in recent],
    }


async def fetch_windows[T](
    store: WindowStore, now: datetime, read: Callable[[Plan], Awaitable[tuple[Answer, T]]]
) -> tuple[EventStatistics, T]:
    """One refresh through `store`: plan, `read` the plan's answer, apply it.

    Whatever interrupts `read` (an error, a timeout, a cancellation) leaves the store empty,
    so the refresh after an unreachable InfluxDB is a full recount. `T` is what the backend
    reads beside the events (its `service_metrics` figures).
    """
    plan = store.plan(now)
    try:
        answer, extra = await read(plan)
    except BaseException:
        store.invalidate()
        raise
    store.apply(plan, answer)
    return store.statistics(), extra
