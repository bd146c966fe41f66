"""A fake HA Ingestor stack on loopback: its HTTP services, faults, and a live event writer.

Payloads follow docs/ingestor-contracts.md (the Admin API and service sections): the same
keys, types, timestamp formats and quirks as the real R1 or R2 services. The figures in
them come from `Figures`, which a test sets, so it can compute what the integration should
report. The Admin API is not canned: like the real one it fetches the other simulated
services over HTTP, so a fault on a service shows up in its statistics the real way.

In a test (every test that talks to it requests `socket_enabled`):

    async with IngestorSimulator(Revision.R2, api_key="k", upstream_timeout=0.5) as sim:
        sim.set_figures(events_per_minute=12.5, failed_events=3)
        await sim.set_fault(WEBSOCKET_INGESTION, Fault.SLOW, delay=2.0)
        ...  # call sim.admin_api_url / sim.service_urls[...]
        await sim.clear_faults()
        sim.requests_to(WEBSOCKET_INGESTION)  # RequestRecords, monotonic times

Run it for the demo: `python -m tests.support.simulator --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp
from aiohttp import web

from custom_components.ha_ingestor.api.core.models import Revision
from tests.support.events import (
    DEFAULT_ENTITIES,
    PRECISION,
    EntitySpec,
    Event,
    EventGenerator,
    Schema,
    event_lines,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from types import TracebackType

HOST: Final = "127.0.0.1"
VERSION: Final = "1.0.0"
INTERNAL_HEADER: Final = "X-Simulator-Internal"

ADMIN_API: Final = "admin-api"
WEBSOCKET_INGESTION: Final = "websocket-ingestion"
ENRICHMENT_PIPELINE: Final = "enrichment-pipeline"
DATA_API: Final = "data-api"
CARBON_INTENSITY: Final = "carbon-intensity-service"
DATA_RETENTION: Final = "data-retention"
ELECTRICITY_PRICING: Final = "electricity-pricing-service"
AIR_QUALITY: Final = "air-quality-service"
SMART_METER: Final = "smart-meter-service"
WEATHER_API: Final = "weather-api"
ENERGY_CORRELATOR: Final = "energy-correlator"
LOG_AGGREGATOR: Final = "log-aggregator"
SPORTS_DATA: Final = "sports-data"
CALENDAR: Final = "calendar-service"

# Auxiliary services the simulator can run, each with a generic `/health`:
# docs/ingestor-contracts.md#r1-and-r2-auxiliary-services
AUXILIARY_SERVICES: Final = frozenset(
    {
        CARBON_INTENSITY,
        DATA_RETENTION,
        ELECTRICITY_PRICING,
        AIR_QUALITY,
        SMART_METER,
        WEATHER_API,
        ENERGY_CORRELATOR,
        LOG_AGGREGATOR,
    }
)
DEFAULT_AUXILIARY: Final = (CARBON_INTENSITY, DATA_RETENTION)

# Services the R2 compose file does not deploy: the Admin API still asks them (quirk 15).
_UNDEPLOYED: Final = {
    SPORTS_DATA: "Cannot connect to host homeiq-sports-data:8005 ssl:default "
    "[Name or service not known]",
    CALENDAR: "Cannot connect to host homeiq-calendar:8013 ssl:default [Name or service not known]",
}

# The Admin API's fallback lists, in its own order.
# docs/ingestor-contracts.md#quirk-sequential-stats
_R1_STATS_SERVICES: Final = (WEBSOCKET_INGESTION, ENRICHMENT_PIPELINE)
_R2_STATS_SERVICES: Final = (
    ADMIN_API,
    DATA_API,
    WEBSOCKET_INGESTION,
    SPORTS_DATA,
    AIR_QUALITY,
    CALENDAR,
    CARBON_INTENSITY,
    DATA_RETENTION,
    ELECTRICITY_PRICING,
    ENERGY_CORRELATOR,
    SMART_METER,
    LOG_AGGREGATOR,
    WEATHER_API,
)
_R2_HEALTH_SERVICES: Final = (
    WEBSOCKET_INGESTION,
    "influxdb",
    WEATHER_API,
    CARBON_INTENSITY,
    ELECTRICITY_PRICING,
    AIR_QUALITY,
    CALENDAR,
    SMART_METER,
)
_R2_REALTIME_SERVICES: Final = (
    WEBSOCKET_INGESTION,
    SPORTS_DATA,
    AIR_QUALITY,
    CALENDAR,
    CARBON_INTENSITY,
    ELECTRICITY_PRICING,
    ENERGY_CORRELATOR,
    SMART_METER,
    DATA_RETENTION,
    LOG_AGGREGATOR,
    WEATHER_API,
)
_R1_CORE_SERVICES: Final = (
    WEBSOCKET_INGESTION,
    ENRICHMENT_PIPELINE,
    DATA_RETENTION,
    ADMIN_API,
    "health-dashboard",
    "influxdb",
)

# Routes behind the Admin API key when auth is on; everything else is open.
# docs/ingestor-contracts.md#r1-and-r2-admin-api
_PROTECTED: Final = re.compile(
    r"^/api/v1/(stats(/.*)?|real-time-metrics|config(/.*)?|docker/.*|events(/.*)?|monitoring/.*)$"
)

# The Admin API's own upstream timeouts, in seconds (sections 4.3 and 4.7).
_STATS_TIMEOUT: Final = 10.0
_R2_WEBSOCKET_STATS_TIMEOUT: Final = 5.0
_HEALTH_SERVICES_TIMEOUT: Final = 2.0
_R1_HEALTH_DEPENDENCY_TIMEOUT: Final = 2.0
_R1_HEALTH_INFLUX_TIMEOUT: Final = 3.0

type Json = Any


class Fault(StrEnum):
    """What a simulated service does wrong."""

    DOWN = "down"  # nothing listens: connection refused
    SLOW = "slow"  # answers normally after `delay` seconds
    UNAUTHORIZED = "401"  # admin-api: protected routes only (server key mismatch)
    SERVER_ERROR = "500"
    GARBLED = "garbled"  # 200, JSON content type, body is not JSON
    DEGRADED = "503"  # 503 with the service's JSON body, status "degraded"
    UNHEALTHY = "unhealthy"  # 200 whose body reports an unhealthy status


@dataclass(frozen=True)
class FaultSpec:
    """One fault on one service; `paths` limits it to some paths (None: every path)."""

    fault: Fault
    delay: float = 0.0
    paths: frozenset[str] | None = None
    status: str | None = None  # the status word UNHEALTHY reports (default per service)

    def applies_to(self, path: str) -> bool:
        """Whether a request for `path` is hit."""
        return self.paths is None or path in self.paths


@dataclass(frozen=True)
class RequestRecord:
    """One request a simulated service received (monotonic clock, like `time.monotonic`)."""

    service: str
    path: str
    started: float
    ended: float
    status: int | None
    internal: bool  # sent by the simulated Admin API itself, not by the code under test


def _default_last_event() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1.1)


@dataclass(frozen=True)
class Figures:
    """Every number the simulated services report; change them with `set_figures`.

    Percentages are 0-100 except `aux_success_rate` (a 0-1 fraction, as the auxiliary
    services report it). Times are aware datetimes; they are rendered the ingestor's way.
    """

    # websocket-ingestion, its health page
    events_per_minute: float | None = 31.6  # None: R1 omits the key before a rate exists
    session_events: int = 2310
    historical_events: int = 910034  # R2 only, added into total_events_received
    last_event_time: datetime | None = field(default_factory=_default_last_event)
    connection_attempts: int = 1
    successful_connections: int = 1
    failed_connections: int = 0
    uptime_seconds: float = 5124.575842
    # websocket-ingestion, its R2 event-rate page
    events_per_second: float = 0.45
    processed_events: int = 2310
    failed_events: int = 0
    success_rate: float = 100.0
    average_processing_time_ms: float = 1.93
    queue_size: int = 0
    # enrichment-pipeline, R1 only
    points_written: int = 2297
    write_errors: int = 0
    normalized_events: int = 2297
    normalization_errors: int = 0
    normalization_success_rate: float = 100.0
    write_success_rate: float = 100.0
    validation_count: int = 4594
    validation_errors: int = 0
    influxdb_connected: bool = True
    # data-api, R2 only
    data_api_query_count: int = 42
    data_api_avg_query_time_ms: float = 11.7
    data_api_success_rate: float = 100.0
    # auxiliary services
    aux_success_rate: float = 0.0
    aux_total_fetches: int = 0
    aux_failed_fetches: int = 0
    retention_status: str = "healthy"  # healthy | warning | critical
    # R3 only (tests/support/simulator_r3.py): websocket-ingestion's `/health/detailed`
    ws_connected: bool = True  # the connection manager's `is_running`
    ws_subscribed: bool = True
    ws_initialized: bool = True  # False: `/health/detailed` carries "not_initialized"
    # R3 only: the async processor's queue, the entity filter and the build identity
    queue_maxsize: int = 10000
    filter_enabled: bool = False
    filtered_events: int = 0
    filter_passed_events: int = 0
    git_sha: str = "unknown"
    # what the Admin API reports for InfluxDB when the simulator has no real one to probe
    influxdb_status: str = "pass"


# --- small formatting helpers ------------------------------------------------------------


def naive_iso(when: datetime | None = None) -> str:
    """The ingestor's usual timestamp: UTC wall clock without an offset."""
    moment = datetime.now(UTC) if when is None else when.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat()


def zulu_iso(when: datetime | None = None) -> str:
    """The health-type timestamp: UTC with a "Z" suffix."""
    return naive_iso(when) + "Z"


def uptime_text(seconds: float) -> str:
    """`str(timedelta)`: "1:25:24.575842", or "1 day, 1:25:24.575842" after a day."""
    return str(timedelta(seconds=seconds))


def parse_uptime_text(text: str) -> float:
    """The Admin API's parser: "H:MM:SS.f" only, anything else gives 0.0 (quirk 19)."""
    match = re.fullmatch(r"(\d+):(\d{2}):(\d{2}(?:\.\d+)?)", text)
    if not match:
        return 0.0
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _human(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}h {whole % 3600 // 60}m {whole % 60}s"


# --- upstream fetches made by the simulated Admin API ------------------------------------


@dataclass(frozen=True)
class _Fetched:
    status: int | None
    body: Json
    error: str | None
    elapsed_ms: float


class IngestorSimulator:
    """The R1 or R2 ingestor's HTTP services, each on its own loopback port.

    Use as `async with IngestorSimulator(revision=Revision.R2) as sim:`. Faults are async
    (`await sim.set_fault(...)`) because DOWN really stops the service's listener.
    """

    def __init__(  # noqa: PLR0913
        self,
        revision: Revision = Revision.R2,
        api_key: str | None = None,
        *,
        auth_enabled: bool | None = None,
        auxiliary: Sequence[str] = DEFAULT_AUXILIARY,
        ports: Mapping[str, int] | None = None,
        host: str = HOST,
        influx_url: str | None = None,
        upstream_timeout: float | None = None,
        figures: Figures | None = None,
    ) -> None:
        """Describe the stack; nothing listens before `start()`.

        Args:
            revision: which ingestor generation to imitate.
            api_key: the Admin API's key; auth is on when given (or `auth_enabled`).
            auth_enabled: force auth on or off; on without a key, every protected call
                fails with "Invalid API key", as the real service does.
            auxiliary: auxiliary services to run (names from AUXILIARY_SERVICES).
            ports: fixed ports by service name (others get free ports).
            host: address to listen on.
            influx_url: a real InfluxDB the Admin API probes for its health pages.
            upstream_timeout: replaces every Admin API upstream timeout (tests use short ones).
            figures: starting figures.
        """
        unknown = set(auxiliary) - AUXILIARY_SERVICES
        if unknown:
            msg = f"unknown auxiliary services: {sorted(unknown)}"
            raise ValueError(msg)
        self.revision = revision
        self._api_key = api_key
        self.auth_enabled = api_key is not None if auth_enabled is None else auth_enabled
        self.host = host
        self.influx_url = influx_url
        self.upstream_timeout = upstream_timeout
        self.figures = figures or Figures()
        self.request_log: list[RequestRecord] = []
        core = [ADMIN_API, WEBSOCKET_INGESTION]
        core.append(ENRICHMENT_PIPELINE if revision is Revision.R1 else DATA_API)
        self.services: tuple[str, ...] = (*core, *auxiliary)
        self._ports: dict[str, int] = dict.fromkeys(self.services, 0)
        self._ports.update(ports or {})
        self._runners: dict[str, web.AppRunner] = {}
        self._faults: dict[str, FaultSpec] = {}
        self._client: aiohttp.ClientSession | None = None
        self._started_at = time.monotonic()
        self._lock = asyncio.Lock()

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start every service."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop every service."""
        await self.stop()

    async def start(self) -> None:
        """Listen on every service's port (free ports are fixed on first start)."""
        self._client = aiohttp.ClientSession()
        try:
            for name in self.services:
                await self._start_service(name)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every listener and the Admin API's client."""
        for name in list(self._runners):
            await self._stop_service(name)
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _start_service(self, name: str) -> None:
        if name in self._runners:
            return
        runner = web.AppRunner(
            self._build_app(name), handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._ports[name])
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._ports[name] = int(runner.addresses[0][1])
        self._runners[name] = runner

    async def _stop_service(self, name: str) -> None:
        runner = self._runners.pop(name, None)
        if runner is not None:
            await runner.cleanup()

    # --- what tests read and change -----------------------------------------------------

    def url_of(self, service: str) -> str:
        """Base URL of one service (also while it is down: the port stays reserved)."""
        return f"http://{self.host}:{self._ports[service]}"

    @property
    def admin_api_url(self) -> str:
        """Base URL of the Admin API."""
        return self.url_of(ADMIN_API)

    @property
    def service_urls(self) -> dict[str, str]:
        """Service name (as the ingestor spells it) to base URL, Admin API included."""
        return {name: self.url_of(name) for name in self.services}

    @property
    def api_key(self) -> str | None:
        """The Admin API key (never printed by the simulator)."""
        return self._api_key

    async def set_fault(
        self,
        service: str,
        fault: Fault,
        *,
        delay: float = 0.0,
        paths: Iterable[str] | None = None,
        status: str | None = None,
    ) -> None:
        """Make `service` misbehave; `delay` also slows any other fault down."""
        if service not in self.services:
            msg = f"{service!r} is not simulated here; simulated: {list(self.services)}"
            raise ValueError(msg)
        if fault is Fault.SLOW and delay <= 0:
            msg = "Fault.SLOW needs a positive delay"
            raise ValueError(msg)
        async with self._lock:
            self._faults[service] = FaultSpec(
                fault, delay, None if paths is None else frozenset(paths), status
            )
            if fault is Fault.DOWN:
                await self._stop_service(service)
            else:
                await self._start_service(service)

    async def clear_fault(self, service: str) -> None:
        """Bring one service back to normal (restarting it if it was down)."""
        async with self._lock:
            self._faults.pop(service, None)
            if self._client is not None:
                await self._start_service(service)

    async def clear_faults(self) -> None:
        """Bring every service back to normal."""
        for service in list(self._faults):
            await self.clear_fault(service)

    def fault_of(self, service: str) -> FaultSpec | None:
        """The fault currently set on `service`."""
        return self._faults.get(service)

    def set_figures(self, **changes: Any) -> Figures:
        """Replace some figures (unknown names raise TypeError); returns the new figures."""
        self.figures = dataclasses.replace(self.figures, **changes)
        return self.figures

    def record_events(self, events: Sequence[Event]) -> None:
        """Count freshly written events, as the real services' counters would."""
        if not events:
            return
        figures = self.figures
        self.set_figures(
            session_events=figures.session_events + len(events),
            processed_events=figures.processed_events + len(events),
            points_written=figures.points_written + len(events),
            normalized_events=figures.normalized_events + len(events),
            validation_count=figures.validation_count + 2 * len(events),
            last_event_time=max(event.time for event in events),
        )

    def requests_to(
        self, service: str, path: str | None = None, *, include_internal: bool = False
    ) -> list[RequestRecord]:
        """Requests `service` received (by default only those not sent by the Admin API)."""
        return [
            record
            for record in self.request_log
            if record.service == service
            and (path is None or record.path == path)
            and (include_internal or not record.internal)
        ]

    # --- app construction ---------------------------------------------------------------

    def _build_app(self, name: str) -> web.Application:
        app = web.Application(middlewares=[self._log_middleware(name)])
        routes = self._routes(name)
        for path, handler in routes.items():
            app.router.add_get(path, self._wrap(name, path, handler))
        return app

    def _routes(self, name: str) -> dict[str, Callable[[web.Request], Awaitable[web.Response]]]:
        if name == ADMIN_API:
            return self._admin_routes()
        if name == WEBSOCKET_INGESTION:
            routes = {"/health": self._json_route(self._websocket_health)}
            if self.revision is Revision.R2:
                routes["/api/v1/event-rate"] = self._json_route(self._websocket_event_rate)
            return routes
        if name == ENRICHMENT_PIPELINE:
            stats = self._json_route(self._enrichment_stats)
            return {
                "/health": self._json_route(self._enrichment_health),
                "/api/v1/health": self._json_route(self._enrichment_health),
                "/api/v1/stats": stats,
                "/status": stats,
            }
        if name == DATA_API:
            return {"/health": self._json_route(self._data_api_health)}
        if name == DATA_RETENTION:
            return {"/health": self._json_route(self._data_retention_health)}
        return {"/health": self._json_route(lambda: self._auxiliary_health(name))}

    def _json_route(
        self, build: Callable[[], Json]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(_request: web.Request) -> web.Response:
            return web.json_response(build())

        return handle

    def _json_404(self, name: str) -> bool:
        """Whether `name` is a FastAPI service, whose unknown routes answer JSON."""
        return name in {ADMIN_API, DATA_API}

    def _log_middleware(self, name: str) -> Any:
        json_404 = self._json_404(name)

        @web.middleware
        async def log(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            started = time.monotonic()
            status: int | None = None
            try:
                try:
                    response = await handler(request)
                except web.HTTPNotFound:
                    if not json_404:
                        raise
                    response = web.json_response({"detail": "Not Found"}, status=404)
                status = response.status
            except web.HTTPException as err:
                status = err.status
                raise
            finally:
                self.request_log.append(
                    RequestRecord(
                        name,
                        request.path,
                        started,
                        time.monotonic(),
                        status,
                        INTERNAL_HEADER in request.headers,
                    )
                )
            return response

        return log

    def _wrap(
        self,
        name: str,
        path: str,
        handler: Callable[[web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            spec = self._faults.get(name)
            if spec is None or not spec.applies_to(path):
                return await handler(request)
            if spec.delay > 0:
                await asyncio.sleep(spec.delay)
            return await self._faulty_response(name, path, spec, request, handler)

        return handle

    async def _faulty_response(  # noqa: PLR0911
        self,
        name: str,
        path: str,
        spec: FaultSpec,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.Response]],
    ) -> web.StreamResponse:
        match spec.fault:
            case Fault.DOWN:
                # A keep-alive connection opened before the stop: drop it, as a crash would.
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=503)
            case Fault.UNAUTHORIZED:
                if name == ADMIN_API:
                    if _PROTECTED.match(path):
                        return self._admin_error(401, "Invalid API key")
                    return await handler(request)
                return web.json_response({"detail": "Unauthorized"}, status=401)
            case Fault.SERVER_ERROR:
                return self._server_error(name, path)
            case Fault.GARBLED:
                return web.Response(
                    status=200,
                    body=b'{"status": "healthy", "service": "' + name.encode() + b'", "upt',
                    content_type="application/json",
                )
            case Fault.DEGRADED:
                response = await handler(request)
                response.set_status(503)
                return response
            case _:  # SLOW, UNHEALTHY: the payload builders read the fault themselves
                return await handler(request)

    def _server_error(self, name: str, path: str) -> web.Response:
        if name == ADMIN_API:
            if path.startswith("/api/v1/stats"):
                return self._admin_error(500, "Failed to get statistics")
            return self._admin_error(500, "Internal server error", "INTERNAL_ERROR")
        if name == WEBSOCKET_INGESTION and path == "/api/v1/event-rate":
            body: Json = {
                "service": name,
                "error": "'NoneType' object has no attribute 'get_processing_statistics'",
                "events_per_second": 0,
                "events_per_hour": 0,
                "timestamp": naive_iso(),
            }
            return web.json_response(body, status=500)
        if name in {DATA_RETENTION, DATA_API}:
            body = {"status": "error", "error": "database is locked", "timestamp": naive_iso()}
            return web.json_response(body, status=500)
        return web.Response(
            status=500, text="500 Internal Server Error\n\nServer got itself in trouble"
        )

    def _reported_status(self, name: str, healthy: str = "healthy") -> str:
        """The status word a health body carries under the current fault."""
        spec = self._faults.get(name)
        if spec is None:
            return healthy
        if spec.fault is Fault.DEGRADED:
            return "degraded"
        if spec.fault is Fault.UNHEALTHY:
            if spec.status:
                return spec.status
            return "critical" if name == DATA_RETENTION else "unhealthy"
        return healthy

    # --- websocket-ingestion ------------------------------------------------------------

    def _websocket_health(self) -> Json:
        f = self.figures
        status = self._reported_status(WEBSOCKET_INGESTION)
        r2 = self.revision is Revision.R2
        total = f.historical_events + f.session_events if r2 else f.session_events
        subscription: dict[str, Json] = {
            "is_subscribed": True,
            "active_subscriptions": 1,
            "total_events_received": total,
        }
        if r2:
            subscription["session_events_received"] = f.session_events
            subscription["historical_events_received"] = f.historical_events
        subscription["events_by_type"] = {"state_changed": f.session_events}
        subscription["last_event_time"] = (
            None if f.last_event_time is None else naive_iso(f.last_event_time)
        )
        if f.events_per_minute is not None:
            subscription["event_rate_per_minute"] = f.events_per_minute
        elif r2:
            subscription["event_rate_per_minute"] = 0
        body: dict[str, Json] = {"status": status}
        if status != "healthy":
            body["reason"] = (
                "No events received in 60+ seconds"
                if status == "degraded"
                else "Multiple connection failures"
            )
        body |= {
            "service": WEBSOCKET_INGESTION,
            "uptime": uptime_text(f.uptime_seconds),
            "timestamp": naive_iso(),
            "connection": {
                "is_running": True,
                "connection_attempts": f.connection_attempts,
                "successful_connections": f.successful_connections,
                "failed_connections": f.failed_connections,
            },
            "subscription": subscription,
        }
        return body

    def _websocket_event_rate(self) -> Json:
        f = self.figures
        last = None if f.last_event_time is None else naive_iso(f.last_event_time)
        return {
            "service": WEBSOCKET_INGESTION,
            "events_per_second": f.events_per_second,
            "events_per_hour": round(f.events_per_second * 3600, 2),
            "total_events_processed": f.processed_events,
            "uptime_seconds": f.uptime_seconds,
            "processing_stats": {
                "is_running": True,
                "max_workers": 10,
                "active_workers": 10,
                "processing_rate_limit": 1000,
                "processed_events": f.processed_events,
                "failed_events": f.failed_events,
                "success_rate": f.success_rate,
                "processing_rate_per_second": f.events_per_second,
                "average_processing_time_ms": f.average_processing_time_ms,
                "queue_size": f.queue_size,
                "queue_maxsize": 10000,
                "uptime_seconds": round(max(f.uptime_seconds - 1.7, 0.0), 1),
                "last_processing_time": last,
                "event_handlers_count": 1,
            },
            "connection_stats": {
                "is_connected": True,
                "is_subscribed": True,
                "total_events_received": f.session_events,
                "events_by_type": {"state_changed": f.session_events},
                "last_event_time": last,
            },
            "timestamp": naive_iso(),
        }

    # --- enrichment-pipeline (R1) -------------------------------------------------------

    def _enrichment_parts(self) -> tuple[Json, Json]:
        f = self.figures
        connected = f.influxdb_connected and self._reported_status(ENRICHMENT_PIPELINE) in {
            "healthy",
            "degraded",
        }
        last = f.last_event_time
        normalization = {
            "normalized_events": f.normalized_events,
            "normalization_errors": f.normalization_errors,
            "success_rate": f.normalization_success_rate,
            "last_normalized_time": None if last is None else last.astimezone(UTC).isoformat(),
        }
        influxdb = {
            "points_written": f.points_written,
            "write_errors": f.write_errors,
            "success_rate": f.write_success_rate,
            "last_write_time": None if last is None else naive_iso(last),
            "connected": connected,
            "bucket": "home_assistant_events",
            "org": "ha-ingestor",
        }
        return normalization, influxdb

    def _enrichment_health(self) -> Json:
        f = self.figures
        status = self._reported_status(ENRICHMENT_PIPELINE)
        if not f.influxdb_connected and status == "healthy":
            status = "unhealthy"
        normalization, influxdb = self._enrichment_parts()
        body: dict[str, Json] = {"status": status}
        if status != "healthy":
            body["reason"] = "InfluxDB not connected"
        body |= {
            "service": ENRICHMENT_PIPELINE,
            "uptime": uptime_text(f.uptime_seconds - 3.8),
            "timestamp": naive_iso(),
            "is_running": True,
            "normalization": normalization,
            "influxdb": influxdb,
        }
        return body

    def _enrichment_stats(self) -> Json:
        f = self.figures
        normalization, influxdb = self._enrichment_parts()
        loop_time = round(asyncio.get_running_loop().time(), 3)
        count = f.validation_count
        return {
            "service": ENRICHMENT_PIPELINE,
            "is_running": True,
            "uptime": round(f.uptime_seconds - 3.8, 2),
            "normalization": normalization,
            "influxdb": influxdb,
            "validation_stats": {
                "validation_count": count,
                "error_count": f.validation_errors,
                "warning_count": 12,
                "error_rate": round(f.validation_errors / count, 4) if count else 0.0,
                "warning_rate": round(12 / count, 4) if count else 0.0,
            },
            "alert_stats": {
                "total_alerts": 0,
                "active_alerts": 0,
                "acknowledged_alerts": 0,
                "resolved_alerts": 0,
                "severity_breakdown": {"info": 0, "warning": 0, "critical": 0},
                "type_breakdown": {},
                "alert_handlers": 0,
                "history_size": 0,
            },
            "timestamp": loop_time,
        }

    # --- data-api (R2) and auxiliary services -------------------------------------------

    def _data_api_health(self) -> Json:
        f = self.figures
        status = self._reported_status(DATA_API)
        return {
            "status": status,
            "service": DATA_API,
            "version": VERSION,
            "timestamp": naive_iso(),
            "uptime_seconds": round(f.uptime_seconds + 6.7, 1),
            "dependencies": {
                "influxdb": {
                    "status": "connected" if status == "healthy" else "disconnected",
                    "url": "http://influxdb:8086",
                    "query_count": f.data_api_query_count,
                    "avg_query_time_ms": f.data_api_avg_query_time_ms,
                    "success_rate": f.data_api_success_rate,
                },
                "sqlite": {
                    "status": "healthy",
                    "journal_mode": "wal",
                    "database_size_mb": 3.42,
                    "wal_enabled": True,
                    "connection": "ok",
                },
            },
            "authentication": {"enabled": False},
        }

    def _auxiliary_health(self, name: str) -> Json:
        f = self.figures
        status = self._reported_status(name)
        uptime: float = round(f.uptime_seconds - 22.6, 1)
        if name == WEATHER_API:
            uptime = int(uptime)  # weather-api reports whole seconds (quirk 19)
        body: dict[str, Json] = {"status": status}
        if name == CARBON_INTENSITY:
            body["status_detail"] = "credentials_missing" if status == "healthy" else "stale_data"
        body |= {
            "service": name,
            "uptime_seconds": uptime,
            "last_successful_fetch": None,
            "total_fetches": f.aux_total_fetches,
            "failed_fetches": f.aux_failed_fetches,
            "success_rate": f.aux_success_rate,
            "timestamp": naive_iso(),
        }
        if name == CARBON_INTENSITY:
            body |= {
                "last_token_refresh": None,
                "token_refresh_count": 0,
                "credentials_configured": False,
            }
        return body

    def _data_retention_health(self) -> Json:
        status = self._reported_status(DATA_RETENTION, self.figures.retention_status)
        alerts: list[Json] = []
        if status != "healthy":
            alerts.append(
                {
                    "severity": "critical" if status == "critical" else "warning",
                    "message": "Storage usage above threshold",
                    "timestamp": naive_iso(),
                }
            )
        return {
            "status": status,
            "timestamp": naive_iso(),
            "service_status": {
                "service_running": True,
                "cleanup_service_available": True,
                "backup_service_available": True,
            },
            "storage_metrics": {"total_size_mb": 412.7, "usage_percentage": 41.3},
            "active_alerts": len(alerts),
            "alerts": alerts,
        }

    # --- admin-api ----------------------------------------------------------------------

    def _admin_routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.Response]]]:
        routes: dict[str, Callable[[web.Request], Awaitable[web.Response]]] = {
            "/": self._json_route(self._admin_root),
            "/api/info": self._json_route(self._admin_info),
            "/health": self._json_route(self._admin_health),
            "/api/health": self._json_route(
                lambda: {"status": "healthy", "timestamp": naive_iso(), "service": ADMIN_API}
            ),
            "/api/metrics/realtime": self._json_route(
                lambda: {
                    "success": True,
                    "events_per_second": 0.0,
                    "active_api_calls": 0,
                    "active_sources": [],
                    "timestamp": naive_iso(),
                }
            ),
            "/api/v1/health": self._admin_v1_health,
            "/api/v1/health/services": self._admin_health_services,
            "/api/v1/services": self._admin_services,
            "/api/v1/stats": self._admin_stats,
            "/api/v1/stats/services": self._admin_stats_services,
            "/api/v1/alerts": self._json_route(list),
            "/api/v1/alerts/active": self._json_route(list),
            "/api/v1/alerts/summary": self._json_route(
                lambda: dict.fromkeys(
                    (
                        "total_active",
                        "critical",
                        "warning",
                        "info",
                        "total_alerts",
                        "alert_history_count",
                    ),
                    0,
                )
            ),
        }
        if self.revision is Revision.R2:
            routes["/api/v1/real-time-metrics"] = self._admin_real_time_metrics
        return {path: self._authenticated(path, handler) for path, handler in routes.items()}

    def _authenticated(
        self, path: str, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        if not _PROTECTED.match(path):
            return handler

        async def guarded(request: web.Request) -> web.Response:
            if self.auth_enabled:
                header = request.headers.get("Authorization", "")
                if not header:
                    return self._admin_error(401, "Authentication required")
                scheme, _, token = header.partition(" ")
                if (
                    scheme.lower() != "bearer"
                    or self._api_key is None
                    or not secrets.compare_digest(token.encode(), self._api_key.encode())
                ):
                    return self._admin_error(401, "Invalid API key")
            return await handler(request)

        return guarded

    @staticmethod
    def _admin_error(status: int, message: str, code: str | None = None) -> web.Response:
        body = {
            "success": False,
            "error": message,
            "error_code": code or f"HTTP_{status}",
            "timestamp": naive_iso(),
            "request_id": None,
        }
        return web.json_response(body, status=status)

    def _admin_uptime(self) -> float:
        return round(self.figures.uptime_seconds - 1.13, 2)

    def _admin_root(self) -> Json:
        now = naive_iso()
        return {
            "success": True,
            "data": {
                "service": "Home Assistant Ingestor Admin API",
                "version": VERSION,
                "status": "running",
                "timestamp": now,
            },
            "message": "Admin API is running",
            "timestamp": now,
            "request_id": None,
        }

    def _admin_info(self) -> Json:
        now = naive_iso()
        return {
            "success": True,
            "data": {
                "title": "Home Assistant Ingestor Admin API",
                "version": VERSION,
                "description": "Admin API for Home Assistant Ingestor",
                "endpoints": {
                    "health": "/api/v1/health",
                    "stats": "/api/v1/stats",
                    "config": "/api/v1/config",
                    "events": "/api/v1/events",
                },
                "authentication": self.auth_enabled,
                "cors_enabled": True,
            },
            "message": "API information retrieved successfully",
            "timestamp": now,
            "request_id": None,
        }

    def _admin_health(self) -> Json:
        return {
            "status": "healthy",
            "timestamp": naive_iso(),
            "service": ADMIN_API,
            "uptime_seconds": self._admin_uptime(),
        }

    def _timeout(self, default: float) -> float:
        return default if self.upstream_timeout is None else self.upstream_timeout

    async def _fetch(self, service: str, path: str, limit: float) -> _Fetched:
        """GET a simulated service the way the Admin API does; never raises."""
        started = time.monotonic()
        if service not in self.services or self._client is None:
            return _Fetched(None, None, f"{service} is not simulated", 0.0)
        try:
            async with self._client.get(
                self.url_of(service) + path,
                timeout=aiohttp.ClientTimeout(total=limit),
                headers={INTERNAL_HEADER: ADMIN_API},
            ) as response:
                body: Json = None
                error: str | None = None
                if response.status == 200:
                    try:
                        body = await response.json(content_type=None)
                    except ValueError as err:
                        error = str(err)
                return _Fetched(response.status, body, error, _ms_since(started))
        except TimeoutError:
            return _Fetched(None, None, f"Timeout after {limit:g}s", _ms_since(started))
        except aiohttp.ClientError as err:
            return _Fetched(None, None, str(err) or type(err).__name__, _ms_since(started))

    async def _probe_influxdb(self, limit: float) -> _Fetched:  # noqa: PLR0911
        """InfluxDB `/health`; InfluxDB 1.x lacks it, so `/ping` 204 counts as "pass"."""
        started = time.monotonic()
        if self.influx_url is None or self._client is None:
            status = self.figures.influxdb_status
            code = 200 if status == "pass" else 503
            return _Fetched(code, {"name": "influxdb", "status": status}, None, 0.4)
        try:
            client_timeout = aiohttp.ClientTimeout(total=limit)
            async with self._client.get(self.influx_url + "/health", timeout=client_timeout) as r:
                if r.status == 200:
                    body = await r.json(content_type=None)
                    return _Fetched(200, body, None, _ms_since(started))
                if r.status != 404:
                    return _Fetched(r.status, None, None, _ms_since(started))
            async with self._client.get(self.influx_url + "/ping", timeout=client_timeout) as r:
                if r.status == 204:
                    body = {"name": "influxdb", "status": "pass"}
                    return _Fetched(200, body, None, _ms_since(started))
                return _Fetched(r.status, None, None, _ms_since(started))
        except TimeoutError:
            return _Fetched(None, None, "Timeout", _ms_since(started))
        except aiohttp.ClientError as err:
            return _Fetched(None, None, str(err) or type(err).__name__, _ms_since(started))

    async def _admin_v1_health(self, _request: web.Request) -> web.Response:
        if self.revision is Revision.R2:
            return web.json_response(self._admin_v1_health_r2())
        timeout = self._timeout(_R1_HEALTH_DEPENDENCY_TIMEOUT)
        checks = (
            (
                "InfluxDB",
                "database",
                await self._probe_influxdb(self._timeout(_R1_HEALTH_INFLUX_TIMEOUT)),
            ),
            (
                "WebSocket Ingestion",
                "api",
                await self._fetch(WEBSOCKET_INGESTION, "/health", timeout),
            ),
            (
                "Enrichment Pipeline",
                "api",
                await self._fetch(ENRICHMENT_PIPELINE, "/health", timeout),
            ),
        )
        dependencies = []
        for name, kind, fetched in checks:
            ok = fetched.status == 200
            if ok:
                message = "Connected successfully"
            elif fetched.error and fetched.error.startswith("Timeout"):
                message = f"Timeout after {timeout:.1f}s"
            else:
                message = fetched.error or f"HTTP {fetched.status}"
            dependencies.append(
                {
                    "name": name,
                    "type": kind,
                    "status": "healthy" if ok else "critical",
                    "response_time_ms": round(fetched.elapsed_ms, 1),
                    "message": message,
                    "details": None,
                }
            )
        overall = "healthy"
        if any(dep["status"] == "critical" for dep in dependencies):
            overall = "critical"
        uptime = self._admin_uptime()
        started = datetime.now(UTC) - timedelta(seconds=uptime)
        return web.json_response(
            {
                "service": ADMIN_API,
                "status": overall,
                "timestamp": zulu_iso(),
                "uptime_seconds": uptime,
                "version": VERSION,
                "dependencies": dependencies,
                "metrics": {
                    "uptime_seconds": uptime,
                    "uptime_human": _human(uptime),
                    "start_time": naive_iso(started),
                    "current_time": naive_iso(),
                },
            }
        )

    def _admin_v1_health_r2(self) -> Json:
        uptime = self._admin_uptime()
        human = _human(uptime)
        dependencies = [
            ("InfluxDB", "database", 5.2),
            ("WebSocket Ingestion", "websocket", 12.1),
            ("Enrichment Pipeline", "service", 8.7),
        ]
        return {
            "status": "healthy",
            "service": ADMIN_API,
            "timestamp": naive_iso(),
            "uptime_seconds": uptime,
            "uptime_human": human,
            "uptime_percentage": 100.0,
            "dependencies": [
                {
                    "name": name,
                    "type": kind,
                    "status": "healthy",
                    "response_time_ms": ms,
                    "last_check": naive_iso(),
                }
                for name, kind, ms in dependencies
            ],
            "metrics": {
                "uptime_human": human,
                "uptime_percentage": 100.0,
                "total_requests": 0,
                "error_rate": 0.0,
            },
        }

    async def _admin_health_services(self, _request: web.Request) -> web.Response:
        timeout = self._timeout(_HEALTH_SERVICES_TIMEOUT)
        names: Sequence[str]
        if self.revision is Revision.R1:
            names = (WEBSOCKET_INGESTION, ENRICHMENT_PIPELINE, "influxdb", WEATHER_API)
        else:
            names = _R2_HEALTH_SERVICES
        result: dict[str, Json] = {}
        for name in names:
            entry: dict[str, Json] = {"name": name}
            fetched = await self._health_probe(name, timeout)
            if fetched.status == 200 and fetched.error is None:
                upstream = fetched.body if isinstance(fetched.body, dict) else {}
                entry |= {
                    "status": upstream.get("status", "unknown"),
                    "last_check": naive_iso(),
                    "response_time_ms": round(fetched.elapsed_ms, 1),
                    "error_message": None,
                }
            else:
                error = fetched.error or f"HTTP {fetched.status}"
                if error.startswith("Timeout"):
                    error = "Timeout"
                entry |= {
                    "status": "unhealthy",
                    "last_check": naive_iso(),
                    "response_time_ms": None,
                    "error_message": error,
                }
            result[name] = entry
        return web.json_response(result)

    async def _health_probe(self, name: str, limit: float) -> _Fetched:
        if name == "influxdb":
            return await self._probe_influxdb(limit)
        if name == WEATHER_API and name not in self.services:
            # The health page means OpenWeatherMap here, never the weather-api container.
            if self.revision is Revision.R1:
                return _Fetched(401, None, None, 0.0)
            return _Fetched(None, None, "No API key configured", 0.0)
        if name in _UNDEPLOYED:
            return _Fetched(None, None, _UNDEPLOYED[name], 0.0)
        if name not in self.services:
            return self._absent_but_healthy(name)
        return await self._fetch(name, "/health", limit)

    def _absent_but_healthy(self, name: str) -> _Fetched:
        """A deployed service the simulator does not run: it answers healthy."""
        body = {"status": "healthy", "service": name, "uptime_seconds": self.figures.uptime_seconds}
        return _Fetched(200, body, None, 1.0)

    async def _admin_services(self, _request: web.Request) -> web.Response:
        names = (
            _R1_CORE_SERVICES
            if self.revision is Revision.R1
            else tuple(n for n in _R1_CORE_SERVICES if n != ENRICHMENT_PIPELINE)
        )
        entries = []
        for name in names:
            entry: dict[str, Json] = {"service": name}
            if name in {ADMIN_API, "health-dashboard"}:
                fetched = _Fetched(200, {}, None, 0.0)
            elif name == "influxdb":
                fetched = await self._probe_influxdb(self._timeout(5.0))
            elif name in self.services:
                fetched = await self._fetch(name, "/health", self._timeout(5.0))
            else:
                fetched = self._absent_but_healthy(name)
            port = {"influxdb": 8086, "health-dashboard": 80, ADMIN_API: 8004}.get(name)
            if fetched.status == 200:
                entry |= {"running": True, "status": "running", "health_status": 200}
            elif fetched.status is not None:
                entry |= {"running": False, "status": "error", "health_status": fetched.status}
            else:
                entry |= {"running": False, "status": "stopped", "error": fetched.error}
            entry["timestamp"] = naive_iso()
            entry["port"] = port or self._ports.get(name)
            entries.append(entry)
        running = sum(1 for entry in entries if entry["running"])
        return web.json_response(
            {
                "services": entries,
                "total": len(entries),
                "running": running,
                "stopped": len(entries) - running,
            }
        )

    # --- admin-api statistics (the services fallback) ----------------------------------------
    # docs/ingestor-contracts.md#statistics-shapes

    def _stats_services(self) -> Sequence[str]:
        return _R1_STATS_SERVICES if self.revision is Revision.R1 else _R2_STATS_SERVICES

    async def _service_stats(self, name: str) -> dict[str, Json]:  # noqa: PLR0911
        """`_get_service_stats`: one service's {metrics, trends, alerts}."""
        if name == ADMIN_API:
            upstream = self._admin_health()
            return self._generic_transform(name, upstream)
        if name in _UNDEPLOYED:
            return _failed_stats(name, _UNDEPLOYED[name])
        if name not in self.services:
            return self._generic_transform(name, self._absent_but_healthy(name).body)
        if self.revision is Revision.R1 and name == ENRICHMENT_PIPELINE:
            fetched = await self._fetch(name, "/api/v1/stats", self._timeout(_STATS_TIMEOUT))
        else:
            default = (
                _R2_WEBSOCKET_STATS_TIMEOUT
                if name == WEBSOCKET_INGESTION and self.revision is Revision.R2
                else _STATS_TIMEOUT
            )
            fetched = await self._fetch(name, "/health", self._timeout(default))
        if fetched.status is not None and fetched.status != 200:
            return _failed_stats(name, f"HTTP {fetched.status}")
        if fetched.error is not None:
            return _failed_stats(name, fetched.error)
        body = fetched.body if isinstance(fetched.body, dict) else {}
        if name == WEBSOCKET_INGESTION:
            if self.revision is Revision.R2 and body.get("error"):
                # The R2 transform raises, and the caller indexes a missing "metrics" key.
                return {"service": name, "status": "error", "error": str(body["error"])}
            return _websocket_transform(body)
        if name == ENRICHMENT_PIPELINE:
            return _enrichment_transform(body)
        return self._generic_transform(name, body)

    @staticmethod
    def _generic_transform(name: str, upstream: Json) -> dict[str, Json]:
        """R2 `_transform_health_to_stats`."""
        body = upstream if isinstance(upstream, dict) else {}
        status = body.get("status", "unknown")
        uptime = body.get("uptime_seconds")
        if uptime is None:
            text = body.get("uptime")
            uptime = parse_uptime_text(text) if isinstance(text, str) else 0.0
        alerts: list[Json] = []
        if status != "healthy":
            alerts.append(
                {
                    "service": name,
                    "level": "error" if status == "unhealthy" else "warning",
                    "message": f"Service status: {status}",
                }
            )
        return {
            "metrics": {"status": status, "uptime_seconds": uptime, "healthy": status == "healthy"},
            "trends": {},
            "alerts": alerts,
        }

    async def _admin_stats(self, request: web.Request) -> web.Response:
        period = request.query.get("period", "1h")
        service = request.query.get("service")
        now = naive_iso()
        if service is not None and service in self._stats_services():
            stats = await self._service_stats(service)
            if "metrics" not in stats:
                return self._admin_error(500, "Failed to get statistics")
            return web.json_response(
                {
                    "timestamp": now,
                    "period": period,
                    "metrics": stats["metrics"],
                    "trends": stats["trends"],
                    "alerts": stats["alerts"],
                    "source": "services-fallback",
                }
            )
        metrics: dict[str, Json] = {}
        trends: dict[str, Json] = {}
        alerts: list[Json] = []
        for name in self._stats_services():  # sequential, like the real one (quirk 25)
            stats = await self._service_stats(name)
            metrics[name] = stats.get("metrics", {"error": "'metrics'"})
            trends[name] = stats.get("trends", {})
            alerts.extend(stats.get("alerts", []))
        return web.json_response(
            {
                "timestamp": now,
                "period": period,
                "metrics": metrics,
                "trends": trends,
                "alerts": alerts,
                "source": "services-fallback",
            }
        )

    async def _admin_stats_services(self, _request: web.Request) -> web.Response:
        result: dict[str, Json] = {}
        for name in self._stats_services():
            stats = await self._service_stats(name)
            result[name] = stats if "metrics" in stats else {"error": "'metrics'"}
        return web.json_response(result)

    async def _admin_real_time_metrics(self, _request: web.Request) -> web.Response:
        timeout = self._timeout(_STATS_TIMEOUT)
        rate = await self._fetch(WEBSOCKET_INGESTION, "/api/v1/event-rate", timeout)
        events_per_hour = 0.0
        if rate.status == 200 and isinstance(rate.body, dict):
            events_per_hour = float(rate.body.get("events_per_second", 0)) * 3600
        names = _R2_REALTIME_SERVICES
        probes = await asyncio.gather(*(self._health_probe(name, timeout) for name in names))
        api_metrics: list[Json] = []
        for name, fetched in zip(names, probes, strict=True):
            body = fetched.body if isinstance(fetched.body, dict) else {}
            if fetched.status == 200 and fetched.error is None:
                uptime = body.get("uptime_seconds")
                if uptime is None and isinstance(body.get("uptime"), str):
                    uptime = parse_uptime_text(body["uptime"])
                api_metrics.append(
                    {
                        "service": name,
                        "events_per_hour": (
                            round((self.figures.events_per_minute or 0.0) * 60, 2)
                            if name == WEBSOCKET_INGESTION
                            else 0.0
                        ),
                        "uptime_seconds": uptime or 0.0,
                        "status": "active",
                        "response_time_ms": round(fetched.elapsed_ms, 2),
                        "last_success": naive_iso(),
                    }
                )
                continue
            if fetched.status is not None:
                status, message = "inactive", f"HTTP {fetched.status}"
            elif fetched.error and fetched.error.startswith("Timeout"):
                status, message = "timeout", fetched.error
            else:
                status, message = "error", fetched.error or "unknown error"
            api_metrics.append(
                {
                    "service": name,
                    "events_per_hour": 0.0,
                    "uptime_seconds": 0.0,
                    "status": status,
                    "response_time_ms": None,
                    "last_success": None,
                    "error_message": message,
                    "is_fallback": True,
                }
            )
        healthy = sum(1 for entry in api_metrics if entry["status"] == "active")
        total = len(api_metrics)
        return web.json_response(
            {
                "events_per_hour": round(events_per_hour, 2),
                "api_calls_active": healthy,
                "data_sources_active": [],
                "api_metrics": api_metrics,
                "inactive_apis": sum(1 for e in api_metrics if e["status"] == "inactive"),
                "error_apis": sum(1 for e in api_metrics if e["status"] in {"error", "timeout"}),
                "total_apis": total,
                "health_summary": {
                    "healthy": healthy,
                    "unhealthy": total - healthy,
                    "total": total,
                    "health_percentage": round(healthy / total * 100, 1),
                },
                "timestamp": naive_iso(),
            }
        )


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _failed_stats(name: str, message: str) -> dict[str, Json]:
    return {
        "metrics": {"error": message},
        "trends": {},
        "alerts": [{"service": name, "level": "error", "message": message}],
    }


def _websocket_transform(body: Mapping[str, Json]) -> dict[str, Json]:
    """`_transform_websocket_health_to_stats` (R1 and R2)."""
    connection = body.get("connection") or {}
    subscription = body.get("subscription") or {}
    attempts = connection.get("connection_attempts", 0) or 0
    failed = connection.get("failed_connections", 0) or 0
    error_rate: float = round(failed / attempts * 100, 2) if attempts > 0 else 0
    rate = subscription.get("event_rate_per_minute", 0) or 0
    stamp = body.get("timestamp")
    return {
        "metrics": {
            "events_per_minute": rate,
            "error_rate": error_rate,
            "response_time_ms": 0,
            "connection_attempts": attempts,
            "total_events_received": subscription.get("total_events_received", 0),
        },
        "trends": {
            "events_per_minute": [{"timestamp": stamp, "value": rate}],
            "error_rate": [{"timestamp": stamp, "value": error_rate}],
        },
        "alerts": [],
    }


def _enrichment_transform(body: Mapping[str, Json]) -> dict[str, Json]:
    """`_transform_enrichment_stats_to_stats` (R1)."""
    validation = body.get("validation_stats") or {}
    count = validation.get("validation_count", 0) or 0
    errors = validation.get("error_count", 0) or 0
    error_rate = round(errors / count * 100, 2) if count else 0.0
    influxdb = body.get("influxdb") or {}
    stamp = body.get("timestamp")
    return {
        "metrics": {
            "events_per_minute": 0,
            "error_rate": error_rate,
            "response_time_ms": 0,
            "connection_attempts": influxdb.get("points_written", 0),
            "total_events_received": 0,
        },
        "trends": {
            "events_per_minute": [{"timestamp": stamp, "value": 0}],
            "error_rate": [{"timestamp": stamp, "value": error_rate}],
        },
        "alerts": [],
    }


# --- live event writer --------------------------------------------------------------------


class EventWriter:
    """Writes generated events into InfluxDB over HTTP (v1 `/write`), as a bounded task.

    Every `interval` seconds it writes the events due at `rate_per_minute`, timestamped
    within the elapsed interval; it stops by itself after `max_events`, or on `stop()`.
    """

    def __init__(  # noqa: PLR0913
        self,
        influx_url: str,
        database: str,
        schema: Schema,
        rate_per_minute: float,
        *,
        seed: int = 0,
        entities: Sequence[EntitySpec] = DEFAULT_ENTITIES,
        token: str | None = None,
        interval: float = 1.0,
        max_events: int | None = None,
        on_write: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        """Prepare a writer; `token` is sent as `Authorization: Token ...` (InfluxDB 2.x)."""
        if rate_per_minute <= 0 or interval <= 0:
            msg = "rate_per_minute and interval must be positive"
            raise ValueError(msg)
        self.influx_url = influx_url.rstrip("/")
        self.database = database
        self.schema = schema
        self.rate_per_minute = rate_per_minute
        self.interval = interval
        self.max_events = max_events
        self._token = token
        self._on_write = on_write
        self._generator = EventGenerator(seed, entities)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.failed_writes = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        """No token in here."""
        return f"EventWriter({self.influx_url!r}, {self.database!r}, schema={self.schema})"

    async def __aenter__(self) -> Self:
        """Start writing."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop writing."""
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the writing task is alive."""
        return self._task is not None and not self._task.done()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def start(self) -> None:
        """Start the periodic writing task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="simulator-event-writer")

    async def stop(self) -> None:
        """Stop the task and close the HTTP session."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def wait(self, limit: float) -> None:
        """Wait until the task ends by itself (`max_events` reached), at most `limit` s."""
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), limit)

    async def write_events(self, events: Sequence[Event]) -> None:
        """Write these events now (raises RuntimeError when InfluxDB refuses them)."""
        if not events:
            return
        body = "\n".join(event_lines(events, self.schema)).encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self._token:
            headers["Authorization"] = f"Token {self._token}"
        params = {"db": self.database, "precision": PRECISION}
        async with self._http().post(
            f"{self.influx_url}/write",
            params=params,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            if response.status != 204:
                text = (await response.text())[:300]
                msg = f"InfluxDB write answered {response.status}: {text}"
                raise RuntimeError(msg)
        self.written += len(events)
        if self._on_write is not None:
            self._on_write(events)

    async def backfill(self, count: int, start: datetime, end: datetime) -> list[Event]:
        """Write `count` historical events in [start, end) at once; returns them."""
        events = self._generator.events_between(count, start, end)
        for index in range(0, len(events), 5000):
            await self.write_events(events[index : index + 5000])
        return events

    async def _run(self) -> None:
        last = datetime.now(UTC)
        due = 0.0
        while self.max_events is None or self.written < self.max_events:
            await asyncio.sleep(self.interval)
            now = datetime.now(UTC)
            due += (now - last).total_seconds() * self.rate_per_minute / 60
            count = int(due)
            if self.max_events is not None:
                count = min(count, self.max_events - self.written)
            span_ms = (now - last) // timedelta(milliseconds=1)
            count = min(count, span_ms)
            events = self._generator.events_between(count, last, now)
            due -= count
            last = now
            try:
                await self.write_events(events)
            except (aiohttp.ClientError, TimeoutError, RuntimeError) as err:
                self.failed_writes += 1
                self.last_error = str(err)


# --- command line (scripts/develop, the demo) ---------------------------------------------


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def create_simulator(revision: Revision, api_key: str | None, **options: Any) -> IngestorSimulator:
    """The simulator of `revision` (R3 lives in `simulator_r3`, which builds on this module)."""
    if revision is Revision.R3:
        from tests.support.simulator_r3 import IngestorSimulatorR3  # noqa: PLC0415

        return IngestorSimulatorR3(api_key or "homeiq-admin-key", **options)
    return IngestorSimulator(revision, api_key, **options)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.simulator",
        description="Run a simulated HA Ingestor stack, optionally feeding InfluxDB, until Ctrl-C.",
    )
    parser.add_argument("--revision", choices=["r1", "r2", "r3"], default="r3")
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--admin-port", type=int, default=0, help="0: a free port")
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="SERVICE=PORT",
        help="fixed port for another service, e.g. websocket-ingestion=8001 (repeatable)",
    )
    parser.add_argument(
        "--aux",
        action="append",
        default=None,
        metavar="SERVICE",
        help=f"auxiliary service to run (repeatable; default {', '.join(DEFAULT_AUXILIARY)})",
    )
    parser.add_argument("--api-key", default=None, help="turn Admin API auth on with this key")
    parser.add_argument("--influx-url", default=None, help="InfluxDB to write events into")
    parser.add_argument("--database", default="home_assistant_events", help="database or bucket")
    parser.add_argument("--token", default=None, help="InfluxDB token (2.x)")
    parser.add_argument("--schema", choices=["A", "B"], default=None, help="default: by revision")
    parser.add_argument("--rate", type=float, default=60.0, help="events per minute")
    parser.add_argument("--backfill", type=int, default=0, help="events to write for the last hour")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _port_overrides(args: argparse.Namespace) -> dict[str, int]:
    ports: dict[str, int] = {}
    if args.admin_port:
        ports[ADMIN_API] = args.admin_port
    for item in args.port:
        name, sep, port = item.partition("=")
        if not sep or not port.isdigit():
            msg = f"--port wants SERVICE=PORT, got {item!r}"
            raise SystemExit(msg)
        ports[name] = int(port)
    return ports


async def run(argv: Sequence[str] | None = None) -> None:
    """Start the simulator (and writer) from command-line arguments, until cancelled."""
    args = _parse_args(argv)
    revision = Revision(args.revision)
    schema = Schema(args.schema or ("A" if revision is Revision.R1 else "B"))
    simulator = create_simulator(
        revision,
        args.api_key,
        auxiliary=tuple(args.aux) if args.aux else DEFAULT_AUXILIARY,
        ports=_port_overrides(args),
        host=args.host,
        influx_url=args.influx_url,
    )
    async with simulator:
        auth = "on" if simulator.auth_enabled else "off"
        _say(f"HA Ingestor simulator ({revision.value.upper()}), Admin API auth {auth}")
        for name, url in simulator.service_urls.items():
            _say(f"  {name:28} {url}")
        writer: EventWriter | None = None
        if args.influx_url:
            writer = EventWriter(
                args.influx_url,
                args.database,
                schema,
                args.rate,
                seed=args.seed,
                token=args.token,
                on_write=simulator.record_events,
            )
            if args.backfill:
                now = datetime.now(UTC)
                await writer.backfill(args.backfill, now - timedelta(hours=1), now)
                _say(f"  backfilled {args.backfill} schema {schema} events")
            await writer.start()
            _say(f"  writing schema {schema} events at {args.rate:g}/min to {args.influx_url}")
        _say("Ctrl-C to stop.")
        try:
            await asyncio.Event().wait()
        finally:
            if writer is not None:
                await writer.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m tests.support.simulator`."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
