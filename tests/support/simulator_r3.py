"""The HomeIQ 2.0 (R3) ingestor on loopback, beside the R1/R2 simulator it extends.

Payloads follow docs/ingestor-contracts-r3.md (its simulator checklist): every
`/health` is the standard shape answering HTTP 200; websocket-ingestion's `/health` is a stub
that always says healthy while `/health/detailed` carries the truth; the Admin API wants a
Bearer key on its statistics, rate-limits every client address (token bucket, 429 with
`Retry-After`), answers 404 for the routes that moved to data-api, and keeps the AlertManager
alerts its webhook received for 900 s after their last notification; data-retention's stats
answer 500 "API key not configured" unless a key is configured. The fault switches (down, slow,
401, 500, garbled) are the base simulator's.

    async with IngestorSimulatorR3(api_key="k") as sim:
        sim.set_figures(ws_subscribed=False, queue_size=2500)
        await sim.post_alerts([firing_alert("ServiceDown", "critical")])
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web

from custom_components.ha_ingestor.api.core.models import Revision
from tests.support.simulator import (
    _R2_STATS_SERVICES,
    ADMIN_API,
    AIR_QUALITY,
    CALENDAR,
    CARBON_INTENSITY,
    DATA_API,
    DATA_RETENTION,
    DEFAULT_AUXILIARY,
    ELECTRICITY_PRICING,
    ENERGY_CORRELATOR,
    INTERNAL_HEADER,
    LOG_AGGREGATOR,
    SMART_METER,
    SPORTS_DATA,
    VERSION,
    WEATHER_API,
    WEBSOCKET_INGESTION,
    IngestorSimulator,
    Json,
    _failed_stats,
    _Fetched,
    _human,
    _websocket_transform,
    naive_iso,
    uptime_text,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

SPORTS_API: Final = "sports-api"
ALERTS_ACTIVE: Final = "/api/alerts/active"
ALERTS_COUNT: Final = "/api/alerts/active/count"
ALERTS_WEBHOOK: Final = "/api/alerts/webhook"
ALERT_TTL: Final = 900.0  # a firing alert is dropped this long after its last notification

# Paths the Admin API's rate limiter lets through (DAT/rate_limiter.py:134).
RATE_LIMIT_EXEMPT: Final = frozenset({"/health", "/api/health", "/api/v1/health"})

# `/api/v1/stats` fallback list, in the Admin API's order (sports-api replaced sports-data).
_R3_STATS_SERVICES: Final = tuple(
    SPORTS_API if name == SPORTS_DATA else name for name in _R2_STATS_SERVICES
)
# `/api/v1/health/services`: 27 services in eight groups, with their compose ports.
_R3_GROUPS: Final[dict[str, tuple[tuple[str, int], ...]]] = {
    "core-platform": (
        (WEBSOCKET_INGESTION, 8001),
        ("influxdb", 8086),
        (ADMIN_API, 8004),
        ("health-dashboard", 8080),
        (DATA_API, 8006),
    ),
    "data-collectors": (
        (WEATHER_API, 8009),
        (SPORTS_API, 8005),
        (CARBON_INTENSITY, 8010),
        (ELECTRICITY_PRICING, 8011),
        (AIR_QUALITY, 8012),
        (CALENDAR, 8013),
        (SMART_METER, 8014),
    ),
    "ml-engine": (
        ("ai-core-service", 8018),
        ("device-intelligence-service", 8028),
        ("rag-service", 8027),
    ),
    "automation-intelligence": (("ai-automation-service", 8024),),
    "energy-analytics": (
        (ENERGY_CORRELATOR, 8017),
        ("energy-forecasting", 8037),
        ("proactive-agent-service", 8031),
    ),
    "blueprints": (
        ("blueprint-index", 8038),
        ("blueprint-suggestion-service", 8039),
        ("rule-recommendation-ml", 8040),
    ),
    "pattern-analysis": (("ai-pattern-service", 8034), ("api-automation-edge", 8041)),
    "device-management": (
        ("device-health-monitor", 8019),
        ("device-context-classifier", 8032),
        ("device-setup-assistant", 8021),
    ),
}
# Deployed with the core platform even when the simulator does not run them.
_ALWAYS_THERE: Final = frozenset({"influxdb", ADMIN_API, "health-dashboard"})
_DATA_RETENTION_CHECKS: Final = ("cleanup-service", "storage-monitor", "scheduler")
_STATS_TIMEOUT: Final = 10.0
_WEBSOCKET_STATS_TIMEOUT: Final = 5.0
_HEALTH_SERVICES_TIMEOUT: Final = 2.0
_HEALTH_DEPENDENCY_TIMEOUT: Final = 5.0

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def broken_zulu(when: datetime | None = None) -> str:
    """The AlertManager routes' `isoformat() + "Z"` on an aware time: `...+00:00Z`."""
    return (datetime.now(UTC) if when is None else when.astimezone(UTC)).isoformat() + "Z"


def aware_iso(when: datetime | None = None) -> str:
    """R3's usual timestamp: aware UTC, `+00:00`."""
    return (datetime.now(UTC) if when is None else when.astimezone(UTC)).isoformat()


def not_resolving(name: str, port: int) -> str:
    """aiohttp's DNS failure text on admin-api's Alpine (musl) image."""
    return f"Cannot connect to host {name}:{port} ssl:default [Name does not resolve]"


@dataclass(frozen=True)
class WebhookAlert:
    """One alert of an AlertManager v4 webhook body."""

    alertname: str
    severity: str = "critical"
    service: str = WEBSOCKET_INGESTION
    status: str = "firing"  # or "resolved"
    summary: str = "Service core-platform/homeiq-websocket:8001 is down"
    fingerprint: str | None = None
    starts_at: str = "2026-08-06T17:58:00.123456789Z"

    def body(self) -> Json:
        """The alert as AlertManager sends it."""
        return {
            "status": self.status,
            "labels": {
                "alertname": self.alertname,
                "group": "core-platform",
                "instance": "homeiq-websocket:8001",
                "job": "core-platform",
                "service": self.service,
                "severity": self.severity,
                "tier": "1",
            },
            "annotations": {"summary": self.summary, "description": f"{self.alertname} fired"},
            "startsAt": self.starts_at,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": self.fingerprint or f"{abs(hash(self.alertname)):016x}"[:16],
        }


def webhook_body(alerts: Sequence[WebhookAlert]) -> Json:
    """An AlertManager v4 webhook body carrying `alerts`."""
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "status": status,
        "receiver": "admin-api",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [a.body() for a in alerts],
    }


class ManualClock:
    """A monotonic clock a test moves by hand (`clock.now += 900`)."""

    def __init__(self, start: float = 1000.0) -> None:
        """Start at `start` seconds."""
        self.now = start

    def __call__(self) -> float:
        """The current reading."""
        return self.now


class _TokenBucket:
    """One client's bucket: `burst` tokens, refilled at `per_minute` a minute."""

    def __init__(self, per_minute: float, burst: int, now: float) -> None:
        self.rate = per_minute / 60
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class IngestorSimulatorR3(IngestorSimulator):
    """HomeIQ 2.0: the R2 simulator's services with R3's payloads, auth and rate limit."""

    def __init__(  # noqa: PLR0913
        self,
        api_key: str | None = "homeiq-admin-key",
        *,
        auxiliary: Sequence[str] = DEFAULT_AUXILIARY,
        ports: Mapping[str, int] | None = None,
        rate_per_minute: float = 60.0,
        burst: int = 20,
        retention_api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        """R3 always checks the key (admin-api refuses to start without one).

        Args:
            api_key: the Admin API key (`None` simulates a deployment whose key the
                integration cannot know: every protected call answers 401).
            auxiliary: auxiliary services to run.
            ports: fixed ports by service name.
            rate_per_minute: the Admin API's `ADMIN_API_RATE_LIMIT_PER_MIN`.
            burst: its `ADMIN_API_RATE_LIMIT_BURST`.
            retention_api_key: data-retention's `DATA_RETENTION_API_KEY` (unset by default).
            clock: monotonic seconds, for the rate limiter and the alert TTL.
            **kwargs: the base simulator's remaining options (host, influx_url, ...).

        """
        super().__init__(
            Revision.R3,
            api_key,
            auth_enabled=True,
            auxiliary=auxiliary,
            ports=ports,
            **kwargs,
        )
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self.retention_api_key = retention_api_key
        self.clock = clock
        # Wall-clock times (`received_at`) follow `clock`, so a test can age an alert.
        self._wall_start = (datetime.now(UTC), clock())
        self._buckets: dict[str, _TokenBucket] = {}
        # fingerprint -> (alert as listed, clock of its last notification)
        self._alerts: dict[str, tuple[Json, float]] = {}
        # Services of the deployment the simulator does not run (another compose file, a
        # name a test chooses): `/api/v1/health/services` lists them healthy, like the
        # health dashboard.
        self.deployed_elsewhere: list[str] = []

    # --- what tests read and change -----------------------------------------------------

    def wall_now(self) -> datetime:
        """The simulator's wall clock: real time, moved on with `clock`."""
        start, started = self._wall_start
        return start + timedelta(seconds=self.clock() - started)

    async def post_alerts(self, alerts: Sequence[WebhookAlert]) -> Json:
        """Deliver alerts through the Admin API's webhook, as AlertManager does."""
        assert self._client is not None
        async with self._client.post(
            self.admin_api_url + ALERTS_WEBHOOK,
            json=webhook_body(alerts),
            headers={INTERNAL_HEADER: "alertmanager"},
        ) as response:
            response.raise_for_status()
            return await response.json()

    def admin_requests_per_minute(self, since: float | None = None) -> float:
        """Rate-limited Admin API requests from the code under test, per minute of log."""
        records = [
            r
            for r in self.requests_to(ADMIN_API)
            if r.path not in RATE_LIMIT_EXEMPT and (since is None or r.started >= since)
        ]
        if not records:
            return 0.0
        span = max(records[-1].started - records[0].started, 60.0)
        return len(records) / span * 60

    # --- app construction ---------------------------------------------------------------

    def _json_404(self, name: str) -> bool:  # noqa: ARG002 - same for every service
        return True  # every R3 service is FastAPI

    def _build_app(self, name: str) -> web.Application:
        middlewares = [self._log_middleware(name)]
        if name == ADMIN_API:
            middlewares.append(self._rate_limiter())
        app = web.Application(middlewares=middlewares)
        for path, handler in self._routes(name).items():
            app.router.add_get(path, self._wrap(name, path, handler))
        if name == ADMIN_API:
            app.router.add_post(
                ALERTS_WEBHOOK, self._wrap(name, ALERTS_WEBHOOK, self._admin_webhook)
            )
        return app

    def _rate_limiter(self) -> Any:
        @web.middleware
        async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in RATE_LIMIT_EXEMPT:
                return await handler(request)
            now = self.clock()
            client = request.remote or "unknown"
            bucket = self._buckets.setdefault(
                client, _TokenBucket(self.rate_per_minute, self.burst, now)
            )
            wait = bucket.take(now)
            headers = {
                "X-RateLimit-Limit": str(int(self.rate_per_minute)),
                "X-RateLimit-Remaining": str(int(bucket.tokens)),
                "X-RateLimit-Reset": str(int(wait) + 1 if wait else 0),
            }
            if wait:
                body = {
                    "success": False,
                    "error": "Rate limit exceeded. Please try again later.",
                    "error_code": "RATE_LIMIT_EXCEEDED",
                }
                headers["Retry-After"] = str(int(wait) + 1)
                return web.json_response(body, status=429, headers=headers)
            response = await handler(request)
            response.headers.update(headers)
            return response

        return limit

    def _routes(self, name: str) -> dict[str, Callable[[web.Request], Awaitable[web.Response]]]:
        json = self._json_route
        if name == ADMIN_API:
            return self._admin_routes()
        if name == WEBSOCKET_INGESTION:
            return {
                "/": json(lambda: self._root("WebSocket Ingestion Service")),
                "/health": json(lambda: self._standard_health(WEBSOCKET_INGESTION)),
                "/health/detailed": json(self._websocket_detailed),
                "/api/v1/event-rate": json(self._websocket_event_rate_r3),
                "/api/v1/filter/stats": json(self._websocket_filter_stats),
            }
        if name == DATA_API:
            return {
                "/health": json(
                    lambda: self._standard_health(DATA_API, checks=("database", "influxdb"))
                ),
                "/health/detailed": json(self._data_api_detailed),
                "/api/v1/services": self._data_api_services,
            }
        if name == DATA_RETENTION:
            return {
                "/health": json(
                    lambda: self._standard_health(DATA_RETENTION, checks=_DATA_RETENTION_CHECKS)
                ),
                "/api/v1/health": json(self._data_retention_storage),
                "/retention/stats": self._retention_guarded(
                    lambda: {"metrics": {"status": "disabled", "reason": "InfluxDB 3.0+ required"}}
                ),
                "/backup/stats": self._retention_guarded(
                    lambda: {
                        "total_backups": 0,
                        "total_size_bytes": 0,
                        "oldest_backup": None,
                        "newest_backup": None,
                    }
                ),
            }
        return {"/health": json(lambda: self._standard_health(name))}

    @staticmethod
    def _admin_error(status: int, message: str, code: str | None = None) -> web.Response:
        """R3 answers HTTPExceptions FastAPI's way, unhandled errors with its own envelope."""
        if status == 401:
            return web.json_response(
                {"detail": message}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        body = {
            "error": {
                "code": code or "InternalServerError",
                "message": message,
                "path": "/api/v1/stats",
                "method": "GET",
            }
        }
        return web.json_response(body, status=status)

    # --- the standard health shape (libs/homeiq-resilience) ------------------------------

    @staticmethod
    def _root(title: str) -> Json:
        return {"service": title, "version": VERSION, "status": "running"}

    def _standard_health(self, name: str, checks: Sequence[str] = ()) -> Json:
        """Always HTTP 200; UNHEALTHY/503 faults fail the registered checks."""
        f = self.figures
        reported = self._reported_status(name)
        failing: set[str] = set()
        if reported != "healthy" and checks:
            failing = set(checks) if reported == "unhealthy" else {checks[-1]}
        body: dict[str, Json] = {
            "status": reported if not checks else _checks_status(checks, failing),
            "service": name,
            "version": VERSION,
            "git_sha": f.git_sha,
            "build_time": "unknown",
            "uptime_seconds": round(f.uptime_seconds),
        }
        if checks:
            body["checks"] = [
                {
                    "name": check,
                    "status": "unhealthy" if check in failing else "healthy",
                    "latency_ms": 2.7,
                }
                for check in checks
            ]
            body["dependencies"] = {c: "down" if c in failing else "ok" for c in checks}
        body["timestamp"] = aware_iso()
        return body

    # --- websocket-ingestion --------------------------------------------------------------

    def _websocket_detailed(self) -> Json:
        f = self.figures
        body: dict[str, Json] = {
            "status": "healthy",
            "service": WEBSOCKET_INGESTION,
            "uptime": uptime_text(f.uptime_seconds),
            "timestamp": aware_iso(),
        }
        if not f.ws_initialized:
            body |= {
                "status": "degraded",
                "connection": {"status": "not_initialized"},
                "subscription": {"status": "not_initialized"},
            }
            return body
        # The first matching rule wins (WSI/health_check.py:228-249).
        if not f.ws_connected:
            status = "unhealthy"
        elif f.failed_connections > 5 or not f.ws_subscribed:
            status = "degraded"
        else:
            status = self._reported_status(WEBSOCKET_INGESTION)
        body["status"] = status
        body["connection"] = {
            "is_running": f.ws_connected,
            "connection_attempts": f.connection_attempts,
            "successful_connections": f.successful_connections,
            "failed_connections": f.failed_connections,
        }
        body["subscription"] = {
            "is_subscribed": f.ws_subscribed,
            "active_subscriptions": 1 if f.ws_subscribed else 0,
            "total_events_received": f.historical_events + f.session_events,
            "session_events_received": f.session_events,
            "historical_events_received": f.historical_events,
            "events_by_type": {"state_changed": f.session_events},
            "last_event_time": None if f.last_event_time is None else aware_iso(f.last_event_time),
            "event_rate_per_minute": f.events_per_minute or 0.0,
        }
        return body

    def _websocket_event_rate_r3(self) -> Json:
        f = self.figures
        body = self._websocket_event_rate()
        last = None if f.last_event_time is None else aware_iso(f.last_event_time)
        stats = body["processing_stats"]
        body["processing_stats"] = {"state": "running", **stats} | {
            "queue_maxsize": f.queue_maxsize,
            "last_processing_time": last,
        }
        body["connection_stats"] |= {
            "is_connected": f.ws_connected,
            "is_subscribed": f.ws_subscribed,
            "last_event_time": last,
        }
        body["timestamp"] = aware_iso()
        return body

    def _websocket_filter_stats(self) -> Json:
        f = self.figures
        if not f.filter_enabled:
            return {"enabled": False, "statistics": None, "message": "Entity filter not configured"}
        total = f.filtered_events + f.filter_passed_events
        return {
            "enabled": True,
            "statistics": {
                "filtered_count": f.filtered_events,
                "passed_count": f.filter_passed_events,
                "exception_count": 0,
                "total_processed": total,
                "filter_rate": f.filtered_events / total if total else 0.0,
                "uptime_seconds": f.uptime_seconds - 0.663497,
                "mode": "exclude",
                "patterns_count": 3,
                "exceptions_count": 1,
            },
            "message": None,
        }

    # --- data-api and data-retention ------------------------------------------------------

    def _data_api_detailed(self) -> Json:
        f = self.figures
        return {
            "status": "healthy",
            "service": DATA_API,
            "version": VERSION,
            "timestamp": naive_iso(),
            "uptime_seconds": f.uptime_seconds + 5.5,
            "metrics": {"total_requests": 2211, "failed_requests": 14, "error_rate_percent": 0.63},
            "dependencies": {
                "influxdb": {
                    "status": "connected",
                    "url": "http://influxdb:8086",
                    "query_count": f.data_api_query_count,
                    "avg_query_time_ms": f.data_api_avg_query_time_ms,
                    "success_rate": f.data_api_success_rate,
                }
            },
            "authentication": {"api_key_required": True},
        }

    async def _data_api_services(self, request: web.Request) -> web.Response:
        # data-api has a key of its own, which the integration is never given.
        if not request.headers.get("Authorization"):
            return self._admin_error(401, "Authentication required")
        return self._admin_error(401, "Invalid or expired credentials")

    def _data_retention_storage(self) -> Json:
        status = self._reported_status(DATA_RETENTION, self.figures.retention_status)
        return {
            "status": status,
            "timestamp": aware_iso(),
            "service_status": {
                "cleanup_service": True,
                "storage_monitor": True,
                "compression_service": True,
                "backup_service": True,
                "policy_count": 3,
            },
            "storage_metrics": None,
            "active_alerts": 0 if status == "healthy" else 1,
            "alerts": [],
        }

    def _retention_guarded(
        self, build: Callable[[], Json]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if self.retention_api_key is None:
                return web.json_response({"detail": "API key not configured"}, status=500)
            if request.headers.get("X-API-Key") != self.retention_api_key:
                return web.json_response({"detail": "Invalid API key"}, status=403)
            return web.json_response(build())

        return handle

    # --- admin-api ------------------------------------------------------------------------

    def _admin_routes(self) -> dict[str, Callable[[web.Request], Awaitable[web.Response]]]:
        json = self._json_route
        routes: dict[str, Callable[[web.Request], Awaitable[web.Response]]] = {
            "/": json(lambda: self._root("Home Assistant Ingestor Admin API")),
            "/health": json(lambda: self._standard_health(ADMIN_API)),
            "/api/health": json(
                lambda: {"status": "healthy", "timestamp": aware_iso(), "service": ADMIN_API}
            ),
            "/api/info": json(self._admin_info_r3),
            "/api/v1/health": self._admin_v1_health_r3,
            "/api/v1/health/services": self._admin_health_services_r3,
            "/api/v1/health/groups": self._admin_health_groups,
            "/api/v1/stats": self._admin_stats,
            "/api/v1/stats/services": self._admin_stats_services,
            ALERTS_ACTIVE: self._admin_alerts_active,
            ALERTS_COUNT: json(self._admin_alerts_count),
        }
        return {path: self._authenticated(path, handler) for path, handler in routes.items()}

    def _admin_info_r3(self) -> Json:
        body = self._admin_info()
        body["data"] |= {
            "authentication": {"api_key_required": True, "docs_enabled": False},
            "rate_limit": {
                "requests_per_minute": int(self.rate_per_minute),
                "burst": self.burst,
            },
        }
        body["data"]["cors_enabled"] = body["data"].pop("cors_enabled")
        body["timestamp"] = aware_iso()
        return body

    async def _admin_v1_health_r3(self, _request: web.Request) -> web.Response:
        timeout = self._timeout(_HEALTH_DEPENDENCY_TIMEOUT)
        checks = (
            ("InfluxDB", await self._probe_influxdb(timeout)),
            ("WebSocket Ingestion", await self._fetch(WEBSOCKET_INGESTION, "/health", timeout)),
            ("Data API", await self._fetch(DATA_API, "/health", timeout)),
        )
        dependencies: list[Json] = []
        for name, fetched in checks:
            entry: dict[str, Json] = {
                "name": name,
                "status": "healthy" if fetched.status == 200 else "unhealthy",
            }
            if fetched.status is None:
                entry["error"] = (
                    "" if (fetched.error or "").startswith("Timeout") else fetched.error
                )
            else:
                entry["response_time_ms"] = round(fetched.elapsed_ms, 2)
            entry["last_check"] = aware_iso()
            dependencies.append(entry)
        healthy = all(d["status"] == "healthy" for d in dependencies)
        uptime = self._admin_uptime()
        return web.json_response(
            {
                "status": "healthy" if healthy else "degraded",
                "service": ADMIN_API,
                "timestamp": aware_iso(),
                "uptime_seconds": uptime,
                "uptime_human": _human(uptime),
                "dependencies": dependencies,
                "security": {
                    "api_key_required": True,
                    "docs_enabled": False,
                    "rate_limit": {
                        "rate_per_minute": int(self.rate_per_minute),
                        "burst_size": self.burst,
                    },
                },
                "metrics": {"uptime_human": _human(uptime), "uptime_seconds": uptime},
            }
        )

    def _all_health_services(self) -> Iterable[tuple[str, str, int]]:
        for group, members in _R3_GROUPS.items():
            for name, port in members:
                yield group, name, port
        for name in self.deployed_elsewhere:
            yield "elsewhere", name, 0

    async def _probe_r3(self, name: str, port: int, limit: float) -> _Fetched:
        if name == "influxdb":
            return await self._probe_influxdb(limit)
        if name in self.services:
            return await self._fetch(name, "/health", limit)
        if name in _ALWAYS_THERE or name in self.deployed_elsewhere:
            return self._absent_but_healthy(name)
        return _Fetched(None, None, not_resolving(name, port), 0.0)

    async def _health_services_entries(self) -> dict[str, Json]:
        timeout = self._timeout(_HEALTH_SERVICES_TIMEOUT)
        result: dict[str, Json] = {}
        for _group, name, port in self._all_health_services():  # sequential, like R3
            fetched = await self._probe_r3(name, port, timeout)
            ok = fetched.status == 200 and fetched.error is None
            upstream = fetched.body if ok and isinstance(fetched.body, dict) else {}
            error = None
            if not ok:
                error = fetched.error or f"HTTP {fetched.status}"
                error = "Timeout" if error.startswith("Timeout") else error
            result[name] = {
                "name": name,
                "status": upstream.get("status", "healthy") if ok else "unhealthy",
                "last_check": naive_iso(),
                "response_time_ms": round(fetched.elapsed_ms, 1) if ok else None,
                "error_message": error,
                "status_detail": None,
                "credentials_configured": None,
                "success_rate": None,
            }
        return result

    async def _admin_health_services_r3(self, _request: web.Request) -> web.Response:
        return web.json_response(await self._health_services_entries())

    async def _admin_health_groups(self, _request: web.Request) -> web.Response:
        entries = await self._health_services_entries()
        groups: dict[str, Json] = {}
        for group, members in _R3_GROUPS.items():
            statuses = [entries[name]["status"] for name, _port in members]
            healthy = sum(s in {"healthy", "pass"} for s in statuses)
            degraded = sum(s == "degraded" for s in statuses)
            up = healthy + degraded
            if up == len(statuses):
                status = "degraded" if degraded else "healthy"
            else:
                status = "unhealthy" if up == 0 else "degraded"
            groups[group] = {
                "status": status,
                "healthy": healthy,
                "degraded": degraded,
                "unhealthy": len(statuses) - up,
                "total": len(statuses),
            }
        return web.json_response(
            {
                "groups": groups,
                "summary": {
                    "total_groups": len(groups),
                    "healthy_groups": sum(g["status"] == "healthy" for g in groups.values()),
                    "total_services": len(entries),
                    "timestamp": naive_iso(),
                },
            }
        )

    # The statistics fallback: the base `_admin_stats` over R3's list and transforms.

    def _stats_services(self) -> Sequence[str]:
        return _R3_STATS_SERVICES

    async def _service_stats(self, name: str) -> dict[str, Json]:
        if name == ADMIN_API:
            return self._generic_transform(name, self._standard_health(ADMIN_API))
        if name not in self.services:
            ports = {n: p for _g, n, p in self._all_health_services()} | {LOG_AGGREGATOR: 8015}
            port = ports[name]
            return _failed_stats(name, not_resolving(f"homeiq-{name}", port))
        websocket = name == WEBSOCKET_INGESTION
        fetched = await self._fetch(
            name,
            "/health/detailed" if websocket else "/health",
            self._timeout(_WEBSOCKET_STATS_TIMEOUT if websocket else _STATS_TIMEOUT),
        )
        if fetched.status is not None and fetched.status != 200:
            return _failed_stats(name, f"HTTP {fetched.status}")
        if fetched.error is not None:
            return _failed_stats(name, fetched.error)
        body = fetched.body if isinstance(fetched.body, dict) else {}
        return _websocket_transform(body) if websocket else self._generic_transform(name, body)

    # AlertManager alerts (ADM/alertmanager_webhook.py)

    def _live_alerts(self) -> list[Json]:
        now = self.clock()
        self._alerts = {
            key: (alert, seen)
            for key, (alert, seen) in self._alerts.items()
            if now - seen < ALERT_TTL
        }
        return [alert for alert, _seen in self._alerts.values()]

    async def _admin_webhook(self, request: web.Request) -> web.Response:
        payload = await request.json()
        firing = resolved = 0
        for raw in payload.get("alerts", []):
            labels = raw.get("labels", {})
            annotations = raw.get("annotations", {})
            fingerprint = raw.get("fingerprint", "")
            if raw.get("status") == "resolved":
                self._alerts.pop(fingerprint, None)
                resolved += 1
                continue
            firing += 1
            self._alerts[fingerprint] = (
                {
                    "fingerprint": fingerprint,
                    "alertname": labels.get("alertname", "unknown"),
                    "status": "firing",
                    "severity": labels.get("severity", "unknown"),
                    "service": labels.get("service", "unknown"),
                    "tier": labels.get("tier"),
                    "summary": annotations.get("summary", ""),
                    "description": annotations.get("description", ""),
                    "starts_at": raw.get("startsAt", ""),
                    "received_at": broken_zulu(self.wall_now()),
                    "labels": labels,
                },
                self.clock(),
            )
        return web.json_response(
            {
                "status": "ok",
                "processed": firing + resolved,
                "firing": firing,
                "resolved": resolved,
                "timestamp": broken_zulu(),
            }
        )

    async def _admin_alerts_active(self, request: web.Request) -> web.Response:
        severity = request.query.get("severity")
        alerts = [a for a in self._live_alerts() if severity is None or a["severity"] == severity]
        return web.json_response(alerts)

    def _admin_alerts_count(self) -> Json:
        alerts = self._live_alerts()
        by_severity: dict[str, int] = {}
        for alert in alerts:
            by_severity[alert["severity"]] = by_severity.get(alert["severity"], 0) + 1
        return {"total": len(alerts), "by_severity": by_severity, "timestamp": broken_zulu()}


def _checks_status(checks: Sequence[str], failing: set[str]) -> str:
    """StandardHealthCheck: unhealthy when all checks fail, degraded when some do."""
    if not failing:
        return "healthy"
    return "unhealthy" if len(failing) == len(checks) else "degraded"


async def get_json(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, Json]:
    """GET `url` and decode its JSON body (tests' one-liner)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=dict(headers or {})) as response,
    ):
        return response.status, await response.json(content_type=None)
