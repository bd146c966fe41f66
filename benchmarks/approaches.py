"""The refreshes being compared, each one complete statistics read against InfluxDB 1.x.

* `ours`: `InfluxQLBackend.async_fetch`, one multi-statement `/query`, the server counts.
* `count_every_field`: the ingestor Admin API's own event count (its Flux Q1) in InfluxQL,
  `SELECT COUNT(*)`: one number, inflated by the number of fields of every point.
* `raw_points`: `SELECT *` of every point of the period, counted in Python. It reads the
  chunked answer whole (as `response.read()`/`.json()` code does) but decodes and aggregates
  one chunk at a time, and finishes with the same `api.aggregate` arithmetic as ours, so its
  statistics must equal ours exactly: only where the counting happens differs.

Every approach reads the same absolute range, `[now - period, now)`.
"""

# S608: the query text is built from constants, escaped identifiers and our own times.
# ruff: noqa: S608

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from custom_components.ha_ingestor.api.core.aggregate import (
    EPOCH,
    EntityCount,
    build_event_statistics,
    period_bounds,
)
from custom_components.ha_ingestor.api.core.models import TrendPoint, TrendWindow
from custom_components.ha_ingestor.api.influx.backend import EVENT_FIELDS, MEASUREMENT
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from custom_components.ha_ingestor.api.influx.names import influxql_identifier

from .seed import NOW, PERIOD

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    import aiohttp

    from custom_components.ha_ingestor.api.core.models import EventStatistics, Period

WINDOW: Final = TrendWindow.MINUTES_5
# influxd's own default chunk size, said out loud.
CHUNK_ROWS: Final = 10_000
_NS_PER_US: Final = 1_000


@dataclass(frozen=True, slots=True)
class Target:
    """Where and what one refresh reads."""

    url: str
    database: str
    now: datetime = NOW
    period: Period = PERIOD
    window: TrendWindow = WINDOW

    def time_range(self) -> str:
        """The InfluxQL condition of the period (start inclusive, stop exclusive)."""
        start, stop = period_bounds(self.period, self.now)
        return f"time >= {_ns(start)} AND time < {_ns(stop)}"


def _ns(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1) * _NS_PER_US


async def ours(session: aiohttp.ClientSession, target: Target) -> EventStatistics:
    """The integration's refresh: everything from one request, aggregated by the server."""
    backend = InfluxQLBackend(session, target.url, target.database)
    result = await backend.async_fetch(target.period, target.window, target.now)
    return result.events


async def query_body(
    session: aiohttp.ClientSession, target: Target, query: str, **params: str
) -> bytes:
    """POST one InfluxQL query to `target` and return its whole (decoded) body."""
    async with session.post(
        f"{target.url}/query",
        params={"db": target.database, "epoch": "ns", **params},
        data={"q": query},
    ) as response:
        body = await response.read()
        if response.status != 200:  # noqa: PLR2004
            msg = f"InfluxDB answered HTTP {response.status}: {body[:200]!r}"
            raise RuntimeError(msg)
        return body


def _documents(body: bytes) -> Iterator[dict[str, Any]]:
    """The JSON documents of a (chunked) answer, one at a time; influxd ends each with a newline."""
    position = 0
    while position < len(body):
        end = body.find(b"\n", position)
        end = len(body) if end < 0 else end
        if body[position:end].strip():
            document = json.loads(body[position:end])
            if not isinstance(document, dict):
                msg = "InfluxDB answered something that is not an InfluxQL result"
                raise TypeError(msg)
            for result in document.get("results", []):
                if "error" in result:
                    msg = f"InfluxDB could not run the query: {result['error']}"
                    raise RuntimeError(msg)
            yield document
        position = end + 1


def _rows(document: dict[str, Any]) -> Iterator[tuple[list[str], list[Any]]]:
    for result in document.get("results", []):
        for series in result.get("series", []):
            for row in series.get("values", []):
                yield series["columns"], row


async def count_every_field(session: aiohttp.ClientSession, target: Target) -> int:
    """The Admin API's `total_events`: every field value of the period counted."""
    query = f"SELECT COUNT(*) FROM {influxql_identifier(MEASUREMENT)} WHERE {target.time_range()}"
    total = 0
    for document in _documents(await query_body(session, target, query)):
        for columns, row in _rows(document):
            total += sum(
                value
                for column, value in zip(columns, row, strict=True)
                if column != "time" and isinstance(value, int)
            )
    return total


class _Tally:
    """Client-side counting of raw points: what the server does for `ours`."""

    def __init__(self, target: Target) -> None:
        _start, self._stop = period_bounds(target.period, target.now)
        self._width = _ns(EPOCH + target.window.duration)
        self.events = 0
        self.last_ns: int | None = None
        self.per_entity: dict[tuple[str, str | None], int] = {}
        self.per_window: dict[int, int] = {}

    def add(self, columns: list[str], rows: list[list[Any]]) -> None:
        index = {name: position for position, name in enumerate(columns)}
        fields = [index[name] for name in EVENT_FIELDS if name in index]
        at, entity, domain = index["time"], index.get("entity_id"), index.get("domain")
        for row in rows:
            # An event point is a point with one of the two event fields.
            if all(row[field] is None for field in fields):
                continue
            when: int = row[at]
            self.events += 1
            self.last_ns = when if self.last_ns is None else max(self.last_ns, when)
            key = (
                "" if entity is None else row[entity] or "",
                None if domain is None else row[domain] or None,
            )
            self.per_entity[key] = self.per_entity.get(key, 0) + 1
            bucket = when - when % self._width
            self.per_window[bucket] = self.per_window.get(bucket, 0) + 1

    def statistics(self, target: Target) -> EventStatistics:
        def moment(ns: int) -> datetime:
            return EPOCH + timedelta(microseconds=ns // _NS_PER_US)

        width = target.window.duration
        return build_event_statistics(
            events_in_period=self.events,
            last_event=None if self.last_ns is None else moment(self.last_ns),
            entity_counts=[
                EntityCount(entity_id=entity, count=count, domain=domain)
                for (entity, domain), count in self.per_entity.items()
            ],
            trend=[
                TrendPoint(time=min(moment(start) + width, self._stop), count=count)
                for start, count in self.per_window.items()
            ],
            period=target.period,
            window=target.window,
            now=target.now,
        )


async def raw_points(session: aiohttp.ClientSession, target: Target) -> EventStatistics:
    """Every point of the period over the wire, counted in Python."""
    query = f"SELECT * FROM {influxql_identifier(MEASUREMENT)} WHERE {target.time_range()}"
    body = await query_body(session, target, query, chunked="true", chunk_size=str(CHUNK_ROWS))
    tally = _Tally(target)
    for document in _documents(body):
        for result in document.get("results", []):
            for series in result.get("series", []):
                tally.add(series["columns"], series.get("values", []))
    return tally.statistics(target)


type Refresh = Callable[[aiohttp.ClientSession, Target], Awaitable[object]]

APPROACHES: Final[dict[str, Refresh]] = {
    "ours": ours,
    "count_every_field": count_every_field,
    "raw_points": raw_points,
}
