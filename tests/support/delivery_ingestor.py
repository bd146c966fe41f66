"""A simulated R2 websocket-ingestion for the delivery check: HA's websocket in, influxd out.

It subscribes to `state_changed` over Home Assistant's websocket API (an authenticated
client), turns every event with a new state into a schema-B point (`time_fired` cut to the
millisecond, `context_id` field) and writes them into a real influxd in batches like the real
writer: up to `batch_size` points or `batch_seconds` after the first point of a batch. Faults:
`drop` decides per event whether it is lost, `outages` lose every event fired inside them, `delay`
holds every batch back before it is written. What was dropped and when each point became
readable are recorded, so a test can compare with what the integration reports.

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

BATCH_SIZE = 1000
BATCH_SECONDS = 5.0


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
    # Per entity: events seen (the n passed to `drop`), and the dropped ones.
    seen: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    # time_fired of every event with a new state (dropped or not), Unix seconds.
    fired: list[float] = field(default_factory=list)
    # context_id -> (time_fired, time the point became readable), Unix seconds.
    readable: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The points the dropped events would have been, oldest first.
    missed: list[Point] = field(default_factory=list)
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

    def _take(self, event: dict[str, Any]) -> None:
        data = event["data"]
        new_state = data.get("new_state")
        if new_state is None:
            return  # R2 drops removals on purpose
        entity_id = data["entity_id"]
        fired = datetime.fromisoformat(event["time_fired"])
        fired_at = fired.timestamp()
        self.fired.append(fired_at)
        n = self.seen.get(entity_id, 0) + 1
        self.seen[entity_id] = n
        in_outage = any(start <= fired_at <= stop for start, stop in self.outages)
        old = data.get("old_state")
        point = event_point(
            self.schema,
            state_from_dict(new_state),
            None if old is None else state_from_dict(old),
        )
        if in_outage or self.drop(entity_id, n):
            self.dropped[entity_id] = self.dropped.get(entity_id, 0) + 1
            if point is not None:
                self.missed.append(point)
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
