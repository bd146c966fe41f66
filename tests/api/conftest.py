"""Fixtures shared by the tests of the api package: a session and a loopback server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

from tests.support.loopback import Loopback, start_loopback

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """The caller's session, lent to the clients (they never close it)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def loopback(socket_enabled: None) -> AsyncIterator[Loopback]:
    """A loopback server; stalled handlers are released before it stops."""
    state, runner = await start_loopback()
    yield state
    state.release.set()
    await runner.cleanup()
