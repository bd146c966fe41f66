"""Typed errors of the api package.

Every failure of a source surfaces as one of these, never as a library's own exception,
so the Home Assistant layer can map them in one place. Messages never contain secrets.
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from typing import TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from collections.abc import Iterable

# Server or library text quoted in a message is cut here (one line, bounded).
MAX_QUOTED = 200
# HTTP statuses of a server (or its proxy) that is there but cannot answer now: rate limited,
# starting, overloaded. A connection error for every client, so the fallback takes over.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


class Origin(StrEnum):
    """Which side failed."""

    INFLUXDB = "influxdb"
    SERVICES = "services"


class IngestorError(Exception):
    """Base class: something a source did or did not answer."""

    def __init__(self, message: str, *, origin: Origin) -> None:
        """Keep the origin so callers can tell InfluxDB from the services."""
        super().__init__(message)
        self.origin = origin


class IngestorConnectionError(IngestorError):
    """The server could not be reached (refused, DNS, reset)."""


class IngestorTimeoutError(IngestorConnectionError):
    """The server did not answer in time."""


class IngestorSSLError(IngestorConnectionError):
    """TLS failed (certificate, handshake)."""


class IngestorAuthenticationError(IngestorError):
    """Credentials were refused (401/403)."""


class IngestorNotFoundError(IngestorError):
    """The bucket, database or organization does not exist (or is not visible)."""


class IngestorResponseError(IngestorError):
    """The server answered something we cannot read."""


class InvalidNameError(ValueError):
    """A bucket, database, org or measurement name that cannot be used safely."""


class InvalidURLError(ValueError):
    """An address that is not http(s)://host[:port][/path] (`core/urls.http_url`)."""


def quote(text: str, secrets: Iterable[str] = ()) -> str:
    """Server or library text, safe to show: secrets masked, one line, bounded."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def error_for_exception(
    err: BaseException,
    *,
    where: str,
    origin: Origin,
    timeout: float | None = None,
    secrets: Iterable[str] = (),
) -> IngestorError:
    """The typed error of a failed HTTP exchange, for every client of this package.

    `where` names the other side ("InfluxDB at host:8086", "Admin API /api/info"); the
    library's text is quoted with `secrets` masked. Order matters: aiohttp's timeout and TLS
    errors are connection errors too. An answer that broke off or cannot be read is a
    response error; anything that never got an answer is a connection error.
    """
    if isinstance(err, IngestorError):
        return err
    kind = type(err).__name__
    text = quote(str(err), secrets)
    reason = f"{kind}: {text}" if text else kind
    if isinstance(err, TimeoutError):
        within = "in time" if timeout is None else f"within {timeout:g} s"
        return IngestorTimeoutError(f"{where}: no answer {within}", origin=origin)
    if isinstance(err, (aiohttp.ClientSSLError, ssl.SSLError)):
        return IngestorSSLError(f"{where}: TLS failed ({reason})", origin=origin)
    if isinstance(err, aiohttp.ClientConnectorDNSError):
        return IngestorConnectionError(
            f"{where}: cannot resolve the host ({reason})", origin=origin
        )
    if isinstance(err, (aiohttp.ClientConnectionError, aiohttp.InvalidURL, OSError)):
        return IngestorConnectionError(f"{where}: cannot connect ({reason})", origin=origin)
    return IngestorResponseError(f"{where}: unreadable answer ({reason})", origin=origin)
