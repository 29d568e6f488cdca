"""The carbon tables (namespace ``carbon``) and their load contracts.

* ``inventories``: one per organisation and year (``id`` = ``<organisation>-<year>``).
* ``modules``: the inventory's modules (travel, headcount, energy, purchases); ``last_sync_status``
  (provider, status, last_run, last_job_id) is written by every sync so a UI badge needs no history query.
* ``factor_types``: the families of emission factors (generic, travel, energy ...).
* ``data_entries``: one activity record of a module, dated (``activity_date`` is the day partition).
* ``emission_factors``: one factor, keyed by ``factor_key`` (a hash of the natural key
  factor_type, activity_id, source, region, year, unit, name, lca_activity: the OEFDB ``id`` alone
  repeats 393 times, and even id+source+region+year+unit repeats).
* ``data_ingestion_jobs``: the carbon side of a sync job. The job itself is a row of the platform
  ledger ``platform.ingestion_job`` (same ``id``: status, message, metadata, started/finished, retry_of);
  this companion table holds what only a carbon sync has (inventory, module, factor type, provider
  type, target type, year, status code, created_by). ``defs.carbon.jobs.SyncJobs`` reads both as the
  plan's one record.
* ``footprint``: kg CO2e per data entry (the entry times its matching factor).
"""

from __future__ import annotations

import sqlalchemy as sa

from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.warehouse import lineage_columns

METADATA = sa.MetaData(schema="carbon")

inventories = sa.Table(
    "inventories",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True, comment="<organisation>-<year>"),
    sa.Column("year", sa.Integer, nullable=False, comment="inventory (reporting) year"),
    sa.Column("organisation", sa.Text, nullable=False, comment="CARBON_ORGANISATION"),
    *lineage_columns(),
)

modules = sa.Table(
    "modules",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True, comment="module id: travel, headcount, energy, purchases"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column(
        "last_sync_status",
        sa.JSON,
        comment="{provider, status, status_code, last_run, last_job_id, message} of the latest sync",
    ),
    *lineage_columns(),
)

factor_types = sa.Table(
    "factor_types",
    METADATA,
    sa.Column("id", sa.Text, primary_key=True, comment="factor type id: generic, travel, energy ..."),
    sa.Column("name", sa.Text, nullable=False),
    *lineage_columns(),
)

data_entries = sa.Table(
    "data_entries",
    METADATA,
    sa.Column("module_id", sa.Text, primary_key=True),
    sa.Column("inventory_id", sa.Text, primary_key=True),
    sa.Column("activity_date", sa.Date, primary_key=True, comment="day of the activity (the partition day)"),
    sa.Column(
        "entry_key",
        sa.Text,
        primary_key=True,
        comment="the record's id column when the module declares one, else a hash of its fields (#n for repeats)",
    ),
    sa.Column("year", sa.Integer, nullable=False, comment="inventory year"),
    sa.Column("activity", sa.Text, nullable=False, comment="what was done, e.g. flight economy long_haul"),
    sa.Column("factor_id", sa.Text, comment="emission factor activity id the entry is priced with"),
    sa.Column("quantity", sa.Float, nullable=False, comment="amount of activity, in unit"),
    sa.Column("unit", sa.Text, nullable=False, comment="unit of quantity (pkm, kwh, fte, eur ...)"),
    sa.Column("fields", sa.JSON, nullable=False, comment="the module's fields, as normalised"),
    sa.Column("provider_type", sa.Text, nullable=False, comment="csv_upload | tableau_api"),
    sa.Column("source_ref", sa.Text, comment="file name or Tableau view the record came from"),
    sa.Column("source_line", sa.Integer, comment="line of the record in that file / export"),
    sa.Column("sync_job_id", sa.Integer, comment="ledger job id of the sync that loaded it"),
    *lineage_columns(),
)

emission_factors = sa.Table(
    "emission_factors",
    METADATA,
    sa.Column("factor_type_id", sa.Text, primary_key=True),
    sa.Column("factor_key", sa.String(32), primary_key=True, comment="sha256 prefix of the natural key"),
    sa.Column("activity_id", sa.Text, nullable=False, comment="OEFDB id / ADEME Identifiant / DEFRA ID or levels"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("category", sa.Text),
    sa.Column("value", sa.Float, nullable=False, comment="kg CO2e per unit"),
    sa.Column("unit", sa.Text, nullable=False, comment="as published, e.g. kg-CO2e/pkm, kgCO2e/kWh"),
    sa.Column("per_unit", sa.Text, nullable=False, comment="the activity unit, normalised (pkm, kwh, t ...)"),
    sa.Column("uncertainty", sa.Float, comment="percent, when published"),
    sa.Column("source", sa.Text, nullable=False, comment="publisher: BEIS, ADEME, EPA ..."),
    sa.Column("region", sa.Text, nullable=False, comment="'' when not published"),
    sa.Column("year", sa.Integer, nullable=False, comment="year the factor is published for"),
    sa.Column("lca_activity", sa.Text, nullable=False, comment="life-cycle scope ('' when not published)"),
    sa.Column("valid_from", sa.Date),
    sa.Column("valid_to", sa.Date),
    sa.Column("layout", sa.Text, nullable=False, comment="oefdb | ademe | defra"),
    sa.Column("source_ref", sa.Text, comment="file the factor came from"),
    sa.Column("source_line", sa.Integer),
    *lineage_columns(),
)

data_ingestion_jobs = sa.Table(
    "data_ingestion_jobs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False, comment="= platform.ingestion_job.id"),
    sa.Column("inventory_id", sa.Text),
    sa.Column("module_id", sa.Text, nullable=False),
    sa.Column("factor_type_id", sa.Text),
    sa.Column("provider_type", sa.Text, nullable=False, comment="csv_upload | tableau_api"),
    sa.Column("target_type", sa.Text, nullable=False, comment="data_entries | factors"),
    sa.Column("year", sa.Integer),
    sa.Column("status_code", sa.Integer, nullable=False, comment="102 pending/processing, 200, 207, 4xx/5xx"),
    sa.Column("created_by", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Index("ix_carbon_jobs_module", "module_id", "id"),
)

footprint = sa.Table(
    "footprint",
    METADATA,
    sa.Column("module_id", sa.Text, primary_key=True),
    sa.Column("inventory_id", sa.Text, primary_key=True),
    sa.Column("activity_date", sa.Date, primary_key=True),
    sa.Column("entry_key", sa.Text, primary_key=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("activity", sa.Text, nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("factor_type_id", sa.Text, comment="NULL: no matching factor"),
    sa.Column("factor_key", sa.String(32)),
    sa.Column("factor_value", sa.Float, comment="kg CO2e per unit"),
    sa.Column("kg_co2e", sa.Float, comment="quantity x factor; NULL without a factor"),
    *lineage_columns(),
)

REFERENCE_LOAD = (TableContract(inventories), TableContract(modules, columns=("name",)), TableContract(factor_types))
# A year re-synced replaces exactly its rows: the window is the run's days, scoped to the module and inventory.
DATA_ENTRIES_LOAD = (
    TableContract(
        data_entries, "replace_window", day_column="activity_date", scope_columns=("module_id", "inventory_id")
    ),
)
# Factors are reference data: upserted by natural key, never deleted by a load (an entry priced last
# year keeps its factor when this year's file drops it).
FACTORS_LOAD = (TableContract(emission_factors),)
FOOTPRINT_LOAD = (TableContract(footprint, "replace_window", day_column="activity_date"),)
