"""The incremental window store against a full recount of the same moment.

A tiny in-memory "server" holds points with the instant each becomes readable (its arrival);
it answers a plan's parts the way InfluxDB does (range `[start, stop)`, epoch-aligned 1-min
windows). The expectation is a plain recount of every readable point of the period.
"""

from __future__ import annotations

import tracemalloc
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.ha_ingestor.api.core.aggregate import EntityCount, build_event_statistics
from custom_components.ha_ingestor.api.core.models import (
    EventStatistics,
    Period,
    TrendPoint,
    TrendWindow,
)
from custom_components.ha_ingestor.api.influx.windows import (
    FINE,
    LAST,
    LEAVE,
    MAX_PREFETCH,
    OVERLAP,
    PREFETCH,
    RECENT_TIMES,
    RECOUNT_EVERY,
    Answer,
    EntityKey,
    PartKind,
    Plan,
    Row,
    WindowStore,
    floor_to,
    microseconds,
    window_of_stop,
)

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
ENTITIES: tuple[EntityKey, ...] = (
    ("light.kitchen", "light"),
    ("sensor.temp", "sensor"),
    ("sensor.temp", None),  # the same entity written by schema A (no domain tag)
    ("switch.a", None),
    ("", None),  # a point without entity_id tag
)


@dataclass(frozen=True)
class Point:
    time: datetime
    entity: EntityKey
    arrival: datetime


def _minute(time: datetime) -> datetime:
    return T0 + ((time - T0) // FINE) * FINE


def serve(points: list[Point], plan: Plan) -> Answer:
    """What a server holding `points` answers at `plan.now` (only points already arrived)."""
    readable = [p for p in points if p.arrival <= plan.now]
    rows: dict[str, list[Row]] = {}
    times: dict[str, dict[EntityKey, list[int]]] = {}
    last = None
    for part in plan.parts:
        inside = [p for p in readable if part.start <= p.time < part.stop]
        if part.kind is PartKind.ENTITIES:
            counts = Counter(p.entity for p in inside)
            rows[part.name] = [Row(c, entity=k) for k, c in counts.items()]
        elif part.kind is PartKind.ENTITY_WINDOWS:
            pairs = Counter((floor_to(p.time, FINE), p.entity) for p in inside)
            rows[part.name] = [Row(c, entity=k, window=w) for (w, k), c in pairs.items()]
        elif part.kind is PartKind.FINE:
            windows = Counter(floor_to(p.time, part.width.duration) for p in inside)
            rows[part.name] = [Row(c, window=w) for w, c in windows.items()]
        elif part.kind is PartKind.TIMES:
            kept = times.setdefault(part.name, {})
            for p in inside:
                kept.setdefault(p.entity, []).append(microseconds(p.time))
        else:
            assert part.name == LAST
            last = max((p.time for p in inside), default=None)
    return Answer(rows, last, times)


def recount(
    points: list[Point], period: Period, window: TrendWindow, now: datetime
) -> EventStatistics:
    """Every figure from the readable points, counted afresh."""
    start = now - period.duration
    inside = [p for p in points if p.arrival <= now and start <= p.time < now]
    counts = Counter(p.entity for p in inside)
    width = window.duration
    lookback = now - max(timedelta(days=7), period.duration)
    newest = [p.time for p in points if p.arrival <= now and lookback <= p.time < now]
    return build_event_statistics(
        events_in_period=len(inside),
        last_event=max(newest, default=None),
        entity_counts=[EntityCount(k[0], c, k[1]) for k, c in counts.items()],
        trend=[TrendPoint(min(floor_to(p.time, width) + width, now), 1) for p in inside],
        period=period,
        window=window,
        now=now,
    )


_PAIRS = [(p, w) for p in Period for w in TrendWindow if w.duration < p.duration]
# The store's settings: the hourly recount, or one every 10 minutes (so that 6 h periods get
# the prefetch too); the prefetch kept, dropped when it holds more than 3 times, or off; the
# recent part read as times, per minute (with the newest event's own part), or by turns.
_STORES = st.fixed_dictionaries(
    {
        "recount_every": st.sampled_from([timedelta(hours=1), timedelta(minutes=10)]),
        "prefetch_limit": st.sampled_from([MAX_PREFETCH, 3, 0]),
        "recent_times": st.sampled_from([RECENT_TIMES, -1, 2]),
    }
)


@st.composite
def scenarios(
    draw: st.DrawFn, *, too_late: bool
) -> tuple[Period, TrendWindow, list[Point], list[datetime]]:
    period, window = draw(st.sampled_from(_PAIRS))
    span = period.duration
    # Refresh times: irregular steps (15 s to 1 h), microseconds anywhere, some on minute
    # boundaries exactly.
    steps = draw(
        st.lists(
            st.one_of(
                st.integers(15_000_000, 3_600_000_000),
                st.sampled_from([60_000_000, 15_000_000, 300_000_000]),
            ),
            min_size=2,
            max_size=12,
        )
    )
    first = T0 + span + timedelta(microseconds=draw(st.integers(0, 120_000_000)))
    nows = [first]
    for step in steps:
        nows.append(nows[-1] + timedelta(microseconds=step))
    horizon = (nows[-1] - T0) // timedelta(microseconds=1)
    max_late = (OVERLAP if not too_late else 3 * OVERLAP) // timedelta(microseconds=1)
    raw = draw(
        st.lists(
            st.tuples(
                st.one_of(
                    st.integers(0, horizon),
                    # On and right beside minute boundaries and refresh times.
                    st.sampled_from([0, 60_000_000, horizon // 2 // 60_000_000 * 60_000_000]),
                ),
                st.sampled_from(ENTITIES),
                st.one_of(st.integers(0, max_late), st.just(0), st.just(max_late)),
            ),
            max_size=150,
        )
    )
    # Points exactly at a refresh's period start or `now` test the range bounds.
    edges = draw(st.lists(st.sampled_from(nows), max_size=4))
    # Points in the first trend window of each refresh's period, where the window is clipped.
    width = window.duration // timedelta(microseconds=1)
    offsets = draw(st.lists(st.integers(0, width), min_size=len(nows), max_size=len(nows)))
    points = [
        Point(T0 + timedelta(microseconds=t), entity, T0 + timedelta(microseconds=t + late))
        for t, entity, late in raw
    ]
    points += [Point(now - span, ENTITIES[0], now - span) for now in edges]
    points += [Point(now - timedelta(microseconds=1), ENTITIES[1], now) for now in edges]
    points += [
        Point(now - span + timedelta(microseconds=o), ENTITIES[2], T0)
        for now, o in zip(nows, offsets, strict=True)
    ]
    # Arriving right after a refresh, exactly as late as allowed (or, too_late, more).
    late = timedelta(microseconds=max_late)
    just_after = timedelta(microseconds=1)
    points += [Point(now + just_after - late, ENTITIES[3], now + just_after) for now in edges]
    return period, window, points, nows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(too_late=False), _STORES)
def test_incremental_equals_a_full_recount(
    scenario: tuple[Period, TrendWindow, list[Point], list[datetime]], options: dict[str, Any]
) -> None:
    """Points arriving up to the overlap late, in any order: identical at every refresh.

    With the leaving slices from the prefetch, from the server, or some of each.
    """
    period, window, points, nows = scenario
    store = WindowStore(period, window, **options)
    for now in nows:
        plan = store.plan(now)
        store.apply(plan, serve(points, plan))
        assert store.statistics() == recount(points, period, window, now)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(too_late=True), _STORES)
def test_points_later_than_the_overlap_cost_one_each_until_the_next_recount(
    scenario: tuple[Period, TrendWindow, list[Point], list[datetime]], options: dict[str, Any]
) -> None:
    """Too-late points: the documented deficit, exactly, and none after a full recount.

    A point arriving after refresh r-1 with its time before r-1's settled boundary is never
    added: one short while it is in the period. When it leaves, a leaving slice read from the
    server subtracts it (still one short), and so does one taken from a prefetch read after it
    arrived; a prefetch read before it arrived does not hold it: from then on exact again.
    """
    period, window, points, nows = scenario
    store = WindowStore(period, window, **options)
    history: list[Plan] = []
    for now in nows:
        plan = store.plan(now)
        store.apply(plan, serve(points, plan))
        history.append(plan)
        truth = recount(points, period, window, now)
        last_full = max(i for i, p in enumerate(history) if p.full)
        deficit: Counter[EntityKey] = Counter()
        for point in points:
            # The first refresh at which the point was readable, and the one before it.
            seen = next((i for i, p in enumerate(history) if point.arrival <= p.now), None)
            if seen is None or seen <= last_full:
                continue
            before = history[seen - 1]
            if not before.start <= point.time < before.settle_until:
                continue
            left = next(
                (i for i, p in enumerate(history) if i >= seen and point.time < p.start), None
            )
            if left is None or not any(part.name == LEAVE for part in history[left].kept):
                deficit[point.entity] += 1
                continue
            read = next(p for p in reversed(history[: left + 1]) if _sent(p, PREFETCH))
            if point.arrival <= read.now:
                deficit[point.entity] += 1
        assert store.statistics().events_in_period == truth.events_in_period - deficit.total()
        got = {(r.entity_id, r.domain): r.count for r in store.entity_counts()}
        wanted = Counter()
        for p in points:
            if p.arrival <= now and now - period.duration <= p.time < now:
                wanted[p.entity] += 1
        wanted.subtract(deficit)
        assert got == {k: v for k, v in wanted.items() if v}
        if plan.full:
            assert store.statistics() == truth


def test_steady_refresh_reads_thin_slices_whatever_the_period() -> None:
    """Besides the newest event, a steady refresh reads about 2 intervals plus the overlap.

    Except the prefetch (24 h and 7 d): once an hour, in the first refresh after a recount.
    """
    interval = timedelta(seconds=60)
    for period in Period:
        store = WindowStore(period, TrendWindow.MINUTES_1)
        now = T0 + period.duration + timedelta(seconds=7.5)
        store.apply(store.plan(now), Answer())
        for _ in range(5):
            now += interval
            plan = store.plan(now)
            store.apply(plan, Answer())
            assert not plan.full, period
            read = max(
                (
                    p.stop - p.start
                    for p in plan.parts
                    if p.kind is not PartKind.LAST and p.name != PREFETCH
                ),
                default=timedelta(0),
            )
            assert read <= interval + OVERLAP + FINE, period


def test_full_recounts_when_due() -> None:
    store = WindowStore(Period.HOUR_1, TrendWindow.MINUTES_5, recount_every=timedelta(minutes=10))
    now = T0 + timedelta(hours=2)
    assert store.plan(now).full
    store.apply(store.plan(now), Answer())
    assert not store.plan(now + timedelta(minutes=1)).full
    # Safety net, clock backwards, an interval so long the leaving slice reaches the head.
    assert store.plan(now + timedelta(minutes=10)).full
    assert store.plan(now - timedelta(seconds=1)).full
    assert store.plan(now + timedelta(minutes=59)).full
    store.invalidate()
    assert store.plan(now + timedelta(minutes=1)).full
    # A period shorter than the overlap plus a minute leaves nothing settled: always full.
    short = WindowStore(Period.MINUTES_15, TrendWindow.MINUTES_1, overlap=timedelta(minutes=15))
    short.apply(short.plan(now), Answer())
    assert short.plan(now + timedelta(minutes=1)).full


def test_settled_windows_are_handed_out_once() -> None:
    """What a delivery check needs: each fine window's per-entity counts, once it is final."""
    period, window = Period.HOUR_1, TrendWindow.MINUTES_5
    now = T0 + timedelta(hours=1, seconds=10)
    points = [
        Point(now + timedelta(seconds=s), ENTITIES[s % 2], now + timedelta(seconds=s + 1))
        for s in range(0, 600, 7)
    ]
    store = WindowStore(period, window)
    seen: Counter[tuple[datetime, EntityKey]] = Counter()
    for step in range(15):
        at = now + timedelta(minutes=step)
        plan = store.plan(at)
        store.apply(plan, serve(points, plan))
        for settled in store.settled_windows:
            for key, count in settled.counts.items():
                assert (settled.start, key) not in seen
                seen[settled.start, key] = count
    wanted = Counter(
        (floor_to(p.time, FINE), p.entity)
        for p in points
        if p.time < floor_to(now + timedelta(minutes=14) - OVERLAP, FINE)
    )
    assert seen == wanted


def test_flux_window_labels() -> None:
    minute = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert window_of_stop(minute) == minute - FINE
    assert window_of_stop(minute + timedelta(seconds=20)) == minute


def test_memory_at_seven_days_and_a_thousand_entities() -> None:
    """Under 15 MB (the bound README states): measured, with every window and entity filled.

    And the prefetch at its limit: 1,000 times for each of the 1,000 entities.
    """
    entities = [(f"sensor.s{i}", "sensor") for i in range(1000)]
    now = T0 + timedelta(days=8)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        # Recent part per minute, so that the settling windows are filled from its rows.
        store = WindowStore(Period.DAYS_7, TrendWindow.HOUR_1, recent_times=-1)
        plan = store.plan(now)
        start = now - timedelta(days=7)
        minutes = [floor_to(start, FINE) + i * FINE for i in range(7 * 24 * 60 + 1)]
        answer = Answer(
            {
                "settle": [Row(5000, entity=e) for e in entities],
                "head": [Row(7, entity=e) for e in entities],
                "fine": [Row(100, window=m) for m in minutes],
            },
            now,
        )
        store.apply(plan, answer)
        # A steady refresh with 50 minutes of settling windows for every entity, and the
        # prefetch (ranges: nothing is held for them outside the store).
        later = now + timedelta(minutes=50)
        plan = store.plan(later)
        assert not plan.full
        recent = next(p for p in plan.parts if p.name == "recent")
        windows = [recent.start + i * FINE for i in range((recent.stop - recent.start) // FINE)]
        first = microseconds(start)
        step = RECOUNT_EVERY // timedelta(microseconds=1000)
        store.apply(
            plan,
            Answer(
                {"recent": [Row(1, entity=e, window=w) for e in entities for w in windows]},
                times={
                    PREFETCH: {
                        e: range(first + i, first + i + 1000 * step, step)
                        for i, e in enumerate(entities)
                    }
                },
            ),
        )
        del answer
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert store.ready
    assert store.prefetched == MAX_PREFETCH
    assert used - before < 15 * 1024 * 1024


def test_overlap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="overlap"):
        WindowStore(Period.HOUR_1, TrendWindow.MINUTES_5, overlap=timedelta(0))


def _sent(plan: Plan, name: str) -> bool:
    return any(part.name == name for part in plan.parts)


def _steady_hour(
    store: WindowStore, points: list[Point], start: datetime, *, minutes: int = 61
) -> list[Plan]:
    """A refresh a minute (and 7.25 s) for `minutes`; each must equal a full recount."""
    plans = []
    for step in range(minutes):
        now = start + step * timedelta(minutes=1, seconds=7.25)
        plan = store.plan(now)
        store.apply(plan, serve(points, plan))
        assert store.statistics() == recount(points, store.period, store.window, now), step
        plans.append(plan)
    return plans


def _every_13_seconds(start: datetime, stop: datetime) -> list[Point]:
    count = (stop - start) // timedelta(seconds=13)
    return [
        Point(t, ENTITIES[i % len(ENTITIES)], t)
        for i in range(count)
        if (t := start + i * timedelta(seconds=13, microseconds=1001))
    ]


@pytest.mark.parametrize("period", [Period.HOURS_24, Period.DAYS_7])
def test_the_leaving_slices_come_from_the_prefetch(period: Period) -> None:
    """Long periods: no leaving slice is read between two full recounts, figures exact."""
    now = T0 + period.duration + timedelta(hours=2, microseconds=17)
    points = _every_13_seconds(T0, now + timedelta(hours=2))
    store = WindowStore(period, TrendWindow.HOUR_1)
    plans = _steady_hour(store, points, now)
    full = [i for i, plan in enumerate(plans) if plan.full]
    assert full == [0, 54]  # the hourly recount, 54 refreshes of 67.25 s later
    # Read once after each full recount, with the first leaving slice: from the period's
    # start to where the period will start at the next full recount.
    assert [i for i, plan in enumerate(plans) if _sent(plan, PREFETCH)] == [1, 55]
    prefetch = plans[1].part(PREFETCH)
    assert prefetch is not None
    assert prefetch.kind is PartKind.TIMES
    assert (prefetch.start, prefetch.stop) == (plans[0].start, plans[0].start + RECOUNT_EVERY)
    for plan in plans[1:]:
        assert not _sent(plan, LEAVE)
        assert [part.name for part in plan.kept] == ([LEAVE] if not plan.full else [])


@pytest.mark.parametrize(
    ("period", "options"),
    [
        (Period.HOURS_24, {"prefetch_limit": 100}),  # more prefetched times than kept
        (Period.HOURS_24, {"prefetch_limit": 0}),  # prefetch off
        (Period.HOURS_6, {}),  # too short a period for the hourly recount
        (Period.HOURS_6, {"recount_every": timedelta(minutes=30)}),  # 12x: still too short
    ],
)
def test_without_a_prefetch_the_leaving_slices_are_read(
    period: Period, options: dict[str, Any]
) -> None:
    now = T0 + period.duration + timedelta(hours=2, microseconds=17)
    points = _every_13_seconds(T0, now + timedelta(hours=2))
    store = WindowStore(period, TrendWindow.MINUTES_15, **options)
    plans = _steady_hour(store, points, now, minutes=20)
    # Only the 24 h period with a limit reads the prefetch: used once (for its leaving
    # slice), then dropped, so the later slices are read.
    over_the_limit = options.get("prefetch_limit", 0) > 0
    assert [_sent(plan, PREFETCH) for plan in plans[:2]] == [False, over_the_limit]
    for plan in plans[2:]:
        assert not plan.full
        assert not plan.kept
        assert [part.name for part in plan.parts].count(LEAVE) == 1


def test_a_prefetch_that_stops_short_is_left_for_the_server() -> None:
    """A leaving slice past the prefetch's end is read (here: a 10-minute prefetch)."""
    period = Period.HOURS_24
    now = T0 + period.duration + timedelta(hours=2)
    points = _every_13_seconds(T0, now + timedelta(hours=2))
    # The prefetch stops at the full recount's settled boundary: with a 23 h 50 min overlap
    # that is 10 minutes after the period's start.
    store = WindowStore(period, TrendWindow.HOUR_1, overlap=timedelta(hours=23, minutes=50))
    plans = _steady_hour(store, points, now, minutes=15)
    kept = [bool(plan.kept) for plan in plans[1:]]
    assert kept[:8] == [True] * 8
    assert kept[-4:] == [False] * 4


def test_points_changed_in_the_prefetched_range_are_corrected_by_the_next_recount() -> None:
    """Deleted or too late there: off by one each until the next full recount at most.

    Before the prefetch is read (between the full recount and the next refresh) until that
    recount; after it, only while the point is in the period: once it left, what left is
    what the prefetch held, exact again.
    """
    period, window = Period.HOURS_24, TrendWindow.HOUR_1
    now = T0 + period.duration + timedelta(hours=2)
    points = _every_13_seconds(T0, now + timedelta(hours=3))
    store = WindowStore(period, window)
    minute = timedelta(minutes=1)
    start = now - period.duration
    changed: list[tuple[Point, int, bool]] = []  # the point, its offset, before the prefetch

    def change(at: timedelta, *, before: bool) -> None:
        gone = next(p for p in points if p.time >= start + at)
        points.remove(gone)
        late = Point(start + at + minute, ENTITIES[1], store.plan(now).now + minute)
        points.append(late)
        changed.extend([(gone, 1, before), (late, -1, before)])

    for step in range(70):
        at = now + step * minute
        plan = store.plan(at)
        store.apply(plan, serve(points, plan))
        assert plan.full is (step in {0, 60})
        assert _sent(plan, PREFETCH) is (step in {1, 61})
        wanted = Counter(p.entity for p in points if at - period.duration <= p.time < at)
        for point, offset, before in changed:
            # The recount at step 60 takes in the server's points as they are.
            if 0 < step < 60 and (before or plan.start <= point.time):
                wanted[point.entity] += offset
        got = Counter({(r.entity_id, r.domain): r.count for r in store.entity_counts()})
        assert got == wanted, step
        if plan.full:
            assert store.statistics() == recount(points, period, window, at)
        if step < 2:
            change(timedelta(minutes=20 + 20 * step), before=step == 0)
    assert plan.start > max(point.time for point, _offset, _before in changed)
