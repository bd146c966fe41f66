"""A loopback TCP relay that counts the bytes crossing it, so wire sizes are measured as sent.

aiohttp asks for gzip by default and influxd compresses when asked, so the decoded body
size (what the trace hooks see) is not what travels. The relay is used only in a separate,
untimed pass: its copying would otherwise show up in the timings.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final, Self

_READ: Final = 1 << 16


class ByteCountingRelay:
    """127.0.0.1:<port> -> target; `received` counts target -> client bytes."""

    def __init__(self, host: str, port: int) -> None:
        """Relay to `host:port` once started."""
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.sent = 0
        self.received = 0
        self.connections = 0

    @property
    def url(self) -> str:
        """Base URL of the relay."""
        if self._server is None:
            msg = "relay not started"
            raise RuntimeError(msg)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> Self:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, upstream=True),
                self._pipe(up_reader, writer, upstream=False),
            )
        finally:
            for end in (writer, up_writer):
                end.close()
                self._writers.discard(end)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(_READ):
                if upstream:
                    self.sent += len(data)
                else:
                    self.received += len(data)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except ConnectionError:
            # The other direction sees its end close and stops too.
            writer.close()
