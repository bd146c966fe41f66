"""An InfluxDB 2.7 HTTP protocol double: stores line protocol, answers a Flux subset.

No InfluxDB 2.x server can be installed here, so the Flux backend is tested against this
server. It is honest: every answer is computed from the points written to it, by a small
Flux interpreter that understands exactly the pipeline steps and predicates the backend
emits and rejects everything else with a Flux-style compilation error (so a new query
cannot pass untested). Responses copy InfluxDB 2.7's wire format: annotated CSV with
CRLF rows, RFC3339Nano times, one annotation block per table schema, the JSON error bodies
and the X-Influxdb-Version / X-Influxdb-Build headers on every response.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import hashlib
import io
import json
import re
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from tests.support.influxdb_server import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

VERSION = "v2.7.10"
COMMIT = "f302d9730c"
NS_PER_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}

# Flux column types as the CSV encoder names them.
STRING, LONG, ULONG, DOUBLE, BOOL, TIME = (
    "string",
    "long",
    "unsignedLong",
    "double",
    "boolean",
    "dateTime:RFC3339",
)
Value = str | int | float | bool | None


class FluxError(Exception):
    """A Flux error; `status`/`code` say how InfluxDB reports it over HTTP."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid") -> None:
        """Keep the HTTP mapping next to the message."""
        super().__init__(message)
        self.status = status
        self.code = code


class CompileError(FluxError):
    """A query that does not compile (or that this double does not implement)."""

    def __init__(self, message: str, pos: Pos | None = None) -> None:
        """Prefix like influxd: `compilation failed: error @l:c-l:c: ...`."""
        where = f"error @{pos.line}:{pos.col}-{pos.line}:{pos.end}: " if pos else "error: "
        super().__init__(f"compilation failed: {where}{message}")


class LineProtocolError(ValueError):
    """A line that does not parse."""


# --------------------------------------------------------------------------------------
# Line protocol and storage
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Point:
    """One parsed line: measurement, sorted tags, typed fields, time in ns."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, str, Value], ...]
    time_ns: int


def _split_unescaped(text: str, sep: str, *, quotes: bool = False) -> list[str]:
    """Split on `sep` outside backslash escapes (and outside "strings" if `quotes`)."""
    parts: list[str] = []
    current: list[str] = []
    in_string = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if quotes and char == '"':
            in_string = not in_string
        elif char == sep and not in_string:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    if in_string:
        msg = "unterminated string"
        raise LineProtocolError(msg)
    parts.append("".join(current))
    return parts


def _unescape(text: str, specials: str) -> str:
    r"""Undo `\x` for x in specials; any other backslash stays literal."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in specials:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


_BOOL_TRUE = {"t", "T", "true", "True", "TRUE"}
_BOOL_FALSE = {"f", "F", "false", "False", "FALSE"}
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _field_value(raw: str) -> tuple[str, Value]:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            msg = f"invalid string field {raw[:40]!r}"
            raise LineProtocolError(msg)
        return STRING, _unescape(raw[1:-1], '"\\')
    if raw in _BOOL_TRUE:
        return BOOL, True
    if raw in _BOOL_FALSE:
        return BOOL, False
    if re.fullmatch(r"[+-]?\d+i", raw):
        return LONG, int(raw[:-1])
    if re.fullmatch(r"\d+u", raw):
        return ULONG, int(raw[:-1])
    if _FLOAT_RE.match(raw):
        return DOUBLE, float(raw)
    msg = f"invalid field value {raw[:40]!r}"
    raise LineProtocolError(msg)


def parse_line(line: str, precision: str, now_ns: int) -> Point:
    """Parse one line of line protocol (InfluxDB 2.x rules)."""
    head_fields = _split_unescaped(line, " ", quotes=True)
    parts = [p for p in head_fields if p != ""]
    if len(parts) not in {2, 3}:
        msg = "expected measurement[,tags] fields [timestamp]"
        raise LineProtocolError(msg)
    series = _split_unescaped(parts[0], ",")
    measurement = _unescape(series[0], ", ")
    if not measurement:
        msg = "missing measurement"
        raise LineProtocolError(msg)
    tags: dict[str, str] = {}
    for pair in series[1:]:
        kv = _split_unescaped(pair, "=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            msg = f"invalid tag {pair[:40]!r}"
            raise LineProtocolError(msg)
        tags[_unescape(kv[0], ",= ")] = _unescape(kv[1], ",= ")
    fields: dict[str, tuple[str, Value]] = {}
    for pair in _split_unescaped(parts[1], ",", quotes=True):
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            msg = f"invalid field {pair[:40]!r}"
            raise LineProtocolError(msg)
        fields[_unescape(key, ",= ")] = _field_value(raw)
    if len(parts) == 3:
        if not re.fullmatch(r"-?\d+", parts[2]):
            msg = f"invalid timestamp {parts[2][:40]!r}"
            raise LineProtocolError(msg)
        time_ns = int(parts[2]) * NS_PER_UNIT[precision]
    else:
        time_ns = now_ns
    return Point(
        measurement,
        tuple(sorted(tags.items())),
        tuple((k, t, v) for k, (t, v) in sorted(fields.items())),
        time_ns,
    )


SeriesKey = tuple[str, tuple[tuple[str, str], ...], str]


@dataclass
class Bucket:
    """Points by series (measurement, tags, field): {time_ns: (type, value)}."""

    name: str
    series: dict[SeriesKey, dict[int, tuple[str, Value]]] = field(default_factory=dict)
    field_types: dict[tuple[str, str], str] = field(default_factory=dict)

    def store(self, points: list[Point]) -> None:
        """Store points; a field type conflict rejects the whole batch (like a shard)."""
        for point in points:
            for name, ftype, _ in point.fields:
                known = self.field_types.get((point.measurement, name))
                if known is not None and known != ftype:
                    msg = (
                        "failure writing points to database: partial write: field type "
                        f'conflict: input field "{name}" on measurement "{point.measurement}" '
                        f"is type {_LP_TYPE[ftype]}, already exists as type {_LP_TYPE[known]} "
                        f"dropped={len(points)}"
                    )
                    raise FluxError(msg, status=422, code="unprocessable entity")
        for point in points:
            for name, ftype, value in point.fields:
                self.field_types[point.measurement, name] = ftype
                key = (point.measurement, point.tags, name)
                self.series.setdefault(key, {})[point.time_ns] = (ftype, value)


_LP_TYPE = {STRING: "string", LONG: "integer", ULONG: "unsigned", DOUBLE: "float", BOOL: "boolean"}


# --------------------------------------------------------------------------------------
# Flux: tokens and parser for the supported subset
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a token starts (1-based line/column) and its end column."""

    line: int
    col: int
    end: int


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token."""

    kind: str
    text: str
    pos: Pos
    value: Any = None


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>//[^\n]*)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<duration>(?:\d+(?:ns|us|µs|ms|mo|s|m|h|d|w|y))+)
  | (?P<float>\d+\.\d+)
  | (?P<int>\d+)
  | (?P<string>")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|>|=>|==|!=|<=|>=|=~|!~|[()\[\]{},:.=<>+\-*/%^?@])
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}
_HEX = frozenset("0123456789abcdefABCDEF")


class FluxStringError(ValueError):
    """A string literal libflux refuses; `offset` is where, in the scanned source."""

    def __init__(self, message: str, offset: int) -> None:
        """Keep the offset for the caller's position."""
        super().__init__(message)
        self.offset = offset


def _unescape_text(raw: str, offset: int) -> str:
    r"""The value of a literal's text, as libflux's `strconv::parse_text` computes it.

    Escapes anywhere in the text (`\$` included, even where the scanner paired the `\` with
    a `$`); `\xNN` adds a byte, and the bytes must form UTF-8.
    """
    out = bytearray()
    i = 0
    while i < len(raw):
        char = raw[i]
        if char != "\\":
            out += char.encode()
            i += 1
            continue
        nxt = raw[i + 1 : i + 2]
        if nxt in _SIMPLE_ESCAPES or nxt == "$":
            out += (_SIMPLE_ESCAPES.get(nxt) or nxt).encode()
            i += 2
        elif nxt == "x" and len(digits := raw[i + 2 : i + 4]) == 2 and set(digits) <= _HEX:
            out.append(int(digits, 16))
            i += 4
        else:
            msg = f"invalid escape character {nxt}" if nxt else "invalid escape sequence"
            raise FluxStringError(msg, offset + i)
    try:
        return out.decode()
    except UnicodeDecodeError as err:
        raise FluxStringError(str(err), offset) from err


def scan_flux_string(source: str, start: int) -> tuple[str, int]:
    r"""(value, index after the closing quote) of the string literal at `start`.

    libflux's scanner (`scanner.rl`): escapes are `\n \r \t \\ \" \${` and `\xNN`; a `$`
    takes the next character with it whatever it is (a `\` too, which then escapes nothing),
    except `{` (an interpolation, which this double does not run) and a closing `"`.

    Raises:
        FluxStringError: what libflux refuses, and interpolation.

    """
    i = start + 1
    while i < len(source):
        char = source[i]
        pair = source[i + 1 : i + 2]
        if char == '"':
            return _unescape_text(source[start + 1 : i], start + 1), i + 1
        if char == "\\":
            if pair in _SIMPLE_ESCAPES:
                i += 2
            elif source[i + 1 : i + 3] == "${":
                i += 3
            elif pair == "x" and set(source[i + 2 : i + 4]) <= _HEX and i + 4 <= len(source):
                i += 4
            else:
                msg = f"invalid string escape \\{pair}"
                raise FluxStringError(msg, i)
        elif char == "$" and pair == "{":
            # String interpolation is a real Flux feature this double does not run.
            msg = "string interpolation is not supported"
            raise FluxStringError(msg, i)
        elif char == "$" and pair not in {'"', ""}:
            i += 2
        else:
            i += 1
    msg = "unterminated string literal"
    raise FluxStringError(msg, start)


class _Lexer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.line = 1
        self.line_start = 0

    def _pos(self, start: int, end: int) -> Pos:
        return Pos(self.line, start - self.line_start + 1, end - self.line_start + 1)

    def _string(self, start: int) -> tuple[Token, int]:
        try:
            value, end = scan_flux_string(self.source, start)
        except FluxStringError as err:
            raise CompileError(str(err), self._pos(err.offset, err.offset + 1)) from None
        pos = self._pos(start, end)
        text = self.source[start:end]
        if newlines := text.count("\n"):
            self.line += newlines
            self.line_start = start + text.rfind("\n") + 1
        return Token("string", text, pos, value), end

    def tokens(self) -> list[Token]:
        result: list[Token] = []
        i = 0
        while i < len(self.source):
            match = _TOKEN_RE.match(self.source, i)
            if match is None:
                msg = f"invalid character {self.source[i]!r}"
                raise CompileError(msg, self._pos(i, i + 1))
            kind = match.lastgroup or ""
            text = match.group()
            if kind == "string":
                token, i = self._string(i)
                result.append(token)
                continue
            if kind not in {"ws", "comment"}:
                result.append(Token(kind, text, self._pos(i, match.end())))
            newlines = text.count("\n")
            if newlines:
                self.line += newlines
                self.line_start = i + text.rfind("\n") + 1
            i = match.end()
        result.append(Token("eof", "", self._pos(i, i)))
        return result


@dataclass(frozen=True, slots=True)
class Duration:
    """A Flux duration literal (ns), possibly negated."""

    ns: int


@dataclass(frozen=True, slots=True)
class Ident:
    """A bare identifier used as a value (`fn: count`)."""

    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Compare:
    """`r.col == "x"` / `r["col"] != "x"`."""

    column: str
    op: str
    value: str


@dataclass(frozen=True, slots=True)
class Logical:
    """`a and b` / `a or b`."""

    op: str
    left: Predicate
    right: Predicate


@dataclass(frozen=True, slots=True)
class TypeTest:
    """`types.isType(v: r.col, type: "int")`: true when the table's column has that type."""

    column: str
    type_name: str


Predicate = Compare | Logical | TypeTest
# The names `types.isType` accepts, as this double's column types.
FLUX_TYPE_NAMES = {"string": STRING, "int": LONG, "uint": ULONG, "float": DOUBLE, "bool": BOOL}
FLUX_TYPE_NAMES |= {"time": TIME, "bytes": "", "duration": "", "regexp": ""}
# The only package a query may import.
IMPORTABLE = frozenset({"types"})


@dataclass(frozen=True, slots=True)
class TimeLiteral:
    """A Flux time literal (ns since the epoch)."""

    ns: int


ArgValue = str | int | bool | Duration | TimeLiteral | list[str] | Ident | Predicate


@dataclass(frozen=True, slots=True)
class Call:
    """One function call with named arguments."""

    name: str
    args: dict[str, ArgValue]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Pipeline:
    """`source |> call |> call ...` where source is a call or a variable."""

    source: Call | Ident
    steps: tuple[Call, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    """`name = pipeline` (assignment) or a bare pipeline (target None)."""

    target: str | None
    pipeline: Pipeline
    pos: Pos


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _Lexer(source).tokens()
        self.i = 0
        self.imports: set[str] = set()

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _expect(self, kind: str, text: str | None = None) -> Token:
        token = self.tok
        if token.kind != kind or (text is not None and token.text != text):
            want = text or kind
            msg = f"expected {want}, got {token.text or token.kind}"
            raise CompileError(msg, token.pos)
        return self._next()

    def _imports(self) -> None:
        """`import "path"` lines, which Flux allows only before every statement."""
        while self.tok.kind == "ident" and self.tok.text == "import":
            self._next()
            path = self._expect("string")
            if path.value not in IMPORTABLE:
                msg = f"import {path.text} is not supported by the InfluxDB 2.x test double"
                raise CompileError(msg, path.pos)
            self.imports.add(str(path.value))

    def program(self) -> list[Statement]:
        statements: list[Statement] = []
        self._imports()
        while self.tok.kind != "eof":
            start = self.tok
            if start.kind == "ident" and start.text in {"import", "option", "package", "builtin"}:
                msg = f"{start.text} is not supported"
                raise CompileError(msg, start.pos)
            target = None
            if start.kind == "ident" and self.tokens[self.i + 1].text == "=":
                target = start.text
                self.i += 2
            statements.append(Statement(target, self.pipeline(), start.pos))
        if not statements:
            msg = "no statements in query"
            raise CompileError(msg)
        return statements

    def pipeline(self) -> Pipeline:
        head = self._expect("ident")
        source: Call | Ident = (
            self.call(head) if self.tok.text == "(" else Ident(head.text, head.pos)
        )
        steps: list[Call] = []
        while self.tok.text == "|>":
            self._next()
            steps.append(self.call(self._expect("ident")))
        return Pipeline(source, tuple(steps))

    def call(self, name: Token) -> Call:
        self._expect("op", "(")
        args: dict[str, ArgValue] = {}
        while self.tok.text != ")":
            key = self._expect("ident")
            self._expect("op", ":")
            if key.text in args:
                msg = f"duplicate argument {key.text}"
                raise CompileError(msg, key.pos)
            args[key.text] = self.value()
            if self.tok.text == ",":
                self._next()
            elif self.tok.text != ")":
                msg = f"expected , or ), got {self.tok.text}"
                raise CompileError(msg, self.tok.pos)
        self._next()
        return Call(name.text, args, name.pos)

    def value(self) -> ArgValue:  # noqa: PLR0911
        token = self.tok
        if token.kind == "string":
            self._next()
            return str(token.value)
        if token.kind == "int":
            self._next()
            return int(token.text)
        if token.kind == "duration":
            self._next()
            return Duration(_duration_ns(token))
        if token.text == "-" and self.tokens[self.i + 1].kind == "duration":
            self._next()
            return Duration(-_duration_ns(self._next()))
        if token.kind == "datetime":
            self._next()
            return TimeLiteral(_parse_rfc3339(token.text, token.pos))
        if token.text == "[":
            return self.string_array()
        if token.text == "(":
            return self.function()
        if token.kind == "ident" and token.text in {"true", "false"}:
            self._next()
            return token.text == "true"
        if token.kind == "ident":
            self._next()
            return Ident(token.text, token.pos)
        msg = f"unsupported expression {token.text or token.kind}"
        raise CompileError(msg, token.pos)

    def string_array(self) -> list[str]:
        self._expect("op", "[")
        items: list[str] = []
        while self.tok.text != "]":
            items.append(str(self._expect("string").value))
            if self.tok.text == ",":
                self._next()
            elif self.tok.text != "]":
                msg = f"expected , or ], got {self.tok.text}"
                raise CompileError(msg, self.tok.pos)
        self._next()
        return items

    def function(self) -> Predicate:
        self._expect("op", "(")
        param = self._expect("ident")
        self._expect("op", ")")
        self._expect("op", "=>")
        if param.text != "r":
            msg = "only (r) => predicates are supported"
            raise CompileError(msg, param.pos)
        return self.or_expr()

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while self.tok.kind == "ident" and self.tok.text == "or":
            self._next()
            left = Logical("or", left, self.and_expr())
        return left

    def and_expr(self) -> Predicate:
        left = self.comparison()
        while self.tok.kind == "ident" and self.tok.text == "and":
            self._next()
            left = Logical("and", left, self.comparison())
        return left

    def comparison(self) -> Predicate:
        if self.tok.text == "(":
            self._next()
            inner = self.or_expr()
            self._expect("op", ")")
            return inner
        if self.tok.text == "types" and "types" in self.imports:
            return self.type_test()
        column = self.column()
        operator = self.tok
        if operator.text not in {"==", "!="}:
            msg = f"unsupported operator {operator.text}"
            raise CompileError(msg, operator.pos)
        self._next()
        literal = self._expect("string")
        return Compare(column, operator.text, str(literal.value))

    def column(self) -> str:
        """`r.col` or `r["col"]`."""
        record = self._expect("ident")
        if record.text != "r":
            msg = f"undefined identifier {record.text}"
            raise CompileError(msg, record.pos)
        if self.tok.text == ".":
            self._next()
            return self._expect("ident").text
        self._expect("op", "[")
        column = str(self._expect("string").value)
        self._expect("op", "]")
        return column

    def type_test(self) -> TypeTest:
        """`types.isType(v: r.col, type: "name")`, the arguments in either order."""
        self._expect("ident", "types")
        self._expect("op", ".")
        function = self._expect("ident")
        if function.text != "isType":
            msg = f"types.{function.text} is not supported by the InfluxDB 2.x test double"
            raise CompileError(msg, function.pos)
        self._expect("op", "(")
        args: dict[str, str] = {}
        while self.tok.text != ")":
            key = self._expect("ident")
            self._expect("op", ":")
            if key.text in args or key.text not in {"v", "type"}:
                msg = f"function isType has no parameter {key.text} (or it is given twice)"
                raise CompileError(msg, key.pos)
            args[key.text] = self.column() if key.text == "v" else str(self._expect("string").value)
            if self.tok.text == ",":
                self._next()
        self._next()
        if set(args) != {"v", "type"} or args["type"] not in FLUX_TYPE_NAMES:
            msg = "isType needs v: and type: with a Flux type name"
            raise CompileError(msg, function.pos)
        return TypeTest(args["v"], args["type"])


def _duration_ns(token: Token) -> int:
    total = 0
    for amount, unit in re.findall(r"(\d+)(ns|us|µs|ms|mo|s|m|h|d|w|y)", token.text):
        if unit not in DURATION_UNITS:
            msg = f"calendar duration unit {unit} is not supported"
            raise CompileError(msg, token.pos)
        total += int(amount) * DURATION_UNITS[unit]
    return total


def _parse_rfc3339(text: str, pos: Pos | None = None) -> int:
    match = re.fullmatch(r"(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})", text)
    if match is None:
        msg = f"invalid time {text}"
        raise CompileError(msg, pos)
    base = datetime.fromisoformat(match.group(1) + (match.group(3).replace("Z", "+00:00")))
    fraction = (match.group(2) or "").ljust(9, "0")[:9]
    return int(base.timestamp()) * 1_000_000_000 + int(fraction)


# --------------------------------------------------------------------------------------
# Flux: tables and the supported transformations
# --------------------------------------------------------------------------------------


@dataclass
class Table:
    """One Flux table: typed columns in order, group key columns, rows."""

    columns: list[tuple[str, str]]
    key: list[str]
    rows: list[dict[str, Value]]

    def key_values(self) -> tuple[tuple[str, Value], ...]:
        """The group key as (label, value) pairs, in key column order."""
        first = self.rows[0] if self.rows else {}
        return tuple((c, first.get(c)) for c in self.key)

    def column_type(self, name: str) -> str | None:
        """Type of a column, None when the table has no such column."""
        return next((t for c, t in self.columns if c == name), None)


Stream = list[Table]


# Every function this double runs: parameter -> accepted value types, and required ones.
SIGNATURES: dict[str, tuple[dict[str, tuple[type, ...]], tuple[str, ...]]] = {
    "from": ({"bucket": (str,)}, ("bucket",)),
    "range": ({"start": (Duration, TimeLiteral), "stop": (Duration, TimeLiteral)}, ("start",)),
    "filter": ({"fn": (Compare, Logical, TypeTest)}, ("fn",)),
    "group": ({"columns": (list,), "mode": (str,)}, ()),
    "count": ({"column": (str,)}, ()),
    "sum": ({"column": (str,)}, ()),
    "last": ({"column": (str,)}, ()),
    "sort": ({"columns": (list,), "desc": (bool,)}, ()),
    "limit": ({"n": (int,), "offset": (int,)}, ("n",)),
    "keep": ({"columns": (list,)}, ("columns",)),
    "aggregateWindow": (
        {"every": (Duration,), "fn": (Ident,), "createEmpty": (bool,), "column": (str,)},
        ("every", "fn"),
    ),
    "yield": ({"name": (str,)}, ()),
}
AGGREGATE_WINDOW_FUNCTIONS = {"count", "sum"}


def check_call(call: Call, *, first: bool) -> None:  # noqa: C901
    """Reject what this double does not implement, before touching any data."""
    if call.name not in SIGNATURES:
        msg = f"function {call.name} is not supported by the InfluxDB 2.x test double"
        raise CompileError(msg, call.pos)
    if (call.name == "from") != first:
        where = "start" if call.name == "from" else "follow a source"
        msg_0 = f"{call.name} must {where} a pipeline"
        raise CompileError(msg_0, call.pos)
    allowed, required = SIGNATURES[call.name]
    for name, value in call.args.items():
        if name not in allowed:
            msg_0 = f"function {call.name} has no parameter {name}"
            raise CompileError(msg_0, call.pos)
        if not isinstance(value, allowed[name]) or isinstance(value, bool) is not (
            bool in allowed[name]
        ):
            msg_0 = f"{call.name}: invalid type for {name}"
            raise CompileError(msg_0, call.pos)
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            msg_0 = f"{call.name}: {name} must be an array of strings"
            raise CompileError(msg_0, call.pos)
    for name in required:
        if name not in call.args:
            msg_0 = f"missing required argument {name}"
            raise CompileError(msg_0, call.pos)
    fn = call.args.get("fn")
    if call.name == "aggregateWindow" and isinstance(fn, Ident):
        if fn.name not in AGGREGATE_WINDOW_FUNCTIONS:
            msg_0 = f"aggregateWindow: fn {fn.name} is not supported"
            raise CompileError(msg_0, fn.pos)
        every = call.args["every"]
        if isinstance(every, Duration) and every.ns <= 0:
            msg_0 = "aggregateWindow: every must be positive"
            raise CompileError(msg_0, call.pos)
    if call.name == "group" and call.args.get("mode", "by") != "by":
        msg_0 = 'group: only mode "by" is supported'
        raise CompileError(msg_0, call.pos)


def _string_list(call: Call, name: str, default: list[str]) -> list[str]:
    value = call.args.get(name, default)
    if not isinstance(value, list):
        msg = f"{call.name}: {name} must be an array of strings"
        raise CompileError(msg, call.pos)
    return value


def _evaluate(predicate: Predicate, row: dict[str, Value], table: Table) -> bool | None:  # noqa: PLR0911
    if isinstance(predicate, TypeTest):
        return table.column_type(predicate.column) == FLUX_TYPE_NAMES[predicate.type_name]
    if isinstance(predicate, Compare):
        actual = row.get(predicate.column)
        if actual is None:
            return None
        if not isinstance(actual, str):
            msg = f"cannot compare {type(actual).__name__} with string"
            raise FluxError(msg, status=500, code="internal error")
        same = actual == predicate.value
        return same if predicate.op == "==" else not same
    left = _evaluate(predicate.left, row, table)
    right = _evaluate(predicate.right, row, table)
    if predicate.op == "and":
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


def _aggregate_table(table: Table, column: str, fn: str) -> Table:
    """count()/sum(): key columns plus the aggregated column, one row."""
    ctype = table.column_type(column)
    if ctype is None:
        msg = f'{fn}: column "{column}" does not exist'
        raise FluxError(msg, status=500, code="internal error")
    values = [r.get(column) for r in table.rows if r.get(column) is not None]
    if fn == "count":
        out_type: str = LONG
        result: Value = len(values)
    else:
        if ctype not in {LONG, ULONG, DOUBLE}:
            msg = f"{fn}: unsupported aggregate column type {ctype}"
            raise FluxError(msg, status=500, code="internal error")
        out_type = ctype
        result = sum(v for v in values if isinstance(v, (int, float))) if values else None
    columns = [(c, t) for c, t in table.columns if c in table.key]
    columns.append((column, out_type))
    base = dict(table.key_values())
    return Table(columns, list(table.key), [{**base, column: result}])


class Interpreter:
    """Runs a parsed Flux program against one organization's buckets."""

    def __init__(self, buckets: dict[str, Bucket], now_ns: int) -> None:
        """Bind the data and the clock `now()` reads."""
        self.buckets = buckets
        self.now_ns = now_ns
        self.variables: dict[str, Pipeline] = {}

    def run(self, statements: list[Statement]) -> list[tuple[str, Stream]]:  # noqa: C901
        """Execute; one (result name, tables) per yield, in script order."""
        results: list[tuple[str, Stream]] = []
        expressions = [s for s in statements if s.target is None]
        for statement in statements:
            source = statement.pipeline.source
            if isinstance(source, Call):
                check_call(source, first=True)
            for step in statement.pipeline.steps:
                check_call(step, first=False)
        for statement in statements:
            if statement.target is not None:
                self.variables[statement.target] = statement.pipeline
                continue
            steps = statement.pipeline.steps
            if steps and steps[-1].name == "yield":
                name = steps[-1].args.get("name", "_result")
                if not isinstance(name, str):
                    msg = "yield: name must be a string"
                    raise CompileError(msg, steps[-1].pos)
            elif len(expressions) == 1:
                name = "_result"
            else:
                msg = "every expression statement needs a yield"
                raise CompileError(msg, statement.pos)
            if any(existing == name for existing, _ in results):
                msg = f'duplicate yield name "{name}"'
                raise CompileError(msg, statement.pos)
            results.append((name, self.pipeline(statement.pipeline, set())))
        if not results:
            msg = "no streaming data"
            raise CompileError(msg)
        return results

    def pipeline(self, pipeline: Pipeline, seen: set[str]) -> Stream:
        """Evaluate one pipeline (variables are re-evaluated, as the planner would share)."""
        steps = list(pipeline.steps)
        if isinstance(pipeline.source, Ident):
            name = pipeline.source.name
            if name not in self.variables or name in seen:
                msg = f"undefined identifier {name}"
                raise CompileError(msg, pipeline.source.pos)
            stream = self.pipeline(self.variables[name], seen | {name})
        else:
            if not steps or steps[0].name != "range":
                bucket = pipeline.source.args.get("bucket")
                msg = (
                    f'cannot submit unbounded read to "{bucket}"; '
                    "try bounding 'from' with a call to 'range'"
                )
                raise FluxError(msg)
            stream = self.from_range(pipeline.source, steps.pop(0))
        for step in steps:
            stream = self.step(step, stream)
        return stream

    def _time_arg(self, call: Call, name: str, default: int) -> int:
        value = call.args.get(name)
        if value is None:
            return default
        if isinstance(value, Duration):
            return self.now_ns + value.ns
        if isinstance(value, TimeLiteral):
            return value.ns
        msg = f"range: {name} must be a duration or a time"
        raise CompileError(msg, call.pos)

    def from_range(self, source: Call, range_call: Call) -> Stream:
        """from(bucket:) |> range(start:, stop:): one table per series with data in range."""
        bucket_name = str(source.args["bucket"])
        bucket = self.buckets.get(bucket_name)
        if bucket is None:
            msg = f'failed to initialize execute state: could not find bucket "{bucket_name}"'
            raise FluxError(msg, status=404, code="not found")
        start = self._time_arg(range_call, "start", 0)
        stop = self._time_arg(range_call, "stop", self.now_ns)
        if start >= stop:
            msg = "cannot query an empty range"
            raise FluxError(msg)
        tables: Stream = []
        for (measurement, tags, field_name), values in sorted(bucket.series.items()):
            times = sorted(t for t in values if start <= t < stop)
            if not times:
                continue
            ftype = values[times[0]][0]
            columns = [
                ("_start", TIME),
                ("_stop", TIME),
                ("_time", TIME),
                ("_value", ftype),
                ("_field", STRING),
                ("_measurement", STRING),
                *((tag, STRING) for tag, _ in tags),
            ]
            key = ["_start", "_stop", "_field", "_measurement", *(tag for tag, _ in tags)]
            base: dict[str, Value] = {
                "_start": start,
                "_stop": stop,
                "_field": field_name,
                "_measurement": measurement,
                **dict(tags),
            }
            rows = [{**base, "_time": t, "_value": values[t][1]} for t in times]
            tables.append(Table(columns, key, rows))
        return tables

    def step(self, call: Call, stream: Stream) -> Stream:
        """Apply one supported transformation."""
        handler = self.HANDLERS.get(call.name)
        if handler is None:
            # Only `range` lands here: it is valid right after from() only.
            msg = f"{call.name} must directly follow from()"
            raise CompileError(msg, call.pos)
        return handler(self, call, stream)

    def _filter(self, call: Call, stream: Stream) -> Stream:
        predicate = call.args["fn"]
        assert isinstance(predicate, (Compare, Logical, TypeTest))
        out: Stream = []
        for table in stream:
            rows = [r for r in table.rows if _evaluate(predicate, r, table) is True]
            if rows:
                out.append(Table(list(table.columns), list(table.key), rows))
        return out

    def _group(self, call: Call, stream: Stream) -> Stream:
        wanted = _string_list(call, "columns", [])
        groups: dict[tuple[tuple[str, Value], ...], Table] = {}
        for table in stream:
            key = [c for c, _ in table.columns if c in wanted]
            for row in table.rows:
                values = tuple((c, row.get(c)) for c in key)
                target = groups.get(values)
                if target is None:
                    target = groups[values] = Table(list(table.columns), key, [])
                for column, ctype in table.columns:
                    known = target.column_type(column)
                    if known is None:
                        target.columns.append((column, ctype))
                    elif known != ctype:
                        msg = (
                            f'schema collision detected: column "{column}" is both of '
                            f"type {known} and {ctype}"
                        )
                        raise FluxError(msg, status=500, code="internal error")
                target.rows.append(row)
        return list(groups.values())

    def _count_or_sum(self, call: Call, stream: Stream) -> Stream:
        column = str(call.args.get("column", "_value"))
        return [_aggregate_table(t, column, call.name) for t in stream]

    def _last(self, call: Call, stream: Stream) -> Stream:
        column = str(call.args.get("column", "_value"))
        out: Stream = []
        for table in stream:
            rows = [r for r in table.rows if r.get(column) is not None]
            if rows:
                out.append(Table(list(table.columns), list(table.key), [rows[-1]]))
        return out

    def _sort(self, call: Call, stream: Stream) -> Stream:
        columns = _string_list(call, "columns", ["_value"])
        desc = bool(call.args.get("desc", False))

        def sort_key(row: dict[str, Value]) -> tuple[tuple[bool, Any], ...]:
            return tuple((row.get(c) is not None, row.get(c)) for c in columns)

        return [
            Table(list(t.columns), list(t.key), sorted(t.rows, key=sort_key, reverse=desc))
            for t in stream
        ]

    def _limit(self, call: Call, stream: Stream) -> Stream:
        n = call.args["n"]
        offset = call.args.get("offset", 0)
        assert isinstance(n, int)
        assert isinstance(offset, int)
        out = [Table(list(t.columns), list(t.key), t.rows[offset : offset + n]) for t in stream]
        return [t for t in out if t.rows]

    def _keep(self, call: Call, stream: Stream) -> Stream:
        columns = _string_list(call, "columns", [])
        return [
            Table(
                [(c, t) for c, t in table.columns if c in columns],
                [c for c in table.key if c in columns],
                [{c: v for c, v in row.items() if c in columns} for row in table.rows],
            )
            for table in stream
        ]

    def _aggregate_window(self, call: Call, stream: Stream) -> Stream:
        every = call.args["every"]
        fn = call.args["fn"]
        assert isinstance(every, Duration)
        assert isinstance(fn, Ident)
        create_empty = bool(call.args.get("createEmpty", True))
        column = str(call.args.get("column", "_value"))
        return [
            self._windows(table, every.ns, fn.name, column, create_empty=create_empty)
            for table in stream
        ]

    @staticmethod
    def _windows(table: Table, every: int, fn: str, column: str, *, create_empty: bool) -> Table:
        """window(every) |> fn() |> duplicate(_stop -> _time) |> window(every: inf)."""
        if table.column_type("_start") is None or table.column_type("_stop") is None:
            msg = 'aggregateWindow: missing "_start"/"_stop" columns'
            raise FluxError(msg, status=500, code="internal error")
        bound_start = int(table.rows[0]["_start"])  # type: ignore[arg-type]
        bound_stop = int(table.rows[0]["_stop"])  # type: ignore[arg-type]
        buckets: dict[int, list[dict[str, Value]]] = {}
        window = bound_start - bound_start % every
        while window < bound_stop:
            buckets[window] = []
            window += every
        for row in table.rows:
            moment = int(row["_time"])  # type: ignore[arg-type]
            buckets[moment - moment % every].append(row)
        key = [c for c in table.key if c not in {"_start", "_stop"}]
        keep = {"_start", "_stop", "_time", column, *key}
        columns = [(c, t) for c, t in table.columns if c in keep]
        base = {c: table.rows[0].get(c) for c in key}
        rows: list[dict[str, Value]] = []
        for window_start, members in sorted(buckets.items()):
            if not members and not create_empty:
                continue
            window_stop = min(window_start + every, bound_stop)
            part = Table(list(table.columns), [], members)
            value = _aggregate_table(part, column, fn).rows[0][column]
            rows.append(
                {
                    **base,
                    "_start": bound_start,
                    "_stop": bound_stop,
                    "_time": window_stop,
                    column: value,
                }
            )
        if fn == "count":
            columns = [(c, LONG if c == column else t) for c, t in columns]
        return Table(columns, ["_start", "_stop", *key], rows)

    def _yield(self, _call: Call, stream: Stream) -> Stream:
        return stream

    HANDLERS: ClassVar[dict[str, Callable[[Interpreter, Call, Stream], Stream]]] = {
        "filter": _filter,
        "group": _group,
        "count": _count_or_sum,
        "sum": _count_or_sum,
        "last": _last,
        "sort": _sort,
        "limit": _limit,
        "keep": _keep,
        "aggregateWindow": _aggregate_window,
        "yield": _yield,
    }


def run_flux(source: str, buckets: dict[str, Bucket], now_ns: int) -> list[tuple[str, Stream]]:
    """Parse and run a Flux program; raises FluxError."""
    statements = _Parser(source).program()
    return Interpreter(buckets, now_ns).run(statements)


# --------------------------------------------------------------------------------------
# Annotated CSV
# --------------------------------------------------------------------------------------


def rfc3339_nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction trimmed."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def _format(value: Value, ctype: str) -> str:  # noqa: PLR0911
    if value is None:
        return ""
    if ctype == TIME:
        return rfc3339_nano(int(value))
    if ctype == BOOL:
        return "true" if value else "false"
    if ctype == DOUBLE:
        number = float(value)
        if number != number:  # noqa: PLR0124
            return "NaN"
        if number in {float("inf"), float("-inf")}:
            return "+Inf" if number > 0 else "-Inf"
        text = format(Decimal(repr(number)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def encode_csv(results: list[tuple[str, Stream]], annotations: list[str], *, header: bool) -> str:  # noqa: C901
    """InfluxDB 2.x annotated CSV: one block per (result, table schema), CRLF rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    first_block = True
    for name, tables in results:
        table_id = 0
        previous_schema: tuple[tuple[str, str, bool], ...] | None = None
        for table in tables:
            if not table.rows:
                continue
            schema = tuple((c, t, c in table.key) for c, t in table.columns)
            if schema != previous_schema:
                if not first_block:
                    buffer.write("\r\n")
                first_block = False
                previous_schema = schema
                if "datatype" in annotations:
                    writer.writerow(["#datatype", STRING, LONG, *(t for _, t, _ in schema)])
                if "group" in annotations:
                    flags = ["true" if k else "false" for _, _, k in schema]
                    writer.writerow(["#group", "false", "false", *flags])
                if "default" in annotations:
                    writer.writerow(["#default", name, "", *("" for _ in schema)])
                if header:
                    writer.writerow(["", "result", "table", *(c for c, _, _ in schema)])
            result_cell = "" if "default" in annotations else name
            for row in table.rows:
                cells = [_format(row.get(c), t) for c, t in table.columns]
                writer.writerow(["", result_cell, str(table_id), *cells])
            table_id += 1
    buffer.write("\r\n")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the double saw it."""

    method: str
    path: str
    query: dict[str, str]
    body: str
    authorization: str | None


@dataclass
class Organization:
    """An org and its buckets."""

    name: str
    id: str
    buckets: dict[str, Bucket] = field(default_factory=dict)


_HANDSHAKE_FAILED = "Error on transport creation for incoming connection"


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status, dumps=_compact_json)


class Influx2Double:
    """An aiohttp server speaking InfluxDB 2.7's HTTP API on 127.0.0.1.

    Faults for tests: `stall_seconds` delays every answer (bounded; released on stop),
    `query_override` replaces the /api/v2/query answer (status, content type, body).
    `clock` gives "now" in ns (what `now()` and relative ranges use).
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        tokens: set[str] | None = None,
        org: str = "ha-ingestor",
        buckets: tuple[str, ...] = ("home_assistant_events",),
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], int] | None = None,
        read_only_tokens: set[str] | None = None,
    ) -> None:
        """Configure tokens, the first org and its buckets.

        `read_only_tokens` may query every bucket and write none (a read authorization).
        """
        self.tokens = tokens if tokens is not None else {"test-token"}
        self.read_only_tokens = read_only_tokens or set()
        self.tokens |= self.read_only_tokens
        self.orgs: dict[str, Organization] = {}
        self.add_org(org, buckets)
        self.ssl_context = ssl_context
        self.clock = clock or time.time_ns
        self.requests: list[RequestRecord] = []
        self.stall_seconds = 0.0
        self.query_override: tuple[int, str, str | bytes] | None = None
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()
        self._previous_handler: Any = None
        self.storage = StorageEndpoints(self)

    @property
    def url(self) -> str:
        """Base URL."""
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def add_org(self, name: str, buckets: tuple[str, ...] = ()) -> Organization:
        """Create an organization with buckets."""
        org = Organization(name, f"{len(self.orgs) + 1:016x}")
        for bucket in buckets:
            org.buckets[bucket] = Bucket(bucket)
        self.orgs[name] = org
        return org

    def create_bucket(self, org: str, name: str) -> None:
        """Create a bucket (any string is a valid bucket name, as in InfluxDB)."""
        self.orgs[org].buckets.setdefault(name, Bucket(name))

    def write(self, org: str, bucket: str, lines: str | list[str], precision: str = "ns") -> None:
        """Store line protocol directly (the same parser /api/v2/write uses)."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        self.orgs[org].buckets[bucket].store(self._parse_body(body, precision))

    def query_requests(self) -> list[RequestRecord]:
        """Requests sent to /api/v2/query."""
        return [r for r in self.requests if r.path == "/api/v2/query"]

    def _parse_body(self, body: str, precision: str) -> list[Point]:
        now = self.clock()
        points = []
        for number, raw in enumerate(body.split("\n"), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            try:
                points.append(parse_line(line, precision, now))
            except LineProtocolError as err:
                msg = f"unable to parse '{line[:100]}': {err} (line {number})"
                raise FluxError(msg) from err
        return points

    def _quiet_refused_handshakes(self) -> None:
        # A client refusing our certificate resets the connection during the handshake;
        # asyncio reports that to the loop's exception handler (which Home Assistant's test
        # harness turns into a failure). influxd just logs it, so this double ignores it.
        loop = asyncio.get_running_loop()
        previous = self._previous_handler = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if context.get("message") == _HANDSHAKE_FAILED and isinstance(
                context.get("exception"), (ssl.SSLError, ConnectionError)
            ):
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    async def start(self) -> None:
        """Listen on the chosen port."""
        if self.ssl_context is not None:
            self._quiet_refused_handshakes()
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/health", self._health)
        app.router.add_get("/ping", self._ping)
        app.router.add_post("/api/v2/write", self._write)
        app.router.add_post("/api/v2/query", self._query)
        app.router.add_get("/api/v2/buckets", self.storage.buckets)
        app.router.add_get("/metrics", self.storage.metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
        await site.start()

    async def stop(self) -> None:
        """Release stalled handlers and stop listening."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.ssl_context is not None:
            asyncio.get_running_loop().set_exception_handler(self._previous_handler)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        raw = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        request["raw_body"] = raw.decode("utf-8", "replace")
        self.requests.append(
            RequestRecord(
                request.method,
                request.path,
                dict(request.query),
                raw.decode("utf-8", "replace"),
                request.headers.get("Authorization"),
            )
        )
        if self.stall_seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self.stall_seconds)
        try:
            response = await handler(request)
        except web.HTTPNotFound:
            response = _error(404, "not found", "path not found")
        except web.HTTPMethodNotAllowed:
            response = _error(405, "method not allowed", "method not allowed")
        response.headers["X-Influxdb-Build"] = "OSS"
        response.headers["X-Influxdb-Version"] = VERSION
        return response

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": "influxdb",
                "message": "ready for queries and writes",
                "status": "pass",
                "checks": [],
                "version": VERSION,
                "commit": COMMIT,
            }
        )

    async def _ping(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)

    def _authorize(self, request: web.Request, *, write: bool = False) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != "Token" or token not in self.tokens:
            return _error(401, "unauthorized", "unauthorized access")
        if write and token in self.read_only_tokens:
            # A read authorization: InfluxDB 2.7 refuses the write, not the token.
            return _error(403, "forbidden", "insufficient permissions for write")
        return None

    def _org(self, request: web.Request) -> Organization | web.Response:
        name = request.query.get("org")
        org_id = request.query.get("orgID")
        if name is None and org_id is None:
            return _error(400, "invalid", "Please provide either orgID or org")
        for org in self.orgs.values():
            if org.name == name or org.id == org_id:
                return org
        if name is not None:
            return _error(404, "not found", f'organization name "{name}" not found')
        return _error(404, "not found", "organization not found")

    async def _write(self, request: web.Request) -> web.Response:
        denied = self._authorize(request, write=True)
        if denied is not None:
            return denied
        org = self._org(request)
        if isinstance(org, web.Response):
            return org
        bucket_name = request.query.get("bucket", "")
        bucket = org.buckets.get(bucket_name)
        if bucket is None:
            return _error(404, "not found", f'bucket "{bucket_name}" not found')
        precision = request.query.get("precision", "ns")
        if precision not in NS_PER_UNIT:
            return _error(400, "invalid", f'invalid precision "{precision}"')
        try:
            bucket.store(self._parse_body(request["raw_body"], precision))
        except FluxError as err:
            return _error(err.status, err.code, str(err))
        return web.Response(status=204)

    def _read_query(self, request: web.Request, body: str) -> tuple[str, list[str], bool]:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
        if content_type == "application/vnd.flux":
            return body, ["datatype", "group", "default"], True
        if content_type != "application/json":
            msg = f'invalid content type "{content_type}"'
            raise FluxError(msg, status=415, code="unsupported media type")
        try:
            document = json.loads(body)
        except ValueError as err:
            msg = f"failed to decode request body: {err}"
            raise FluxError(msg) from err
        if not isinstance(document, dict) or not isinstance(document.get("query"), str):
            msg = "failed to decode request body: query is required"
            raise FluxError(msg)
        if document.get("type", "flux") != "flux":
            msg = f'unsupported query type "{document.get("type")}"'
            raise FluxError(msg)
        extern = document.get("extern") or {}
        # The official clients always send an extern File; only an empty one is accepted.
        if not isinstance(extern, dict) or extern.get("body") or extern.get("imports"):
            msg = "extern parameters are not supported by this double"
            raise FluxError(msg)
        dialect = document.get("dialect") or {}
        annotations = dialect.get("annotations", [])
        if dialect.get("delimiter", ",") != "," or dialect.get("commentPrefix", "#") != "#":
            msg = "only the default CSV dialect is supported"
            raise FluxError(msg)
        return document["query"], list(annotations), bool(dialect.get("header", True))

    async def _query(self, request: web.Request) -> web.Response:
        denied = self._authorize(request)
        if denied is not None:
            return denied
        if self.query_override is not None:
            status, content_type, body = self.query_override
            raw = body.encode() if isinstance(body, str) else body
            return web.Response(status=status, body=raw, content_type=content_type)
        org = self._org(request)
        if isinstance(org, web.Response):
            return org
        try:
            source, annotations, header = self._read_query(request, request["raw_body"])
            results = self.storage.run(source, org)
            if results is None:
                results = run_flux(source, org.buckets, self.clock())
        except FluxError as err:
            return _error(err.status, err.code, str(err))
        body = encode_csv(results, annotations, header=header)
        return web.Response(text=body, content_type="text/csv", charset="utf-8")


@contextlib.asynccontextmanager
async def running_double(**kwargs: Any) -> AsyncIterator[Influx2Double]:
    """Start a double, yield it, stop it."""
    double = Influx2Double(**kwargs)
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


# --------------------------------------------------------------------------------------
# Storage figures: the bucket API, `influxdb.cardinality()` & co., and `/metrics`
# --------------------------------------------------------------------------------------

_FLUX_STR = r'"((?:[^"\\]|\\.)*)"'
_FLUX_TIME = r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)"
_YIELD = rf" \|> yield\(name: {_FLUX_STR}\)"
# The storage programs the integration sends, statement by statement, and nothing else.
_STORAGE_STATEMENTS: dict[str, re.Pattern[str]] = {
    "cardinality": re.compile(
        rf"influxdb\.cardinality\(bucket: {_FLUX_STR}, start: {_FLUX_TIME}"
        rf"(?:, predicate: \(r\) => r\._measurement == {_FLUX_STR})?\){_YIELD}"
    ),
    "measurements": re.compile(
        rf"schema\.measurements\(bucket: {_FLUX_STR}, start: {_FLUX_TIME}\){_YIELD}"
    ),
    "oldest": re.compile(
        rf"from\(bucket: {_FLUX_STR}\) \|> range\(start: {_FLUX_TIME}\)"
        rf" \|> filter\(fn: \(r\) => r\._measurement == {_FLUX_STR}\) \|> first\(\)"
        r' \|> keep\(columns: \["_time"\]\) \|> group\(\) \|> sort\(columns: \["_time"\]\)'
        rf" \|> limit\(n: 1\){_YIELD}"
    ),
}
_PACKAGES = {"influxdb": "influxdata/influxdb", "schema": "influxdata/influxdb/schema"}
_DAY_NS = 86_400 * 1_000_000_000


def _flux_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def shard_group_ns(retention_seconds: int) -> int:
    """InfluxDB 2.x's default shard group duration for a bucket's retention period."""
    if retention_seconds == 0 or retention_seconds > 180 * 86_400:
        return 7 * _DAY_NS
    if retention_seconds > 2 * 86_400:
        return _DAY_NS
    return 3_600 * 1_000_000_000


def go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'g', -1, 64), as the Prometheus client writes gauges."""
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + int(exponent)
    exp = point - 1
    eprec = len(text) if 6 > len(text) >= point else 6
    prefix = "-" if sign else ""
    if exp < -4 or exp >= eprec:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return prefix + format(Decimal(repr(float(abs(value)))).normalize(), "f")


@dataclass
class StorageEndpoints:
    """What InfluxDB 2.7 says about its buckets' storage, computed from the stored points.

    Faults: `faults` maps a path (`/api/v2/buckets`, `/metrics`) to the HTTP status it answers
    instead (404 is what `--metrics-disabled` gives), `stall` to seconds it waits first.
    """

    double: Influx2Double
    retention_seconds: dict[tuple[str, str], int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    stall: dict[str, float] = field(default_factory=dict)

    def bucket_id(self, org: Organization, bucket: str) -> str:
        """A stable 16-hex-digit id, as InfluxDB gives every bucket."""
        return hashlib.sha256(f"{org.id}/{bucket}".encode()).hexdigest()[:16]

    def shards(self) -> list[tuple[str, int, int]]:
        """(bucket id, shard id, bytes) of every shard holding points.

        The size is a model, not TSM's compression: each series' key once per shard plus
        16 bytes per point (time and value), so it follows the data written.
        """
        result: list[tuple[str, int, int]] = []
        shard_id = 0
        for org in self.double.orgs.values():
            for name, bucket in sorted(org.buckets.items()):
                group = shard_group_ns(self.retention_seconds.get((org.name, name), 0))
                sizes: dict[int, int] = {}
                for (measurement, tags, field_name), values in bucket.series.items():
                    key = len(measurement) + len(field_name) + sum(len(k) + len(v) for k, v in tags)
                    for start in {t // group for t in values}:
                        points = sum(1 for t in values if t // group == start)
                        sizes[start] = sizes.get(start, 0) + key + 16 * points
                for start in sorted(sizes):
                    shard_id += 1
                    result.append((self.bucket_id(org, name), shard_id, sizes[start]))
        return result

    async def _faulted(self, request: web.Request) -> web.Response | None:
        if (seconds := self.stall.get(request.path)) is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.double._released.wait(), seconds)
        if (status := self.faults.get(request.path)) is not None:
            return _error(status, "forbidden" if status == 403 else "not found", "fault")
        return None

    async def buckets(self, request: web.Request) -> web.Response:
        """GET /api/v2/buckets?org=&name=: the buckets the token may see."""
        denied = self.double._authorize(request) or await self._faulted(request)
        if denied is not None:
            return denied
        org = self.double._org(request)
        if isinstance(org, web.Response):
            return org
        wanted = request.query.get("name")
        found = []
        for name in sorted(org.buckets):
            if wanted is not None and name != wanted:
                continue
            every = self.retention_seconds.get((org.name, name), 0)
            found.append(
                {
                    "id": self.bucket_id(org, name),
                    "orgID": org.id,
                    "type": "user",
                    "name": name,
                    "retentionRules": [
                        {
                            "type": "expire",
                            "everySeconds": every,
                            "shardGroupDurationSeconds": shard_group_ns(every) // 1_000_000_000,
                        }
                    ],
                    "labels": [],
                }
            )
        return web.json_response({"links": {"self": "/api/v2/buckets"}, "buckets": found})

    async def metrics(self, request: web.Request) -> web.Response:
        """GET /metrics: Prometheus text, no token needed (as in InfluxDB 2.7)."""
        denied = await self._faulted(request)
        if denied is not None:
            return denied
        lines = [
            "# HELP storage_shard_disk_size Gauge of the disk size for the shard",
            "# TYPE storage_shard_disk_size gauge",
        ]
        root = "/var/lib/influxdb2/engine"
        lines.extend(
            f'storage_shard_disk_size{{bucket="{bucket}",engine="tsm1",id="{shard}",'
            f'path="{root}/data/{bucket}/autogen/{shard}",'
            f'walPath="{root}/wal/{bucket}/autogen/{shard}"}} {go_float(size)}'
            for bucket, shard, size in self.shards()
        )
        lines.append("# HELP go_goroutines Number of goroutines that currently exist.")
        lines.append("# TYPE go_goroutines gauge")
        lines.append("go_goroutines 42")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    def run(self, source: str, org: Organization) -> list[tuple[str, Stream]] | None:
        """Results of a storage program; None when `source` is not one.

        A storage program imports the `influxdb` package (every other program this double
        runs is left to the interpreter).
        """
        if f'import "{_PACKAGES["influxdb"]}"' not in source.splitlines():
            return None
        imported: set[str] = set()
        results: list[tuple[str, Stream]] = []
        for number, raw in enumerate(source.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            if match := re.fullmatch(rf"import {_FLUX_STR}", line):
                if match.group(1) not in _PACKAGES.values():
                    msg = f'unknown import path "{match.group(1)}"'
                    raise CompileError(msg, Pos(number, 1, len(line)))
                imported.add(match.group(1))
                continue
            results.append(self._statement(line, number, imported, org))
        if not results:
            msg = "no streaming data"
            raise CompileError(msg)
        return results

    def _statement(
        self, line: str, number: int, imported: set[str], org: Organization
    ) -> tuple[str, Stream]:
        for kind, pattern in _STORAGE_STATEMENTS.items():
            if (match := pattern.fullmatch(line)) is None:
                continue
            package = line.split(".", 1)[0]
            if package in _PACKAGES and _PACKAGES[package] not in imported:
                msg = f"undefined identifier {package}"
                raise CompileError(msg, Pos(number, 1, len(package)))
            groups = [None if g is None else _flux_unescape(g) for g in match.groups()]
            bucket_name, start_text = groups[0] or "", groups[1] or ""
            bucket = org.buckets.get(bucket_name)
            if bucket is None:
                msg = f'failed to initialize execute state: could not find bucket "{bucket_name}"'
                raise FluxError(msg, status=404, code="not found")
            start = _parse_rfc3339(start_text)
            stop = self.double.clock()
            series = {
                key: [t for t in values if start <= t < stop]
                for key, values in bucket.series.items()
            }
            series = {key: times for key, times in series.items() if times}
            name = groups[-1] or "_result"
            if kind == "cardinality":
                measurement = groups[2]
                count = sum(1 for key in series if measurement in (None, key[0]))
                table = Table(
                    [("_start", TIME), ("_stop", TIME), ("_value", LONG)],
                    ["_start", "_stop"],
                    [{"_start": start, "_stop": stop, "_value": count}],
                )
                return name, [table]
            if kind == "measurements":
                names = sorted({key[0] for key in series})
                return name, [Table([("_value", STRING)], [], [{"_value": m} for m in names])]
            firsts = [min(times) for key, times in series.items() if key[0] == groups[2]]
            rows: list[dict[str, Value]] = [{"_time": min(firsts)}] if firsts else []
            return name, [Table([("_time", TIME)], [], rows)]
        msg = "this double runs only the integration's storage programs"
        raise CompileError(msg, Pos(number, 1, len(line)))
