"""What each service said when asked directly: its state and the figures it reported.

Apart from the client because it only judges replies already fetched (no I/O), and apart from
the Admin API's reports (`reported.py`) because a direct probe is first-hand: its state wins
over any report (`assembly.py`), and only the services' own pages carry the event, processing
and ingestion figures, and tell the revision apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import TYPE_CHECKING

from ..core.aggregate import first_known
from ..core.bounded import AnswerNotReadError
from ..core.models import IngestionFigures, Revision, ServiceState, ServiceStatus
from .parse import parse_text
from .service_payloads import (
    FilterStats,
    ProcessingFigures,
    normalize_enrichment_stats,
    normalize_event_rate,
    normalize_filter_stats,
    normalize_service_health,
    normalize_websocket_detailed,
    normalize_websocket_health,
)
from .stack import DATA_API, DATA_RETENTION, ENRICHMENT_PIPELINE, WEBSOCKET_INGESTION

if TYPE_CHECKING:
    from datetime import datetime

    from .replies import ServiceReplies

_RETENTION_NOT_CONFIGURED = "API key not configured"


def direct_state(replies: ServiceReplies) -> ServiceState:
    """The service's state from its `/health`, with what R3 moved or added."""
    return _r3_state(replies, _health_state(replies))


def _r3_state(replies: ServiceReplies, state: ServiceState) -> ServiceState:
    """R3: websocket health from `/health/detailed` (its `/health` is a stub).

    data-retention's statistics refused for want of a key are "not configured", not a failure.
    """
    detailed, more = replies.detailed, replies.more
    if detailed is not None and detailed.ok and isinstance(detailed.body, dict):
        health = normalize_websocket_detailed(detailed.body).health
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
        and parse_text(_detail(more.body)) == _RETENTION_NOT_CONFIGURED
    ):
        note = f"statistics not configured ({_RETENTION_NOT_CONFIGURED})"
        return replace(state, message=f"{state.message}; {note}" if state.message else note)
    return state


def _detail(body: object) -> object:
    return body.get("detail") if isinstance(body, dict) else None


def _health_state(replies: ServiceReplies) -> ServiceState:
    reply = replies.health
    if not reply.answered:
        return ServiceState(
            name=replies.name,
            status=ServiceStatus.UNHEALTHY,
            reachable=False,
            message=str(reply.error) if reply.error is not None else None,
        )
    health = normalize_service_health(reply.body)
    status = health.status
    message = health.message
    server_error = reply.status is not None and reply.status >= HTTPStatus.INTERNAL_SERVER_ERROR
    if isinstance(reply.error, AnswerNotReadError):
        # A redirect or an oversized body: the reason is the useful part.
        status = ServiceStatus.UNHEALTHY
        message = str(reply.error)
    elif reply.body is None:
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
class Figures:
    """Event and processing figures gathered from the direct replies."""

    events_per_minute: float | None = None
    last_event: datetime | None = None
    error_rate: float | None = None
    success_rate: float | None = None
    processing_time_ms: float | None = None
    revision: Revision | None = None
    websocket_answered: bool = False
    ingestion: IngestionFigures = field(default_factory=IngestionFigures)
    _r2_figures: ProcessingFigures | None = None
    _r1_figures: ProcessingFigures | None = None

    def read(self, replies: ServiceReplies) -> None:
        """Add one service's figures, and the revision they show, to those read before."""
        if replies.name == WEBSOCKET_INGESTION:
            self._read_websocket(replies)
        elif replies.name == ENRICHMENT_PIPELINE and replies.extra is not None:
            if replies.extra.ok:
                self._r1_figures = normalize_enrichment_stats(replies.extra.body)
                self.revision = self.revision or Revision.R1
        elif replies.name == DATA_API and replies.health.answered:
            newer = Revision.R3 if replies.r3 else Revision.R2
            self.revision = newer if self.revision in (None, Revision.R2) else self.revision
        self._combine()

    def _read_websocket(self, replies: ServiceReplies) -> None:
        # R3's `/health` is a stub: its figures are in `/health/detailed`.
        page = replies.detailed if replies.detailed is not None else replies.health
        received: int | None = None
        if page.answered:
            self.websocket_answered = True
            ws = normalize_websocket_health(page.body)
            self.events_per_minute = ws.events_per_minute
            self.last_event = ws.last_event
            received = ws.state_changed_received
        extra = replies.extra
        if extra is not None and extra.ok:
            self._r2_figures = normalize_event_rate(extra.body)
            self.revision = Revision.R3 if replies.r3 else Revision.R2
        elif extra is not None and extra.status == HTTPStatus.NOT_FOUND:
            # /api/v1/event-rate exists from R2 on (docs/ingestor-contracts.md#telling-r1-from-r2).
            self.revision = Revision.R1
        if replies.r3:
            self.revision = Revision.R3
            self._read_ingestion(replies)
        # The delivery funnel's running totals (api/core/funnel.py), whatever the revision.
        rate = self._r2_figures if extra is not None and extra.ok else None
        self.ingestion = replace(
            self.ingestion,
            events_received=received,
            events_processed=rate.processed_events if rate is not None else None,
            events_failed=rate.failed_events if rate is not None else None,
        )

    def _read_ingestion(self, replies: ServiceReplies) -> None:
        queue = self._r2_figures
        filtered = FilterStats()
        if replies.more is not None and replies.more.ok:
            filtered = normalize_filter_stats(replies.more.body)
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
