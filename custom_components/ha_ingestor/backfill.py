"""Backfill: the state changes InfluxDB lacks, read back from Home Assistant's recorder.

The recorder is read in its own executor (`get_instance(hass).async_add_executor_job`), never
on the event loop, in slices of `SLICE` and `ENTITIES_PER_READ` entities: its history API gives
each state and its attributes; one small read of its `states` rows adds what the history API
leaves out and the ingestor's point has (the context ids, and the real times of the state
before the span, which the history API reports at the span's start). InfluxDB's side, the
matching and the points are in `api/influx/backfill.py` and `api/influx/write.py`.

Bounded: points go out in batches of `BATCH_POINTS`, at most `MAX_POINTS` per call (the rest
counts as `could_not`, for the next call). See docs/architecture.md#backfill for the limits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from homeassistant.components.recorder import history
from homeassistant.components.recorder.db_schema import States, StatesMeta
from homeassistant.helpers.recorder import get_instance, session_scope
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import bytes_to_ulid_or_none
from sqlalchemy import and_, func, select

from .api.core.delivery import STORED_EARLY
from .api.core.errors import IngestorError
from .api.influx.backfill import (
    SCHEMA_A_LAG,
    StoredPoints,
    async_stored_points,
    match_changes,
)
from .api.influx.write import (
    PRECISION,
    EventState,
    Precision,
    ReadOnlyError,
    Schema,
    Writable,
    event_point,
    to_ns,
    writes_entity,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from homeassistant.components.recorder.core import Recorder
    from homeassistant.core import HomeAssistant, State

    from .api.influx.backend import InfluxBackend

SLICE: Final = timedelta(hours=1)
ENTITIES_PER_READ: Final = 100
BATCH_POINTS: Final = 5000
MAX_POINTS: Final = 200_000


# Why a backfill failed; the action's translation key is `backfill_<reason>` (strings.json).
EMPTY_SPAN: Final = "empty_span"
NO_RECORDER: Final = "no_recorder"
PAST_RETENTION: Final = "past_retention"
READ_ONLY: Final = "read_only"
READ_FAILED: Final = "read_failed"
WRITE_FAILED: Final = "write_failed"


class BackfillError(Exception):
    """A backfill that cannot run or went wrong: the reason and its message's placeholders."""

    def __init__(self, reason: str, **placeholders: str) -> None:
        """Keep what the action's translated error needs."""
        super().__init__(reason, placeholders)
        self.reason = reason
        self.placeholders = placeholders


@dataclass(slots=True)
class BackfillResult:
    """What one call found and did; the action's response."""

    schema: str
    dry_run: bool
    # Recorded state changes without a point (what a dry run would write).
    missing: int = 0
    written: int = 0
    # Recorded state changes InfluxDB already has.
    skipped: int = 0
    # Lost events (as the delivery check counted them) of entities the recorder excludes.
    not_in_recorder: int = 0
    # Changes of one entity in the millisecond of another: one point holds them all.
    same_millisecond: int = 0
    # Missing changes not written: past the cap of a call, or an entity id schema B drops.
    could_not: int = 0
    requests: int = 0
    bytes_sent: int = 0
    entities: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The response of the action."""
        return asdict(self)


# --- the recorder side (in its executor) ---------------------------------------------------

type _Details = tuple[float, float | None, float | None, bytes | None, bytes | None, bytes | None]


def _uuid_hex(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return UUID(bytes=value).hex
    except ValueError:
        return None


def _details(
    hass: HomeAssistant, entity_ids: list[str], start: float, end: float, *, before: bool
) -> tuple[dict[tuple[str, float], _Details], dict[str, _Details]]:
    """The rows' times and contexts in [start, end), and of each entity's row before `start`."""
    columns = (
        StatesMeta.entity_id,
        States.last_updated_ts,
        States.last_changed_ts,
        States.last_reported_ts,
        States.context_id_bin,
        States.context_user_id_bin,
        States.context_parent_id_bin,
    )
    in_span: dict[tuple[str, float], _Details] = {}
    previous: dict[str, _Details] = {}
    with session_scope(hass=hass, read_only=True) as session:
        rows = session.execute(
            select(*columns)
            .join(StatesMeta, States.metadata_id == StatesMeta.metadata_id)
            .where(
                StatesMeta.entity_id.in_(entity_ids),
                States.last_updated_ts >= start,
                States.last_updated_ts < end,
            )
        )
        for entity_id, *rest in rows:
            in_span[entity_id, rest[0]] = tuple(rest)
        if before:
            latest = (
                select(States.metadata_id, func.max(States.last_updated_ts).label("ts"))
                .join(StatesMeta, States.metadata_id == StatesMeta.metadata_id)
                .where(StatesMeta.entity_id.in_(entity_ids), States.last_updated_ts < start)
                .group_by(States.metadata_id)
                .subquery()
            )
            rows = session.execute(
                select(*columns)
                .join(StatesMeta, States.metadata_id == StatesMeta.metadata_id)
                .join(
                    latest,
                    and_(
                        States.metadata_id == latest.c.metadata_id,
                        States.last_updated_ts == latest.c.ts,
                    ),
                )
            )
            for entity_id, *rest in rows:
                previous[entity_id] = tuple(rest)
    return in_span, previous


def _event_state(state: State, details: _Details | None) -> EventState:
    if details is None:
        return EventState(
            entity_id=state.entity_id,
            state=state.state,
            attributes=dict(state.attributes),
            last_changed=state.last_changed,
            last_updated=state.last_updated,
            last_reported=state.last_reported,
        )
    updated, changed, reported, context, user, parent = details
    when = dt_util.utc_from_timestamp(updated)
    return EventState(
        entity_id=state.entity_id,
        state=state.state,
        attributes=state.attributes,
        last_changed=when if changed in (None, updated) else dt_util.utc_from_timestamp(changed),
        last_updated=when,
        last_reported=when if reported in (None, updated) else dt_util.utc_from_timestamp(reported),
        context_id=bytes_to_ulid_or_none(context),
        context_user_id=_uuid_hex(user),
        context_parent_id=bytes_to_ulid_or_none(parent),
    )


def read_changes(
    hass: HomeAssistant, entity_ids: list[str], start: datetime, end: datetime, *, first: bool
) -> dict[str, list[EventState]]:
    """Per entity, its recorded states in [start, end), oldest first (recorder executor).

    With `first`, each list starts with the state the entity had before `start` (if any), so
    the span's first change has its old state.
    """
    found = history.get_significant_states(
        hass,
        start,
        end,
        entity_ids=entity_ids,
        include_start_time_state=first,
        significant_changes_only=False,
        minimal_response=False,
        no_attributes=False,
    )
    start_ts = start.timestamp()
    in_span, previous = _details(hass, entity_ids, start_ts, end.timestamp(), before=first)
    changes: dict[str, list[EventState]] = {}
    for entity_id, states in found.items():
        out: list[EventState] = []
        for state in states:
            if isinstance(state, dict):
                continue
            updated = state.last_updated_timestamp
            if updated < start_ts or (first and not out and (entity_id, updated) not in in_span):
                # The history API's start-time state: its real times are in `previous`.
                before = previous.get(entity_id)
                if before is not None:
                    out.append(_event_state(state, before))
                continue
            out.append(_event_state(state, in_span.get((entity_id, updated))))
        changes[entity_id] = out
    return changes


# --- the run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Writer:
    """Batches of points, written as they fill (or only counted in a dry run)."""

    backend: Writable
    schema: Schema
    result: BackfillResult
    credit: Callable[[str, float], None] | None
    batch: list[str] = field(default_factory=list)
    fired: list[tuple[str, float]] = field(default_factory=list)
    queued: int = 0

    @property
    def precision(self) -> Precision:
        """The schema's own timestamp unit."""
        return PRECISION[self.schema]

    async def add(self, new: EventState, old: EventState | None, entity_id: str) -> None:
        self.queued += 1
        if self.result.dry_run:
            return  # counted only: a dry run builds no point
        point = event_point(self.schema, new, old)
        if point is None:  # pragma: no cover - `writes_entity` was asked first
            return
        self.batch.append(point.line(self.precision))
        self.fired.append((entity_id, new.last_updated.timestamp()))
        if len(self.batch) >= BATCH_POINTS:
            await self.flush()

    async def flush(self) -> None:
        batch, fired, self.batch, self.fired = self.batch, self.fired, [], []
        if not batch or self.result.dry_run:
            return
        self.result.requests += 1
        try:
            self.result.bytes_sent += await self.backend.async_write(batch, self.precision)
        except ReadOnlyError as err:
            raise BackfillError(READ_ONLY, error=str(err)) from err
        except IngestorError as err:
            raise BackfillError(
                WRITE_FAILED, error=str(err), written=str(self.result.written)
            ) from err
        self.result.written += len(batch)
        if self.credit is not None:
            for entity_id, when in fired:
                self.credit(entity_id, when)


def _slices(start: datetime, end: datetime) -> Iterable[tuple[datetime, datetime]]:
    cursor = start
    while cursor < end:
        stop = min(cursor + SLICE, end)
        yield cursor, stop
        cursor = stop


async def _async_stored(
    backend: InfluxBackend, bucket: str, start: datetime, end: datetime, result: BackfillResult
) -> StoredPoints:
    """InfluxDB's points of the span, one request per slice (with the tolerances at the ends)."""
    stored = StoredPoints()
    for index, (slice_start, slice_stop) in enumerate(
        _slices(start - STORED_EARLY, end + SCHEMA_A_LAG)
    ):
        result.requests += 1
        # The first request also asks the week before for the schema, should the span hold
        # no point at all.
        recent = start if index == 0 else None
        part = await async_stored_points(
            backend, bucket, slice_start, slice_stop, recent_before=recent
        )
        stored.recent = stored.recent or part.recent
        for entity_id, times in part.times.items():
            stored.times.setdefault(entity_id, []).extend(times)
        for schema, newest in part.newest.items():
            stored.newest[schema] = max(newest, stored.newest.get(schema, newest))
    stored.sort()
    return stored


def _recorder_checks(hass: HomeAssistant, start: datetime, now: datetime) -> Recorder:
    if "recorder" not in hass.config.components:
        raise BackfillError(NO_RECORDER)
    instance = get_instance(hass)
    keep_days = int(getattr(instance, "keep_days", 0) or 0)
    if keep_days and start < now - timedelta(days=keep_days):
        raise BackfillError(PAST_RETENTION, days=str(keep_days), start=start.isoformat())
    return instance


async def async_backfill(  # noqa: PLR0913
    hass: HomeAssistant,
    backend: InfluxBackend,
    bucket: str,
    start: datetime,
    end: datetime,
    *,
    dry_run: bool = True,
    lost: Mapping[str, int] | None = None,
    credit: Callable[[str, float], None] | None = None,
) -> BackfillResult:
    """Find (and unless `dry_run`, write) the recorded state changes of [start, end) InfluxDB lacks.

    `lost` is the delivery check's lost events per entity (their entities are read even when
    no longer in the state machine, and the recorder's excluded ones are `not_in_recorder`);
    `credit(entity_id, fired)` is told of every written point.

    Raises:
        BackfillError: an empty span, no recorder, a span past its retention, a read-only
            token, or InfluxDB failing.

    """
    now = dt_util.utcnow()
    end = min(end, now)
    if start >= end:
        raise BackfillError(EMPTY_SPAN)
    instance = _recorder_checks(hass, start, now)
    if not isinstance(backend, Writable):
        raise BackfillError(WRITE_FAILED, error=repr(backend), written="0")
    # What fired before now is committed first: the recorder writes in batches (5 s).
    if (committed := instance.async_get_commit_future()) is not None:
        await committed
    lost = lost or {}
    recorded = getattr(instance, "entity_filter", None)
    candidates = sorted(set(hass.states.async_entity_ids()) | set(lost))
    entity_ids = [e for e in candidates if recorded is None or recorded(e)]
    result = BackfillResult(Schema.B.value, dry_run)
    try:
        stored = await _async_stored(backend, bucket, start, end, result)
    except IngestorError as err:
        raise BackfillError(READ_FAILED, error=str(err)) from err
    # No point in the span nor the week before: B, what the ingestor writes today.
    schema = stored.schema or Schema.B
    result.schema = schema.value
    result.not_in_recorder = sum(n for e, n in lost.items() if n > 0 and e not in entity_ids)
    writer = _Writer(backend, schema, result, credit)
    span = (to_ns(start), to_ns(end))
    for offset in range(0, len(entity_ids), ENTITIES_PER_READ):
        chunk = entity_ids[offset : offset + ENTITIES_PER_READ]
        previous: dict[str, EventState] = {}
        pairs: dict[str, list[tuple[int, EventState, EventState | None]]] = {}
        for index, (slice_start, slice_stop) in enumerate(_slices(start, end)):
            changes = await instance.async_add_executor_job(
                partial(read_changes, hass, chunk, slice_start, slice_stop, first=index == 0)
            )
            for entity_id, states in changes.items():
                _pair(states, previous, pairs.setdefault(entity_id, []), span)
        for entity_id, entity_pairs in pairs.items():
            await _async_entity(writer, schema, stored, entity_id, entity_pairs)
    await writer.flush()
    return result


def _pair(
    states: list[EventState],
    previous: dict[str, EventState],
    into: list[tuple[int, EventState, EventState | None]],
    span: tuple[int, int],
) -> None:
    """Each change of the span (its time in ns) with the state before it (carried over)."""
    start_ns, end_ns = span
    for state in states:
        when = to_ns(state.last_updated)
        if start_ns <= when < end_ns:
            into.append((when, state, previous.get(state.entity_id)))
        previous[state.entity_id] = state


async def _async_entity(
    writer: _Writer,
    schema: Schema,
    stored: StoredPoints,
    entity_id: str,
    pairs: list[tuple[int, EventState, EventState | None]],
) -> None:
    """Match one entity's changes of the span and queue the missing ones."""
    if not pairs:
        return
    result = writer.result
    result.entities += 1
    matched = match_changes(
        [when for when, _new, _old in pairs], stored.times.get(entity_id, []), schema
    )
    result.skipped += matched.stored
    result.same_millisecond += matched.same_millisecond
    result.missing += len(matched.missing)
    if not writes_entity(schema, entity_id):
        result.could_not += len(matched.missing)
        return
    for index in matched.missing:
        if writer.queued >= MAX_POINTS:
            result.could_not += 1
            continue
        _when, new, old = pairs[index]
        await writer.add(new, old, entity_id)
