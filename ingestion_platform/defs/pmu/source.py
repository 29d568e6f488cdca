"""The PMU source declaration: partitions, backfill policy, pool and asset keys (see ``lib.source``).

Kept apart from the assets so the checks (``pmu.checks``) and the assets (``pmu.assets``, which
declare those checks as specs) both import it.
"""

import dagster as dg

from ingestion_platform.lib.settings import definition_setting
from ingestion_platform.lib.source import Source

PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=definition_setting("PMU_START_DATE", "2013-03-01", "First PMU daily partition (YYYY-MM-DD)"),
    timezone="Europe/Paris",
    end_offset=1,  # tomorrow's programme is published the day before
)
PMU = Source(
    name="pmu",
    group="pmu",
    partitions=PARTITIONS,
    fetch_unit="day",
    backfill_policy=dg.BackfillPolicy.multi_run(
        max_partitions_per_run=definition_setting("PMU_DAYS_PER_RUN", 31, "Days per run of a ranged PMU backfill")
    ),
    pool="pmu_api",
    description="PMU turfinfo API: programme, participants, performances and rapports of a day.",
    empty_day_warns=True,  # races run every day in France: an empty day is one not published yet
)
SOURCE = PMU.name
POOL = PMU.pool

PROGRAMME = dg.AssetKey(["pmu", "programme"])
PARTICIPANTS = dg.AssetKey(["pmu", "participants"])
PERFORMANCES = dg.AssetKey(["pmu", "performances"])
RAPPORTS = dg.AssetKey(["pmu", "rapports"])
