"""When the example loads: every morning, yesterday's partition of both assets."""

import dagster as dg

from ingestion_platform_tests.example_source.assets import OBSERVATIONS, PARTITIONS, RAIN_GAUGES

example_job = dg.define_asset_job(
    "example_job",
    selection=dg.AssetSelection.assets(OBSERVATIONS, RAIN_GAUGES),
    partitions_def=PARTITIONS,
    description="Weather observations and rain gauges of one day.",
)
example_daily_schedule = dg.build_schedule_from_partitioned_job(example_job, hour_of_day=6)
