"""Backfill's InfluxDB side: the matching rules, the stored points and the writes, on real servers.

The matching rules are pure (schema B to the millisecond, 1 ms early allowed, one point for
two changes of one millisecond; schema A within its lag); the reading and the writing run
against the session's real influxd (1.x, with a read-only user) and the 2.x double (with a
read-only token).
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from custom_components.ha_ingestor.api.core.delivery import (
    DeliveryCounter,
    credit_backfilled,
    floor_seconds,
    lost_per_entity,
)
from custom_components.ha_ingestor.api.influx.backfill import (
    SCHEMA_A_LAG,
    async_stored_points,
    match_changes,
)
from custom_components.ha_ingestor.api.influx.flux import FluxBackend
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from custom_components.ha_ingestor.api.influx.write import (
    PRECISION,
    EventState,
    Precision,
    ReadOnlyError,
    Schema,
    event_point,
    line,
    schema_b_point,
    to_ns,
)
from tests.support.influx2_double import Influx2Double, running_double
from tests.support.influxdb_server import running_auth_influxdb

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    import aiohttp

    from tests.support.influxdb_server import InfluxDBServer

MS = 1_000_000
T0 = to_ns(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
PASSWORD = "backfill-secret"
TOKEN, READER, ORG = "writer-token", "reader-token", "ha-ingestor"


# --- matching ------------------------------------------------------------------------------


def test_schema_b_matches_its_own_millisecond_or_the_one_before() -> None:
    fired = [T0 + 123_456, T0 + 10 * MS + 999_999, T0 + 20 * MS + 1, T0 + 30 * MS]
    stored = [T0, T0 + 9 * MS]  # the first cut to its ms; the second 1 ms early (R3)
    matched = match_changes(fired, stored, Schema.B)
    assert matched.stored == 2
    assert matched.missing == [2, 3]
    assert matched.same_millisecond == 0
    # 2 ms early is another event's point, not this one's.
    assert match_changes([T0 + 10 * MS], [T0 + 8 * MS], Schema.B).missing == [0]
    # A point is used once: two changes, one point.
    assert match_changes([T0, T0 + MS], [T0], Schema.B).missing == [1]


def test_two_changes_in_one_millisecond_are_one_point() -> None:
    fired = [T0 + 100, T0 + 200, T0 + 900_000, T0 + 5 * MS]
    # Nothing stored: one point for the millisecond (the last change, as the writer's last
    # write wins), the other two are told apart by nothing.
    matched = match_changes(fired, [], Schema.B)
    assert matched.missing == [2, 3]
    assert matched.same_millisecond == 2
    # Stored: the millisecond is there; the two others are still not separately stored.
    matched = match_changes(fired, [T0, T0 + 5 * MS], Schema.B)
    assert (matched.missing, matched.stored, matched.same_millisecond) == ([], 2, 2)


def test_schema_a_matches_within_its_lag() -> None:
    lag = int(SCHEMA_A_LAG / timedelta(microseconds=1)) * 1000
    fired = [T0, T0 + 1_000 * MS, T0 + 2_000 * MS, T0 + 3_000 * MS]
    # R1 writes its ingestion clock: seconds late, in order; one point is beyond the lag.
    stored = [T0 + 2_500 * MS, T0 + 3_100 * MS, T0 + 3_000 * MS + lag + 1]
    stored.sort()
    matched = match_changes(fired, stored, Schema.A)
    assert matched.stored == 2
    assert matched.missing == [2, 3]
    assert matched.same_millisecond == 0
    # Its own backfilled points (at time_fired) are found again.
    assert match_changes(fired, fired, Schema.A).missing == []


# --- points --------------------------------------------------------------------------------


def _state(entity_id: str, state: str, when: datetime, context: str | None = None) -> EventState:
    return EventState(
        entity_id=entity_id,
        state=state,
        attributes={"friendly_name": "Kitchen, main", "brightness": 200},
        last_changed=when,
        last_updated=when,
        context_id=context,
    )


def test_schema_b_point_is_the_websocket_state_repr() -> None:
    when = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
    old = _state("light.kitchen", "off", when - timedelta(minutes=1), "01OLD")
    new = _state("light.kitchen", "on", when, "01NEW")
    point = schema_b_point(new, old)
    assert point is not None
    assert point.time_ns == to_ns(when) - 456_000
    assert point.tags == {
        "domain": "light",
        "entity_id": "light.kitchen",
        "event_type": "state_changed",
    }
    assert point.fields["context_id"] == "01NEW"
    value = ast.literal_eval(str(point.fields["state_value"]))
    assert value == {
        "entity_id": "light.kitchen",
        "state": "on",
        "attributes": {"friendly_name": "Kitchen, main", "brightness": 200},
        "last_changed": when.isoformat(),
        "last_reported": when.isoformat(),
        "last_updated": when.isoformat(),
        "context": {"id": "01NEW", "parent_id": None, "user_id": None},
    }
    assert ast.literal_eval(str(point.fields["previous_state"]))["state"] == "off"
    # In ms for a ms request, in ns for a ns one: the same instant.
    assert point.line(Precision.MS).endswith(f" {point.time_ns // MS}")
    assert point.line(Precision.NS).endswith(f" {point.time_ns}")
    assert schema_b_point(_state("light.bad-id", "on", when), None) is None


def test_line_protocol_escapes_names_and_strings() -> None:
    text = line(
        "home assistant,events",
        {"entity_id": "a b,c=d"},
        {"state value": 'say "hi" \\ bye', "n": 3, "x": 1.5, "ok": True},
        1,
    )
    assert text == (
        r"home\ assistant\,events,entity_id=a\ b\,c\=d "
        r'state\ value="say \"hi\" \\ bye",n=3i,x=1.5,ok=true 1'
    )
    with pytest.raises(ValueError, match="line break"):
        line("m", {"t": "a\nb"}, {"f": 1}, 1)


# --- real servers --------------------------------------------------------------------------


def _points(schema: Schema, count: int, start: datetime) -> list[str]:
    lines = []
    previous = None
    for i in range(count):
        new = _state(
            f"light.l{i % 3}", "on" if i % 2 else "off", start + timedelta(seconds=i), f"01C{i}"
        )
        point = event_point(schema, new, previous)
        assert point is not None
        lines.append(point.line(PRECISION[schema]))
        previous = new
    return lines


async def _recent(backend: InfluxQLBackend | FluxBackend, before: datetime) -> Schema | None:
    """The schema of the week before `before`, asked with an empty span (as the action does)."""
    stored = await async_stored_points(
        backend, None, before, before + timedelta(seconds=1), recent_before=before
    )
    return stored.recent


async def test_influxql_writes_and_reads_back_what_it_wrote(
    session: aiohttp.ClientSession, influxdb_server: InfluxDBServer, database: str
) -> None:
    backend = InfluxQLBackend(session, influxdb_server.url, database)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    stop = start + timedelta(minutes=1)
    assert await _recent(backend, stop) is None
    sent = await backend.async_write(_points(Schema.B, 9, start), Precision.MS)
    assert sent > 0
    stored = await async_stored_points(backend, None, start, stop)
    assert stored.schema is Schema.B
    assert sorted(stored.times) == ["light.l0", "light.l1", "light.l2"]
    assert [t // 1_000_000_000 for t in stored.times["light.l0"]] == [
        int(start.timestamp()) + s for s in (0, 3, 6)
    ]
    # The same points again: the same series and times, nothing new.
    await backend.async_write(_points(Schema.B, 9, start), Precision.MS)
    again = await async_stored_points(backend, None, start, stop)
    assert again.times == stored.times
    # Schema A (ns) written later is the newest: the recent schema follows it.
    await backend.async_write(_points(Schema.A, 3, stop), Precision.NS)
    assert await _recent(backend, stop + timedelta(minutes=1)) is Schema.A


@pytest.fixture
def auth_server(tmp_path: Path, socket_enabled: None) -> Iterator[InfluxDBServer]:
    with running_auth_influxdb(tmp_path, PASSWORD) as server:
        yield server


async def test_influxql_read_only_user_is_refused_and_nothing_lands(
    session: aiohttp.ClientSession, auth_server: InfluxDBServer
) -> None:
    reader = InfluxQLBackend(
        session, auth_server.url, "events", username="reader", password=PASSWORD
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    with pytest.raises(ReadOnlyError, match="HTTP 403") as caught:
        await reader.async_write(_points(Schema.B, 3, start), Precision.MS)
    assert PASSWORD not in str(caught.value)
    stored = await async_stored_points(
        reader, None, start - timedelta(seconds=1), datetime.now(UTC)
    )
    assert stored.times == {}
    admin = InfluxQLBackend(session, auth_server.url, "events", username="admin", password=PASSWORD)
    await admin.async_write(_points(Schema.B, 3, start), Precision.MS)
    stored = await async_stored_points(
        reader, None, start - timedelta(seconds=1), datetime.now(UTC)
    )
    assert sum(len(t) for t in stored.times.values()) == 3


@pytest.fixture
async def double(socket_enabled: None) -> AsyncIterator[Influx2Double]:
    async with running_double(tokens={TOKEN}, read_only_tokens={READER}, org=ORG) as server:
        yield server


async def test_flux_writes_reads_back_and_refuses_a_read_only_token(
    session: aiohttp.ClientSession, double: Influx2Double
) -> None:
    bucket = "home_assistant_events"
    writer = FluxBackend(session, double.url, TOKEN, ORG, bucket)
    reader = FluxBackend(session, double.url, READER, ORG, bucket)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    stop = start + timedelta(minutes=1)
    with pytest.raises(ReadOnlyError, match="HTTP 403"):
        await reader.async_write(_points(Schema.B, 6, start), Precision.MS)
    assert (await async_stored_points(reader, None, start, stop)).times == {}
    assert await _recent(reader, stop) is None
    await writer.async_write(_points(Schema.B, 6, start), Precision.MS)
    write = next(
        r
        for r in double.requests
        if r.path == "/api/v2/write" and r.authorization == f"Token {TOKEN}"
    )
    assert write.query == {"org": ORG, "bucket": bucket, "precision": "ms"}
    stored = await async_stored_points(reader, None, start, stop)
    assert stored.schema is Schema.B
    assert {e: len(t) for e, t in stored.times.items()} == {
        "light.l0": 2,
        "light.l1": 2,
        "light.l2": 2,
    }
    assert stored.times["light.l1"][0] == to_ns(start + timedelta(seconds=1))
    assert await _recent(reader, stop) is Schema.B
    # The span's own points decide before the week before does.
    assert (
        await async_stored_points(reader, None, start, stop, recent_before=start)
    ).schema is Schema.B


# --- the delivery check learns of written points -------------------------------------------


def test_credited_points_clear_the_loss_of_compared_windows_only() -> None:
    start = 1_796_000_000.0
    counter = DeliveryCounter(start, timedelta(hours=1), settle=30)
    origin = counter.origin
    for i in range(5):
        counter.count("light.lossy", origin + 1 + i)
    counter.count("sensor.other", origin + 2)
    window = counter.settled_window(origin + 60)
    assert window is not None
    bucket = floor_seconds(origin, counter.bucket)
    counter.settle(window, {(bucket, "light.lossy"): 2, (bucket, "sensor.other"): 1})
    assert lost_per_entity(counter) == {"light.lossy": 3}
    assert counter.report(origin + 60).lost == 3

    for i in range(2):
        credit_backfilled(counter, "light.lossy", origin + 1 + i)
    # Not compared yet (after the settled edge): that window will find the point itself.
    credit_backfilled(counter, "light.lossy", counter.compared_until + 5)
    assert lost_per_entity(counter) == {"light.lossy": 1}
    report = counter.report(origin + 60)
    assert (report.lost, report.stored, report.fired) == (1, 5, 6)
