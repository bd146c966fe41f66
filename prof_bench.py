import asyncio, cProfile, pstats, tempfile, logging
from benchmarks import backfill as b
from tests.support.influxdb_server import running_influxdb

async def main():
    with tempfile.TemporaryDirectory() as d:
        hass = await b._home_assistant(d)
        span = await b._record(hass, 50000, 1000)
        with running_influxdb() as server:
            server.create_database(b.DATABASE)
            pr = cProfile.Profile()
            pr.enable()
            r = await b._run(hass, server.url, span, dry_run=True, traced=False)
            pr.disable()
            print(r[0], r[1])
            pstats.Stats(pr).sort_stats("tottime").print_stats(25)
        await hass.async_stop()
logging.basicConfig(level=logging.ERROR)
asyncio.run(main())
