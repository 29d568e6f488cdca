"""The carbon source declaration, its partitions and asset keys (the checks and the assets import it).

Data entries are partitioned by the **day of the activity**, from ``CARBON_START_DATE`` to a year
ahead (so the whole current year exists), with ``fetch_unit="window"`` and a single-run backfill: a
sync of a year is one run over that year's days, one fetch, rows loaded and ledgered per day.
"""

import dagster as dg

from ingestion_platform.lib.settings import definition_setting
from ingestion_platform.lib.source import Source

PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=definition_setting("CARBON_START_DATE", "2018-01-01", "First carbon daily partition (YYYY-MM-DD)"),
    end_offset=366,  # the whole current year (bookings and planned activity), whatever today is
)

CARBON = Source(
    name="carbon",
    group="carbon",
    partitions=PARTITIONS,
    fetch_unit="window",
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="carbon_providers",
    tags={"family": "carbon"},
    sparse_days=True,  # one bad entry on a day of one entry is a dead letter, not a failed sync
    description="Carbon inventory data entries: CSV uploads and Tableau views, synced per module and year.",
)

DATA_ENTRIES = dg.AssetKey(["carbon", "data_entries"])
EMISSION_FACTORS = dg.AssetKey(["carbon", "emission_factors"])
FOOTPRINT = dg.AssetKey(["carbon", "footprint"])
SYNC_JOB_TAG = "carbon/job_id"
