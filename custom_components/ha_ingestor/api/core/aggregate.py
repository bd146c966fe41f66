"""Client-side arithmetic both InfluxDB backends share, so Flux and InfluxQL agree exactly.

The servers aggregate (counts per entity, per window, sums of `service_metrics`); everything
turned from those numbers into the snapshot happens here, once:

* Time range: a refresh covers ``[now - period, now)`` (start inclusive, stop exclusive, Flux's
  ``range`` semantics), with the same absolute ``now`` for every figure.
* Trend windows are aligned to the Unix epoch (Flux ``aggregateWindow`` and InfluxQL
  ``GROUP BY time()`` both do) and clipped to the range; a point's ``time`` is its window's
  END, so the last point ends at ``now``. Windows the server left out count 0; every window of
  the range is present, in time order.
* ``events_per_minute`` = events in period / period length in minutes, rounded to 2 decimals
  (what the ingestor's own Q1 reports).
* Top domains: the ``domain`` tag when the point has one (schema B), else the ``entity_id``
  prefix before the first ``.`` (schema A); at most 10, most events first, ties by name.
* Active entities: distinct non-empty ``entity_id`` values with at least one event.
* Trend direction: computed on COMPLETE windows only (a clipped first or last window would
  look like a drop). With fewer than 4 complete windows it is ``None``. Otherwise the first
  half of the windows is compared with the last half (the middle one is left out when the
  count is odd): STEADY when the totals differ by at most 10 % of the larger total or by at
  most one event per window, else RISING or FALLING. Integer arithmetic only.
* ``service_metrics``: error rate = sum(write_errors + error) / sum(write_attempts +
  events_processed) x 100; success rate and processing time = the mean over services (sorted
  by name) of each service's latest value. All rounded to 2 decimals; ``None`` without rows or
  with a zero denominator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .models import EventStatistics, ProcessingMetrics, TrendDirection, TrendPoint

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from .models import Period, TrendWindow

TOP_DOMAINS = 10
MIN_TREND_WINDOWS = 4
# Relative tolerance of the trend comparison, as a fraction 1/TREND_TOLERANCE_DIVISOR.
TREND_TOLERANCE_DIVISOR = 10
ROUND_DIGITS = 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EntityCount:
    """Events of one entity in the period, as one server-side group returned them.

    `domain` is the point's `domain` tag (schema B) or None when the points have none
    (schema A). One entity may come twice (once per schema) in a mixed database.
    """

    entity_id: str
    count: int
    domain: str | None = None


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is taken to be UTC already.

    docs/ingestor-contracts.md#quirk-naive-timestamps
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """An RFC3339 UTC literal with microseconds, the same for Flux and InfluxQL queries."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def first_known[T](*values: T | None) -> T | None:
    """The first value that is known (None = unknown, so 0 counts as known)."""
    return next((v for v in values if v is not None), None)


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """Start (inclusive) and stop (exclusive) of the statistics range, in UTC."""
    stop = as_utc(now)
    return stop - period.duration, stop


def window_ends(period: Period, window: TrendWindow, now: datetime) -> tuple[datetime, ...]:
    """End time of every trend window of the range, epoch-aligned and clipped to `now`."""
    start, stop = period_bounds(period, now)
    width = window.duration
    boundary = EPOCH + ((start - EPOCH) // width) * width
    ends: list[datetime] = []
    while boundary < stop:
        ends.append(min(boundary + width, stop))
        boundary += width
    return tuple(ends)


def complete_trend(
    points: Iterable[TrendPoint], period: Period, window: TrendWindow, now: datetime
) -> tuple[TrendPoint, ...]:
    """Every window of the range in time order; windows missing from `points` count 0.

    Points at times that are no window end of the range are ignored: the backends then agree
    whichever way their server fills or clips windows.
    """
    counts: dict[datetime, int] = {}
    for point in points:
        key = as_utc(point.time)
        counts[key] = counts.get(key, 0) + point.count
    return tuple(
        TrendPoint(time=end, count=counts.get(end, 0)) for end in window_ends(period, window, now)
    )


def domain_of(entity_id: str, domain_tag: str | None = None) -> str:
    """The domain tag when present, else the entity_id's prefix before the first `.`."""
    if domain_tag:
        return domain_tag
    return entity_id.partition(".")[0]


def top_domains(
    entity_counts: Iterable[EntityCount], limit: int = TOP_DOMAINS
) -> tuple[tuple[str, int], ...]:
    """Events per domain: most events first, ties by name, at most `limit` entries."""
    totals: dict[str, int] = {}
    for row in entity_counts:
        if row.count <= 0:
            continue
        domain = domain_of(row.entity_id, row.domain)
        if not domain:
            continue
        totals[domain] = totals.get(domain, 0) + row.count
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:limit])


def active_entities(entity_counts: Iterable[EntityCount]) -> int:
    """Distinct non-empty entity_ids with at least one event."""
    return len({row.entity_id for row in entity_counts if row.entity_id and row.count > 0})


def events_per_minute(events_in_period: int | None, period: Period) -> float | None:
    """Events per minute over the period, rounded to 2 decimals; None when events are unknown."""
    if events_in_period is None:
        return None
    minutes = period.duration / timedelta(minutes=1)
    return round(events_in_period / minutes, ROUND_DIGITS)


def complete_window_counts(
    trend: Sequence[TrendPoint], period: Period, window: TrendWindow, now: datetime
) -> list[int]:
    """Counts of the windows that lie wholly inside the range (the clipped ends left out)."""
    start, _stop = period_bounds(period, now)
    width = window.duration
    return [
        point.count
        for point in trend
        if point.time - width >= start and (point.time - EPOCH) % width == timedelta(0)
    ]


def trend_direction(counts: Sequence[int]) -> TrendDirection | None:
    """Direction of the complete-window counts, defined in the module docstring."""
    if len(counts) < MIN_TREND_WINDOWS:
        return None
    half = len(counts) // 2
    first = sum(counts[:half])
    last = sum(counts[-half:])
    delta = last - first
    if TREND_TOLERANCE_DIVISOR * abs(delta) <= max(first, last) or abs(delta) <= half:
        return TrendDirection.STEADY
    return TrendDirection.RISING if delta > 0 else TrendDirection.FALLING


def build_event_statistics(  # noqa: PLR0913
    *,
    events_in_period: int | None,
    last_event: datetime | None,
    entity_counts: Iterable[EntityCount] | None,
    trend: Iterable[TrendPoint] | None,
    period: Period,
    window: TrendWindow,
    now: datetime,
) -> EventStatistics:
    """The event figures of one refresh from what the server aggregated.

    `trend` may be sparse (only windows that had events) and in any order. `None` for
    `entity_counts` or `trend` means that part could not be read: its figures stay unknown
    (no active entities, no domains, no trend, no direction) instead of becoming zeros.
    """
    rows = None if entity_counts is None else tuple(entity_counts)
    points = () if trend is None else complete_trend(trend, period, window, now)
    return EventStatistics(
        events_in_period=events_in_period,
        events_per_minute=events_per_minute(events_in_period, period),
        last_event=None if last_event is None else as_utc(last_event),
        active_entities=None if rows is None else active_entities(rows),
        events_by_domain=() if rows is None else top_domains(rows),
        trend=points,
        trend_direction=(
            None
            if trend is None
            else trend_direction(complete_window_counts(points, period, window, now))
        ),
    )


def error_rate(errors: float | None, attempts: float | None) -> float | None:
    """Errors per attempt in percent, 2 decimals; None when either is unknown or attempts is 0."""
    if errors is None or attempts is None or attempts <= 0:
        return None
    return round(errors / attempts * 100, ROUND_DIGITS)


def mean_over_services(latest: Mapping[str, float | None]) -> float | None:
    """Mean of each service's latest value (services sorted by name), 2 decimals."""
    values = [value for _service, value in sorted(latest.items()) if value is not None]
    if not values:
        return None
    return round(sum(values) / len(values), ROUND_DIGITS)


def build_processing_metrics(
    *,
    errors: float | None,
    attempts: float | None,
    success_rates: Mapping[str, float | None],
    processing_times: Mapping[str, float | None],
) -> ProcessingMetrics:
    """`service_metrics` figures; every input None/empty (no rows) gives an all-None result.

    `errors` = sum of write_errors and error, `attempts` = sum of write_attempts and
    events_processed over the period (None when no row has any of those fields);
    `success_rates` / `processing_times` map each service to its latest value.
    """
    return ProcessingMetrics(
        error_rate=error_rate(errors, attempts),
        success_rate=mean_over_services(success_rates),
        processing_time_ms=mean_over_services(processing_times),
    )
