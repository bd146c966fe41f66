"""Name validation and escaping: no name can change the query it is put into."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from custom_components.ha_ingestor.api.core.errors import InvalidNameError
from custom_components.ha_ingestor.api.core.models import Period, TrendWindow
from custom_components.ha_ingestor.api.influx.names import (
    MAX_NAME_LENGTH,
    flux_duration,
    flux_string,
    influxql_duration,
    influxql_identifier,
    validate_name,
)
from tests.support.influx2_double import FluxStringError, scan_flux_string

if TYPE_CHECKING:
    from tests.support.influxdb_server import InfluxDBServer

# Strings that try to end the literal early, add statements, pipe into other functions,
# interpolate, or confuse the escaping with backslashes.
ATTACKS = [
    'home"',
    '") |> drop(columns: ["_value"]) //',
    '"; DROP DATABASE victim',
    'x"; DROP DATABASE "victim',
    "'; DROP DATABASE victim; --",
    'a" OR r._measurement != "',
    "trailing\\",
    '\\"); drop("',
    '\\\\"',
    "\\n not a newline",
    "${token}",
    "$${x}",
    "\\${x}",
    "$",
    "{}${",
    "it's; SHOW USERS",
    '日本語 "quoted" \\ ${ü}',
    " leading and trailing spaces ",
]

REJECTED = [
    "",
    " ",
    "\t",
    "a\nb",
    "a\r\nb",
    'x")\n|> drop()',
    "nul\x00byte",
    "escape\x1b[31m",
    "del\x7f",
    "c1\x85control",
    "line\u2028separator",
    "para\u2029separator",
    "x" * (MAX_NAME_LENGTH + 1),
]


def test_valid_names_pass_unchanged() -> None:
    for name in ["home_assistant_events", "ha-ingestor", "x" * MAX_NAME_LENGTH, *ATTACKS]:
        assert validate_name(name) == name


@pytest.mark.parametrize("name", REJECTED)
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidNameError) as err:
        validate_name(name, "bucket")
    assert str(err.value).startswith("bucket ")
    if name.strip():
        assert name not in str(err.value)
    with pytest.raises(InvalidNameError):
        flux_string(name)
    with pytest.raises(InvalidNameError):
        influxql_identifier(name)


@pytest.mark.parametrize("value", [None, 5, b"bytes"])
def test_non_text_is_rejected(value: Any) -> None:
    with pytest.raises(InvalidNameError):
        validate_name(value)


def _scan_flux_string(text: str, pos: int) -> tuple[str, int]:
    """The double's scanner, which follows libflux's (tests/api/test_flux_lsp.py holds it to
    the real parser); any literal it refuses fails the test."""
    try:
        return scan_flux_string(text, pos)
    except FluxStringError as err:
        pytest.fail(f"Flux refuses {text!r}: {err}")


@pytest.mark.parametrize("name", ATTACKS)
def test_flux_string_round_trips_and_cannot_end_early(name: str) -> None:
    literal = flux_string(name)
    value, end = _scan_flux_string(literal, 0)
    assert value == name
    assert end == len(literal)
    query = f"from(bucket: {literal})\n  |> range(start: -1h)"
    value, end = _scan_flux_string(query, len("from(bucket: "))
    assert value == name
    # Whatever the name, the rest of the query is exactly what we wrote.
    assert query[end:] == ")\n  |> range(start: -1h)"


def test_flux_string_escapes() -> None:
    assert flux_string("plain") == '"plain"'
    assert flux_string('a"b') == '"a\\"b"'
    assert flux_string("a\\b") == '"a\\\\b"'
    assert flux_string("${x}") == '"\\x24{x}"'
    assert flux_string("$x {y}") == '"\\x24x {y}"'


def every_short_string(alphabet: str = '${}\\"a', longest: int = 4) -> list[str]:
    """Every string of 1 to `longest` characters over `alphabet` (1,554 by default)."""
    return [
        "".join(chars)
        for length in range(1, longest + 1)
        for chars in itertools.product(alphabet, repeat=length)
    ]


def test_flux_string_round_trips_every_short_string_of_dollars_braces_and_escapes() -> None:
    # `$${x}` and `a$\` are what a `${`-only escape got wrong: a `$` takes the next character
    # with it, so `$\${x}` interpolated x and `a$\\` swallowed the closing quote.
    names = every_short_string()
    assert len(names) == 1554
    for name in names:
        literal = flux_string(name)
        assert _scan_flux_string(literal + ")", 0) == (name, len(literal)), name


def _scan_influxql_identifier(text: str, pos: int) -> tuple[str, int]:
    r"""Decode a double-quoted InfluxQL identifier (escapes \\ \" \n; raw newline refused)."""
    assert text[pos] == '"'
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        assert char != "\n", "InfluxQL refuses a raw newline in an identifier"
        if char == "\\":
            nxt = text[i + 1]
            simple = {"\\": "\\", '"': '"', "n": "\n"}
            assert nxt in simple, f"bad InfluxQL escape \\{nxt}"
            out.append(simple[nxt])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    pytest.fail("unterminated identifier")


@pytest.mark.parametrize("name", ATTACKS)
def test_influxql_identifier_round_trips(name: str) -> None:
    ident = influxql_identifier(name)
    value, end = _scan_influxql_identifier(ident, 0)
    assert (value, end) == (name, len(ident))


def test_influxql_identifier_escapes() -> None:
    assert influxql_identifier("plain") == '"plain"'
    assert influxql_identifier('a"b') == '"a\\"b"'
    assert influxql_identifier("a\\b") == '"a\\\\b"'
    assert influxql_identifier("${x}") == '"${x}"'


def test_durations_only_from_the_whitelists() -> None:
    assert [flux_duration(p) for p in Period] == ["15m", "1h", "6h", "24h", "7d"]
    assert [influxql_duration(p) for p in Period] == ["15m", "1h", "6h", "24h", "7d"]
    assert [flux_duration(w) for w in TrendWindow] == ["1m", "5m", "15m", "1h"]
    assert [influxql_duration(w) for w in TrendWindow] == ["1m", "5m", "15m", "1h"]
    for text in ["7d", "1h) |> drop(", "-1h", "1mo"]:
        with pytest.raises(TypeError):
            flux_duration(text)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            influxql_duration(text)  # type: ignore[arg-type]


def _influxql(server: InfluxDBServer, q: str, db: str | None = None) -> dict[str, Any]:
    """Raw /query call (the test's own, not the code under test); errors come back as JSON."""
    params = {"q": q, "epoch": "ns", **({"db": db} if db else {})}
    data = urllib.parse.urlencode(params).encode()
    try:
        with urllib.request.urlopen(f"{server.url}/query", data=data, timeout=10) as resp:  # noqa: S310
            body = resp.read()
    except urllib.error.HTTPError as err:
        body = err.read()
    result: dict[str, Any] = json.loads(body)
    return result


def _databases(server: InfluxDBServer) -> set[str]:
    result = _influxql(server, "SHOW DATABASES")
    series = result["results"][0].get("series", [])
    return {row[0] for s in series for row in s.get("values", [])}


@pytest.mark.parametrize("name", ATTACKS)
def test_influxql_identifier_against_real_influxd(
    influxdb_server: InfluxDBServer, socket_enabled: None, name: str
) -> None:
    influxdb_server.create_database("victim")
    ident = influxql_identifier(name)
    # influxd stops at the first failing statement: the failing one goes last.
    query = f'SHOW DATABASES; SELECT COUNT("state") FROM {ident}.."home_assistant_events"'  # noqa: S608
    result = _influxql(influxdb_server, query)
    # Exactly the two statements we wrote ran, the second on a database named `name`.
    assert [r["statement_id"] for r in result["results"]] == [0, 1]
    assert result["results"][1]["error"] == f"database not found: {name}"
    assert "victim" in _databases(influxdb_server)

    # And a database literally named `name` is the one a query addresses.
    created = _influxql(influxdb_server, f"CREATE DATABASE {ident}")
    if any(char in name for char in "/\\"):
        # influxd's own rule (meta.ValidName): no slash or backslash in a database name.
        assert created["results"][0]["error"] == "invalid name"
        return
    assert "error" not in created["results"][0], created
    try:
        assert name in _databases(influxdb_server)
        influxdb_server.write(name, 'home_assistant_events,entity_id=a.b state="on" 1')
        counted = _influxql(
            influxdb_server,
            f'SELECT COUNT("state") FROM {ident}.."home_assistant_events"',  # noqa: S608
        )
        assert counted["results"][0]["series"][0]["values"][0][1] == 1
    finally:
        dropped = _influxql(influxdb_server, f"DROP DATABASE {ident}")
        assert "error" not in dropped["results"][0]
    assert name not in _databases(influxdb_server)
    assert "victim" in _databases(influxdb_server)
