"""Typed errors of the api package.

Every failure of a source surfaces as one of these, never as a library's own exception,
so the Home Assistant layer can map them in one place. Messages never contain secrets.
"""

from __future__ import annotations

from enum import StrEnum


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
