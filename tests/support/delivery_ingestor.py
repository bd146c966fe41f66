"""A simulated R2 websocket-ingestion for the delivery check: HA's websocket in, influxd out.

It subscribes to `state_changed` over Home Assistant's websocket API (an authenticated
client), turns every event with a new state into a schema-B point (`time_fired` cut to the
millisecond, `context_id` field) and writes them into a real influxd in batches like the real
writer: up to `batch_size` points or `batch_seconds` after the first point of a batch. Faults:
`drop` decides per event whether it is lost, `outages` lose every event fired inside them, `delay`
holds every batch back before it is written. What was dropped and when each point became
readable are recorded, so a test can compare with what the integration reports.

With `counters` (a simulated ingestor, R3's figures) it keeps the real service's running
totals as it goes: `session_events` (received, removals too), the entity filter's
`filtered_events`/`filter_passed_events` and `processed_events`; `plant` then decides per
event at which stage it is lost (`Stage`), so a test knows where each lost event went.

`websocket` is anything with `send_json`/`receive_json` after authentication: the test
client's, or a real `aiohttp` websocket (scripts/develop feeds its demo influxd that way).

Points are built by the integration's own builder (`api/influx/write.py`) from the event's
`new_state` and `old_state` as received: the backfill writes with the same functions, so a
test can hold the backfilled points against `missed`, the points this ingestor did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from custom_components.ha_ingestor.api.influx.write import (
    PRECISION,
    Point,
    Schema,
    event_point,
    state_from_dict,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.influxdb_server import InfluxDBServer
    from tests.support.simulator import IngestorSimulator

BATCH_SIZE = 1000
BATCH_SECONDS = 5.0


class Stage(StrEnum):
    """Where a planted loss happens, in the order of the real pipeline (R3)."""

    BEFORE = "before"  # before the subscription counts it (the websocket lost it)
    AFTER = "after"  # counted received, then dropped (a full queue, a crashed worker)
    FILTERED = "filtered"  # dropped on purpose by the entity filter, and counted so
    WRITE = "write"  # processed, then the write failed (InfluxDB refused or was down)


@dataclass
class DeliveryIngestor:
    """One subscription, one batch writer; `stop()` flushes what is pending."""

    websocket: Any
    influxdb: InfluxDBServer
    database: str
    drop: Callable[[str, int], bool] = lambda _entity_id, _n: False
    delay: float = 0.0
    batch_size: int = BATCH_SIZE
    batch_seconds: float = BATCH_SECONDS
    schema: Schema = Schema.B
    # Outages as spans of time_fired (Unix seconds): every event fired inside one is lost.
    outages: list[tuple[float, float]] = field(default_factory=list)
    # The simulated services whose counters this ingestor keeps (None: no counters).
    counters: IngestorSimulator | None = None
    plant: Callable[[str, int], Stage | None] = lambda _entity_id, _n: None
    # Per stage: the events lost there.
    lost_at: dict[Stage, int] = field(default_factory=dict)
    # While True every write fails (InfluxDB unreachable): the batch is lost, counted processed.
    writes_fail: bool = False
    # Per entity: events seen (the n passed to `drop`), and the dropped ones.
    seen: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    # time_fired of every event with a new state (dropped or not), Unix seconds.
    fired: list[float] = field(default_factory=list)
    # context_id -> (time_fired, time the point became readable), Unix seconds.
    readable: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The points the dropped events would have been, oldest first.
    missed: list[Point] = field(default_factory=list)
    # time_fired of the events whose batch could not be written, Unix seconds.
    write_failed: list[float] = field(default_factory=list)
    _batch: list[tuple[str, str, float]] = field(default_factory=list)
    _batch_started: float | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Subscribe, then read events until stopped."""
        await self.websocket.send_json(
            {"id": 1, "type": "subscribe_events", "event_type": "state_changed"}
        )
        answer = await self.websocket.receive_json()
        assert answer["success"], answer
        self._tasks.append(asyncio.create_task(self._read()))
        self._tasks.append(asyncio.create_task(self._tick()))

    @property
    def running(self) -> bool:
        """False once reading ended on its own (the websocket closed)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def stop(self) -> None:
        """Stop reading and write what the batch still holds (bounded by the delay).

        A reader that already failed (its websocket closed) does not keep the batch unwritten;
        its error is raised after the flush.
        """
        for task in self._tasks:
            task.cancel()
        failure: BaseException | None = None
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await task
                except Exception as err:  # noqa: BLE001  (raised again below, after the flush)
                    failure = failure or err
        self._tasks.clear()
        await self._flush()
        if failure is not None:
            raise failure

    async def _read(self) -> None:
        while True:
            message = await self.websocket.receive_json()
            if message.get("type") != "event":
                continue
            self._take(message["event"])
            if len(self._batch) >= self.batch_size:
                await self._flush()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            started = self._batch_started
            if started is not None and time.monotonic() - started >= self.batch_seconds:
                await self._flush()

    def _count(self, **grown: int) -> None:
        if (sim := self.counters) is not None:
            figures = sim.figures
            sim.set_figures(**{name: getattr(figures, name) + n for name, n in grown.items()})

    def _lose(self, entity_id: str, stage: Stage | None, point: Point | None) -> None:
        self.dropped[entity_id] = self.dropped.get(entity_id, 0) + 1
        if point is not None:
            self.missed.append(point)
        if stage is not None:
            self.lost_at[stage] = self.lost_at.get(stage, 0) + 1

    def _take(self, event: dict[str, Any]) -> None:
        data = event["data"]
        new_state = data.get("new_state")
        entity_id = data["entity_id"]
        n = self.seen.get(entity_id, 0) + 1
        stage = self.plant(entity_id, n) if new_state is not None else None
        if stage is not Stage.BEFORE:
            self._count(session_events=1)
        if new_state is None:
            return  # R2 and R3 drop removals on purpose (after counting them received)
        fired = datetime.fromisoformat(event["time_fired"])
        fired_at = fired.timestamp()
        self.fired.append(fired_at)
        self.seen[entity_id] = n
        in_outage = any(start <= fired_at <= stop for start, stop in self.outages)
        old = data.get("old_state")
        point = event_point(
            self.schema,
            state_from_dict(new_state),
            None if old is None else state_from_dict(old),
        )
        if stage in {Stage.BEFORE, Stage.AFTER}:
            self._lose(entity_id, stage, point)
            return
        if stage is Stage.FILTERED:
            self._count(filtered_events=1)
            self._lose(entity_id, stage, None)  # meant not to be stored: nothing to fill
            return
        self._count(filter_passed_events=1, processed_events=1)
        if stage is Stage.WRITE or in_outage or self.drop(entity_id, n):
            self._lose(entity_id, stage, point)
            return
        if point is None:
            return  # the writer drops such entity ids
        context_id = event["context"]["id"]
        if self._batch_started is None:
            self._batch_started = time.monotonic()
        self._batch.append((point.line(PRECISION[self.schema]), context_id, fired_at))

    async def _flush(self) -> None:
        batch, self._batch, self._batch_started = self._batch, [], None
        if not batch:
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        lines = [line for line, _, _ in batch]
        if self.writes_fail:
            # The real writer retries a few times, then the batch is gone (counted processed).
            self.write_failed += [fired for _, _, fired in batch]
            return
        precision = PRECISION[self.schema].value
        await asyncio.to_thread(self.influxdb.write, self.database, lines, precision)
        written = time.time()
        for _, context_id, fired in batch:
            self.readable[context_id] = (fired, written)

    @property
    def lost(self) -> int:
        """Events dropped in all."""
        return sum(self.dropped.values())

    def fired_between(self, start: float, stop: float) -> int:
        """Events (with a new state) fired in [start, stop)."""
        return sum(start <= t < stop for t in self.fired)
