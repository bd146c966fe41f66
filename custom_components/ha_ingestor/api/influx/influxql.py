"""InfluxQL backend: InfluxDB 1.x, InfluxDB 2.x (v1-compatible `/query`) and InfluxDB 3 Core.

One refresh is one POST to `/query` carrying several `;`-separated statements; the server
counts and sums, `aggregate` turns the numbers into the snapshot exactly as the Flux backend
does. The database and retention policy travel as request parameters, never inside the
query text; the query text holds only constants, whitelisted durations and our own times.
"""

# S608: every piece of query text below is a constant through `influxql_identifier`, a
# whitelisted duration, or a time we formatted; no caller text is ever interpolated.
# ruff: noqa: S608

from __future__ import annotations

import base64
import logging
import re
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from ..core.aggregate import (
    EntityCount,
    build_event_statistics,
    build_processing_metrics,
    period_bounds,
    rfc3339,
)
from ..core.bounded import INFLUXDB_CAP, read_bounded
from ..core.errors import (
    TRANSIENT_STATUSES,
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorNotFoundError,
    IngestorResponseError,
    Origin,
    error_for_exception,
    quote,
)
from ..core.models import TrendPoint, TrendWindow
from .backend import (
    ATTEMPT_FIELDS,
    DEFAULT_TIMEOUT,
    ERROR_FIELDS,
    EVENT_FIELDS,
    FRESHNESS_LOOKBACK,
    LATEST_FIELDS,
    MEASUREMENT,
    SERVICE_METRICS_MEASUREMENT,
    VERSION_HEADER,
    InfluxResult,
    influx_url,
)
from .influxql_json import (
    ShapeError,
    count_cell,
    decode_documents,
    number_cell,
    series_of,
    time_cell,
)
from .names import influxql_duration, influxql_identifier, validate_name
from .windows import Answer, PartKind, Row, fetch_windows, microseconds
from .write import WriteTarget, async_post_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from datetime import datetime

    from ..core.models import Period, ProcessingMetrics
    from .windows import EntityKey, Plan, WindowStore
    from .write import Precision

_LOGGER = logging.getLogger(__name__)


# Statement order matters: influxd stops at the first failing statement, so the optional
# `service_metrics` statements go last and cannot cost the event figures. No statement counts
# the whole period: every point is in exactly one entity_id/domain group (untagged points in
# the empty-tag group), so the total is the sum of the groups and a scan of the period saved.
_PER_ENTITY, _TREND, _LAST_A, _LAST_B, _SERVICE_LATEST, _SERVICE_SUMS = range(6)
_STATEMENTS: Final = 6
_EVENT_STATEMENTS: Final = 4
_COUNT_COLUMNS: Final = ("a", "b")

# 1.x: "database not found: x"; 2.x: "no dbrp mapping for database ..."; 3 Core and proxies
# word it their own way ("Database x not found", "bucket not found").
_NOT_FOUND: Final = re.compile(
    r"\b(database|bucket|retention policy|dbrp)\b.*\bnot found|no dbrp mapping", re.IGNORECASE
)
_AUTH_HINTS: Final = (
    "authorization failed",
    "unable to parse authentication",
    "not authorized",
    "unauthorized",
    "authentication",
)


def _in_range(start: datetime, stop: datetime) -> str:
    return f"time >= '{rfc3339(start)}' AND time < '{rfc3339(stop)}'"


def _event_counts() -> str:
    field_a, field_b = (influxql_identifier(name) for name in EVENT_FIELDS)
    return f'COUNT({field_a}) AS "a", COUNT({field_b}) AS "b"'


def _service_statements(in_period: str) -> tuple[str, str]:
    """The `_SERVICE_LATEST` and `_SERVICE_SUMS` statements (they go last: they may fail)."""
    services = influxql_identifier(SERVICE_METRICS_MEASUREMENT)
    service = influxql_identifier("service")
    sums = ", ".join(
        f"SUM({influxql_identifier(name)}) AS {influxql_identifier(name)}"
        for name in (*ERROR_FIELDS, *ATTEMPT_FIELDS)
    )
    latest = ", ".join(
        f"LAST({influxql_identifier(name)}) AS {influxql_identifier(name)}"
        for name in LATEST_FIELDS
    )
    return (
        f"SELECT {latest} FROM {services} WHERE {in_period} GROUP BY {service}",
        f"SELECT {sums} FROM {services} WHERE {in_period}",
    )


def _last_statements(in_range: str) -> tuple[str, str]:
    """The newest point of each schema's field (InfluxQL has no LAST over two fields)."""
    events = influxql_identifier(MEASUREMENT)
    return tuple(  # type: ignore[return-value]
        f"SELECT LAST({influxql_identifier(name)}) FROM {events} WHERE {in_range}"
        for name in EVENT_FIELDS
    )


def build_fetch_query(period: Period, window: TrendWindow, now: datetime) -> str:
    """The multi-statement InfluxQL of one refresh (see the statement indexes above).

    Each schema writes one event field per point (`state` for A, `state_value` for B) and
    InfluxQL counts per field, so every count is taken for both fields and added up.
    """
    start, stop = period_bounds(period, now)
    events = influxql_identifier(MEASUREMENT)
    in_period = _in_range(start, stop)
    counts = _event_counts()
    entity_id, domain = (influxql_identifier(tag) for tag in ("entity_id", "domain"))
    statements = (
        f"SELECT {counts} FROM {events} WHERE {in_period} GROUP BY {entity_id}, {domain}",
        (
            f"SELECT {counts} FROM {events} WHERE {in_period} "
            f"GROUP BY time({influxql_duration(window)}) fill(0)"
        ),
        *_last_statements(_in_range(stop - FRESHNESS_LOOKBACK, stop)),
        *_service_statements(in_period),
    )
    return "; ".join(statements)


def build_window_query(plan: Plan, period: Period) -> tuple[str, tuple[str, ...]]:
    """The InfluxQL of one `WindowStore` plan: its parts, then the `service_metrics` pair.

    Returns the query and the part name of each statement before the service pair (a LAST
    part takes two statements, one per schema's field).
    """
    events = influxql_identifier(MEASUREMENT)
    counts = _event_counts()
    entity_id, domain = (influxql_identifier(tag) for tag in ("entity_id", "domain"))
    statements: list[str] = []
    names: list[str] = []
    for part in plan.parts:
        in_range = _in_range(part.start, part.stop)
        if part.kind is PartKind.LAST:
            statements += _last_statements(in_range)
            names += [part.name, part.name]
            continue
        width = influxql_duration(part.width)
        grouping = {
            PartKind.ENTITIES: f"GROUP BY {entity_id}, {domain}",
            PartKind.ENTITY_WINDOWS: f"GROUP BY time({width}), {entity_id}, {domain} fill(none)",
            PartKind.FINE: f"GROUP BY time({width}) fill(none)",
            # Counted per microsecond (the finest a period bound has), not read raw: a raw
            # read would carry every value, schema B's state reprs of hundreds of bytes.
            PartKind.TIMES: f"GROUP BY time(1u), {entity_id}, {domain} fill(none)",
        }[part.kind]
        statements.append(f"SELECT {counts} FROM {events} WHERE {in_range} {grouping}")
        names.append(part.name)
    start, stop = period_bounds(period, plan.now)
    statements += _service_statements(_in_range(start, stop))
    return "; ".join(statements), tuple(names)


def build_validate_query() -> str:
    """One cheap, time-bounded read of the event measurement: proves database and rights."""
    field_b = influxql_identifier(EVENT_FIELDS[1])
    events = influxql_identifier(MEASUREMENT)
    return f"SELECT COUNT({field_b}) FROM {events} WHERE time > now() - 1m"


def _entity_counts(result: Mapping[str, Any]) -> list[EntityCount]:
    rows: list[EntityCount] = []
    for series in series_of(result):
        count = sum(count_cell(row.get(c)) for row in series.rows() for c in _COUNT_COLUMNS)
        rows.append(
            EntityCount(
                entity_id=series.tags.get("entity_id", ""),
                count=count,
                domain=series.tags.get("domain") or None,
            )
        )
    return rows


def _trend(result: Mapping[str, Any], window: TrendWindow, stop: datetime) -> list[TrendPoint]:
    # InfluxQL labels a bucket with its start; Flux (and TrendPoint) with its end.
    points: list[TrendPoint] = []
    for series in series_of(result):
        for row in series.rows():
            end = min(time_cell(row.get("time")) + window.duration, stop)
            count = sum(count_cell(row.get(c)) for c in _COUNT_COLUMNS)
            points.append(TrendPoint(time=end, count=count))
    return points


def _window_rows(result: Mapping[str, Any], kind: PartKind) -> list[Row]:
    """One window part's counts: per entity and domain, per fine window, or both."""
    rows: list[Row] = []
    for series in series_of(result):
        entity = (series.tags.get("entity_id", ""), series.tags.get("domain") or None)
        rows.extend(
            Row(
                count=sum(count_cell(row.get(c)) for c in _COUNT_COLUMNS),
                entity=None if kind is PartKind.FINE else entity,
                window=None if kind is PartKind.ENTITIES else time_cell(row.get("time")),
            )
            for row in series.rows()
        )
    return rows


def _times(result: Mapping[str, Any]) -> dict[EntityKey, list[int]]:
    """A `TIMES` part: per entity and domain, each counted value's microsecond."""
    times: dict[EntityKey, list[int]] = {}
    for series in series_of(result):
        entity = (series.tags.get("entity_id", ""), series.tags.get("domain") or None)
        kept = times.setdefault(entity, [])
        # Read by position, not as dicts: a prefetch answers some 60,000 rows at 10M / 7 d.
        columns = series.columns
        if "time" not in columns:
            raise ShapeError
        at = columns.index("time")
        counted = [columns.index(c) for c in _COUNT_COLUMNS if c in columns]
        for row in series.values:
            if len(row) != len(columns):
                raise ShapeError
            cell = row[at]
            # epoch=ns answers integers: cut to the microsecond as `time_cell` does.
            when = cell // 1000 if type(cell) is int else microseconds(time_cell(cell))
            count = 0
            for index in counted:
                count += count_cell(row[index])
            if count == 1:
                kept.append(when)
            else:
                kept.extend([when] * count)
    return times


def _last_time(result: Mapping[str, Any]) -> datetime | None:
    times = [time_cell(row.get("time")) for series in series_of(result) for row in series.rows()]
    return max(times, default=None)


def _service_latest(result: Mapping[str, Any]) -> tuple[dict[str, float | None], ...]:
    latest: tuple[dict[str, float | None], ...] = tuple({} for _ in LATEST_FIELDS)
    for series in series_of(result):
        service = series.tags.get("service", "")
        for row in series.rows():
            for index, name in enumerate(LATEST_FIELDS):
                latest[index][service] = number_cell(row.get(name))
    return latest


def _service_sums(result: Mapping[str, Any]) -> tuple[float | None, float | None]:
    def total(row: Mapping[str, Any], names: Sequence[str]) -> float | None:
        values = [v for v in (number_cell(row.get(name)) for name in names) if v is not None]
        return sum(values) if values else None

    errors: float | None = None
    attempts: float | None = None
    for series in series_of(result):
        for row in series.rows():
            errors = total(row, ERROR_FIELDS)
            attempts = total(row, ATTEMPT_FIELDS)
    return errors, attempts


class InfluxQLBackend:
    """`InfluxBackend` over InfluxQL `/query`, on a session the caller owns.

    TLS settings are the session's (Home Assistant's shared session honours the entry's
    `verify_ssl`), as for the Flux backend.
    """

    def __init__(  # noqa: PLR0913
        self,
        session: aiohttp.ClientSession,
        url: str,
        database: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        retention_policy: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        windows: WindowStore | None = None,
    ) -> None:
        """Check the settings; nothing is sent until the first call.

        `windows` keeps the counts of its period and trend window between refreshes, so
        those refreshes read only what changed (`api.windows`); other periods are recounted.
        A token is sent as `Authorization: Token <t>` (InfluxDB 2.x v1-compat, 3 Core);
        username/password as HTTP Basic auth (InfluxDB 1.x). Never in the URL.

        Raises:
            InvalidNameError: unusable database or retention policy name.
            InvalidURLError: the URL breaks the rule of `influx_url`.
            ValueError: both a token and a username/password given.

        """
        self._session = session
        self._endpoint = influx_url(url, "/query")
        self._write_endpoint = influx_url(url, "/write")
        self._database = validate_name(database, "database")
        self._retention_policy = (
            None
            if retention_policy is None
            else validate_name(retention_policy, "retention policy")
        )
        if token and (username or password):
            msg = "give a token or a username and password, not both"
            raise ValueError(msg)
        self._headers = {"Accept": "application/json"}
        self._secrets = tuple(s for s in (token, password) if s)
        if token:
            self._headers["Authorization"] = f"Token {token}"
        elif username:
            pair = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {pair}"
            self._secrets = (*self._secrets, pair)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.version: str | None = None
        self.windows = windows

    def __repr__(self) -> str:
        """Where it points, never how it authenticates."""
        return f"InfluxQLBackend(url={str(self._endpoint)!r}, database={self._database!r})"

    @property
    def database(self) -> str:
        """The configured database."""
        return self._database

    async def async_fetch(self, period: Period, window: TrendWindow, now: datetime) -> InfluxResult:
        """Every figure of one refresh from one `/query` request.

        For the period and trend window of `windows`, incrementally (`api.windows`). Else a
        full recount: a single malformed figure becomes None, the others stay. The events in
        the period are the sum of the per-entity counts, so an unreadable per-entity answer
        leaves the total, the rate, the active entities and the top domains unknown together.
        """
        if self.windows is not None and self.windows.tracks(period, window):
            events, metrics = await fetch_windows(
                self.windows, now, lambda plan: self._read_windows(plan, period)
            )
            return InfluxResult(events=events, metrics=metrics, version=self.version)
        _start, stop = period_bounds(period, now)
        results = await self._query(build_fetch_query(period, window, now))
        for index in range(_EVENT_STATEMENTS):
            if index not in results:
                msg = f"InfluxDB answered {len(results)} of {_STATEMENTS} statements"
                raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
            self._raise_statement_error(results[index])
        entity_counts = self._read(results[_PER_ENTITY], _entity_counts)
        events_in_period = (
            None if entity_counts is None else sum(row.count for row in entity_counts)
        )
        trend = self._read(results[_TREND], lambda r: _trend(r, window, stop))
        last_a = self._read(results[_LAST_A], _last_time)
        last_b = self._read(results[_LAST_B], _last_time)
        unreadable_last = _unreadable(results[_LAST_A], last_a) or _unreadable(
            results[_LAST_B], last_b
        )
        last_event = None if unreadable_last else max(filter(None, (last_a, last_b)), default=None)
        events = build_event_statistics(
            events_in_period=events_in_period,
            last_event=last_event,
            entity_counts=entity_counts,
            trend=trend,
            period=period,
            window=window,
            now=now,
        )
        metrics = self._metrics(results.get(_SERVICE_LATEST), results.get(_SERVICE_SUMS))
        return InfluxResult(events=events, metrics=metrics, version=self.version)

    def _metrics(
        self, latest_result: Mapping[str, Any] | None, sums_result: Mapping[str, Any] | None
    ) -> ProcessingMetrics:
        latest = self._optional(latest_result, _service_latest)
        sums = self._optional(sums_result, _service_sums)
        success, processing = latest if latest is not None else ({}, {})
        errors, attempts = sums if sums is not None else (None, None)
        return build_processing_metrics(
            errors=errors,
            attempts=attempts,
            success_rates=success,
            processing_times=processing,
        )

    async def _read_windows(self, plan: Plan, period: Period) -> tuple[Answer, ProcessingMetrics]:
        """The answer to a `WindowStore` plan, from one `/query` request.

        Any failing or unreadable event statement fails the whole read (the store cannot
        take half an answer); `service_metrics` failures only leave those figures unknown.
        """
        query, names = build_window_query(plan, period)
        results = await self._query(query)
        rows: dict[str, list[Row]] = {}
        times: dict[str, dict[EntityKey, list[int]]] = {}
        newest: list[datetime] = []
        for index, name in enumerate(names):
            result = results.get(index)
            part = plan.part(name)
            if result is None or part is None:
                msg = f"InfluxDB answered {len(results)} of {len(names) + 2} statements"
                raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
            self._raise_statement_error(result)
            try:
                if part.kind is PartKind.LAST:
                    newest += filter(None, (_last_time(result),))
                elif part.kind is PartKind.TIMES:
                    times[name] = _times(result)
                else:
                    rows.setdefault(name, []).extend(_window_rows(result, part.kind))
            except ShapeError as err:
                msg = f"InfluxDB answered an unexpected result shape for {name}"
                raise IngestorResponseError(msg, origin=Origin.INFLUXDB) from err
        metrics = self._metrics(results.get(len(names)), results.get(len(names) + 1))
        return Answer(rows, max(newest, default=None), times), metrics

    async def async_validate(self) -> None:
        """One bounded read of the event measurement in the configured database."""
        results = await self._query(build_validate_query())
        if 0 not in results:
            msg = "InfluxDB answered no statement"
            raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
        self._raise_statement_error(results[0])

    async def async_statements(self, query: str) -> dict[int, dict[str, Any]]:
        """The raw result of each statement of any other query, by statement id.

        A statement's own error stays in its result; only request-level failures raise.
        """
        return await self._query(query)

    async def async_statement_rows(self, query: str) -> list[list[dict[str, Any]]]:
        """Each statement's rows, tags merged in; for the delivery check's own small queries.

        Raises:
            IngestorError: as every request; a failing or unreadable statement too.

        """
        results = await self._query(query)
        rows: list[list[dict[str, Any]]] = []
        for index in sorted(results):
            self._raise_statement_error(results[index])
            try:
                series = series_of(results[index])
            except ShapeError:
                msg = f"statement {index} is not an InfluxQL result"
                raise IngestorResponseError(msg, origin=Origin.INFLUXDB) from None
            rows.append([{**s.tags, **row} for s in series for row in s.rows()])
        return rows

    async def async_close(self) -> None:
        """Nothing to release: the session belongs to the caller."""

    async def async_write(self, lines: Iterable[str], precision: Precision) -> int:
        """Write one batch of line protocol over `/write`; the bytes sent (`api/influx/write.py`).

        Raises:
            ReadOnlyError: the credentials may read but not write.
            IngestorError: any other failure.

        """
        params = {"db": self._database}
        if self._retention_policy is not None:
            params["rp"] = self._retention_policy
        headers = {k: v for k, v in self._headers.items() if k == "Authorization"}
        target = WriteTarget(
            self._session, self._write_endpoint, params, headers, self._timeout, self._secrets
        )
        return await async_post_lines(target, lines, precision)

    # --- one request ------------------------------------------------------------------------

    async def _query(self, query: str) -> dict[int, dict[str, Any]]:
        # Chunked: influxd 1.x reports a failing statement's real error only in the first
        # chunk; merged into one document its reason becomes "not executed".
        params = {"db": self._database, "epoch": "ns", "chunked": "true"}
        if self._retention_policy is not None:
            params["rp"] = self._retention_policy
        try:
            async with self._session.post(
                self._endpoint,
                params=params,
                data={"q": query},
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                self.version = response.headers.get(VERSION_HEADER) or self.version
                body = await read_bounded(
                    response,
                    cap=INFLUXDB_CAP,
                    where=f"InfluxDB at {self._where}",
                    origin=Origin.INFLUXDB,
                )
                status = response.status
        except (aiohttp.ClientError, OSError) as err:
            raise error_for_exception(
                err,
                where=f"InfluxDB at {self._where}",
                origin=Origin.INFLUXDB,
                timeout=self._timeout.total,
                secrets=self._secrets,
            ) from err
        document = self._decode(body)
        self._raise_for_status(status, document)
        return self._results(document)

    @property
    def _where(self) -> str:
        return f"{self._endpoint.host}:{self._endpoint.port}"

    def _quote(self, text: str) -> str:
        return quote(text, self._secrets)

    def _decode(self, body: bytes) -> object:
        return decode_documents(body)

    def _raise_for_status(self, status: int, document: object) -> None:
        # 1.x and 3 Core say {"error": ...}; 2.x says {"code": ..., "message": ...}.
        text = ""
        if isinstance(document, dict):
            for key in ("error", "message"):
                if isinstance(document.get(key), str):
                    text = document[key]
                    break
        if status in (401, 403):
            msg = f"InfluxDB refused the credentials (HTTP {status})"
            if text:
                msg += f": {self._quote(text)}"
            raise IngestorAuthenticationError(msg, origin=Origin.INFLUXDB)
        if status == 200 and not text:  # noqa: PLR2004
            return
        self._raise_error_text(text, status)
        if status == 404:  # noqa: PLR2004
            msg = "no InfluxQL /query endpoint at this URL (HTTP 404)"
            raise IngestorNotFoundError(msg, origin=Origin.INFLUXDB)
        detail = f": {self._quote(text)}" if text else ""
        if status in TRANSIENT_STATUSES:
            msg = f"InfluxDB at {self._where} is unavailable (HTTP {status}){detail}"
            raise IngestorConnectionError(msg, origin=Origin.INFLUXDB)
        msg = f"InfluxDB answered HTTP {status}{detail}"
        raise IngestorResponseError(msg, origin=Origin.INFLUXDB)

    def _raise_error_text(self, text: str, status: int | None = None) -> None:
        lowered = text.lower()
        if _NOT_FOUND.search(text):
            msg = f"InfluxDB has no such database or retention policy: {self._quote(text)}"
            raise IngestorNotFoundError(msg, origin=Origin.INFLUXDB)
        if any(hint in lowered for hint in _AUTH_HINTS):
            msg = f"InfluxDB refused the query: {self._quote(text)}"
            raise IngestorAuthenticationError(msg, origin=Origin.INFLUXDB)
        if text and status is None:
            msg = f"InfluxDB could not run the query: {self._quote(text)}"
            raise IngestorResponseError(msg, origin=Origin.INFLUXDB)

    def _results(self, document: object) -> dict[int, dict[str, Any]]:
        results = document.get("results") if isinstance(document, dict) else None
        if not isinstance(results, list):
            msg = "InfluxDB answered something that is not an InfluxQL result"
            raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
        by_id: dict[int, dict[str, Any]] = {}
        for position, result in enumerate(results):
            if not isinstance(result, dict):
                msg = "InfluxDB answered a malformed statement result"
                raise IngestorResponseError(msg, origin=Origin.INFLUXDB)
            statement_id = result.get("statement_id", position)
            if isinstance(statement_id, int) and not isinstance(statement_id, bool):
                by_id[statement_id] = result
        return by_id

    def _raise_statement_error(self, result: Mapping[str, Any]) -> None:
        error = result.get("error")
        if error is None:
            return
        self._raise_error_text(error if isinstance(error, str) else "unreadable error")

    def _read[T](self, result: Mapping[str, Any], parse: _Parser[T]) -> T | None:
        try:
            return parse(result)
        except ShapeError:
            _LOGGER.debug("Unexpected InfluxQL result shape; figure left unknown")
            return None

    def _optional[T](self, result: Mapping[str, Any] | None, parse: _Parser[T]) -> T | None:
        """`service_metrics` figures: any statement error only leaves them unknown."""
        if result is None or result.get("error") is not None:
            if result is not None:
                _LOGGER.debug(
                    "service_metrics statement failed: %s", self._quote(str(result["error"]))
                )
            return None
        return self._read(result, parse)


type _Parser[T] = Callable[[Mapping[str, Any]], T]


def _unreadable(result: Mapping[str, Any], parsed: datetime | None) -> bool:
    """A LAST statement whose series exist but could not be read."""
    return parsed is None and bool(result.get("series"))
