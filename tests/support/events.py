"""Realistic HA Ingestor points as InfluxDB line protocol.

Schemas A and B: docs/ingestor-contracts.md#event-schemas-a-and-b.

Every line this module builds carries a **nanosecond** timestamp, whatever the schema, so a
caller can write a mixed schema A + schema B data set in one request with `precision=ns`
(`PRECISION`). Schema B times are first truncated to the millisecond, as the R2 writer does,
so the stored instants are the ones the real ingestor would store. The points themselves are
built by the integration's own builder (`api/influx/write.py`), the one the backfill writes with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from custom_components.ha_ingestor.api.influx.write import (
    EventState,
    FieldValue,
    Point,
    Precision,
    Schema,
    line,
    normalise_state_r1,
    schema_a_point,
    schema_b_point,
    to_ns,
    truncate_to_ms,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

# The builder's names some tests import from here, beside this module's own.
__all__ = ["normalise_state_r1", "to_ns", "truncate_to_ms"]

MEASUREMENT: Final = "home_assistant_events"
EVENT_TYPE: Final = "state_changed"
PRECISION: Final = "ns"

type AttributeValue = str | int | float | bool


@dataclass(frozen=True)
class Event:
    """One HA `state_changed` event, before any ingestor touched it.

    `attributes` hold Home Assistant's raw values (ints stay ints, units stay "°C"); the
    schema functions apply each revision's own distortions.
    """

    entity_id: str
    time: datetime
    state: str
    old_state: str | None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    old_attributes: Mapping[str, AttributeValue] | None = None
    old_time: datetime | None = None
    context_id: str | None = None
    context_user_id: str | None = None
    old_context_id: str | None = None

    def __post_init__(self) -> None:
        """Reject naive times: every instant here is UTC-aware."""
        for when in (self.time, self.old_time):
            if when is not None and when.utcoffset() is None:
                msg = "Event times must be timezone-aware"
                raise ValueError(msg)

    @property
    def domain(self) -> str:
        """Entity domain, the prefix of `entity_id`."""
        return self.entity_id.split(".", 1)[0]


# --- points: the integration's own builder (api/influx/write.py) ---------------------------


def _states(event: Event) -> tuple[EventState, EventState | None]:
    """The event's new and old state as Home Assistant serialises them."""
    new = EventState(
        entity_id=event.entity_id,
        state=event.state,
        attributes=dict(event.attributes),
        last_changed=event.time,
        last_updated=event.time,
        last_reported=event.time,
        context_id=event.context_id,
        context_user_id=event.context_user_id,
    )
    if event.old_state is None:
        return new, None
    old_time = event.old_time or event.time - timedelta(minutes=5)
    old = EventState(
        entity_id=event.entity_id,
        state=event.old_state,
        attributes=dict(event.attributes if event.old_attributes is None else event.old_attributes),
        last_changed=old_time,
        last_updated=old_time,
        last_reported=old_time,
        context_id=event.old_context_id,
    )
    return new, old


def schema_a_fields(event: Event) -> dict[str, FieldValue]:
    """Fields of the R1 point: `state`, `old_state` and one `attr_*` per scalar attribute."""
    return dict(schema_a_point(*_states(event)).fields)


def schema_a_line(event: Event) -> str:
    """The R1 enrichment pipeline's point for `event` (ns timestamp = ingestion time)."""
    return schema_a_point(*_states(event)).line(Precision.NS)


def schema_b_fields(event: Event) -> dict[str, FieldValue]:
    """Fields of the R2 point: `state_value`, `previous_state` and the context ids."""
    return dict(_schema_b(event).fields)


def _schema_b(event: Event) -> Point:
    point = schema_b_point(*_states(event))
    if point is None:
        msg = f"schema B drops entity id {event.entity_id!r}"
        raise ValueError(msg)
    return point


def schema_b_line(event: Event) -> str:
    """The R2 websocket ingestion point for `event` (time_fired cut to ms, written in ns).

    Raises ValueError for an entity id the R2 writer's validator would drop.
    """
    return _schema_b(event).line(Precision.NS)


def event_line(event: Event, schema: Schema) -> str:
    """The point `schema`'s writer makes for `event`."""
    return schema_a_line(event) if schema is Schema.A else schema_b_line(event)


def event_lines(events: Iterable[Event], schema: Schema) -> list[str]:
    """Points for many events (ns precision)."""
    return [event_line(event, schema) for event in events]


# --- event generation ------------------------------------------------------------------------

type _StateFn = Callable[[random.Random, str | None], str]
type _AttributeFn = Callable[[random.Random, str], dict[str, AttributeValue]]


@dataclass(frozen=True)
class EntitySpec:
    """How one simulated entity behaves: its next state, and its attributes in a state."""

    entity_id: str
    next_state: _StateFn
    attributes: _AttributeFn
    weight: int = 1


def _numeric(low: float, high: float, digits: int) -> _StateFn:
    def pick(rng: random.Random, _old: str | None) -> str:
        if rng.random() < 0.02:
            return "unavailable"
        return f"{rng.uniform(low, high):.{digits}f}"

    return pick


def _toggle(on: str = "on", off: str = "off") -> _StateFn:
    def pick(rng: random.Random, old: str | None) -> str:
        if old is None:
            return rng.choice((on, off))
        return off if old == on else on

    return pick


def _choice(*states: str) -> _StateFn:
    def pick(rng: random.Random, old: str | None) -> str:
        options = [state for state in states if state != old] or list(states)
        return rng.choice(options)

    return pick


def _static(**attributes: AttributeValue) -> _AttributeFn:
    def build(_rng: random.Random, _state: str) -> dict[str, AttributeValue]:
        return dict(attributes)

    return build


def _light_attributes(name: str) -> _AttributeFn:
    def build(rng: random.Random, state: str) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {
            "min_color_temp_kelvin": 2000,
            "max_color_temp_kelvin": 6535,
            "min_mireds": 153,
            "max_mireds": 500,
            "supported_features": 40,
            "friendly_name": name,
        }
        if state == "on":
            attributes |= {
                "color_mode": "color_temp",
                "brightness": rng.randint(1, 255),
                "color_temp": rng.randint(153, 500),
                "color_temp_kelvin": rng.randint(2000, 6535),
            }
        return attributes

    return build


def _climate_attributes(rng: random.Random, state: str) -> dict[str, AttributeValue]:
    return {
        "min_temp": 7,
        "max_temp": 35,
        "target_temp_step": 0.5,
        "current_temperature": round(rng.uniform(18.0, 23.0), 1),
        "temperature": round(rng.uniform(19.0, 22.0) * 2) / 2,
        "hvac_action": "heating" if state == "heat" else "idle",
        "preset_mode": rng.choice(("home", "away", "eco")),
        "away_mode": "off",
        "aux_heat": False,
        "friendly_name": "Living Room Thermostat",
        "supported_features": 401,
    }


def _media_attributes(rng: random.Random, state: str) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "device_class": "tv",
        "friendly_name": 'Living Room "Big" TV',
        "supported_features": 24509,
    }
    if state in {"playing", "paused"}:
        attributes |= {
            "volume_level": round(rng.uniform(0.0, 1.0), 2),
            "is_volume_muted": rng.random() < 0.1,
            "source": "HDMI 1",
            "media_title": "News, Weather = Today",
            "media_duration": 3600,
            "media_position": rng.randint(0, 3600),
        }
    return attributes


def _sun_attributes(rng: random.Random, _state: str) -> dict[str, AttributeValue]:
    return {
        "next_dawn": "2025-11-02T13:05:12.123456+00:00",
        "next_dusk": "2025-11-02T01:21:40.654321+00:00",
        "elevation": round(rng.uniform(-40.0, 40.0), 2),
        "azimuth": round(rng.uniform(0.0, 360.0), 2),
        "rising": rng.random() < 0.5,
        "friendly_name": "Sun",
    }


DEFAULT_ENTITIES: Final[tuple[EntitySpec, ...]] = (
    EntitySpec(
        "sensor.living_room_temperature",
        _numeric(18.0, 24.0, 1),
        _static(
            state_class="measurement",
            unit_of_measurement="°C",
            device_class="temperature",
            friendly_name="Living Room Temperature",
        ),
        weight=5,
    ),
    EntitySpec(
        "sensor.outdoor_pressure",
        _numeric(990.0, 1030.0, 1),
        _static(
            state_class="measurement",
            unit_of_measurement="hPa",
            device_class="pressure",
            friendly_name="Outdoor Pressure",
        ),
        weight=2,
    ),
    EntitySpec(
        "sensor.house_power",
        _numeric(150.0, 4500.0, 0),
        _static(
            state_class="measurement",
            unit_of_measurement="W",
            device_class="power",
            friendly_name="House Power, total",
        ),
        weight=6,
    ),
    EntitySpec(
        "sensor.phone_battery_level",
        _numeric(5.0, 100.0, 0),
        _static(
            unit_of_measurement="%",
            device_class="battery",
            friendly_name="Phone Battery",
            charging="off",
            icon="mdi:battery-70",
        ),
        weight=2,
    ),
    EntitySpec("light.kitchen", _toggle(), _light_attributes("Kitchen Light"), weight=3),
    EntitySpec("light.living_room", _toggle(), _light_attributes("Living Room Lamp"), weight=2),
    EntitySpec(
        "binary_sensor.hallway_motion",
        _toggle(),
        _static(device_class="motion", friendly_name="Hallway Motion"),
        weight=4,
    ),
    EntitySpec(
        "binary_sensor.front_door",
        _toggle(),
        _static(device_class="door", friendly_name="Front Door"),
        weight=2,
    ),
    EntitySpec(
        "switch.coffee_maker",
        _toggle(),
        _static(friendly_name="Coffee Maker", assumed_state=False, icon="mdi:coffee"),
    ),
    EntitySpec("climate.living_room", _choice("heat", "off", "auto"), _climate_attributes),
    EntitySpec(
        "media_player.living_room_tv",
        _choice("playing", "paused", "idle", "off"),
        _media_attributes,
    ),
    EntitySpec("sun.sun", _toggle("above_horizon", "below_horizon"), _sun_attributes),
    EntitySpec(
        "person.alice",
        _choice("home", "not_home", "work"),
        _static(friendly_name="Alice", source="device_tracker.alice_phone", user_id="a1b2c3"),
    ),
    EntitySpec(
        "input_boolean.guest_mode",
        _toggle(),
        _static(editable=True, friendly_name="Guest mode", icon="mdi:account-multiple"),
    ),
)


def _context_id(rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # ULID's Crockford base32
    return "01JB" + "".join(rng.choice(alphabet) for _ in range(22))


class EventGenerator:
    """A deterministic stream of events that remembers each entity's last state.

    Successive calls continue the same story (old states chain across batches), which is
    what a live writer needs; `generate_events` is the one-shot form.
    """

    def __init__(self, seed: int, entities: Sequence[EntitySpec] = DEFAULT_ENTITIES) -> None:
        """Start a stream; the same seed and calls give the same events."""
        if not entities:
            msg = "need at least one entity"
            raise ValueError(msg)
        self._rng = random.Random(seed)  # noqa: S311
        self._entities = tuple(entities)
        self._weights = [spec.weight for spec in entities]
        self._previous: dict[str, Event] = {}

    def events_between(self, count: int, start: datetime, end: datetime) -> list[Event]:
        """`count` events in [start, end), oldest first, each on its own millisecond.

        Distinct milliseconds keep every point of either schema in its own (series, time)
        slot: InfluxDB would silently keep only one of two colliding points.
        """
        if start.utcoffset() is None or end.utcoffset() is None:
            msg = "start and end must be timezone-aware"
            raise ValueError(msg)
        span_ms = (end - start) // timedelta(milliseconds=1)
        if count < 0 or count > span_ms:
            msg = f"cannot place {count} events on distinct milliseconds in {span_ms} ms"
            raise ValueError(msg)
        rng = self._rng
        offsets = sorted(rng.sample(range(span_ms), count))
        events: list[Event] = []
        for offset in offsets:
            spec = rng.choices(self._entities, self._weights)[0]
            when = (
                start.astimezone(UTC)
                + timedelta(milliseconds=offset)
                + timedelta(microseconds=rng.randrange(1000))
            )
            events.append(self._next(spec, when))
        return events

    def _next(self, spec: EntitySpec, when: datetime) -> Event:
        rng = self._rng
        before = self._previous.get(spec.entity_id)
        old_state = before.state if before else None
        state = spec.next_state(rng, old_state)
        event = Event(
            entity_id=spec.entity_id,
            time=when,
            state=state,
            old_state=old_state,
            attributes=spec.attributes(rng, state),
            old_attributes=before.attributes if before else None,
            old_time=before.time if before else None,
            context_id=_context_id(rng),
            context_user_id=("6f1c2d9e0a8b4c7d9e1f2a3b4c5d6e7f" if rng.random() < 0.1 else None),
            old_context_id=before.context_id if before else None,
        )
        self._previous[spec.entity_id] = event
        return event


def generate_events(
    count: int,
    start: datetime,
    end: datetime,
    seed: int,
    entities: Sequence[EntitySpec] = DEFAULT_ENTITIES,
) -> list[Event]:
    """`count` deterministic events in [start, end), oldest first.

    Every event falls on its own millisecond (and keeps a sub-millisecond part for schema A),
    so no two points of either schema share a series and a timestamp. An entity's first
    event has no old state, as after an HA restart.
    """
    return EventGenerator(seed, entities).events_between(count, start, end)


# --- other measurements ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceMetricsSample:
    """One synthetic `service_metrics` row (the ingestor never writes these).

    docs/ingestor-contracts.md#service_metrics
    """

    service: str
    time: datetime
    events_processed: int
    write_attempts: int
    write_errors: int
    processing_time_ms: float
    success_rate: float
    error: int | None = None


def service_metrics_line(sample: ServiceMetricsSample) -> str:
    """The `service_metrics` point the Admin API queries for."""
    fields: dict[str, FieldValue] = {
        "events_processed": sample.events_processed,
        "write_attempts": sample.write_attempts,
        "write_errors": sample.write_errors,
        "processing_time_ms": float(sample.processing_time_ms),
        "success_rate": float(sample.success_rate),
    }
    if sample.error is not None:
        fields["error"] = sample.error
    return line("service_metrics", {"service": sample.service}, fields, to_ns(sample.time))


def service_metrics_lines(samples: Iterable[ServiceMetricsSample] | None = None) -> list[str]:
    """Lines for `samples`; by default the two rows of the contract's example."""
    if samples is None:
        samples = contract_service_metrics()
    return [service_metrics_line(sample) for sample in samples]


def contract_service_metrics() -> list[ServiceMetricsSample]:
    """Two synthetic `service_metrics` rows in the shape the Admin API queries."""
    return [
        ServiceMetricsSample(
            "websocket-ingestion",
            datetime(2025, 11, 1, 16, 5, tzinfo=UTC),
            events_processed=1250,
            write_attempts=1250,
            write_errors=3,
            processing_time_ms=42.7,
            success_rate=99.76,
        ),
        ServiceMetricsSample(
            "enrichment-pipeline",
            datetime(2025, 11, 1, 16, 6, tzinfo=UTC),
            events_processed=1247,
            write_attempts=1247,
            write_errors=40,
            error=2,
            processing_time_ms=1350.0,
            success_rate=93.2,
        ),
    ]


def carbon_intensity_line(when: datetime, intensity: float = 231.4) -> str:
    """A carbon-intensity-service point (same bucket, other measurement)."""
    renewable = round(min(100.0, max(0.0, 100.0 - intensity / 5.64)), 1)
    return line(
        "carbon_intensity",
        {"grid_operator": "CAISO", "region": "CAISO_NORTH"},
        {
            "carbon_intensity_gco2_kwh": float(intensity),
            "fossil_percentage": round(100.0 - renewable, 1),
            "forecast_1h": round(intensity * 0.97, 1),
            "forecast_24h": round(intensity * 1.04, 1),
            "renewable_percentage": renewable,
        },
        to_ns(when),
    )


def smart_meter_line(when: datetime, total_power_w: float = 1834.5, daily_kwh: float = 12.4) -> str:
    """A smart-meter-service point (same bucket, other measurement)."""
    return line(
        "smart_meter",
        {"meter_type": "generic"},
        {"daily_kwh": float(daily_kwh), "total_power_w": float(total_power_w)},
        to_ns(when),
    )


def smart_meter_circuit_line(when: datetime, circuit: str, power_w: float, share: float) -> str:
    """A per-circuit smart meter point (circuit names have spaces: escaping matters)."""
    return line(
        "smart_meter_circuit",
        {"circuit_name": circuit},
        {"percentage": float(share), "power_w": float(power_w)},
        to_ns(when),
    )


def air_quality_line(when: datetime, aqi: int = 42) -> str:
    """An air-quality-service point, with the integer fields it really writes."""
    return line(
        "air_quality",
        {"category": "Good", "location": "36.1,-115.2", "parameter": "PM2.5"},
        {"aqi": aqi, "co": 0.3, "no2": 11.2, "ozone": 31, "pm10": 14, "pm25": 9, "so2": 1.1},
        to_ns(when),
    )


def auxiliary_lines(start: datetime, end: datetime, count: int, seed: int) -> list[str]:
    """`count` points of other measurements in [start, end): none is an event."""
    if start.utcoffset() is None or end.utcoffset() is None:
        msg = "start and end must be timezone-aware"
        raise ValueError(msg)
    rng = random.Random(seed)  # noqa: S311
    span_ms = (end - start) // timedelta(milliseconds=1)
    lines: list[str] = []
    offsets = sorted(rng.sample(range(span_ms), min(count, span_ms)))
    for index, offset in enumerate(offsets):
        when = start.astimezone(UTC) + timedelta(milliseconds=offset)
        kind = index % 4
        if kind == 0:
            lines.append(carbon_intensity_line(when, round(rng.uniform(120.0, 420.0), 1)))
        elif kind == 1:
            lines.append(
                smart_meter_line(
                    when, round(rng.uniform(200.0, 4000.0), 1), round(rng.uniform(0.0, 30.0), 2)
                )
            )
        elif kind == 2:
            circuit = rng.choice(("Kitchen, north", "HVAC=main", "Garage outlets"))
            lines.append(
                smart_meter_circuit_line(
                    when, circuit, round(rng.uniform(5.0, 1500.0), 1), round(rng.random() * 100, 1)
                )
            )
        else:
            lines.append(air_quality_line(when, rng.randint(5, 150)))
    return lines
