"""Client of the ingestor's own HTTP APIs: the Admin API and each service's endpoints.

Every endpoint is called in parallel with its own timeout (the Admin API's aggregate
`/api/v1/stats` is sequential upstream and slow, so the services are asked directly too:
docs/ingestor-contracts.md#quirk-sequential-stats). One failing service never fails the
fetch: it becomes an unreachable, unhealthy `ServiceState` with a message.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from ..core.aggregate import first_known
from ..core.errors import (
    IngestorAuthenticationError,
    IngestorConnectionError,
    IngestorError,
    IngestorResponseError,
    Origin,
    error_for_exception,
)
from ..core.models import (
    EventStatistics,
    FiringAlert,
    IngestionFigures,
    ProcessingMetrics,
    Revision,
    ServiceState,
    ServiceStatus,
)
from . import normalize

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable, Mapping

    from ..core.models import Period

# The Admin API's `/api/v1/stats` asks its 13 upstream services one after another:
# docs/ingestor-contracts.md#quirk-sequential-stats.
STATS_TIMEOUT = 30.0

ADMIN_API = "admin-api"
WEBSOCKET_INGESTION = "websocket-ingestion"
ENRICHMENT_PIPELINE = "enrichment-pipeline"
DATA_API = "data-api"
DATA_RETENTION = "data-retention"

# Host ports of docker-compose, used only for names the Admin API reports.
# docs/ingestor-contracts.md#r1-and-r2-deployment
DEFAULT_PORTS: dict[str, int] = {
    WEBSOCKET_INGESTION: 8001,
    ENRICHMENT_PIPELINE: 8002,
    "sports-data": 8005,
    "sports-api": 8005,
    DATA_API: 8006,
    "weather-api": 8009,
    "carbon-intensity-service": 8010,
    "electricity-pricing-service": 8011,
    "air-quality-service": 8012,
    "calendar-service": 8013,
    "smart-meter-service": 8014,
    "log-aggregator": 8015,
    "energy-correlator": 8017,
    "data-retention": 8080,
}
# Listed by the Admin API but not probed on the Admin API's host: the Admin API itself (host
# port 8003 maps to 8004), the dashboard (3000 maps to 80) and InfluxDB (the backends' job).
_NOT_DERIVED = frozenset({ADMIN_API, "health-dashboard", "influxdb"})
# R2 `/api/v1/stats` keeps undeployed services (sports-data, calendar-service) whose names do
# not resolve: they are not part of the stack, so they are left out.
# docs/ingestor-contracts.md#quirk-undeployed-services
_NOT_DEPLOYED = (
    "Name or service not known",
    "nodename nor servname",
    "Temporary failure in name resolution",
    "No address associated with hostname",
    # R3's Admin API runs on Alpine: musl's texts (docs/ingestor-contracts-r3.md).
    "[Name does not resolve]",
    "[Try again]",
)
# R3 Admin API paths its rate limiter does not count (60 a minute per client address).
_RATE_LIMIT_EXEMPT = frozenset({"/health", "/api/health", "/api/v1/health"})
# How long to leave the rate-limited paths alone after a 429 without `Retry-After`.
_DEFAULT_BACKOFF = 60.0
_MAX_BACKOFF = 600.0
ALERTS_ACTIVE = "/api/alerts/active"
# R3's Admin API forgets a firing alert 900 s after AlertManager's last notification, and
# AlertManager repeats one only every 30 min (critical) or 4 h: hold it across that gap.
_ALERT_TTL = 900.0
_ALERT_REPEAT = {"critical": 1800.0}
_ALERT_REPEAT_DEFAULT = 4 * 3600.0
_ALERT_GRACE = 300.0
_RETENTION_NOT_CONFIGURED = "API key not configured"
# R1 `/api/v1/health` names dependencies for display.
_DISPLAY_NAMES = {
    "InfluxDB": "influxdb",
    "WebSocket Ingestion": WEBSOCKET_INGESTION,
    "Enrichment Pipeline": ENRICHMENT_PIPELINE,
}


@dataclass(frozen=True, slots=True)
class ServicesResult:
    """What one services refresh found.

    `events` holds the few event figures the services know (websocket `event_rate_per_minute`
    and `last_event_time`); every other event figure is None. `admin_api_connected` is None
    when no Admin API is configured; True when it answered anything (even when its protected
    `/api/v1/stats` refused the key, which `admin_api_error` then tells).
    """

    events: EventStatistics
    metrics: ProcessingMetrics
    services: tuple[ServiceState, ...]
    admin_api_connected: bool | None
    ingestor_version: str | None = None
    revision: Revision | None = None
    # The Admin API failure behind a partial result (e.g. 401 while the services answered).
    admin_api_error: IngestorError | None = field(default=None, compare=False)
    # `services` is the whole stack: the Admin API's listings all answered (or only direct
    # service URLs are configured, which are always listed).
    services_complete: bool = False
    ingestion: IngestionFigures = field(default_factory=IngestionFigures)
    firing_alerts: tuple[FiringAlert, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Reply:
    """One HTTP exchange: the decoded JSON body whatever the status.

    docs/ingestor-contracts.md#quirk-error-bodies
    """

    status: int | None
    body: object = None
    error: IngestorError | None = None
    elapsed_ms: float | None = None
    retry_after: float | None = None  # a 429's `Retry-After`, in seconds

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        """A success status with a body that could be read."""
        return self.status is not None and _success(self.status) and self.body is not None

    @property
    def unreadable(self) -> bool:
        """A success status whose body is not JSON (truncated, HTML, empty)."""
        return self.status is not None and self.body is None and _success(self.status)

    @property
    def refused(self) -> bool:
        return self.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)

    @property
    def rate_limited(self) -> bool:
        return self.status == HTTPStatus.TOO_MANY_REQUESTS


# An endpoint not asked this refresh (gone at the revision seen before).
_NOT_ASKED = _Reply(None)


@dataclass(frozen=True, slots=True)
class _AdminReplies:
    stats: _Reply
    services: _Reply
    health_services: _Reply
    health: _Reply
    info: _Reply
    alerts: _Reply = _NOT_ASKED
    rate_limited: bool = False

    @property
    def listings(self) -> tuple[_Reply, ...]:
        """The replies that together list the whole stack (R3 has no `/api/v1/services`)."""
        if self.services is _NOT_ASKED:
            return (self.stats, self.health_services)
        return (self.services, self.stats, self.health_services)


@dataclass(frozen=True, slots=True)
class _ServiceReplies:
    name: str
    health: _Reply
    extra: _Reply | None = None
    # R3: websocket `/health/detailed` and `/api/v1/filter/stats`, data-retention's stats.
    detailed: _Reply | None = None
    more: _Reply | None = None

    @property
    def r3(self) -> bool:
        return self.detailed is not None or (
            self.health.answered and normalize.normalize_service_health(self.health.body).standard
        )


def _success(status: int) -> bool:
    return HTTPStatus.OK <= status < HTTPStatus.BAD_REQUEST


def _base(url: str) -> str:
    return url.rstrip("/")


class ServicesClient:
    """Fetches and normalises everything the ingestor's services say.

    The aiohttp session belongs to the caller and is never closed here. The API key is sent
    only to the Admin API, as `Authorization: Bearer <key>`, and never appears in messages.
    """

    def __init__(  # noqa: PLR0913
        self,
        session: aiohttp.ClientSession,
        admin_api_url: str | None,
        api_key: str | None,
        service_urls: Mapping[str, str] | None,
        timeout: float = 10.0,
        *,
        stats_timeout: float = STATS_TIMEOUT,
    ) -> None:
        """Keep the settings; `service_urls` maps service names to base URLs the user gave.

        `timeout` bounds each request, `stats_timeout` the slow `/api/v1/stats` call.
        """
        self._session = session
        self._admin = _base(admin_api_url) if admin_api_url else None
        self._api_key = api_key or None
        self._service_urls = {k: _base(v) for k, v in (service_urls or {}).items() if v}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stats_timeout = aiohttp.ClientTimeout(total=stats_timeout)
        # URLs derived from the previous refresh's reports, so a refresh is one round.
        self._derived: dict[str, str] = {}
        # The revision the previous refresh saw: R3 drops and adds Admin API endpoints.
        self._revision: Revision | None = None
        # R3 rate limit: no rate-limited Admin API call before this (monotonic) time, and
        # the last good reply of each such path meanwhile ("slow down", not an outage).
        self._backoff_until = 0.0
        self._last_good: dict[str, _Reply] = {}
        self._alerts = _AlertMemory()

    @property
    def admin_api_url(self) -> str | None:
        """The Admin API base URL, None when only service URLs are configured."""
        return self._admin

    # --- HTTP ---------------------------------------------------------------------------------

    async def _get(
        self,
        url: str,
        what: str,
        *,
        auth: bool = False,
        limit: aiohttp.ClientTimeout | None = None,
    ) -> _Reply:
        """GET and decode JSON; every failure becomes a typed error in the reply."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if auth and self._api_key else {}
        timeout = limit or self._timeout
        started = time.monotonic()
        try:
            async with self._session.get(url, headers=headers, timeout=timeout) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = _seconds(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, OSError) as err:
            return _Reply(
                None,
                error=error_for_exception(
                    err,
                    where=what,
                    origin=Origin.SERVICES,
                    timeout=timeout.total,
                    secrets=(self._api_key,) if self._api_key else (),
                ),
            )
        elapsed = (time.monotonic() - started) * 1000
        try:
            body: object = json.loads(raw)
        except ValueError:
            body = None
        error: IngestorError | None = None
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            error = IngestorAuthenticationError(
                f"{what}: the Admin API refused the API key (HTTP {status})"
                if self._api_key
                else f"{what}: the Admin API needs an API key (HTTP {status})",
                origin=Origin.SERVICES,
            )
        elif not _success(status):
            error = IngestorResponseError(f"{what}: HTTP {status}", origin=Origin.SERVICES)
        elif body is None:
            # An answer that cannot be read says nothing about health.
            error = IngestorResponseError(
                f"{what}: HTTP {status} with an unreadable body", origin=Origin.SERVICES
            )
        return _Reply(status, body, error, elapsed, retry_after)

    async def _admin_get(
        self, admin: str, path: str, limit: aiohttp.ClientTimeout | None = None
    ) -> _Reply:
        """One Admin API call; R3's 429 backs off and keeps the path's last good reply."""
        key = path.partition("?")[0]
        limited = key not in _RATE_LIMIT_EXEMPT
        if limited and time.monotonic() < self._backoff_until:
            return self._last_good.get(key, _Reply(HTTPStatus.TOO_MANY_REQUESTS))
        reply = await self._get(f"{admin}{path}", f"Admin API {path}", auth=True, limit=limit)
        if reply.rate_limited:
            self._backoff_until = time.monotonic() + _retry_after(reply)
            return self._last_good.get(key, reply)
        if reply.ok and limited:
            self._last_good[key] = reply
        return reply

    async def _fetch_admin(self, period: Period) -> _AdminReplies | None:
        if (admin := self._admin) is None:
            return None
        was_backing_off = time.monotonic() < self._backoff_until
        # R3 moved `/api/v1/services` to data-api (404, yet rate-limited) and added the
        # AlertManager alerts: asked once a refresh has seen R3.
        r3 = self._revision is Revision.R3

        async def unless(gone: bool, path: str) -> _Reply:  # noqa: FBT001
            return _NOT_ASKED if gone else await self._admin_get(admin, path)

        stats, services, health_services, health, info, alerts = await asyncio.gather(
            # `Period` is a whitelist: the Admin API puts `period` into Flux unchecked
            # (docs/ingestor-contracts.md#quirk-period-injection).
            self._admin_get(admin, f"/api/v1/stats?period={period.value}", self._stats_timeout),
            unless(r3, "/api/v1/services"),
            self._admin_get(admin, "/api/v1/health/services"),
            self._admin_get(admin, "/api/v1/health"),
            self._admin_get(admin, "/api/info"),
            unless(not r3, ALERTS_ACTIVE),
        )
        return _AdminReplies(
            stats,
            services,
            health_services,
            health,
            info,
            alerts,
            rate_limited=was_backing_off or time.monotonic() < self._backoff_until,
        )

    async def _fetch_service(self, name: str, url: str) -> _ServiceReplies:
        health = self._get(f"{url}/health", name)
        extra: Awaitable[_Reply] | None = None
        if name == WEBSOCKET_INGESTION:
            extra = self._get(f"{url}/api/v1/event-rate", name)
        elif name == ENRICHMENT_PIPELINE:
            extra = self._get(f"{url}/api/v1/stats", name)
        if extra is None:
            replies = _ServiceReplies(name, await health)
        else:
            health_reply, extra_reply = await asyncio.gather(health, extra)
            replies = _ServiceReplies(name, health_reply, extra_reply)
        return await self._fetch_r3(replies, url)

    async def _fetch_r3(self, replies: _ServiceReplies, url: str) -> _ServiceReplies:
        """What R3 moved or added, asked once `/health` showed R3's standard shape."""
        if not replies.r3:
            return replies
        name = replies.name
        if name == WEBSOCKET_INGESTION:
            detailed, filter_stats = await asyncio.gather(
                self._get(f"{url}/health/detailed", name),
                self._get(f"{url}/api/v1/filter/stats", name),
            )
            return replace(replies, detailed=detailed, more=filter_stats)
        if name == DATA_RETENTION:
            return replace(replies, more=await self._get(f"{url}/backup/stats", name))
        return replies

    async def _fetch_services(self, urls: Mapping[str, str]) -> list[_ServiceReplies]:
        return list(
            await asyncio.gather(*(self._fetch_service(name, url) for name, url in urls.items()))
        )

    # --- Public -------------------------------------------------------------------------------

    async def async_fetch(self, period: Period, now: datetime | None = None) -> ServicesResult:
        """Everything the services know for `period`, in one parallel round.

        `now` (default: the wall clock) ages the AlertManager alerts.

        When the user gave per-service URLs, those services are asked together with the
        Admin API, and the others are known only through the Admin API's reports. Without
        any, the services the Admin API reports are asked on the Admin API's host, at the
        port `/api/v1/services` reports or the compose default (`DEFAULT_PORTS`): together
        with the Admin API at the URLs the previous fetch derived, and afterwards (a second
        round) only for services that were not reported before (the first fetch).

        Raises:
            IngestorError: only when no source answered at all: the Admin API's own error
                (connection, TLS, timeout, 401 as `IngestorAuthenticationError`, or
                `IngestorResponseError` when it is not an Admin API) when it is configured,
                else the first service's error.

        """
        known = {**self._derived, **self._service_urls}
        admin, direct = await asyncio.gather(self._fetch_admin(period), self._fetch_services(known))
        reported = _reported(admin)
        derived: dict[str, str] = {}
        if reported.admin_answered:
            derived = self._derive_urls(reported)
            self._derived = derived
            missing = {name: url for name, url in derived.items() if name not in known}
            if missing:
                direct += await self._fetch_services(missing)
        # Derived URLs count only while the Admin API reports their services.
        direct = [r for r in direct if r.name in self._service_urls or r.name in derived]
        result = self._assemble(admin, reported, direct, now)
        self._revision = result.revision or self._revision
        return result

    async def async_validate(self) -> normalize.ApiInfo:
        """Prove the Admin API (or, without one, every given service URL) answers.

        Returns the Admin API's `/api/info` (version, whether a key is needed).

        Raises:
            IngestorAuthenticationError: the key is missing or refused (origin SERVICES).
            IngestorConnectionError: unreachable (`IngestorSSLError` for TLS,
                `IngestorTimeoutError` for no answer in time).
            IngestorResponseError: it answered, but it is not an HA Ingestor Admin API.

        """
        if (admin := self._admin) is None:
            for probed in await self._fetch_services(self._service_urls):
                if not probed.health.answered and probed.health.error is not None:
                    raise probed.health.error
            return normalize.ApiInfo()
        # `?service=` keeps the protected call cheap: one upstream service instead of 13.
        info, stats = await asyncio.gather(
            self._admin_get(admin, "/api/info"),
            self._admin_get(admin, f"/api/v1/stats?service={WEBSOCKET_INGESTION}"),
        )
        for reply in (info, stats):
            if not reply.answered and reply.error is not None:
                raise reply.error
        for reply in (info, stats):
            if reply.refused and reply.error is not None:
                raise reply.error
        if not info.ok or not normalize.is_admin_api_info(info.body):
            msg = f"{admin} does not answer like an HA Ingestor Admin API (/api/info)"
            raise IngestorResponseError(msg, origin=Origin.SERVICES)
        return normalize.normalize_api_info(info.body)

    # --- Assembly -----------------------------------------------------------------------------

    def _derive_urls(self, reported: _Reported) -> dict[str, str]:
        """URLs on the Admin API's host for the services it reports, when the user gave none."""
        if self._admin is None or self._service_urls:
            return {}
        admin = URL(self._admin)
        urls: dict[str, str] = {}
        for name in reported.names:
            if name in _NOT_DERIVED:
                continue
            port = reported.ports.get(name) or DEFAULT_PORTS.get(name)
            if port is None or admin.host is None:
                continue
            urls[name] = str(URL.build(scheme=admin.scheme, host=admin.host, port=port))
        return urls

    def _assemble(
        self,
        admin: _AdminReplies | None,
        reported: _Reported,
        direct: list[_ServiceReplies],
        now: datetime | None = None,
    ) -> ServicesResult:
        states: dict[str, ServiceState] = {}
        for state in reported.states:
            _merge_into(states, state)
        figures = _Figures()
        for replies in direct:
            _merge_into(states, _direct_state(replies), direct=True)
            figures.read(replies)

        admin_error = _admin_error(admin)
        admin_connected = None if admin is None else reported.admin_answered
        info = normalize.ApiInfo()
        if admin is not None:
            info = normalize.normalize_api_info(admin.info.body) if admin.info.ok else info
            states[ADMIN_API] = _merge(
                states.get(ADMIN_API),
                _admin_state(admin, reported, admin_error, version=info.version),
                direct=True,
            )
            if info.r3:
                reported.revision = Revision.R3
        if not any(r.health.answered for r in direct):
            _raise_without_source(admin, reported, admin_error, direct)
        ws_entry = reported.entry(WEBSOCKET_INGESTION)
        events = EventStatistics(
            # The websocket's own page omits the rate before it exists; the Admin API's copy
            # turns that into 0, so it is read only when the websocket was not asked.
            events_per_minute=figures.events_per_minute
            if figures.websocket_answered
            else _admin_events_per_minute(ws_entry),
            last_event=figures.last_event,
        )
        metrics = ProcessingMetrics(
            error_rate=first_known(figures.error_rate, reported.error_rate),
            success_rate=first_known(
                figures.success_rate, *(e.success_rate for e in reported.influx_entries)
            ),
            processing_time_ms=first_known(
                figures.processing_time_ms,
                *(e.processing_time_ms for e in reported.influx_entries),
            ),
        )
        listings = () if admin is None else admin.listings
        revision = (
            Revision.R3
            if Revision.R3 in (figures.revision, reported.revision)
            else figures.revision or reported.revision
        )
        return ServicesResult(
            ingestion=figures.ingestion,
            firing_alerts=self._alerts.update(
                admin.alerts if admin is not None else None, now or datetime.now(UTC)
            ),
            services_complete=all(r.ok for r in listings),
            events=events,
            metrics=metrics,
            services=tuple(states[name] for name in sorted(states)),
            admin_api_connected=admin_connected,
            ingestor_version=info.version,
            revision=revision,
            admin_api_error=admin_error,
        )


# --- What the Admin API reported ------------------------------------------------------------


@dataclass(slots=True)
class _Reported:
    """The Admin API's view of the stack, merged from its four endpoints."""

    states: list[ServiceState] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    stats: normalize.AdminStats = field(
        default_factory=lambda: normalize.AdminStats(shape=normalize.StatsShape.UNKNOWN)
    )
    admin_answered: bool = False
    usable: bool = False
    revision: Revision | None = None

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(s.name for s in self.states))

    @property
    def error_rate(self) -> float | None:
        return self.stats.error_rate

    @property
    def influx_entries(self) -> tuple[normalize.AdminServiceEntry, ...]:
        if self.stats.shape is normalize.StatsShape.INFLUXDB:
            return self.stats.services
        return ()

    def entry(self, name: str) -> normalize.AdminServiceEntry | None:
        return next((e for e in self.stats.services if e.name == name), None)


def _reported(admin: _AdminReplies | None) -> _Reported:
    reported = _Reported()
    if admin is None:
        return reported
    replies = (admin.stats, admin.services, admin.health_services, admin.health, admin.info)
    reported.admin_answered = any(r.answered and not r.refused for r in replies)
    listed: list[normalize.ListedService] = []
    if admin.services.ok:
        services = normalize.normalize_services_list(admin.services.body)
        listed.extend(services)
        reported.ports = {s.name: s.port for s in services if s.port is not None}
        reported.usable |= bool(services)
    if admin.stats.ok:
        reported.stats = normalize.normalize_admin_stats(admin.stats.body)
        reported.usable |= reported.stats.shape is not normalize.StatsShape.UNKNOWN
    if admin.health_services.ok:
        health = normalize.normalize_health_services(admin.health_services.body)
        reported.usable |= bool(health)
    else:
        health = ()
    reported.usable |= admin.info.ok and normalize.is_admin_api_info(admin.info.body)
    names = {s.name for s in listed} | {e.name for e in reported.stats.services}
    if ENRICHMENT_PIPELINE in names:
        reported.revision = Revision.R1
    elif DATA_API in names:
        reported.revision = Revision.R2
    if not health and admin.health.ok and reported.revision is Revision.R1:
        # R2's /api/v1/health is hard-coded "healthy": read it at R1 only
        # (docs/ingestor-contracts.md#quirk-r2-fake-health).
        health = tuple(
            replace(d, name=_DISPLAY_NAMES[d.name])
            for d in normalize.normalize_admin_health(admin.health.body)
            if d.name in _DISPLAY_NAMES
        )
    reported.states = _reported_states(reported.stats, listed, health)
    return reported


def _reported_states(
    stats: normalize.AdminStats,
    listed: Iterable[normalize.ListedService],
    health: Iterable[normalize.ListedService],
) -> list[ServiceState]:
    """Service states in rising order of trust: services list, stats entries, health checks."""
    states = [_listed_state(item) for item in listed if not _not_deployed(item)]
    if stats.shape is not normalize.StatsShape.INFLUXDB:  # service_metrics rows say nothing
        states.extend(
            ServiceState(
                name=entry.name,
                status=entry.status,
                reachable=entry.reachable is not False,
                message=entry.message,
                uptime_seconds=entry.uptime_seconds,
            )
            for entry in stats.services
            if entry.name != ADMIN_API and not _not_deployed(entry)
        )
    # `weather-api` in the health checks is OpenWeatherMap itself, not an ingestor service.
    states.extend(
        _listed_state(item)
        for item in health
        if item.name != "weather-api" and not _not_deployed(item)
    )
    return states


def _not_deployed(entry: normalize.AdminServiceEntry | normalize.ListedService) -> bool:
    return entry.status is ServiceStatus.UNHEALTHY and any(
        m in (entry.message or "") for m in _NOT_DEPLOYED
    )


def _listed_state(item: normalize.ListedService) -> ServiceState:
    # An unhealthy entry with an "HTTP <code>" message answered; any other did not.
    unreachable = item.status is ServiceStatus.UNHEALTHY and not (item.message or "").startswith(
        "HTTP "
    )
    return ServiceState(
        name=item.name,
        status=item.status,
        reachable=not unreachable,
        message=item.message,
        response_time_ms=item.response_time_ms,
    )


def _admin_error(admin: _AdminReplies | None) -> IngestorError | None:
    """The Admin API failure worth reporting: a refused key first, then no answer at all."""
    if admin is None:
        return None
    replies = (admin.stats, admin.info, admin.services, admin.health_services, admin.health)
    refused = next((r.error for r in replies if r.refused), None)
    if refused is not None:
        return refused
    if not any(r.answered for r in replies):
        return admin.info.error or admin.stats.error
    return None


def _raise_without_source(
    admin: _AdminReplies | None,
    reported: _Reported,
    admin_error: IngestorError | None,
    direct: list[_ServiceReplies],
) -> None:
    """No service answered directly: the Admin API's failure (if any) is the fetch's."""
    if admin is None:
        first = next((r.health.error for r in direct if r.health.error is not None), None)
        raise first or IngestorConnectionError(
            "No ingestor service is configured", origin=Origin.SERVICES
        )
    if admin_error is not None:
        raise admin_error
    if not reported.usable:
        msg = "The Admin API answered nothing usable: is it an HA Ingestor Admin API?"
        raise IngestorResponseError(msg, origin=Origin.SERVICES)


def _admin_state(
    admin: _AdminReplies,
    reported: _Reported,
    error: IngestorError | None,
    *,
    version: str | None,
) -> ServiceState:
    entry = reported.entry(ADMIN_API)
    if not reported.admin_answered:
        return ServiceState(
            name=ADMIN_API,
            status=ServiceStatus.UNHEALTHY,
            reachable=False,
            message=str(error) if error is not None else None,
        )
    status = entry.status if entry is not None else ServiceStatus.HEALTHY
    if status is ServiceStatus.UNKNOWN:
        status = ServiceStatus.HEALTHY
    message = str(error) if error is not None else None
    replies = (admin.info, admin.stats, admin.services, admin.health_services, admin.health)
    if unreadable := [r for r in replies if r.unreadable]:
        readable = any(r.ok for r in replies)
        status = ServiceStatus.DEGRADED if readable else ServiceStatus.UNHEALTHY
        more = len(unreadable) - 1
        message = str(unreadable[0].error) + (f" (and {more} more)" if more else "")
    if message is None and admin.rate_limited:
        message = "rate limit reached (HTTP 429): asking less often, showing the last values"
    return ServiceState(
        name=ADMIN_API,
        status=status,
        reachable=True,
        message=message,
        uptime_seconds=entry.uptime_seconds if entry is not None else None,
        response_time_ms=admin.info.elapsed_ms,
        version=version,
    )


# --- What the services said directly ----------------------------------------------------------


def _direct_state(replies: _ServiceReplies) -> ServiceState:
    return _r3_state(replies, _health_state(replies))


def _r3_state(replies: _ServiceReplies, state: ServiceState) -> ServiceState:
    """R3: websocket health from `/health/detailed` (its `/health` is a stub).

    data-retention's statistics refused for want of a key are "not configured", not a failure.
    """
    detailed, more = replies.detailed, replies.more
    if detailed is not None and detailed.ok and isinstance(detailed.body, dict):
        health = normalize.normalize_websocket_detailed(detailed.body).health
        return replace(state, status=health.status, message=health.message)
    if detailed is not None and state.reachable:
        return replace(
            state,
            status=ServiceStatus.UNHEALTHY if detailed.unreadable else ServiceStatus.UNKNOWN,
            message=f"/health/detailed: {detailed.error or 'unreadable'}",
        )
    if (
        replies.name == DATA_RETENTION
        and more is not None
        and more.status == HTTPStatus.INTERNAL_SERVER_ERROR
        and normalize.parse_text(_detail(more.body)) == _RETENTION_NOT_CONFIGURED
    ):
        note = f"statistics not configured ({_RETENTION_NOT_CONFIGURED})"
        return replace(state, message=f"{state.message}; {note}" if state.message else note)
    return state


def _detail(body: object) -> object:
    return body.get("detail") if isinstance(body, dict) else None


def _health_state(replies: _ServiceReplies) -> ServiceState:
    reply = replies.health
    if not reply.answered:
        return ServiceState(
            name=replies.name,
            status=ServiceStatus.UNHEALTHY,
            reachable=False,
            message=str(reply.error) if reply.error is not None else None,
        )
    health = normalize.normalize_service_health(reply.body)
    status = health.status
    message = health.message
    server_error = reply.status is not None and reply.status >= HTTPStatus.INTERNAL_SERVER_ERROR
    if reply.body is None:
        status = ServiceStatus.UNHEALTHY
        message = f"HTTP {reply.status}" + ("" if server_error else " with an unreadable body")
    elif not (isinstance(reply.body, dict) and "status" in reply.body):
        # JSON without a status word: the HTTP code is all there is.
        if reply.ok:
            status = ServiceStatus.HEALTHY
        elif server_error:
            status = ServiceStatus.UNHEALTHY
        message = message or (None if reply.ok else f"HTTP {reply.status}")
    extra = replies.extra
    if extra is not None and extra.unreadable and status is ServiceStatus.HEALTHY:
        status = ServiceStatus.DEGRADED
        message = str(extra.error)
    return ServiceState(
        name=replies.name,
        status=status,
        reachable=True,
        message=message,
        uptime_seconds=health.uptime_seconds,
        response_time_ms=reply.elapsed_ms,
        version=health.version,
        git_sha=health.git_sha,
    )


@dataclass(slots=True)
class _Figures:
    """Event and processing figures gathered from the direct replies."""

    events_per_minute: float | None = None
    last_event: datetime | None = None
    error_rate: float | None = None
    success_rate: float | None = None
    processing_time_ms: float | None = None
    revision: Revision | None = None
    websocket_answered: bool = False
    ingestion: IngestionFigures = field(default_factory=IngestionFigures)
    _r2_figures: normalize.ProcessingFigures | None = None
    _r1_figures: normalize.ProcessingFigures | None = None

    def read(self, replies: _ServiceReplies) -> None:
        if replies.name == WEBSOCKET_INGESTION:
            self._read_websocket(replies)
        elif replies.name == ENRICHMENT_PIPELINE and replies.extra is not None:
            if replies.extra.ok:
                self._r1_figures = normalize.normalize_enrichment_stats(replies.extra.body)
                self.revision = self.revision or Revision.R1
        elif replies.name == DATA_API and replies.health.answered:
            newer = Revision.R3 if replies.r3 else Revision.R2
            self.revision = newer if self.revision in (None, Revision.R2) else self.revision
        self._combine()

    def _read_websocket(self, replies: _ServiceReplies) -> None:
        # R3's `/health` is a stub: its figures are in `/health/detailed`.
        page = replies.detailed if replies.detailed is not None else replies.health
        if page.answered:
            self.websocket_answered = True
            ws = normalize.normalize_websocket_health(page.body)
            self.events_per_minute = ws.events_per_minute
            self.last_event = ws.last_event
        extra = replies.extra
        if extra is not None and extra.ok:
            self._r2_figures = normalize.normalize_event_rate(extra.body)
            self.revision = Revision.R3 if replies.r3 else Revision.R2
        elif extra is not None and extra.status == HTTPStatus.NOT_FOUND:
            # /api/v1/event-rate exists from R2 on (docs/ingestor-contracts.md#telling-r1-from-r2).
            self.revision = Revision.R1
        if replies.r3:
            self.revision = Revision.R3
            self._read_ingestion(replies)

    def _read_ingestion(self, replies: _ServiceReplies) -> None:
        queue = self._r2_figures
        filtered = normalize.FilterStats()
        if replies.more is not None and replies.more.ok:
            filtered = normalize.normalize_filter_stats(replies.more.body)
        self.ingestion = IngestionFigures(
            queue_size=queue.queue_size if queue is not None else None,
            queue_maxsize=queue.queue_maxsize if queue is not None else None,
            filter_enabled=filtered.enabled,
            filtered_events=filtered.filtered_events,
            filtered_percent=filtered.filtered_percent,
        )

    def _combine(self) -> None:
        sources = [f for f in (self._r2_figures, self._r1_figures) if f is not None]
        self.error_rate = first_known(*(f.error_rate for f in sources))
        self.success_rate = first_known(*(f.success_rate for f in sources))
        self.processing_time_ms = first_known(*(f.processing_time_ms for f in sources))
        self.last_event = self.last_event or first_known(*(f.last_event for f in sources))


# --- Helpers ----------------------------------------------------------------------------------


def _admin_events_per_minute(entry: normalize.AdminServiceEntry | None) -> float | None:
    """The Admin API's websocket rate, where its 0 for "not computed yet" means unknown."""
    if entry is None or entry.events_per_minute is None:
        return None
    if entry.events_per_minute == 0 and not entry.total_events_received:
        return None
    return entry.events_per_minute


def _merge(old: ServiceState | None, new: ServiceState, *, direct: bool = False) -> ServiceState:
    """`new` over `old`, keeping what `new` does not know.

    A report without a status word keeps the earlier status unless it says unreachable;
    a direct probe always wins.
    """
    if old is None:
        return new
    keep_status = not direct and new.status is ServiceStatus.UNKNOWN and new.reachable
    return ServiceState(
        name=new.name,
        status=old.status if keep_status else new.status,
        reachable=old.reachable if keep_status else new.reachable,
        message=new.message if new.message is not None or direct else old.message,
        uptime_seconds=first_known(new.uptime_seconds, old.uptime_seconds),
        response_time_ms=first_known(new.response_time_ms, old.response_time_ms),
        version=new.version or old.version,
        git_sha=new.git_sha or old.git_sha,
    )


def _merge_into(
    states: dict[str, ServiceState], new: ServiceState, *, direct: bool = False
) -> None:
    states[new.name] = _merge(states.get(new.name), new, direct=direct)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(reply: _Reply) -> float:
    """Seconds to leave the rate-limited paths alone: the server's `Retry-After`, bounded."""
    if reply.retry_after is None:
        return _DEFAULT_BACKOFF
    return min(max(reply.retry_after, 1.0), _MAX_BACKOFF)


class _AlertMemory:
    """The firing AlertManager alerts, without the R3 Admin API's 15-minute gaps.

    The Admin API drops a resolved alert at once and a firing one 900 s after its last
    notification (`received_at`). So an alert that vanishes before that was resolved; one that
    vanishes after it is held as firing until AlertManager's next repeat could have renewed it.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[FiringAlert, datetime]] = {}
        self._seen = False

    def update(self, reply: _Reply | None, now: datetime) -> tuple[FiringAlert, ...] | None:
        """The alerts firing now; None while the Admin API never listed alerts."""
        listed = normalize.normalize_alerts_active(reply.body) if reply and reply.ok else None
        if listed is None:
            return tuple(a for a, _ in self._held.values()) if self._seen else None
        self._seen = True
        held = {a.fingerprint: (a, a.received_at or now) for a in listed}
        for key, (alert, notified) in self._held.items():
            age = (now - notified).total_seconds()
            repeat = _ALERT_REPEAT.get(alert.severity or "", _ALERT_REPEAT_DEFAULT)
            if key not in held and _ALERT_TTL <= age < repeat + _ALERT_GRACE:
                held[key] = (alert, notified)
        self._held = held
        return tuple(a for a, _ in held.values())
