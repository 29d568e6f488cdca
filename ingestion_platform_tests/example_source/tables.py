"""The example tables (namespace ``example``) and the loading contract of each asset's tables."""

from __future__ import annotations

import sqlalchemy as sa

from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.warehouse import lineage_columns

METADATA = sa.MetaData(schema="example")
CELSIUS = sa.Numeric(4, 1)

station = sa.Table(
    "station",
    METADATA,
    sa.Column("station_id", sa.String(16), primary_key=True, comment="Station code as the API writes it"),
    sa.Column("name", sa.String(60), nullable=False, comment="Station name"),
    *lineage_columns(),
    comment="One row per weather station (a dimension: spans days, never deleted).",
)

observation = sa.Table(
    "observation",
    METADATA,
    sa.Column("station_id", sa.String(16), primary_key=True, comment="example.station key"),
    sa.Column("observed_on", sa.Date, primary_key=True, comment="Day of the observation (UTC): the partition day"),
    sa.Column("temp_min_c", CELSIUS, comment="Minimum temperature, degrees Celsius; NULL when not measured"),
    sa.Column("temp_max_c", CELSIUS, comment="Maximum temperature, degrees Celsius; NULL when not measured"),
    *lineage_columns(),
    comment="One row per station and day.",
)

rain = sa.Table(
    "rain",
    METADATA,
    sa.Column("network", sa.String(32), primary_key=True, comment="Gauge network: the name of its export file"),
    sa.Column("gauge_id", sa.String(16), primary_key=True, comment="Gauge code inside the network"),
    sa.Column("measured_on", sa.Date, primary_key=True, comment="Day of the measurement: the partition day"),
    sa.Column("rain_mm", sa.Numeric(6, 1), comment="Rainfall, millimetres; NULL when the gauge had no reading"),
    sa.Column("remark", sa.String(60), comment="Free text of the network's operator"),
    *lineage_columns(),
    comment="One row per gauge and day, from the networks' daily CSV exports.",
)

# Observations: a day's rows are replaced after a complete fetch; stations are upserted, never deleted.
OBSERVATIONS_LOAD = (
    TableContract(observation, "replace_window", day_column="observed_on"),
    TableContract(station),
)
# Rain: a load covers the networks whose export was read (scope), so a network that has not dropped
# its file yet keeps its rows.
RAIN_LOAD = (TableContract(rain, "replace_window", day_column="measured_on", scope_columns=("network",)),)
