"""Flux backend: InfluxDB 2.x (what the ingestor deploys), one multi-`yield` query per refresh.

Every figure is aggregated by the server; the few rows that come back are turned into the
snapshot by `aggregate`, the arithmetic the InfluxQL backend shares. Events are counted as
points, one field each: schema A's `state` or schema B's `state_value` (never both on one
point), so neither the field count per point nor the schema inflates a figure.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from ..core.aggregate import (
    EntityCount,
    as_utc,
    build_event_statistics,
    build_processing_metrics,
    period_bounds,
    rfc3339,
)
from ..core.bounded import INFLUXDB_CAP, JSON_ERRORS, read_bounded
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
from ..core.models import Period, TrendPoint, TrendWindow
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
from .flux_csv import (
    CSV_DIALECT,
    MAX_SERVER_MESSAGE,
    Record,
    parse_annotated_csv,
    unreadable_csv,
)
from .names import flux_duration, flux_string, validate_name
from .windows import Answer, PartKind, Row, fetch_windows, microseconds, window_of_stop
from .write import WriteTarget, async_post_lines

if TYPE_CHECKING:
    from collections.abc import Iterable

    from yarl import URL

    from ..core.models import ProcessingMetrics
    from .windows import EntityKey, Part, Plan, WindowStore
    from .write import Precision


# Result names of the refresh query (the `result` column of the annotated CSV). No result
# counts the whole period: every point is in exactly one entity_id/domain group (a point
# without the tag in the null-key group), so the total is the sum of `entity_counts`.
RESULT_ENTITIES: Final = "entity_counts"
RESULT_TREND: Final = "trend"
RESULT_LAST_EVENT: Final = "last_event"
RESULT_METRIC_SUMS: Final = "metric_sums"
RESULT_METRIC_LATEST: Final = "metric_latest"

# Flux's `sum()` fails the whole query on a string or boolean column ("unsupported aggregate
# column type"), and one failing result fails them all. `service_metrics` is nobody's schema
# to rely on (an `error` field may well hold a message), so only its numeric values are read:
# a foreign type leaves those figures unknown, as a failing InfluxQL statement does.
# (`types.isType` needs Flux 0.141, InfluxDB 2.2.)
_NUMERIC_TYPES: Final = ("int", "uint", "float")
UNKNOWN_SERVICE: Final = "unknown"

QUERY_PATH: Final = "/api/v2/query"
WRITE_PATH: Final = "/api/v2/write"


# --------------------------------------------------------------------------------------
# Query text
# --------------------------------------------------------------------------------------


def _field_predicate(fields: tuple[str, ...]) -> str:
    return " or ".join(f"r._field == {flux_string(name, 'field')}" for name in fields)


def build_refresh_query(bucket: str, period: Period, window: TrendWindow, now: datetime) -> str:
    """The one Flux program of a refresh: five named results, all aggregated server-side.

    Absolute bounds from the caller's `now` (not `-1h`): every figure of the refresh, and the
    InfluxQL backend's, covers exactly the same `[now - period, now)`.
    """
    # Typed `object`: a plain string from a caller that skipped the enums must fail here.
    given: tuple[object, object] = (period, window)
    if not isinstance(given[0], Period) or not isinstance(given[1], TrendWindow):
        msg = "period and window must be Period and TrendWindow members"
        raise TypeError(msg)
    start, stop = period_bounds(period, now)
    lookback = stop - max(FRESHNESS_LOOKBACK, period.duration)
    source = f"from(bucket: {flux_string(bucket, 'bucket')})"
    events_filter = _events_filter()
    in_period = f"range(start: {rfc3339(start)}, stop: {rfc3339(stop)})"
    return "\n".join(
        (
            'import "types"',
            f"events = {source}",
            f"  |> {in_period}",
            f"  |> {events_filter}",
            (
                'events |> group(columns: ["entity_id", "domain"]) |> count()'
                f' |> yield(name: "{RESULT_ENTITIES}")'
            ),
            (
                "events |> group()"
                f" |> aggregateWindow(every: {flux_duration(window)}, fn: count, createEmpty: true)"
                f' |> yield(name: "{RESULT_TREND}")'
            ),
            f"{source}",
            f"  |> range(start: {rfc3339(lookback)}, stop: {rfc3339(stop)})",
            f"  |> {events_filter}",
            *_newest_lines(),
            f'  |> yield(name: "{RESULT_LAST_EVENT}")',
            *_service_metrics_lines(source, in_period),
        )
    )


def _service_metrics_lines(source: str, in_period: str) -> tuple[str, ...]:
    """The `service_metrics` results (sums and latest values over the period).

    Only numeric values are read: a foreign type costs these figures, never the query.
    The program must `import "types"`.
    """
    metrics_filter = (
        "filter(fn: (r) => r._measurement == "
        f"{flux_string(SERVICE_METRICS_MEASUREMENT, 'measurement')})"
    )
    numeric = " or ".join(
        f"types.isType(v: r._value, type: {flux_string(name)})" for name in _NUMERIC_TYPES
    )
    return (
        f"metrics = {source}",
        f"  |> {in_period}",
        f"  |> {metrics_filter}",
        f"  |> filter(fn: (r) => {numeric})",
        "metrics",
        f"  |> filter(fn: (r) => {_field_predicate(ATTEMPT_FIELDS + ERROR_FIELDS)})",
        "  |> sum()",
        f'  |> yield(name: "{RESULT_METRIC_SUMS}")',
        "metrics",
        f"  |> filter(fn: (r) => {_field_predicate(LATEST_FIELDS)})",
        "  |> last()",
        f'  |> yield(name: "{RESULT_METRIC_LATEST}")',
    )


def _events_filter() -> str:
    return (
        f"filter(fn: (r) => r._measurement == {flux_string(MEASUREMENT, 'measurement')} "
        f"and ({_field_predicate(EVENT_FIELDS)}))"
    )


def _newest_lines() -> tuple[str, ...]:
    """After a ranged, filtered source: the newest point's time, one row at most.

    last() per series is pushed down to storage; only one row per series sorts. Only the
    time is merged: no column of differing type can collide in group().
    """
    return (
        "  |> last()",
        '  |> keep(columns: ["_time"])',
        "  |> group()",
        '  |> sort(columns: ["_time"], desc: true)',
        "  |> limit(n: 1)",
    )


def _window_steps(part: Part) -> tuple[str, ...]:
    if part.kind is PartKind.LAST:
        return _newest_lines()
    by_entity = '  |> group(columns: ["entity_id", "domain"])'
    if part.kind is PartKind.ENTITIES:
        return (f"{by_entity} |> count()",)
    if part.kind is PartKind.TIMES:
        # One row per value (a point with both event fields twice, as count() counts it);
        # only its time leaves the server, never the value.
        return (f'{by_entity} |> keep(columns: ["_time", "entity_id", "domain"])',)
    windows = (
        f" |> aggregateWindow(every: {flux_duration(part.width)}, fn: count, createEmpty: false)"
    )
    if part.kind is PartKind.ENTITY_WINDOWS:
        return (by_entity + windows,)
    return ("  |> group()" + windows,)


def build_window_query(bucket: str, plan: Plan, period: Period) -> str:
    """The Flux of one `WindowStore` plan, then the `service_metrics` results of the period.

    One result per part, named after it; fine windows are counted by `aggregateWindow`.
    """
    source = f"from(bucket: {flux_string(bucket, 'bucket')})"
    lines = ['import "types"']
    for part in plan.parts:
        lines += [
            source,
            f"  |> range(start: {rfc3339(part.start)}, stop: {rfc3339(part.stop)})",
            f"  |> {_events_filter()}",
            *_window_steps(part),
            f'  |> yield(name: "{part.name}")',
        ]
    start, stop = period_bounds(period, plan.now)
    lines += _service_metrics_lines(
        source, f"range(start: {rfc3339(start)}, stop: {rfc3339(stop)})"
    )
    return "\n".join(lines)


def build_validate_query(bucket: str) -> str:
    """One bounded, cheap read of the configured bucket: proves URL, token, org and bucket."""
    return (
        f"from(bucket: {flux_string(bucket, 'bucket')})\n"
        "  |> range(start: -1m)\n"
        "  |> limit(n: 1)\n"
        '  |> keep(columns: ["_time"])\n'
        '  |> yield(name: "validate")'
    )


# --------------------------------------------------------------------------------------
# Results -> model
# --------------------------------------------------------------------------------------


def _count(record: Record) -> int:
    value = record.get("_value")
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"expected an integer count, got {type(value).__name__}"
        raise unreadable_csv(msg)
    return value


def _text(record: Record, column: str) -> str | None:
    value = record.get(column)
    return value if isinstance(value, str) and value else None


def _time(record: Record) -> datetime:
    value = record.get("_time")
    if not isinstance(value, datetime):
        msg = "expected a time in _time"
        raise unreadable_csv(msg)
    return value


def _metric(row: Record) -> float | None:
    """A `service_metrics` value; anything but a number is no figure (never a failed refresh)."""
    value = row.get("_value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _sum_fields(rows: list[Record], fields: tuple[str, ...]) -> float | None:
    """Sum of the numeric `_value`s of rows of `fields`; None when there is none."""
    values = [
        value for row in rows if row.get("_field") in fields and (value := _metric(row)) is not None
    ]
    return sum(values) if values else None


def _latest_per_service(rows: list[Record], field_name: str) -> dict[str, float | None]:
    """Each service's newest numeric value of one field (a service may span several series)."""
    newest: dict[str, tuple[datetime, float]] = {}
    for row in rows:
        value = _metric(row)
        when = row.get("_time")
        if row.get("_field") != field_name or value is None or not isinstance(when, datetime):
            continue
        service = _text(row, "service") or UNKNOWN_SERVICE
        if service not in newest or when > newest[service][0]:
            newest[service] = (when, value)
    return {service: value for service, (_when, value) in newest.items()}


def result_from_records(
    results: dict[str, list[Record]],
    period: Period,
    window: TrendWindow,
    now: datetime,
    version: str | None,
) -> InfluxResult:
    """Turn the five named results into the normalised model (absent result = no rows).

    The events in the period are the sum of the per-entity counts.
    """
    entity_counts = [
        EntityCount(
            entity_id=_text(row, "entity_id") or "",
            count=_count(row),
            domain=_text(row, "domain"),
        )
        for row in results.get(RESULT_ENTITIES, [])
    ]
    events_in_period = sum(row.count for row in entity_counts)
    trend = [
        TrendPoint(time=_time(row), count=_count(row)) for row in results.get(RESULT_TREND, [])
    ]
    last_rows = results.get(RESULT_LAST_EVENT, [])
    last_event = max((_time(row) for row in last_rows), default=None)
    events = build_event_statistics(
        events_in_period=events_in_period,
        last_event=last_event,
        entity_counts=entity_counts,
        trend=trend,
        period=period,
        window=window,
        now=now,
    )
    return InfluxResult(events=events, metrics=_metrics_from_records(results), version=version)


def _metrics_from_records(results: dict[str, list[Record]]) -> ProcessingMetrics:
    sums = results.get(RESULT_METRIC_SUMS, [])
    latest = results.get(RESULT_METRIC_LATEST, [])
    return build_processing_metrics(
        errors=_sum_fields(sums, ERROR_FIELDS),
        attempts=_sum_fields(sums, ATTEMPT_FIELDS),
        success_rates=_latest_per_service(latest, "success_rate"),
        processing_times=_latest_per_service(latest, "processing_time_ms"),
    )


def _window_row(record: Record, part: Part) -> Row:
    entity = (_text(record, "entity_id") or "", _text(record, "domain"))
    return Row(
        count=_count(record),
        entity=None if part.kind is PartKind.FINE else entity,
        # aggregateWindow labels a window with its stop, clipped to the range's stop.
        window=None
        if part.kind is PartKind.ENTITIES
        else window_of_stop(_time(record), part.width.duration),
    )


def answer_from_records(
    results: dict[str, list[Record]], plan: Plan
) -> tuple[Answer, ProcessingMetrics]:
    """The plan's parts (absent result = no rows) and the `service_metrics` figures."""
    rows: dict[str, list[Row]] = {}
    times: dict[str, dict[EntityKey, list[int]]] = {}
    newest: datetime | None = None
    for part in plan.parts:
        records = results.get(part.name, [])
        if part.kind is PartKind.LAST:
            newest = max((_time(record) for record in records), default=None)
        elif part.kind is PartKind.TIMES:
            kept = times.setdefault(part.name, {})
            for record in records:
                entity = (_text(record, "entity_id") or "", _text(record, "domain"))
                kept.setdefault(entity, []).append(microseconds(_time(record)))
        else:
            rows[part.name] = [_window_row(record, part) for record in records]
    return Answer(rows, newest, times), _metrics_from_records(results)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def _server_message(body: bytes) -> tuple[str, str]:
    """(code, message) of an InfluxDB JSON error body; empty strings when it has none."""
    try:
        document = json.loads(body.decode("utf-8", "replace"))
    except JSON_ERRORS:
        return "", ""
    if not isinstance(document, dict):
        return "", ""
    code = document.get("code")
    message = document.get("message")
    return (
        code if isinstance(code, str) else "",
        message[:MAX_SERVER_MESSAGE] if isinstance(message, str) else "",
    )


def error_for_status(status: int, body: bytes, secrets: Iterable[str] = ()) -> IngestorError:
    """The typed error of a non-2xx answer; `secrets` are masked in the server's message."""
    code, message = _server_message(body)
    message = quote(message, secrets)
    detail = f": {message}" if message else ""
    origin = Origin.INFLUXDB
    if status in {401, 403}:
        return IngestorAuthenticationError(
            f"InfluxDB refused the token (HTTP {status}){detail}", origin=origin
        )
    if status == 404:  # noqa: PLR2004
        lowered = message.lower()
        if "bucket" in lowered:
            what = "bucket"
        elif "organization" in lowered or "org" in lowered:
            what = "organization"
        else:
            what = "bucket or organization"
        return IngestorNotFoundError(f"InfluxDB {what} not found{detail}", origin=origin)
    if status in TRANSIENT_STATUSES:
        return IngestorConnectionError(
            f"InfluxDB is not available (HTTP {status}){detail}", origin=origin
        )
    label = f" {code}" if code else ""
    return IngestorResponseError(
        f"InfluxDB query failed (HTTP {status}{label}){detail}", origin=origin
    )


# --------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------


class FluxBackend:
    """`InfluxBackend` for InfluxDB 2.x over Flux (`/api/v2/query`), on a session the caller owns.

    TLS settings are the session's (Home Assistant's shared session carries its prebuilt
    contexts), so no SSL context is ever built here, and nothing is opened that needs closing.
    """

    def __init__(  # noqa: PLR0913
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        org: str,
        bucket: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        windows: WindowStore | None = None,
    ) -> None:
        """Check the settings; nothing is sent until the first call.

        `windows` keeps the counts of its period and trend window between refreshes, so
        those refreshes read only what changed (`api.windows`); other periods are recounted.

        Raises:
            InvalidNameError: unusable organization or bucket name.
            InvalidURLError: the URL breaks the rule of `influx_url`.

        """
        self._session = session
        self._url = str(influx_url(url))
        self._endpoint = influx_url(url, QUERY_PATH)
        self._where = f"{self._endpoint.host}:{self._endpoint.port}"
        self._org = validate_name(org, "organization")
        self._bucket = validate_name(bucket, "bucket")
        self._secrets = (token,) if token else ()
        self._headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/csv",
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.windows = windows

    def __repr__(self) -> str:
        """Identify the backend without its token."""
        return f"FluxBackend(url={self._url!r}, org={self._org!r}, bucket={self._bucket!r})"

    @property
    def bucket(self) -> str:
        """The configured bucket."""
        return self._bucket

    @property
    def org(self) -> str:
        """The configured organization."""
        return self._org

    async def _query(self, flux: str) -> tuple[str, str | None]:
        """POST one Flux program; the CSV text and the server's version header."""
        payload = json.dumps({"query": flux, "type": "flux", "dialect": CSV_DIALECT}).encode()
        body, version = await self._request(
            "POST", self._endpoint, params={"org": self._org}, data=payload, headers=self._headers
        )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            msg = "not UTF-8"
            raise unreadable_csv(msg) from err
        return text, version or None

    async def async_fetch(self, period: Period, window: TrendWindow, now: datetime) -> InfluxResult:
        """All statistics of one refresh in exactly one query request.

        For the period and trend window of `windows`, incrementally (`api.windows`).
        """
        now = as_utc(now)
        if self.windows is not None and self.windows.tracks(period, window):
            versions: list[str | None] = []

            async def read(plan: Plan) -> tuple[Answer, ProcessingMetrics]:
                text, version = await self._query(build_window_query(self._bucket, plan, period))
                versions.append(version)
                return answer_from_records(self._parse(text), plan)

            events, metrics = await fetch_windows(self.windows, now, read)
            return InfluxResult(events=events, metrics=metrics, version=versions[-1])
        text, version = await self._query(build_refresh_query(self._bucket, period, window, now))
        return result_from_records(self._parse(text), period, window, now, version)

    async def async_validate(self) -> None:
        """Prove URL, token, org and bucket with one bounded read (never lists buckets)."""
        text, _version = await self._query(build_validate_query(self._bucket))
        self._parse(text)

    async def async_tables(self, flux: str) -> dict[str, list[Record]]:
        """Records of any other Flux program, by result name (storage figures, delivery check)."""
        text, _version = await self._query(flux)
        return self._parse(text)

    async def async_get(
        self, path: str, params: dict[str, str] | None = None, *, authorized: bool = True
    ) -> bytes:
        """The body of a GET to another path of the server, typed errors as for queries.

        `authorized=False` leaves the token out, for `/metrics`, which needs none.
        """
        headers = {"Authorization": self._headers["Authorization"]} if authorized else {}
        body, _version = await self._request(
            "GET", influx_url(self._url, path), params=params, headers=headers
        )
        return body

    async def _request(
        self,
        method: str,
        url: URL,
        **kwargs: Any,  # noqa: ANN401  (aiohttp's request options)
    ) -> tuple[bytes, str | None]:
        """One exchange: the body of a 2xx answer and the version header, else a typed error."""
        try:
            async with self._session.request(
                method, url, timeout=self._timeout, allow_redirects=False, **kwargs
            ) as response:
                body = await read_bounded(
                    response,
                    cap=INFLUXDB_CAP,
                    where=f"InfluxDB at {self._where}",
                    origin=Origin.INFLUXDB,
                )
                status = response.status
                version = response.headers.get(VERSION_HEADER)
        except (aiohttp.ClientError, OSError) as err:
            raise error_for_exception(
                err,
                where=f"InfluxDB at {self._where}",
                origin=Origin.INFLUXDB,
                timeout=self._timeout.total,
                secrets=self._secrets,
            ) from err
        if not 200 <= status < 300:  # noqa: PLR2004
            raise error_for_status(status, body, self._secrets)
        return body, version

    def _parse(self, text: str) -> dict[str, list[Record]]:
        """The CSV's tables; an error the server wrote into it is quoted with secrets masked."""
        try:
            return parse_annotated_csv(text)
        except IngestorResponseError as err:
            raise IngestorResponseError(
                quote(str(err), self._secrets), origin=Origin.INFLUXDB
            ) from None

    async def async_close(self) -> None:
        """Nothing to release: the session belongs to the caller."""

    async def async_write(self, lines: Iterable[str], precision: Precision) -> int:
        """Write one batch of line protocol over `/api/v2/write`; the bytes sent.

        Raises:
            ReadOnlyError: the token may read but not write (`api/influx/write.py`).
            IngestorError: any other failure.

        """
        target = WriteTarget(
            self._session,
            influx_url(self._url, WRITE_PATH),
            {"org": self._org, "bucket": self._bucket},
            {"Authorization": self._headers["Authorization"]},
            self._timeout,
            self._secrets,
        )
        return await async_post_lines(target, lines, precision)
