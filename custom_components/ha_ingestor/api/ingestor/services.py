"""Client of the ingestor's own HTTP APIs: the Admin API and each service's endpoints.

Every endpoint is called in parallel with its own timeout (the Admin API's aggregate
`/api/v1/stats` is sequential upstream and slow, so the services are asked directly too:
docs/ingestor-contracts.md#quirk-sequential-stats). One failing service never fails the
fetch: it becomes an unreachable, unhealthy `ServiceState` with a message.

This module only asks (HTTP, timeouts, R3's rate-limit back-off, which URLs to ask): what the
replies mean is judged without I/O in `reported.py`, `probed.py` and `assembly.py`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import replace
from http import HTTPStatus
from typing import TYPE_CHECKING

import aiohttp
from yarl import URL

from ..core.bounded import JSON_ERRORS, SERVICES_CAP, AnswerNotReadError, read_bounded
from ..core.errors import (
    IngestorAuthenticationError,
    IngestorError,
    IngestorResponseError,
    Origin,
    error_for_exception,
)
from ..core.models import Revision
from .admin_payloads import ApiInfo, is_admin_api_info, normalize_api_info
from .alert_memory import AlertMemory
from .assembly import ServicesResult, assemble
from .replies import NOT_ASKED, AdminReplies, Reply, ServiceReplies, is_success
from .reported import Reported, read_reported
from .stack import (
    DATA_RETENTION,
    DEFAULT_PORTS,
    ENRICHMENT_PIPELINE,
    NOT_DERIVED,
    WEBSOCKET_INGESTION,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping
    from datetime import datetime

    from ..core.models import Period

# The Admin API's `/api/v1/stats` asks its 13 upstream services one after another:
# docs/ingestor-contracts.md#quirk-sequential-stats.
STATS_TIMEOUT = 30.0

# R3 Admin API paths its rate limiter does not count (60 a minute per client address).
_RATE_LIMIT_EXEMPT = frozenset({"/health", "/api/health", "/api/v1/health"})
# How long to leave the rate-limited paths alone after a 429 without `Retry-After`.
_DEFAULT_BACKOFF = 60.0
_MAX_BACKOFF = 600.0
ALERTS_ACTIVE = "/api/alerts/active"


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
        self._last_good: dict[str, Reply] = {}
        self._alerts = AlertMemory()

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
    ) -> Reply:
        """GET and decode JSON; every failure becomes a typed error in the reply."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if auth and self._api_key else {}
        timeout = limit or self._timeout
        started = time.monotonic()
        try:
            async with self._session.get(
                url, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                retry_after = _seconds(resp.headers.get("Retry-After"))
                try:
                    raw = await read_bounded(
                        resp, cap=SERVICES_CAP, where=what, origin=Origin.SERVICES
                    )
                except AnswerNotReadError as err:
                    # It answered (a redirect, too much): judged like an unreadable body.
                    return Reply(status, error=err, elapsed_ms=_since(started))
        except (aiohttp.ClientError, OSError) as err:
            return Reply(
                None,
                error=error_for_exception(
                    err,
                    where=what,
                    origin=Origin.SERVICES,
                    timeout=timeout.total,
                    secrets=(self._api_key,) if self._api_key else (),
                ),
            )
        elapsed = _since(started)
        try:
            body: object = json.loads(raw)
        except JSON_ERRORS:
            body = None
        error: IngestorError | None = None
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            error = IngestorAuthenticationError(
                f"{what}: the Admin API refused the API key (HTTP {status})"
                if self._api_key
                else f"{what}: the Admin API needs an API key (HTTP {status})",
                origin=Origin.SERVICES,
            )
        elif not is_success(status):
            error = IngestorResponseError(f"{what}: HTTP {status}", origin=Origin.SERVICES)
        elif body is None:
            # An answer that cannot be read says nothing about health.
            error = IngestorResponseError(
                f"{what}: HTTP {status} with an unreadable body", origin=Origin.SERVICES
            )
        return Reply(status, body, error, elapsed, retry_after)

    async def _admin_get(
        self, admin: str, path: str, limit: aiohttp.ClientTimeout | None = None
    ) -> Reply:
        """One Admin API call; R3's 429 backs off and keeps the path's last good reply."""
        key = path.partition("?")[0]
        limited = key not in _RATE_LIMIT_EXEMPT
        if limited and time.monotonic() < self._backoff_until:
            return self._last_good.get(key, Reply(HTTPStatus.TOO_MANY_REQUESTS))
        reply = await self._get(f"{admin}{path}", f"Admin API {path}", auth=True, limit=limit)
        if reply.rate_limited:
            self._backoff_until = time.monotonic() + _retry_after(reply)
            return self._last_good.get(key, reply)
        if reply.ok and limited:
            self._last_good[key] = reply
        return reply

    async def _fetch_admin(self, period: Period) -> AdminReplies | None:
        if (admin := self._admin) is None:
            return None
        was_backing_off = time.monotonic() < self._backoff_until
        # R3 moved `/api/v1/services` to data-api (404, yet rate-limited) and added the
        # AlertManager alerts: asked once a refresh has seen R3.
        r3 = self._revision is Revision.R3

        async def unless(gone: bool, path: str) -> Reply:  # noqa: FBT001
            return NOT_ASKED if gone else await self._admin_get(admin, path)

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
        return AdminReplies(
            stats,
            services,
            health_services,
            health,
            info,
            alerts,
            rate_limited=was_backing_off or time.monotonic() < self._backoff_until,
        )

    async def _fetch_service(self, name: str, url: str) -> ServiceReplies:
        health = self._get(f"{url}/health", name)
        extra: Awaitable[Reply] | None = None
        if name == WEBSOCKET_INGESTION:
            extra = self._get(f"{url}/api/v1/event-rate", name)
        elif name == ENRICHMENT_PIPELINE:
            extra = self._get(f"{url}/api/v1/stats", name)
        if extra is None:
            replies = ServiceReplies(name, await health)
        else:
            health_reply, extra_reply = await asyncio.gather(health, extra)
            replies = ServiceReplies(name, health_reply, extra_reply)
        return await self._fetch_r3(replies, url)

    async def _fetch_r3(self, replies: ServiceReplies, url: str) -> ServiceReplies:
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

    async def _fetch_services(self, urls: Mapping[str, str]) -> list[ServiceReplies]:
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
        reported = read_reported(admin)
        derived: dict[str, str] = {}
        if reported.admin_answered:
            derived = self._derive_urls(reported)
            self._derived = derived
            missing = {name: url for name, url in derived.items() if name not in known}
            if missing:
                direct += await self._fetch_services(missing)
        # Derived URLs count only while the Admin API reports their services.
        direct = [r for r in direct if r.name in self._service_urls or r.name in derived]
        result = assemble(admin, reported, direct, self._alerts, now)
        self._revision = result.revision or self._revision
        return result

    async def async_validate(self) -> ApiInfo:
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
            return ApiInfo()
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
        if not info.ok or not is_admin_api_info(info.body):
            msg = f"{admin} does not answer like an HA Ingestor Admin API (/api/info)"
            raise IngestorResponseError(msg, origin=Origin.SERVICES)
        return normalize_api_info(info.body)

    # --- Derived URLs -------------------------------------------------------------------------

    def _derive_urls(self, reported: Reported) -> dict[str, str]:
        """URLs on the Admin API's host for the services it reports, when the user gave none."""
        if self._admin is None or self._service_urls:
            return {}
        admin = URL(self._admin)
        urls: dict[str, str] = {}
        for name in reported.names:
            if name in NOT_DERIVED:
                continue
            port = reported.ports.get(name) or DEFAULT_PORTS.get(name)
            if port is None or admin.host is None:
                continue
            urls[name] = str(URL.build(scheme=admin.scheme, host=admin.host, port=port))
        return urls


def _seconds(value: str | None) -> float | None:
    # A hostile `Retry-After: nan` would make every back-off comparison false.
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _since(started: float) -> float:
    """Milliseconds since `started` (`time.monotonic`)."""
    return (time.monotonic() - started) * 1000


def _retry_after(reply: Reply) -> float:
    """Seconds to leave the rate-limited paths alone: the server's `Retry-After`, bounded."""
    if reply.retry_after is None:
        return _DEFAULT_BACKOFF
    return min(max(reply.retry_after, 1.0), _MAX_BACKOFF)
