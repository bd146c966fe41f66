"""Writing points: line protocol, the ingestor's schema A and B points, one POST for both dialects.

The points are the ones the ingestor writes for a `state_changed` event
(docs/ingestor-contracts.md#event-schemas-a-and-b): schema A (R1's enrichment pipeline) with the
normalised `state`, `old_state` and one `attr_*` per scalar attribute, at nanoseconds; schema B
(R2/R3's websocket-ingestion) with the Python `repr` of the whole state object in `state_value`,
the previous one in `previous_state` and the context ids, at `time_fired` cut to the millisecond.
The test ingestor (`tests/support/delivery_ingestor.py`) builds its points with these same
functions, so what the backfill writes is, point for point, what the ingestor writes.

Escaping follows InfluxDB's line protocol: measurement names escape commas and spaces; tag
keys, tag values and field keys escape commas, equals signs and spaces; string field values
escape backslashes and double quotes. A line break cannot be written at all in a name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import aiohttp

from ..core.bounded import redirect_error
from ..core.errors import (
    TRANSIENT_STATUSES,
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorError,
    IngestorNotFoundError,
    IngestorResponseError,
    Origin,
    error_for_exception,
    quote,
)
from .backend import MEASUREMENT

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from yarl import URL

EVENT_TYPE: Final = "state_changed"

type FieldValue = str | int | float | bool

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# R2's writer drops a point whose entity id is not `domain.object_id` of these characters.
_B_ENTITY_ID: Final = re.compile(r"^[a-zA-Z0-9_]+\.[a-zA-Z0-9_]+$")


class Schema(StrEnum):
    """Event point layout: A written by R1's enrichment pipeline, B by R2/R3's websocket."""

    A = "A"
    B = "B"


class Precision(StrEnum):
    """The timestamp unit of a write request (`precision=` of both write endpoints)."""

    NS = "ns"
    MS = "ms"


# Each schema's own unit: R1 writes nanoseconds, R2/R3 milliseconds.
PRECISION: Final = {Schema.A: Precision.NS, Schema.B: Precision.MS}


class ReadOnlyError(IngestorAuthenticationError):
    """InfluxDB refused a write with credentials that may read (401/403 on a write)."""


# --- line protocol -------------------------------------------------------------------------


def to_ns(when: datetime) -> int:
    """Exact integer nanoseconds since the epoch (no float rounding)."""
    if when.utcoffset() is None:
        msg = "naive datetime: give a timezone"
        raise ValueError(msg)
    return ((when - _EPOCH) // timedelta(microseconds=1)) * 1000


def truncate_to_ms(when: datetime) -> datetime:
    """The same instant cut to whole milliseconds (what schema B keeps)."""
    return when.replace(microsecond=when.microsecond - when.microsecond % 1000)


def _check_no_newline(text: str) -> None:
    if "\n" in text or "\r" in text:
        msg = "line protocol names cannot contain a line break"
        raise ValueError(msg)


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas and spaces)."""
    _check_no_newline(name)
    return name.replace(",", r"\,").replace(" ", r"\ ")


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces)."""
    _check_no_newline(text)
    if not text:
        msg = "tag and field keys/values cannot be empty"
        raise ValueError(msg)
    return text.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def format_field_value(value: FieldValue) -> str:
    """A field value in line protocol: quoted string, `i` integer, float or boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = "InfluxDB cannot store NaN or infinity"
            raise ValueError(msg)
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    timestamp: int,
) -> str:
    """One line-protocol point; tags are sorted by key as InfluxDB prefers.

    `timestamp` is in the unit of the request it goes into (`Precision`).
    """
    if not fields:
        msg = "a point needs at least one field"
        raise ValueError(msg)
    head = escape_measurement(measurement)
    for key in sorted(tags):
        head += f",{escape_key(key)}={escape_key(tags[key])}"
    body = ",".join(
        f"{escape_key(key)}={format_field_value(value)}" for key, value in fields.items()
    )
    return f"{head} {body} {timestamp}"


@dataclass(frozen=True, slots=True)
class Point:
    """One point: what is compared of it is exactly these four things."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int

    def line(self, precision: Precision = Precision.NS) -> str:
        """The point in line protocol, its timestamp in `precision`'s unit."""
        timestamp = self.time_ns if precision is Precision.NS else self.time_ns // 1_000_000
        return line(self.measurement, self.tags, self.fields, timestamp)


# --- a state as the ingestor receives it ---------------------------------------------------


@dataclass(frozen=True)
class EventState:
    """One state of a `state_changed` event, as Home Assistant serialises it.

    The websocket's `new_state`/`old_state` dicts and the recorder's rows both fill it;
    times are aware datetimes, attributes the JSON-decoded values.
    """

    entity_id: str
    state: str
    attributes: Mapping[str, Any]
    last_changed: datetime
    last_updated: datetime
    last_reported: datetime | None = None
    context_id: str | None = None
    context_parent_id: str | None = None
    context_user_id: str | None = None

    @property
    def domain(self) -> str:
        """The entity's domain, the prefix of `entity_id`."""
        return self.entity_id.split(".", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        """Home Assistant's `State.as_dict()`: the keys in its order, times in ISO form."""
        changed = self.last_changed.isoformat()
        reported = self.last_reported or self.last_changed
        return {
            "entity_id": self.entity_id,
            "state": self.state,
            "attributes": dict(self.attributes),
            "last_changed": changed,
            "last_reported": changed if reported == self.last_changed else reported.isoformat(),
            "last_updated": (
                changed if self.last_updated == self.last_changed else self.last_updated.isoformat()
            ),
            "context": {
                "id": self.context_id,
                "parent_id": self.context_parent_id,
                "user_id": self.context_user_id,
            },
        }

    @cached_property
    def text(self) -> str:
        """`str()` of `as_dict()`, what schema B stores (once per state: it is kilobytes)."""
        return str(self.as_dict())


def state_from_dict(data: Mapping[str, Any]) -> EventState:
    """An `EventState` from a serialised state (the websocket's `new_state`, `old_state`).

    Raises:
        KeyError, ValueError, TypeError: not a state dict.

    """
    context = data.get("context") or {}
    if isinstance(context, str):  # the compressed form: only an id
        context = {"id": context}
    changed = datetime.fromisoformat(data["last_changed"])
    reported = data.get("last_reported")
    return EventState(
        entity_id=str(data["entity_id"]),
        state=str(data["state"]),
        attributes=dict(data.get("attributes") or {}),
        last_changed=changed,
        last_updated=datetime.fromisoformat(data.get("last_updated") or data["last_changed"]),
        last_reported=None if reported is None else datetime.fromisoformat(reported),
        context_id=context.get("id"),
        context_parent_id=context.get("parent_id"),
        context_user_id=context.get("user_id"),
    )


# --- schema A (R1) ---------------------------------------------------------------------------

# The R1 normaliser's word lists (enrichment-pipeline data_normalizer.py).
_STATE_WORDS: Final = {
    **dict.fromkeys(("on", "true", "1", "yes", "enabled", "active"), "True"),
    **dict.fromkeys(("off", "false", "0", "no", "disabled", "inactive"), "False"),
}
_BOOLEAN_WORDS: Final = {
    **dict.fromkeys(("true", "1", "on", "yes", "enabled"), True),
    **dict.fromkeys(("false", "0", "off", "no", "disabled"), False),
}
_BOOLEAN_ATTRIBUTES: Final = frozenset(
    {
        "dynamic_eq", "aux_heat", "away_mode", "is_volume_muted", "shuffle", "repeat",
        "is_locked", "motion_detected", "tamper_detected", "battery_low", "door_open",
        "window_open", "occupancy", "presence", "charging", "auto", "eco_mode",
    }
)  # fmt: skip
_NUMERIC_ATTRIBUTES: Final = frozenset(
    {
        "azimuth", "elevation", "brightness", "temperature", "humidity", "pressure",
        "battery", "battery_level", "power", "energy", "voltage", "current", "frequency",
        "speed", "distance", "wind_speed", "wind_bearing", "visibility", "precipitation",
        "uv_index", "pm25", "pm10", "co2", "voc", "latitude", "longitude", "volume_level",
        "media_position", "media_duration", "supported_features", "min_temp", "max_temp",
        "min_humidity", "max_humidity", "step",
    }
)  # fmt: skip
_UNIT_NAMES: Final = {
    "°C": "celsius",
    "°F": "fahrenheit",
    "hPa": "hectopascal",
    "mbar": "millibar",
    "mmHg": "millimeter_of_mercury",
    "inHg": "inch_of_mercury",
    "Pa": "pascal",
    "kPa": "kilopascal",
}
_SCALARS: Final = (str, int, float, bool)


def normalise_state_r1(state: str | None) -> str:
    """The R1 normaliser's rewrite of a state string, then `str()` of the result."""
    if state is None:
        return "None"
    lowered = state.lower().strip()
    if lowered in _STATE_WORDS:
        return _STATE_WORDS[lowered]
    try:
        number = float(lowered)
        # "1e3", "nan": float() accepts them, int() does not, and the normaliser gives up.
        return str(number) if "." in lowered else str(int(lowered))
    except ValueError:
        return state


def _attribute_field_r1(name: str, value: object) -> FieldValue | None:
    """Type one attribute as R1 does; None means the normaliser drops it."""
    if not isinstance(value, _SCALARS):
        return None  # lists and dicts are not scalar attributes
    if name == "unit_of_measurement" and isinstance(value, str):
        value = _UNIT_NAMES.get(value, value)
    if name in _BOOLEAN_ATTRIBUTES:
        if isinstance(value, str):
            return _BOOLEAN_WORDS.get(value.lower().strip())
        return bool(value)
    if name in _NUMERIC_ATTRIBUTES:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return str(value) if value != "" else None


def schema_a_point(new: EventState, old: EventState | None) -> Point:
    """The R1 enrichment pipeline's point (its time is the ingestion clock, see the docs)."""
    fields: dict[str, FieldValue] = {}
    for name, value in new.attributes.items():
        converted = _attribute_field_r1(name, value)
        if converted is not None:
            fields[f"attr_{name}"] = converted
    fields["old_state"] = normalise_state_r1(None if old is None else old.state)
    fields["state"] = normalise_state_r1(new.state)
    return Point(
        MEASUREMENT,
        {"entity_id": new.entity_id, "event_type": EVENT_TYPE},
        fields,
        to_ns(new.last_updated),
    )


# --- schema B (R2, R3) -----------------------------------------------------------------------


def schema_b_point(new: EventState, old: EventState | None) -> Point | None:
    """The websocket ingestion's point; None for an entity id its writer drops.

    The time is the event's `time_fired` (= the new state's `last_updated`) cut to the ms.
    """
    if not writes_entity(Schema.B, new.entity_id):
        return None
    fields: dict[str, FieldValue] = {}
    if new.context_id is not None:
        fields["context_id"] = new.context_id
    if new.context_user_id is not None:
        fields["context_user_id"] = new.context_user_id
    if old is not None:
        fields["previous_state"] = old.text
    fields["state_value"] = new.text
    return Point(
        MEASUREMENT,
        {"domain": new.domain, "entity_id": new.entity_id, "event_type": EVENT_TYPE},
        fields,
        to_ns(truncate_to_ms(new.last_updated)),
    )


def writes_entity(schema: Schema, entity_id: str) -> bool:
    """Whether `schema`'s writer writes points of this entity (B drops unusual ids)."""
    return schema is Schema.A or bool(_B_ENTITY_ID.match(entity_id))


def event_point(schema: Schema, new: EventState, old: EventState | None) -> Point | None:
    """The point `schema`'s writer makes for one state change (None: it writes none)."""
    return schema_a_point(new, old) if schema is Schema.A else schema_b_point(new, old)


# --- one write request -----------------------------------------------------------------------


@runtime_checkable
class Writable(Protocol):
    """A backend that writes line protocol (both `FluxBackend` and `InfluxQLBackend`)."""

    async def async_write(self, lines: Iterable[str], precision: Precision) -> int:
        """Write one batch; the bytes sent."""


# A write answer's body is only read for its error message.
_MAX_ERROR_BODY: Final = 4096


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """Where and how one backend writes: its endpoint, parameters and headers."""

    session: aiohttp.ClientSession
    url: URL
    params: Mapping[str, str]
    headers: Mapping[str, str]
    timeout: aiohttp.ClientTimeout
    secrets: tuple[str, ...] = ()


def _error_text(body: bytes) -> str:
    """The server's message: 1.x says {"error": ...}, 2.x {"code", "message"}."""
    import json  # noqa: PLC0415  (only on a failure)

    try:
        document = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return body.decode("utf-8", "replace")
    if isinstance(document, dict):
        for key in ("error", "message"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return ""


def write_error(status: int, body: bytes, secrets: Iterable[str] = ()) -> IngestorError:
    """The typed error of a refused write; 401/403 is a `ReadOnlyError`."""
    text = quote(_error_text(body[:_MAX_ERROR_BODY]), secrets)
    detail = f": {text}" if text else ""
    origin = Origin.INFLUXDB
    if status in {401, 403}:
        return ReadOnlyError(f"InfluxDB refused the write (HTTP {status}){detail}", origin=origin)
    if status == 404:  # noqa: PLR2004
        return IngestorNotFoundError(
            f"InfluxDB has no such bucket or database{detail}", origin=origin
        )
    if status in TRANSIENT_STATUSES:
        return IngestorConnectionError(
            f"InfluxDB is not available (HTTP {status}){detail}", origin=origin
        )
    return IngestorResponseError(
        f"InfluxDB refused the write (HTTP {status}){detail}", origin=origin
    )


async def async_post_lines(target: WriteTarget, lines: Iterable[str], precision: Precision) -> int:
    """POST one batch of line protocol; the bytes sent. Both dialects answer 204 on success.

    Raises:
        ReadOnlyError: the credentials may not write (401/403).
        IngestorError: any other failure, typed as for queries.

    """
    body = "\n".join(lines).encode()
    params = {**target.params, "precision": precision.value}
    where = f"InfluxDB at {target.url.host}:{target.url.port}"
    try:
        async with target.session.post(
            target.url,
            params=params,
            data=body,
            headers={**target.headers, "Content-Type": "text/plain; charset=utf-8"},
            timeout=target.timeout,
            allow_redirects=False,
        ) as response:
            status = response.status
            if 300 <= status < 400:  # noqa: PLR2004
                raise redirect_error(response, where, Origin.INFLUXDB)
            ok = 200 <= status < 300  # noqa: PLR2004
            answer = b"" if ok else await response.content.read(_MAX_ERROR_BODY)
    except (aiohttp.ClientError, OSError) as err:
        raise error_for_exception(
            err,
            where=where,
            origin=Origin.INFLUXDB,
            timeout=target.timeout.total,
            secrets=target.secrets,
        ) from err
    if not ok:
        raise write_error(status, answer, target.secrets)
    return len(body)
