"""The shared arithmetic of both InfluxDB backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.ha_ingestor.api.core.aggregate import (
    EntityCount,
    active_entities,
    as_utc,
    build_event_statistics,
    build_processing_metrics,
    complete_trend,
    complete_window_counts,
    domain_of,
    error_rate,
    events_per_minute,
    mean_over_services,
    period_bounds,
    top_domains,
    trend_direction,
    window_ends,
)
from custom_components.ha_ingestor.api.core.models import (
    Period,
    TrendDirection,
    TrendPoint,
    TrendWindow,
)

ALIGNED_NOW = datetime(2025, 11, 1, 17, 0, tzinfo=UTC)
UNALIGNED_NOW = datetime(2025, 11, 1, 17, 2, 30, 123456, tzinfo=UTC)


def test_domain_tag_wins_over_prefix() -> None:
    assert domain_of("sensor.kitchen") == "sensor"
    assert domain_of("sensor.kitchen", "light") == "light"
    assert domain_of("sensor.kitchen", "") == "sensor"
    assert domain_of("no_dot") == "no_dot"
    assert domain_of("a.b.c") == "a"


def test_top_domains_orders_by_count_then_name_and_merges_schemas() -> None:
    rows = [
        EntityCount("light.kitchen", 3, None),  # schema A, no tag
        EntityCount("light.kitchen", 4, "light"),  # schema B
        EntityCount("sensor.t", 7, "sensor"),
        EntityCount("switch.x", 2),
        EntityCount("binary_sensor.m", 2),
        EntityCount("zwave.dead", 0),
        EntityCount("", 5),  # a point without entity_id and without domain
        EntityCount("", 1, "climate"),  # ...or with only a domain tag
    ]
    assert top_domains(rows) == (
        ("light", 7),
        ("sensor", 7),
        ("binary_sensor", 2),
        ("switch", 2),
        ("climate", 1),
    )


def test_top_domains_keeps_ten() -> None:
    rows = [EntityCount(f"d{i:02}.e", 100 - i) for i in range(15)]
    result = top_domains(rows)
    assert len(result) == 10
    assert [name for name, _ in result] == [f"d{i:02}" for i in range(10)]
    assert top_domains(rows, limit=3) == (("d00", 100), ("d01", 99), ("d02", 98))


def test_active_entities_counts_distinct_ids_with_events() -> None:
    rows = [
        EntityCount("light.kitchen", 3),
        EntityCount("light.kitchen", 4, "light"),
        EntityCount("sensor.t", 1, "sensor"),
        EntityCount("switch.idle", 0),
        EntityCount("", 9),
    ]
    assert active_entities(rows) == 2
    assert active_entities([]) == 0


@pytest.mark.parametrize(
    ("period", "events", "expected"),
    [
        (Period.MINUTES_15, 100, 6.67),
        (Period.HOUR_1, 100, 1.67),
        (Period.HOURS_6, 1000, 2.78),
        (Period.HOURS_24, 1440, 1.0),
        (Period.DAYS_7, 5, 0.0),
        (Period.HOUR_1, 0, 0.0),
    ],
)
def test_events_per_minute(period: Period, events: int, expected: float) -> None:
    assert events_per_minute(events, period) == expected


def test_events_per_minute_unknown_stays_unknown() -> None:
    assert events_per_minute(None, Period.HOUR_1) is None


def test_as_utc() -> None:
    naive = datetime(2025, 1, 1, 12, 0)  # noqa: DTZ001
    assert as_utc(naive) == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    plus2 = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(plus2).tzinfo is UTC
    assert as_utc(plus2) == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_window_ends_aligned_now() -> None:
    ends = window_ends(Period.HOUR_1, TrendWindow.MINUTES_5, ALIGNED_NOW)
    assert len(ends) == 12
    assert ends[0] == datetime(2025, 11, 1, 16, 5, tzinfo=UTC)
    assert ends[-1] == ALIGNED_NOW


def test_window_ends_unaligned_now_clips_both_ends() -> None:
    ends = window_ends(Period.HOUR_1, TrendWindow.MINUTES_5, UNALIGNED_NOW)
    # [16:02:30, 16:05) ... [17:00, 17:02:30): 13 windows, the first and last clipped.
    assert len(ends) == 13
    assert ends[0] == datetime(2025, 11, 1, 16, 5, tzinfo=UTC)
    assert ends[-2] == datetime(2025, 11, 1, 17, 0, tzinfo=UTC)
    assert ends[-1] == UNALIGNED_NOW


def test_window_ends_window_longer_than_period() -> None:
    ends = window_ends(Period.MINUTES_15, TrendWindow.HOUR_1, UNALIGNED_NOW)
    assert ends == (datetime(2025, 11, 1, 17, 0, tzinfo=UTC), UNALIGNED_NOW)
    inside = datetime(2025, 11, 1, 17, 20, tzinfo=UTC)
    assert window_ends(Period.MINUTES_15, TrendWindow.HOUR_1, inside) == (inside,)
    now = datetime(2025, 11, 1, 17, 10, tzinfo=UTC)
    assert window_ends(Period.MINUTES_15, TrendWindow.HOUR_1, now) == (
        datetime(2025, 11, 1, 17, 0, tzinfo=UTC),
        now,
    )


@settings(max_examples=200, deadline=None)
@given(
    now=st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    period=st.sampled_from(list(Period)),
    window=st.sampled_from(list(TrendWindow)),
)
def test_window_ends_cover_the_range(now: datetime, period: Period, window: TrendWindow) -> None:
    start, stop = period_bounds(period, now)
    ends = window_ends(period, window, now)
    assert ends[-1] == stop
    assert all(a < b for a, b in pairwise(ends))
    assert ends[0] > start
    assert ends[0] - start <= window.duration
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert all((end - epoch) % window.duration == timedelta(0) for end in ends[:-1])


def test_complete_trend_fills_missing_windows_and_ignores_strangers() -> None:
    points = [
        TrendPoint(datetime(2025, 11, 1, 16, 10, tzinfo=UTC), 4),
        TrendPoint(datetime(2025, 11, 1, 18, 10, tzinfo=UTC), 99),  # not a window of the range
        TrendPoint(ALIGNED_NOW, 2),
        TrendPoint(datetime(2025, 11, 1, 16, 10, tzinfo=UTC), 1),  # same window twice: added
    ]
    trend = complete_trend(points, Period.HOUR_1, TrendWindow.MINUTES_5, ALIGNED_NOW)
    assert [p.count for p in trend] == [0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert [p.time for p in trend] == list(
        window_ends(Period.HOUR_1, TrendWindow.MINUTES_5, ALIGNED_NOW)
    )


def test_complete_window_counts_drop_clipped_windows() -> None:
    ends = window_ends(Period.HOUR_1, TrendWindow.MINUTES_5, UNALIGNED_NOW)
    trend = [TrendPoint(end, i) for i, end in enumerate(ends)]
    counts = complete_window_counts(trend, Period.HOUR_1, TrendWindow.MINUTES_5, UNALIGNED_NOW)
    assert counts == list(range(1, 12))
    aligned = [
        TrendPoint(end, i)
        for i, end in enumerate(window_ends(Period.HOUR_1, TrendWindow.MINUTES_5, ALIGNED_NOW))
    ]
    assert complete_window_counts(
        aligned, Period.HOUR_1, TrendWindow.MINUTES_5, ALIGNED_NOW
    ) == list(range(12))


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([], None),
        ([1, 2, 3], None),
        ([0, 0, 0, 0], TrendDirection.STEADY),
        ([10, 10, 50, 50], TrendDirection.RISING),
        ([50, 50, 10, 10], TrendDirection.FALLING),
        ([100, 100, 105, 105], TrendDirection.STEADY),  # within 10 %
        ([100, 100, 112, 112], TrendDirection.RISING),  # 24 > 22.4
        ([0, 0, 1, 1], TrendDirection.STEADY),  # one event per window
        ([0, 0, 2, 1], TrendDirection.RISING),
        ([10, 10, 999, 10, 10], TrendDirection.STEADY),  # odd: the middle window is left out
        ([5, 5, 5, 0, 0, 0], TrendDirection.FALLING),
    ],
)
def test_trend_direction(counts: list[int], expected: TrendDirection | None) -> None:
    assert trend_direction(counts) is expected


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40))
def test_trend_direction_is_antisymmetric(counts: list[int]) -> None:
    forward = trend_direction(counts)
    backward = trend_direction(counts[::-1])
    flipped = {
        TrendDirection.RISING: TrendDirection.FALLING,
        TrendDirection.FALLING: TrendDirection.RISING,
        TrendDirection.STEADY: TrendDirection.STEADY,
        None: None,
    }
    assert backward is flipped[forward]


def test_build_event_statistics() -> None:
    now = UNALIGNED_NOW
    ends = window_ends(Period.HOUR_1, TrendWindow.MINUTES_5, now)
    sparse = [TrendPoint(ends[i], 10 * i) for i in (1, 3, 11)]
    stats = build_event_statistics(
        events_in_period=150,
        last_event=datetime(2025, 11, 1, 18, 2, tzinfo=timezone(timedelta(hours=1))),
        entity_counts=[
            EntityCount("light.a", 100, "light"),
            EntityCount("sensor.b", 50),
        ],
        trend=sparse,
        period=Period.HOUR_1,
        window=TrendWindow.MINUTES_5,
        now=now,
    )
    assert stats.events_in_period == 150
    assert stats.events_per_minute == 2.5
    assert stats.last_event == datetime(2025, 11, 1, 17, 2, tzinfo=UTC)
    assert stats.last_event.tzinfo is UTC
    assert stats.active_entities == 2
    assert stats.events_by_domain == (("light", 100), ("sensor", 50))
    assert len(stats.trend) == 13
    assert [p.count for p in stats.trend] == [0, 10, 0, 30, 0, 0, 0, 0, 0, 0, 0, 110, 0]
    # complete windows 1..11: first half [10,0,30,0,0] = 40, last half [0,0,0,0,110] = 110
    assert stats.trend_direction is TrendDirection.RISING


def test_build_event_statistics_unknown_events() -> None:
    stats = build_event_statistics(
        events_in_period=None,
        last_event=None,
        entity_counts=[],
        trend=[],
        period=Period.MINUTES_15,
        window=TrendWindow.MINUTES_5,
        now=ALIGNED_NOW,
    )
    assert stats.events_in_period is None
    assert stats.events_per_minute is None
    assert stats.last_event is None
    assert stats.active_entities == 0
    assert stats.events_by_domain == ()
    assert [p.count for p in stats.trend] == [0, 0, 0]
    assert stats.trend_direction is None


def test_error_rate() -> None:
    assert error_rate(45, 4994) == 0.9
    assert error_rate(0, 10) == 0.0
    assert error_rate(1, 0) is None
    assert error_rate(None, 10) is None
    assert error_rate(1, None) is None


def test_mean_over_services() -> None:
    assert mean_over_services({"b": 93.2, "a": 99.76}) == 96.48
    assert mean_over_services({"a": None, "b": 42.7}) == 42.7
    assert mean_over_services({}) is None
    assert mean_over_services({"a": None}) is None


def test_build_processing_metrics_from_the_contract_fixture() -> None:
    metrics = build_processing_metrics(
        errors=3 + 40 + 2,
        attempts=1250 + 1250 + 1247 + 1247,
        success_rates={"websocket-ingestion": 99.76, "enrichment-pipeline": 93.2},
        processing_times={"websocket-ingestion": 42.7, "enrichment-pipeline": 1350.0},
    )
    assert metrics.error_rate == 0.9
    assert metrics.success_rate == 96.48
    assert metrics.processing_time_ms == 696.35


def test_build_processing_metrics_without_rows_is_unknown() -> None:
    metrics = build_processing_metrics(
        errors=None, attempts=None, success_rates={}, processing_times={}
    )
    assert metrics.error_rate is None
    assert metrics.success_rate is None
    assert metrics.processing_time_ms is None


def test_build_event_statistics_unreadable_parts_stay_unknown() -> None:
    stats = build_event_statistics(
        events_in_period=12,
        last_event=None,
        entity_counts=None,
        trend=None,
        period=Period.HOUR_1,
        window=TrendWindow.MINUTES_5,
        now=ALIGNED_NOW,
    )
    assert stats.events_in_period == 12
    assert stats.active_entities is None
    assert stats.events_by_domain == ()
    assert stats.trend == ()
    assert stats.trend_direction is None
