"""The example sources' declarations and asset keys, imported by the checks and by the assets."""

import dagster as dg

from ingestion_platform.lib.settings import definition_setting
from ingestion_platform.lib.source import Source

PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=definition_setting("EXAMPLE_START_DATE", "2025-03-01", "First example daily partition (YYYY-MM-DD)")
)
WEATHER = Source(
    name="example_weather",
    group="example",
    partitions=PARTITIONS,
    fetch_unit="window",  # the API answers for any range: one fetch per run, rows split per day
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="example_weather_api",
    tags={"family": "example"},
    description="Example weather API: daily observations of a range of days, paged.",
)
RAIN = Source(
    name="example_rain",
    group="example",
    partitions=PARTITIONS,
    fetch_unit="day",  # one export per network and day
    backfill_policy=dg.BackfillPolicy.single_run(),  # a ranged run loops over its days
    tags={"family": "example"},
    description="Example rain-gauge networks: one CSV export per network and day, dropped in a folder.",
)
OBSERVATIONS = dg.AssetKey(["example", "observations"])
RAIN_GAUGES = dg.AssetKey(["example", "rain"])
