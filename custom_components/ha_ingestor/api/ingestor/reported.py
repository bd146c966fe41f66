"""What the Admin API reported of the stack, and of itself, merged from its endpoints.

Apart from the client because it only judges replies already fetched (no I/O), and apart from
what the services said directly (`probed.py`) because the Admin API's view is second-hand:
its listings, stats entries and health checks are merged in rising order of trust, and a
direct probe overrides all of them (`assembly.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..core.bounded import AnswerNotReadError
from ..core.errors import IngestorConnectionError, IngestorResponseError, Origin
from ..core.models import Revision, ServiceState, ServiceStatus
from .admin_payloads import (
    AdminServiceEntry,
    AdminStats,
    ListedService,
    StatsShape,
    is_admin_api_info,
    normalize_admin_health,
    normalize_admin_stats,
    normalize_health_services,
    normalize_services_list,
)
from .stack import ADMIN_API, DATA_API, ENRICHMENT_PIPELINE, WEBSOCKET_INGESTION

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..core.errors import IngestorError
    from .replies import AdminReplies, ServiceReplies

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
# R1 `/api/v1/health` names dependencies for display.
_DISPLAY_NAMES = {
    "InfluxDB": "influxdb",
    "WebSocket Ingestion": WEBSOCKET_INGESTION,
    "Enrichment Pipeline": ENRICHMENT_PIPELINE,
}


@dataclass(slots=True)
class Reported:
    """The Admin API's view of the stack, merged from its four endpoints."""

    states: list[ServiceState] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    stats: AdminStats = field(default_factory=lambda: AdminStats(shape=StatsShape.UNKNOWN))
    admin_answered: bool = False
    usable: bool = False
    revision: Revision | None = None

    @property
    def names(self) -> list[str]:
        """The services reported, each once, in the order first reported."""
        return list(dict.fromkeys(s.name for s in self.states))

    @property
    def error_rate(self) -> float | None:
        """The write error rate of the InfluxDB-path `/api/v1/stats` shape, in percent."""
        return self.stats.error_rate

    @property
    def influx_entries(self) -> tuple[AdminServiceEntry, ...]:
        """The InfluxDB-path shape's per-service rows (success rate, processing time)."""
        if self.stats.shape is StatsShape.INFLUXDB:
            return self.stats.services
        return ()

    def entry(self, name: str) -> AdminServiceEntry | None:
        """The `/api/v1/stats` entry of `name`, if it has one."""
        return next((e for e in self.stats.services if e.name == name), None)


def read_reported(admin: AdminReplies | None) -> Reported:
    """The Admin API's view from its replies; an empty one without an Admin API."""
    reported = Reported()
    if admin is None:
        return reported
    replies = (admin.stats, admin.services, admin.health_services, admin.health, admin.info)
    reported.admin_answered = any(r.answered and not r.refused for r in replies)
    listed: list[ListedService] = []
    if admin.services.ok:
        services = normalize_services_list(admin.services.body)
        listed.extend(services)
        reported.ports = {s.name: s.port for s in services if s.port is not None}
        reported.usable |= bool(services)
    if admin.stats.ok:
        reported.stats = normalize_admin_stats(admin.stats.body)
        reported.usable |= reported.stats.shape is not StatsShape.UNKNOWN
    if admin.health_services.ok:
        health = normalize_health_services(admin.health_services.body)
        reported.usable |= bool(health)
    else:
        health = ()
    reported.usable |= admin.info.ok and is_admin_api_info(admin.info.body)
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
            for d in normalize_admin_health(admin.health.body)
            if d.name in _DISPLAY_NAMES
        )
    reported.states = _reported_states(reported.stats, listed, health)
    return reported


def _reported_states(
    stats: AdminStats,
    listed: Iterable[ListedService],
    health: Iterable[ListedService],
) -> list[ServiceState]:
    """Service states in rising order of trust: services list, stats entries, health checks."""
    states = [_listed_state(item) for item in listed if not _not_deployed(item)]
    if stats.shape is not StatsShape.INFLUXDB:  # service_metrics rows say nothing
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


def _not_deployed(entry: AdminServiceEntry | ListedService) -> bool:
    return entry.status is ServiceStatus.UNHEALTHY and any(
        m in (entry.message or "") for m in _NOT_DEPLOYED
    )


def _listed_state(item: ListedService) -> ServiceState:
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


def admin_api_error(admin: AdminReplies | None) -> IngestorError | None:
    """The Admin API failure worth reporting: a refused key first, then no answer at all.

    Then an answer left unread (a redirect, too large) when nothing was read at all: it says
    more than "nothing usable" (and the config flow tells a redirect apart).
    """
    if admin is None:
        return None
    replies = (admin.stats, admin.info, admin.services, admin.health_services, admin.health)
    refused = next((r.error for r in replies if r.refused), None)
    if refused is not None:
        return refused
    if not any(r.answered for r in replies):
        return admin.info.error or admin.stats.error
    if not any(r.ok for r in replies):
        return next((r.error for r in replies if isinstance(r.error, AnswerNotReadError)), None)
    return None


def raise_without_source(
    admin: AdminReplies | None,
    reported: Reported,
    admin_error: IngestorError | None,
    direct: list[ServiceReplies],
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


def admin_state(
    admin: AdminReplies,
    reported: Reported,
    error: IngestorError | None,
    *,
    version: str | None,
) -> ServiceState:
    """The Admin API's own state: its answers, its stats entry and any failure to tell."""
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
    # A 500 or a redirect is no sign of health either (it once left the Admin API "healthy").
    if failed := [r for r in replies if r.failed]:
        readable = any(r.ok for r in replies)
        status = ServiceStatus.DEGRADED if readable else ServiceStatus.UNHEALTHY
        more = len(failed) - 1
        message = str(failed[0].error) + (f" (and {more} more)" if more else "")
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


def admin_events_per_minute(entry: AdminServiceEntry | None) -> float | None:
    """The Admin API's websocket rate, where its 0 for "not computed yet" means unknown."""
    if entry is None or entry.events_per_minute is None:
        return None
    if entry.events_per_minute == 0 and not entry.total_events_received:
        return None
    return entry.events_per_minute
