"""A loopback HTTP server that records every request and answers what the test sets.

For faults no real server produces on demand (a status, a body, a stall), shared by the tests
of both InfluxDB backends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


@dataclass
class Captured:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Loopback:
    """The server's address, its current handler, what it received; `release` ends stalls."""

    url: str = ""
    handler: Handler | None = None
    requests: list[Captured] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


async def start_loopback() -> tuple[Loopback, web.AppRunner]:
    """Listen on a free port of 127.0.0.1; the caller cleans the runner up."""
    state = Loopback()

    async def dispatch(request: web.Request) -> web.StreamResponse:
        state.requests.append(
            Captured(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        assert state.handler is not None
        return await state.handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}"
    return state, runner


def json_answer(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    """A handler answering `body` as JSON."""

    async def handle(_request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return handle


def raw_answer(body: bytes, status: int = 200, content_type: str = "application/json") -> Handler:
    """A handler answering `body` as it is."""

    async def handle(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status, content_type=content_type)

    return handle


def endless_answer(limit_mib: int = 64) -> Handler:
    """A 200 of JSON-looking bytes that never ends (bounded here at `limit_mib`)."""
    chunk = b"[" + b"0," * 32767 + b"0"

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(limit_mib * 1024 * 1024 // len(chunk)):
            try:
                await response.write(chunk)
            except (ConnectionError, RuntimeError):  # the client hung up: the point
                break
        return response

    return handle


def redirect_answer(target: str, status: int = 307) -> Handler:
    """A redirect of every request to the same path and query on `target`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": f"{target}{request.path_qs}"})

    return handle


type RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawLoopback:
    """A bare TCP server: its address, and `release` to end handlers that stall."""

    url: str
    server: asyncio.Server
    release: asyncio.Event


async def start_raw_loopback(handler: RawHandler) -> RawLoopback:
    """Listen on a free port of 127.0.0.1 with `handler` writing whatever bytes it likes.

    For what an HTTP server library refuses to do: accept and never answer, or declare a
    length it never sends. The caller ends it with `stop_raw_loopback`.
    """
    release = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
            await release.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return RawLoopback(f"http://127.0.0.1:{port}", server, release)


async def stop_raw_loopback(raw: RawLoopback) -> None:
    """Release every stalled handler and stop listening."""
    raw.release.set()
    raw.server.close()
    await raw.server.wait_closed()
