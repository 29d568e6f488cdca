"""The example assets, one per source, each on the platform's load driver (``lib.ingest.SourceRun``)."""

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.lib.fetch import ReplayFetcher
from ingestion_platform.lib.ingest import LoadConfig, PartitionLoad, SourceRun, Unit
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource
from ingestion_platform_tests.example_source import parse, tables
from ingestion_platform_tests.example_source.checks import example_checks
from ingestion_platform_tests.example_source.resources import RainDrops, WeatherApi
from ingestion_platform_tests.example_source.source import (  # noqa: F401  (re-exported)
    OBSERVATIONS,
    PARTITIONS,
    RAIN,
    RAIN_GAUGES,
    WEATHER,
)

MAX_PAGES = 100


@dg.asset(**WEATHER.asset(OBSERVATIONS, tables=tables.OBSERVATIONS_LOAD, checks=example_checks))
def observations(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    weather_api: WeatherApi,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
    """Daily minimum and maximum temperatures per station (`example.observation`) and the stations
    (`example.station`), from one paged fetch of the run's days. A record that cannot be read is
    dead-lettered alone; rows of a day the API no longer lists are deleted after a complete fetch.
    """
    run = SourceRun(context, WEATHER, config=config, warehouse=warehouse, raw_store=raw_store,
                    provider=weather_api.provider)  # fmt: skip
    with weather_api.client() as client:
        for unit in run.units():
            with unit.open() as load:
                stations, rows, complete = _pages(load, unit, weather_api, client)
                load.load(tables.station, stations)
                load.load(tables.observation, rows, complete=complete)
    o = tables.observation
    yield from run.finish(lambda days: sa.select(o).where(o.c.observed_on.in_(days)).limit(10))


def _pages(load: PartitionLoad, unit: Unit, api: WeatherApi, client: Any) -> tuple[list, list, bool]:
    """Every page of the unit (fetched, or replayed from raw); False when the fetch stopped short."""
    fetcher = api.fetcher(client)
    stations: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    number: int | None = 1
    for _ in range(MAX_PAGES):
        request = api.page(unit.start, unit.days[-1], number)
        body, ok = load.try_land(request.name, lambda request=request: fetcher.fetch(request))
        if not ok or body is None:  # failed for good: dead-lettered by try_land
            return stations, rows, False
        page = load.parse(
            request.name, body, lambda payload, name=request.name: parse.parse_observations(payload, name)
        )
        if page is None:  # the payload could not be read: dead-lettered by parse
            return stations, rows, False
        stations += page.stations
        rows += page.observations
        number = page.next_page
        if number is None:
            return stations, rows, True
    load.warn(f"stopped after {MAX_PAGES} pages")
    return stations, rows, False


@dg.asset(**RAIN.asset(RAIN_GAUGES, tables=tables.RAIN_LOAD, checks=example_checks))
def rain(
    context: dg.AssetExecutionContext,
    config: LoadConfig,
    rain_drops: RainDrops,
    warehouse: WarehouseResource,
    raw_store: RawStoreResource,
) -> Iterator[Any]:
    """Daily rainfall per gauge (`example.rain`) from the CSV export each network drops per day
    (`<day>/<network>.csv`). A line that cannot be read is dead-lettered alone; a network whose
    export is missing or unreadable keeps its rows (the load's scope is the networks read).
    """
    run = SourceRun(context, RAIN, config=config, warehouse=warehouse, raw_store=raw_store,
                    provider=rain_drops.provider)  # fmt: skip
    fetcher = rain_drops.fetcher()
    for unit in run.units():
        with unit.open() as load:
            if config.reprocess_from_raw:  # the files stored by the last fetch of the day
                requests = ReplayFetcher(load.raw_store, load.source, load.partition).requests("*.csv")
            else:
                requests = fetcher.glob(f"{load.day.isoformat()}/*.csv")
            if not requests:
                load.mark_pending("no export dropped yet")
            rows: list[dict[str, Any]] = []
            networks: list[tuple[str]] = []
            for request in requests:
                network = PurePosixPath(request.name).stem
                covers = {"network": network}  # a file that fails spares its network's rows only
                body, ok = load.try_land(request.name, lambda request=request: fetcher.fetch(request), key=covers)
                if not ok or body is None:
                    continue
                parsed = load.parse(
                    request.name,
                    body,
                    lambda data, name=request.name, network=network: parse.parse_rain(data, name, network),
                    decode=lambda data: data,  # the parser reads the CSV bytes itself (pandas)
                    key=covers,
                )
                if parsed is not None:
                    rows += parsed
                    networks.append((network,))
            load.load(tables.rain, rows, scope=networks)
    r = tables.rain
    yield from run.finish(lambda days: sa.select(r).where(r.c.measured_on.in_(days)).limit(10))
