"""Fixtures shared by the api tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """The caller's session, lent to the clients (they never close it)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session
