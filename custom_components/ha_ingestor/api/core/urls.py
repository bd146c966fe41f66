"""The one address rule of every source: InfluxDB, the Admin API and each service."""

from __future__ import annotations

from yarl import URL

from .errors import InvalidURLError


def http_url(url: str, path: str = "", *, what: str = "The address") -> URL:
    """`url` with `path` appended, if it is http(s)://host[:port][/path].

    A path is kept (a server behind a reverse proxy's prefix), user info is dropped
    (credentials travel in headers only). A query string or fragment is refused: every
    client sends its own parameters, so one would be kept by one request and lost by the next.
    `what` names the address in the error.

    Raises:
        InvalidURLError: anything else, before a request is ever sent.

    """
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as err:
        msg = f"{what} is not a URL"
        raise InvalidURLError(msg) from err
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        msg = f"{what} must look like http(s)://host[:port][/path]"
        raise InvalidURLError(msg)
    # The raw text: `http://h/?` has an empty query string yet still a query.
    if "?" in url or "#" in url:
        msg = f"{what} must not have a query string or fragment"
        raise InvalidURLError(msg)
    base = parsed.with_user(None)
    return base.with_path(base.raw_path.rstrip("/") + path, encoded=True)


def is_http_url(url: str) -> bool:
    """Whether `url` keeps the rule of `http_url`."""
    try:
        http_url(url)
    except InvalidURLError:
        return False
    return True
