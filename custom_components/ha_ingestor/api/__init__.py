"""Pure asyncio library behind the integration: no Home Assistant import in this package."""
