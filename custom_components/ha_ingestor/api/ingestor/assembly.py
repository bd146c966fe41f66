"""One `ServicesResult` per refresh: the Admin API's reports and the direct probes merged.

Apart from the client (`services.py`) so that the client only asks and this only merges, with
no I/O: one `ServiceState` per service, the Admin API's reports overridden by what a service
said itself (`reported.py`, `probed.py`), and the figures taken from whichever knows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..core.aggregate import first_known
from ..core.models import (
    EventStatistics,
    FiringAlert,
    IngestionFigures,
    ProcessingMetrics,
    Revision,
    ServiceState,
    ServiceStatus,
)
from .admin_payloads import ApiInfo, normalize_api_info
from .probed import Figures, direct_state
from .reported import (
    Reported,
    admin_api_error,
    admin_events_per_minute,
    admin_state,
    raise_without_source,
)
from .stack import ADMIN_API, WEBSOCKET_INGESTION

if TYPE_CHECKING:
    from ..core.errors import IngestorError
    from .alert_memory import AlertMemory
    from .replies import AdminReplies, ServiceReplies


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


def assemble(
    admin: AdminReplies | None,
    reported: Reported,
    direct: list[ServiceReplies],
    alerts: AlertMemory,
    now: datetime | None = None,
) -> ServicesResult:
    """Merge one refresh's replies; `alerts` ages the firing alerts at `now` (or the clock).

    Raises:
        IngestorError: no service answered directly and no Admin API answer makes up for
            it (`raise_without_source`).

    """
    states: dict[str, ServiceState] = {}
    for state in reported.states:
        _merge_into(states, state)
    figures = Figures()
    for replies in direct:
        _merge_into(states, direct_state(replies), direct=True)
        figures.read(replies)

    admin_error = admin_api_error(admin)
    admin_connected = None if admin is None else reported.admin_answered
    info = ApiInfo()
    if admin is not None:
        info = normalize_api_info(admin.info.body) if admin.info.ok else info
        states[ADMIN_API] = _merge(
            states.get(ADMIN_API),
            admin_state(admin, reported, admin_error, version=info.version),
            direct=True,
        )
        if info.r3:
            reported.revision = Revision.R3
    if not any(r.health.answered for r in direct):
        raise_without_source(admin, reported, admin_error, direct)
    ws_entry = reported.entry(WEBSOCKET_INGESTION)
    events = EventStatistics(
        # The websocket's own page omits the rate before it exists; the Admin API's copy
        # turns that into 0, so it is read only when the websocket was not asked.
        events_per_minute=figures.events_per_minute
        if figures.websocket_answered
        else admin_events_per_minute(ws_entry),
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
        firing_alerts=alerts.update(
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
