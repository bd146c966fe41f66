"""The Flux and InfluxQL backends agree where a user cannot tell them apart.

One address rule (`influx_url`, which the config flow applies too) and one meaning of every
HTTP status: the choice of query language must not change which addresses work or whether a
refused request counts as an outage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from custom_components.ha_ingestor.api.core.errors import IngestorConnectionError, InvalidURLError
from custom_components.ha_ingestor.api.core.models import Period, TrendWindow
from custom_components.ha_ingestor.api.influx.flux import FluxBackend
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from tests.api.test_influxql import NOW
from tests.support.loopback import json_answer

if TYPE_CHECKING:
    import aiohttp

    from custom_components.ha_ingestor.api.influx.backend import InfluxBackend
    from tests.support.loopback import Loopback

TOKEN = "agreement-token"


def _backends(session: aiohttp.ClientSession, url: str) -> dict[str, InfluxBackend]:
    return {
        "flux": FluxBackend(session, url, TOKEN, "org", "bucket", timeout=5),
        "influxql": InfluxQLBackend(session, url, "bucket", token=TOKEN, timeout=5),
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://influx.local:8086/?org=other",
        "http://influx.local:8086?db=other",
        "http://influx.local:8086/?",
        "http://influx.local:8086/#frag",
        "influx.local:8086",
        "ftp://influx.local",
        "http://",
        "http://[::1",
    ],
)
async def test_both_backends_refuse_the_same_addresses(
    session: aiohttp.ClientSession, url: str
) -> None:
    with pytest.raises(InvalidURLError):
        FluxBackend(session, url, TOKEN, "org", "bucket")
    with pytest.raises(InvalidURLError):
        InfluxQLBackend(session, url, "bucket", token=TOKEN)


@pytest.mark.parametrize("suffix", ["", "/", "/proxy/influx", "/proxy/influx/"])
async def test_both_backends_keep_a_path_prefix_and_drop_user_info(
    loopback: Loopback, session: aiohttp.ClientSession, suffix: str
) -> None:
    loopback.handler = json_answer({"code": "invalid", "message": "stop here"}, status=400)
    url = loopback.url.replace("http://", "http://user:pass@") + suffix
    prefix = suffix.rstrip("/")
    for backend in _backends(session, url).values():
        with pytest.raises(Exception):  # noqa: B017, PT011 - only the request matters here
            await backend.async_validate()
    flux, influxql = loopback.requests
    assert (flux.path, set(flux.query)) == (f"{prefix}/api/v2/query", {"org"})
    assert (influxql.path, set(influxql.query)) == (f"{prefix}/query", {"db", "epoch", "chunked"})
    assert "Basic" not in flux.headers["Authorization"] + influxql.headers["Authorization"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 418, 429, 500, 502, 503, 504])
async def test_both_backends_give_every_status_one_meaning(
    loopback: Loopback, session: aiohttp.ClientSession, status: int
) -> None:
    loopback.handler = json_answer({"code": "x", "message": "boom", "error": "boom"}, status=status)
    kinds = {}
    for name, backend in _backends(session, loopback.url).items():
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the kind is compared below
            await backend.async_fetch(Period.HOUR_1, TrendWindow.MINUTES_5, NOW)
        kinds[name] = type(caught.value)
    assert kinds["flux"] is kinds["influxql"], kinds
    # 429: rate limited is "not available now" (the fallback answers), for both.
    assert issubclass(kinds["flux"], IngestorConnectionError) is (status in {429, 502, 503, 504})
