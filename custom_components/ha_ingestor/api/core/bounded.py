"""Reading an HTTP answer within bounds: a size cap, no redirect, JSON that cannot blow up.

Every client of this package reads its bodies here, because a monitored server is not trusted
to be sane: an endless stream or a body of hundreds of MB stops at the cap with a typed error
(never a MemoryError), and a redirect is never followed (`allow_redirects=False` on every
request), so a token or API key is only ever sent to the host the user configured. The time
bound is the request's `aiohttp.ClientTimeout(total=...)`, which covers reading the body too.
docs/architecture.md#hostile-servers
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from yarl import URL

from .errors import IngestorResponseError, quote

if TYPE_CHECKING:
    import aiohttp

    from .errors import Origin

MIB: Final = 1024 * 1024
# The largest legitimate InfluxDB answer seen: the 10M-event benchmark's full recount,
# 680 KiB. 16 MiB leaves room for years of series and still bounds memory.
INFLUXDB_CAP: Final = 16 * MIB
# An Admin API or service payload is a few KiB (a stack of a dozen services).
SERVICES_CAP: Final = 1 * MIB
# What `json.loads` raises on text that is not JSON, and on nesting deeper than the
# interpreter's recursion limit (a "JSON bomb" of `[[[[...`): both mean "not readable".
JSON_ERRORS: Final = (ValueError, RecursionError)
_CHUNK: Final = 64 * 1024


class AnswerNotReadError(IngestorResponseError):
    """The server answered, but its body was left unread: a redirect, or more than the cap."""


class RedirectNotFollowedError(AnswerNotReadError):
    """The server redirected: the user has to configure the address it redirects to."""


async def read_bounded(
    response: aiohttp.ClientResponse, *, cap: int, where: str, origin: Origin
) -> bytes:
    """The body of `response`, at most `cap` bytes after decompression.

    Raises:
        AnswerNotReadError: a redirect (not followed), or an answer larger than `cap`.

    """
    if 300 <= response.status < 400:  # noqa: PLR2004
        raise redirect_error(response, where, origin)
    length = _declared_length(response)
    if length is not None and length > cap:
        raise _too_large(response, cap, where, origin)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > cap:
            raise _too_large(response, cap, where, origin)
    return bytes(body)


def _declared_length(response: aiohttp.ClientResponse) -> int | None:
    # From the header, not `content_length`: test doubles of a response often lack it.
    try:
        return int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None


def _too_large(
    response: aiohttp.ClientResponse, cap: int, where: str, origin: Origin
) -> AnswerNotReadError:
    # The rest is never read: the connection is dropped instead of returned to the pool.
    response.close()
    return AnswerNotReadError(
        f"{where}: answer larger than {cap / MIB:g} MiB, not read", origin=origin
    )


def redirect_error(
    response: aiohttp.ClientResponse, where: str, origin: Origin
) -> RedirectNotFollowedError:
    """The error of a 3xx answer, its connection dropped (every client: no redirect followed)."""
    # Only the target's origin is named: its path or query could carry anything.
    target = "another address"
    if location := response.headers.get("Location"):
        try:
            joined = response.url.join(URL(location))
            if joined.absolute and joined.host:
                target = quote(str(joined.origin()))
        except ValueError:
            pass
    response.close()
    return RedirectNotFollowedError(
        f"{where}: redirected (HTTP {response.status}) to {target}; redirects are not "
        "followed, so credentials stay with the configured host: configure the address "
        "it redirects to",
        origin=origin,
    )
