"""One mapping of failed HTTP exchanges for every client: same failure, same kind of error."""

from __future__ import annotations

import aiohttp
import pytest

from custom_components.ha_ingestor.api.core.errors import (
    MAX_QUOTED,
    IngestorConnectionError,
    IngestorError,
    IngestorResponseError,
    IngestorSSLError,
    IngestorTimeoutError,
    Origin,
    error_for_exception,
    quote,
)
from custom_components.ha_ingestor.api.core.models import Period
from custom_components.ha_ingestor.api.influx.flux import FluxBackend
from custom_components.ha_ingestor.api.influx.influxql import InfluxQLBackend
from custom_components.ha_ingestor.api.ingestor.services import ServicesClient
from tests.support.influxdb_server import free_port

SECRET = "hunter2-secret-token"


def test_quote_masks_flattens_and_bounds() -> None:
    assert quote(f"a {SECRET}\n  b", [SECRET]) == "a *** b"
    assert quote("x" * 1000).endswith("…")
    assert len(quote("x" * 1000)) == MAX_QUOTED
    assert quote("", [""]) == ""


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (TimeoutError(), IngestorTimeoutError),
        (aiohttp.ServerTimeoutError(f"read {SECRET}"), IngestorTimeoutError),
        (ConnectionRefusedError(111, f"refused {SECRET}"), IngestorConnectionError),
        (aiohttp.ServerDisconnectedError(), IngestorConnectionError),
        (aiohttp.InvalidURL(f"http://x/{SECRET}"), IngestorConnectionError),
        (aiohttp.ClientPayloadError(f"truncated {SECRET}"), IngestorResponseError),
        (aiohttp.ClientError(f"odd {SECRET}"), IngestorResponseError),
    ],
)
def test_kinds_and_masking(err: BaseException, kind: type[IngestorError]) -> None:
    mapped = error_for_exception(
        err, where="InfluxDB at db:8086", origin=Origin.INFLUXDB, timeout=2.5, secrets=[SECRET]
    )
    assert type(mapped) is kind
    assert mapped.origin is Origin.INFLUXDB
    assert SECRET not in str(mapped)
    assert str(mapped).startswith("InfluxDB at db:8086: ")
    if kind is IngestorTimeoutError:
        assert "within 2.5 s" in str(mapped)


def test_typed_errors_pass_through() -> None:
    already = IngestorSSLError("tls", origin=Origin.SERVICES)
    assert error_for_exception(already, where="x", origin=Origin.INFLUXDB) is already


async def test_every_client_reports_a_refused_connection_alike(
    session: aiohttp.ClientSession,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    errors: list[IngestorError] = []
    flux = FluxBackend(session, url, SECRET, "org", "bucket", timeout=5)
    influxql = InfluxQLBackend(session, url, "db", token=SECRET, timeout=5)
    for backend in (flux, influxql):
        with pytest.raises(IngestorError) as caught:
            await backend.async_validate()
        errors.append(caught.value)
    services = ServicesClient(session, url, SECRET, None, 5.0)
    with pytest.raises(IngestorError) as caught:
        await services.async_fetch(Period.HOUR_1)
    errors.append(caught.value)

    assert [type(e) for e in errors] == [IngestorConnectionError] * 3
    assert [e.origin for e in errors] == [Origin.INFLUXDB, Origin.INFLUXDB, Origin.SERVICES]
    for error in errors:
        assert "cannot connect (" in str(error)
        assert SECRET not in str(error)
