"""The source declaration: one object per source says everything the platform needs to know about it.

A :class:`Source` names the source (the raw-store folder and the ledger's ``source``), its daily
partitions, backfill policy, Dagster pool, owners, kinds, tags and the unit of its fetches:

``fetch_unit="day"``     one fetch (and one raw partition) per day: the PMU programme of a day.
``fetch_unit="window"``  one fetch for the whole window of the run, rows split per day: the APIs that
                         answer for any range at once (events, and later CRM and carbon).

Whatever the unit, ledger jobs, loads, dead letters and their resolution are per day (see
``lib.ingest``). ``Source.asset(...)`` produces the ``@dg.asset`` arguments of one of its assets
from the table contracts it loads (``lib.contract.TableContract``), so every asset of every source
carries the same group, partitions, policy, pool, owners, kinds, tags, column schema and table name.

Every declaration registers itself in :data:`SOURCES`: the CLI's table counts and the events import
statistics derive from it, so adding a source edits no shared file. See docs/ADDING_A_SOURCE.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.lib.checks import Check, load_checks
from ingestion_platform.lib.contract import TableContract
from ingestion_platform.lib.ingest import table_schema

FETCH_UNITS = ("day", "window")


@dataclass
class SourceAsset:
    """What a source knows of one of its assets: its key and the tables it loads."""

    key: dg.AssetKey
    contracts: tuple[TableContract, ...]
    main: sa.Table
    checks: tuple[Check, ...] = ()


@dataclass
class Source:
    """The declaration of one source (see the module docstring)."""

    name: str
    group: str
    partitions: dg.DailyPartitionsDefinition
    fetch_unit: str
    backfill_policy: dg.BackfillPolicy
    pool: str | None = None
    owners: Sequence[str] = ("team:data-platform",)
    kinds: frozenset[str] = frozenset({"python", "sql"})
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    empty_day_warns: bool = False
    """A day with no row is unusual (PMU: every day has races): it gets a ``day_has_rows`` warning."""
    sparse_days: bool = False
    """Days hold a few records of one fetch (carbon entries by day of activity): a day whose only records
    were rejected is not a failed load (``source_loaded`` passes; ``no_dead_letters`` warns)."""
    assets: dict[dg.AssetKey, SourceAsset] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fetch_unit not in FETCH_UNITS:
            raise ValueError(f"source {self.name}: fetch_unit must be one of {FETCH_UNITS}")
        SOURCES[self.name] = self

    def asset(
        self,
        key: dg.AssetKey | Sequence[str],
        *,
        tables: Iterable[TableContract],
        main: sa.Table | None = None,
        deps: Sequence[Any] = (),
        checks: Iterable[Check] = (),
        **extra: Any,
    ) -> dict[str, Any]:
        """The ``@dg.asset`` keyword arguments of an asset of this source that loads ``tables``.

        ``checks`` (``lib.checks`` builders; those of other assets are ignored) become check specs of
        the asset, evaluated inside its step by ``SourceRun.finish`` after the load, per partition;
        every source asset also gets the platform's ``source_loaded`` check (and ``day_has_rows``
        when ``empty_day_warns``).
        """
        asset_key = dg.AssetKey.from_coercible(key)
        contracts = tuple(tables)
        if not contracts:
            raise ValueError(f"{asset_key.to_user_string()}: an asset of a source loads at least one table")
        shown = main if main is not None else contracts[0].table
        own = [c for c in checks if c.asset == asset_key]  # a source's whole check list may be passed
        every = (
            *load_checks(
                asset=asset_key,
                main=shown.fullname,
                partitions_def=self.partitions,
                empty_day_warns=self.empty_day_warns,
                sparse_days=self.sparse_days,
            ),
            *own,
        )
        names = [c.name for c in every]
        if len(names) != len(set(names)):
            raise ValueError(f"{asset_key.to_user_string()}: two checks share a name in {names}")
        self.assets[asset_key] = SourceAsset(asset_key, contracts, shown, every)
        args: dict[str, Any] = {
            "key": asset_key,
            "group_name": self.group,
            "partitions_def": self.partitions,
            "backfill_policy": self.backfill_policy,
            "pool": self.pool,
            "owners": list(self.owners),
            "kinds": set(self.kinds),
            "tags": {"source": self.name, **self.tags},
            "metadata": {
                "source": dg.MetadataValue.text(self.name),
                "fetch_unit": dg.MetadataValue.text(self.fetch_unit),
                "tables": dg.MetadataValue.text(", ".join(c.name for c in contracts)),
                "load_modes": dg.MetadataValue.json({c.name: c.mode for c in contracts}),
                "dagster/column_schema": table_schema(shown),
                "dagster/table_name": shown.fullname,
            },
        }
        args["check_specs"] = [c.spec() for c in every]
        if deps:
            args["deps"] = list(deps)
        args.update(extra)
        return args

    def contracts_of(self, key: dg.AssetKey) -> tuple[TableContract, ...]:
        return self.assets[key].contracts

    def tables(self) -> list[TableContract]:
        """Every table contract of the source's assets (one per table, first declared wins)."""
        seen: dict[str, TableContract] = {}
        for asset in self.assets.values():
            for contract in asset.contracts:
                seen.setdefault(contract.name, contract)
        return list(seen.values())


#: every declared source by name, in declaration order (filled as the defs modules are imported)
SOURCES: dict[str, Source] = {}


def source_of_asset(key: dg.AssetKey) -> Source | None:
    for source in SOURCES.values():
        if key in source.assets:
            return source
    return None
