"""One deterministic data set for both InfluxDB backends, and its expected statistics.

The points mix schema A (R1) and schema B (R2) events of 13 domains (one entity writes both
schemas, one schema-A entity id needs line-protocol escaping), `service_metrics` rows (one
service has an older and a newer sample, one sample lies before the period), auxiliary
measurements that must never count (one of them carries `entity_id`/`domain` tags), an event
of schema A+ with extra tags and fields, and events before the period. The event rate rises
over the period, so the trend has a direction.

`expected_event_statistics` / `expected_processing_metrics` compute every figure again in
plain Python from the generated events, without the backends' or `api/core/aggregate.py`'s code for
the core numbers, so a backend that counts wrongly fails.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from custom_components.ha_ingestor.api.core.aggregate import trend_direction
from custom_components.ha_ingestor.api.core.models import (
    EventStatistics,
    Period,
    ProcessingMetrics,
    TrendPoint,
    TrendWindow,
)
from tests.support.events import (
    DEFAULT_ENTITIES,
    MEASUREMENT,
    PRECISION,
    EntitySpec,
    Event,
    EventGenerator,
    Schema,
    ServiceMetricsSample,
    auxiliary_lines,
    event_line,
    line,
    service_metrics_line,
    to_ns,
    truncate_to_ms,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.events import AttributeValue

SEED = 20251101
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Points keep this far from the period's start and from `now`, so a server that reads the
# range a little differently (inclusive/exclusive bounds) still sees the same points.
MARGIN = timedelta(seconds=30)


def _toggle(rng: random.Random, old: str | None) -> str:
    if old is None:
        return rng.choice(("open", "closed"))
    return "closed" if old == "open" else "open"


def _level(rng: random.Random, _old: str | None) -> str:
    return str(rng.randint(0, 100))


def _named(name: str) -> Callable[[random.Random, str], dict[str, AttributeValue]]:
    def build(_rng: random.Random, _state: str) -> dict[str, AttributeValue]:
        return {"friendly_name": name}

    return build


EXTRA_ENTITIES: tuple[EntitySpec, ...] = (
    EntitySpec("cover.garage_door", _toggle, _named("Garage Door"), weight=2),
    EntitySpec("lock.front_door", _toggle, _named("Front Door Lock"), weight=1),
    EntitySpec("fan.bedroom", _level, _named("Bedroom Fan"), weight=1),
    EntitySpec("vacuum.robot", _toggle, _named("Robot"), weight=1),
)
# Schema A accepts any entity id; this one needs escaping of `,`, `=` and ` ` in a tag.
ODD_ENTITY = EntitySpec(
    "sensor.odd=name, with space",
    _level,
    _named("Odd, name"),
    weight=1,
)


@dataclass(frozen=True)
class StoredEvent:
    """An event point as the server stores it: entity, schema and exact instant."""

    entity_id: str
    schema: Schema
    time: datetime


@dataclass(frozen=True)
class Dataset:
    """Everything written, and what a correct backend must report for it."""

    now: datetime
    period: Period
    window: TrendWindow
    lines: list[str]
    events: list[StoredEvent]
    service_metrics: list[ServiceMetricsSample] = field(default_factory=list)
    precision: str = PRECISION

    @property
    def start(self) -> datetime:
        """First instant of the period (inclusive)."""
        return self.now - self.period.duration


def _stored(event: Event, schema: Schema) -> StoredEvent:
    # Schema B keeps milliseconds only (the R2 writer), schema A the full instant.
    when = truncate_to_ms(event.time) if schema is Schema.B else event.time
    return StoredEvent(event.entity_id, schema, when.astimezone(UTC))


def build_dataset(
    now: datetime,
    *,
    seed: int = SEED,
    period: Period = Period.HOUR_1,
    window: TrendWindow = TrendWindow.MINUTES_5,
) -> Dataset:
    """The mixed data set relative to `now` (aware)."""
    now = now.astimezone(UTC)
    start = now - period.duration
    lines: list[str] = []
    stored: list[StoredEvent] = []

    def add(events: list[Event], schema: Schema) -> None:
        for event in events:
            lines.append(event_line(event, schema))
            stored.append(_stored(event, schema))

    entities_a = (*DEFAULT_ENTITIES, *EXTRA_ENTITIES[:2], ODD_ENTITY)
    entities_b = (*DEFAULT_ENTITIES, *EXTRA_ENTITIES)
    generator_a = EventGenerator(seed, entities_a)
    generator_b = EventGenerator(seed + 1, entities_b)
    early_stop = start - MARGIN
    # Before the period: both schemas, up to five days back (inside the 7-day look-back).
    add(
        generator_a.events_between(60, now - timedelta(days=5), early_stop - timedelta(hours=2)),
        Schema.A,
    )
    add(generator_b.events_between(40, early_stop - timedelta(hours=2), early_stop), Schema.B)
    # In the period: R1 first, then the switch to R2, at a rising rate.
    first = start + MARGIN
    third = (now - start) / 3
    add(generator_a.events_between(50, first, start + third), Schema.A)
    add(generator_b.events_between(20, start + third, start + 2 * third), Schema.B)
    add(generator_a.events_between(30, start + third, start + 2 * third), Schema.A)
    add(generator_b.events_between(160, start + 2 * third, now - MARGIN), Schema.B)
    # Schema A+ (transitional): extra tags and fields, still one `state` field.
    a_plus_time = start + third + timedelta(seconds=7, microseconds=123)
    lines.append(
        line(
            MEASUREMENT,
            {
                "area_id": "living_room",
                "device_id": "dev42",
                "entity_id": "sensor.outdoor_weather",
                "event_type": "state_changed",
                "integration": "met",
                "time_of_day": "evening",
                "weather_condition": "cloudy",
            },
            {
                "state": "12.5",
                "old_state": "12.1",
                "duration_in_state_seconds": 600.0,
                "weather_temp": 12.5,
                "weather_humidity": 81,
            },
            to_ns(a_plus_time),
        )
    )
    stored.append(StoredEvent("sensor.outdoor_weather", Schema.A, a_plus_time))

    rng = random.Random(seed)  # noqa: S311
    lines.extend(auxiliary_lines(first, now - MARGIN, 40, seed))
    # Tags entity_id and domain, but another measurement: never an event.
    lines.extend(
        line(
            "event_energy_correlation",
            {
                "domain": "switch",
                "entity_id": "switch.coffee_maker",
                "previous_state": "off",
                "state": "on",
            },
            {
                "power_before_w": 3.0,
                "power_after_w": round(rng.uniform(800.0, 1200.0), 1),
                "power_delta_w": 900.0,
                "power_delta_pct": 30000.0,
            },
            to_ns(now - timedelta(minutes=minutes, seconds=3)),
        )
        for minutes in (5, 17, 29)
    )
    samples = [
        # Before the period: must not count.
        ServiceMetricsSample(
            "websocket-ingestion", start - timedelta(minutes=10), 9000, 9000, 900, 5000.0, 10.0
        ),
        ServiceMetricsSample(
            "websocket-ingestion", start + timedelta(minutes=12), 1000, 1000, 1, 40.5, 99.9
        ),
        ServiceMetricsSample(
            "websocket-ingestion", now - timedelta(minutes=5), 1250, 1250, 3, 42.7, 99.76
        ),
        ServiceMetricsSample(
            "enrichment-pipeline",
            now - timedelta(minutes=4),
            1247,
            1247,
            40,
            1350.0,
            93.2,
            error=2,
        ),
    ]
    lines.extend(service_metrics_line(sample) for sample in samples)
    return Dataset(now, period, window, lines, stored, samples)


# --------------------------------------------------------------------------------------
# Independent expectations
# --------------------------------------------------------------------------------------


def _in_period(data: Dataset, when: datetime) -> bool:
    return data.start <= when < data.now


def expected_trend(data: Dataset) -> tuple[TrendPoint, ...]:
    """Epoch-aligned windows over [start, now); each point at its window's (clipped) end."""
    width_ns = int(data.window.duration.total_seconds()) * 1_000_000_000
    start_ns = to_ns(data.start)
    now_ns = to_ns(data.now)
    counts: dict[int, int] = {}
    boundary = start_ns - start_ns % width_ns
    while boundary < now_ns:
        counts[boundary] = 0
        boundary += width_ns
    for event in data.events:
        moment = to_ns(event.time)
        if start_ns <= moment < now_ns:
            counts[moment - moment % width_ns] += 1
    return tuple(
        TrendPoint(
            time=EPOCH + timedelta(microseconds=min(window + width_ns, now_ns) // 1000),
            count=count,
        )
        for window, count in sorted(counts.items())
    )


def expected_event_statistics(data: Dataset) -> EventStatistics:
    """Every event figure, recomputed from the stored events."""
    in_period = [e for e in data.events if _in_period(data, e.time)]
    per_domain: dict[str, int] = {}
    for event in in_period:
        domain = event.entity_id.split(".", 1)[0]
        per_domain[domain] = per_domain.get(domain, 0) + 1
    ranked = sorted(per_domain.items(), key=lambda item: (-item[1], item[0]))[:10]
    trend = expected_trend(data)
    width = data.window.duration
    # Complete windows only: wholly inside the period (the clipped first/last are not).
    complete = [
        point.count
        for point in trend
        if point.time - width >= data.start and (point.time - EPOCH) % width == timedelta(0)
    ]
    minutes = data.period.duration.total_seconds() / 60
    return EventStatistics(
        events_in_period=len(in_period),
        events_per_minute=round(len(in_period) / minutes, 2),
        last_event=max(e.time for e in data.events if e.time < data.now),
        active_entities=len({e.entity_id for e in in_period}),
        events_by_domain=tuple(ranked),
        trend=trend,
        trend_direction=trend_direction(complete),
    )


def expected_processing_metrics(data: Dataset) -> ProcessingMetrics:
    """`service_metrics` figures of the period, recomputed from the samples."""
    rows = [s for s in data.service_metrics if _in_period(data, s.time)]
    if not rows:
        return ProcessingMetrics()
    errors = sum(s.write_errors + (s.error or 0) for s in rows)
    attempts = sum(s.write_attempts + s.events_processed for s in rows)
    latest: dict[str, ServiceMetricsSample] = {}
    for sample in rows:
        if sample.service not in latest or sample.time > latest[sample.service].time:
            latest[sample.service] = sample
    services = sorted(latest)
    return ProcessingMetrics(
        error_rate=round(errors / attempts * 100, 2),
        success_rate=round(sum(latest[s].success_rate for s in services) / len(services), 2),
        processing_time_ms=round(
            sum(latest[s].processing_time_ms for s in services) / len(services), 2
        ),
    )
