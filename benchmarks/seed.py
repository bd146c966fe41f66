"""Writing a benchmark data set: `count` mixed schema A/B events in the period of one refresh.

Events are generated and written batch by batch over consecutive slices of the period, so
memory stays bounded whatever the volume and every point lands on its own millisecond (no
two points share a series and a timestamp, so nothing is silently overwritten). A
background thread writes while the next batch is generated (influxd runs on the other core).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from custom_components.ha_ingestor.api.core.models import Period
from tests.support.events import (
    PRECISION,
    EventGenerator,
    Schema,
    event_line,
    schema_a_fields,
    schema_b_fields,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from tests.support.events import Event
    from tests.support.influxdb_server import InfluxDBServer

SEED: Final = 20251126
BATCH_SIZE: Final = 5_000
# A fixed, past `now`: the data set and every figure are the same on every run.
NOW: Final = datetime(2025, 11, 1, 17, 2, 30, 500_000, tzinfo=UTC)
PERIOD: Final = Period.HOUR_1
# Points keep this far from both ends of the period, so range-edge semantics cannot matter.
MARGIN: Final = timedelta(seconds=30)
# How many seeded batches run before the projected total is trusted.
_PROJECT_AFTER: Final = 3


class SeedBudgetExceededError(Exception):
    """Writing the data set would take longer than the budget allows."""

    def __init__(self, count: int, projected: float, budget: float) -> None:
        """Say how long it would have taken."""
        super().__init__(
            f"writing {count} events would take about {projected:.0f} s (budget {budget:.0f} s)"
        )
        self.projected = projected


@dataclass(frozen=True, slots=True)
class Seeded:
    """What was written: the truth every approach is checked against."""

    database: str
    events: int
    # Field values written: what a per-field count (`COUNT(*)`) adds up.
    fields: int
    schema_a: int
    schema_b: int
    seconds: float

    @property
    def fields_per_point(self) -> float:
        """Mean number of fields of one event point."""
        return self.fields / self.events if self.events else 0.0


def _point(event: Event, index: int) -> tuple[str, int, Schema]:
    # Both schemas all over the period, as in a database that R1 and R2 both wrote to.
    schema = Schema.A if index % 2 == 0 else Schema.B
    fields = schema_a_fields(event) if schema is Schema.A else schema_b_fields(event)
    return event_line(event, schema), len(fields), schema


class _Writer:
    """One background thread writing batches in order; the first failure stops it.

    Each batch is one `/write` request; `requests` and `body_bytes` count what was sent.
    """

    def __init__(self, server: InfluxDBServer, database: str) -> None:
        self._server = server
        self._database = database
        self._queue: queue.Queue[list[str] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self.requests = 0
        self.body_bytes = 0
        self._thread = threading.Thread(target=self._run, name="bench-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (lines := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                body = "\n".join(lines)
                self._server.write(self._database, body, PRECISION)
                self.requests += 1
                self.body_bytes += len(body.encode())
            except Exception as err:  # noqa: BLE001 - handed to the caller in `close`
                self._error = err

    def put(self, lines: list[str]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(lines)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=120)
        if self._error is not None:
            raise self._error


@dataclass(frozen=True, slots=True)
class Written:
    """How writing a data set went: its time and the `/write` requests it took."""

    seconds: float
    requests: int
    body_bytes: int


def write_batches(  # noqa: PLR0913
    server: InfluxDBServer,
    database: str,
    batches: Iterable[list[str]],
    *,
    total: int,
    count: int,
    budget: float,
) -> Written:
    """Create `database` and write `batches` (`total` of them, `count` events), one request each.

    The next batch is generated while the previous one is written; at most three are held.

    Raises:
        SeedBudgetExceededError: the projected (after a few batches) or actual time passes
            `budget` seconds; what was written so far stays in the database.

    """
    server.create_database(database)
    started = time.perf_counter()
    writer = _Writer(server, database)
    try:
        for done, lines in enumerate(batches, start=1):
            writer.put(lines)
            elapsed = time.perf_counter() - started
            projected = elapsed / done * total
            if elapsed > budget or (done >= _PROJECT_AFTER and projected > budget):
                raise SeedBudgetExceededError(count, projected, budget)
    finally:
        writer.close()
    return Written(time.perf_counter() - started, writer.requests, writer.body_bytes)


def slice_bounds(
    now: datetime, period: Period, batches: int
) -> Iterator[tuple[datetime, datetime]]:
    """`batches` consecutive slices of `[now - period + MARGIN, now - MARGIN)`.

    Integer microsecond bounds: consecutive slices touch but never overlap.
    """
    first = now - period.duration + MARGIN
    span = (now - MARGIN) - first
    for batch in range(batches):
        yield first + span * batch // batches, first + span * (batch + 1) // batches


def seed_database(  # noqa: PLR0913
    server: InfluxDBServer,
    database: str,
    count: int,
    *,
    now: datetime = NOW,
    period: Period = PERIOD,
    seed: int = SEED,
    batch_size: int = BATCH_SIZE,
    budget: float = 180.0,
) -> Seeded:
    """Create `database` and write `count` events into `[now - period, now)`.

    Raises:
        SeedBudgetExceededError: the projected (or actual) time passes `budget` seconds;
            what was written so far stays in the database.

    """
    if count < 1 or batch_size < 1:
        msg = "count and batch_size must be positive"
        raise ValueError(msg)
    batches = -(-count // batch_size)
    generator = EventGenerator(seed)
    tally = {"fields": 0, "schema_a": 0}

    def generate() -> Iterator[list[str]]:
        for batch, (low, high) in enumerate(slice_bounds(now, period, batches)):
            size = min(batch_size, count - batch * batch_size)
            lines: list[str] = []
            for offset, event in enumerate(generator.events_between(size, low, high)):
                text, field_count, schema = _point(event, batch * batch_size + offset)
                lines.append(text)
                tally["fields"] += field_count
                tally["schema_a"] += schema is Schema.A
            yield lines

    written = write_batches(server, database, generate(), total=batches, count=count, budget=budget)
    return Seeded(
        database=database,
        events=count,
        fields=tally["fields"],
        schema_a=tally["schema_a"],
        schema_b=count - tally["schema_a"],
        seconds=written.seconds,
    )
