"""The HTTP exchanges of one refresh, as the client hands them to the merging.

Apart from the client (`services.py`) because they are the seam between asking and judging:
the client only fills them in, the merging (`reported.py`, `probed.py`, `assembly.py`) only
reads them, so the merging can be tested with hand-made replies and needs no aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING

from .service_payloads import normalize_service_health

if TYPE_CHECKING:
    from ..core.errors import IngestorError


@dataclass(frozen=True, slots=True)
class Reply:
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
        """Any HTTP status came back (not a connection failure, not an endpoint left out)."""
        return self.status is not None

    @property
    def ok(self) -> bool:
        """A success status with a body that could be read."""
        return self.status is not None and is_success(self.status) and self.body is not None

    @property
    def unreadable(self) -> bool:
        """A success status whose body is not JSON (truncated, HTML, empty)."""
        return self.status is not None and self.body is None and is_success(self.status)

    @property
    def failed(self) -> bool:
        """It answered, yet nothing usable: a server error, a redirect, an unreadable body.

        Not a refused key, a rate limit or a 404 (an endpoint this revision does not have).
        """
        if self.status is None or self.unreadable:
            return self.unreadable
        return self.status >= HTTPStatus.INTERNAL_SERVER_ERROR or (
            HTTPStatus.MULTIPLE_CHOICES <= self.status < HTTPStatus.BAD_REQUEST
        )

    @property
    def refused(self) -> bool:
        """The Admin API refused the key, or wants one (401, 403)."""
        return self.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)

    @property
    def rate_limited(self) -> bool:
        """R3's Admin API rate limiter said "slow down" (429)."""
        return self.status == HTTPStatus.TOO_MANY_REQUESTS


# An endpoint not asked this refresh (gone at the revision seen before).
NOT_ASKED = Reply(None)


@dataclass(frozen=True, slots=True)
class AdminReplies:
    """The Admin API's endpoints in one refresh; `rate_limited` while backing off a 429."""

    stats: Reply
    services: Reply
    health_services: Reply
    health: Reply
    info: Reply
    alerts: Reply = NOT_ASKED
    rate_limited: bool = False

    @property
    def listings(self) -> tuple[Reply, ...]:
        """The replies that together list the whole stack (R3 has no `/api/v1/services`)."""
        if self.services is NOT_ASKED:
            return (self.stats, self.health_services)
        return (self.services, self.stats, self.health_services)


@dataclass(frozen=True, slots=True)
class ServiceReplies:
    """One service's endpoints in one refresh, asked directly.

    `extra` is websocket-ingestion's event rate or the R1 enrichment pipeline's statistics.
    """

    name: str
    health: Reply
    extra: Reply | None = None
    # R3: websocket `/health/detailed` and `/api/v1/filter/stats`, data-retention's stats.
    detailed: Reply | None = None
    more: Reply | None = None

    @property
    def r3(self) -> bool:
        """R3 answered: it was asked R3's endpoints, or `/health` has R3's standard shape."""
        return self.detailed is not None or (
            self.health.answered and normalize_service_health(self.health.body).standard
        )


def is_success(status: int) -> bool:
    """A 2xx or 3xx status."""
    return HTTPStatus.OK <= status < HTTPStatus.BAD_REQUEST
