"""Helpers for the PMU end-to-end tests: run the assets, dump tables, build replay directories."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from ingestion_platform.defs.pmu import tables
from ingestion_platform.defs.pmu.assets import participants, performances, programme, rapports
from ingestion_platform.defs.pmu.resources import PmuApi
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, Warehouse, WarehouseResource

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "ingestion_platform" / "defs" / "pmu" / "sample"
SAMPLE_DAY = "2025-03-14"
PMU_ASSETS = [programme, participants, performances, rapports]
ALL_TABLES = [t for t in tables.METADATA.sorted_tables]


def run_pmu(
    *,
    database_url: str,
    data_dir: Path,
    base_url: str,
    partition_key: str | None = SAMPLE_DAY,
    partition_range: tuple[str, str] | None = None,
    selection: Sequence[dg.AssetsDefinition] | None = None,
    run_config: Mapping[str, Any] | None = None,
    with_checks: bool = True,
    max_concurrency: int = 4,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise the PMU assets (and the checks they evaluate in their steps) in process, like one run."""
    assets: list[Any] = list(selection or PMU_ASSETS)
    chosen = dg.AssetSelection.assets(*assets)
    tags = {}
    if partition_range is not None:
        tags = {
            "dagster/asset_partition_range_start": partition_range[0],
            "dagster/asset_partition_range_end": partition_range[1],
        }
        partition_key = None
    return dg.materialize(
        assets,
        selection=chosen if with_checks else chosen.without_checks(),
        partition_key=partition_key,
        tags=tags,
        run_config=dict(run_config or {}),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        resources={
            "pmu_api": PmuApi(
                base_url=base_url,
                max_concurrency=max_concurrency,
                read_timeout_s=1.0,
                connect_timeout_s=1.0,
                max_attempts=6,
                backoff_base_s=0.01,
            ),
            "warehouse": WarehouseResource(database_url=database_url),
            "raw_store": RawStoreResource(data_dir=str(data_dir)),
        },
    )


def reprocess_config(*assets: dg.AssetsDefinition) -> dict[str, Any]:
    return {"ops": {a.op.name: {"config": {"reprocess_from_raw": True}} for a in assets}}


def dump(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """Every PMU table's rows without lineage, sorted: compares two warehouses' contents."""
    out = {}
    warehouse.ensure_tables(ALL_TABLES)
    for table in ALL_TABLES:
        cols = [c for c in table.columns if c.name not in LINEAGE_COLUMNS]
        rows = warehouse.fetch(sa.select(*cols))
        out[table.name] = sorted(
            tuple(json.dumps(_comparable(r[c.name]), sort_keys=True, default=str) for c in cols) for r in rows
        )
    return out


def _comparable(value: Any) -> Any:
    """Datetimes as UTC ISO strings whatever the engine returns (SQLite gives naive UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    return value


def counts(warehouse: Warehouse) -> dict[str, int]:
    warehouse.ensure_tables(ALL_TABLES)
    return {t.name: warehouse.count(t) for t in ALL_TABLES}


def metadata_of(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict[str, Any]:
    """The materialisation metadata of ``asset`` in ``result``, as plain values."""
    events = result.asset_materializations_for_node(asset.op.name)
    assert events, f"{asset.key.to_user_string()} was not materialised"
    return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def copy_day(src_root: Path, dst_root: Path, src: str = "14032025", dst: str = "14032025") -> None:
    """Copy a recorded day into ``dst_root`` under another date (paths and the dates inside)."""
    shift_ms = (_ddmmyyyy(dst) - _ddmmyyyy(src)).days * 86_400_000
    for path in src_root.rglob("*.json"):
        rel = path.relative_to(src_root).as_posix()
        if src not in rel:
            continue
        target = dst_root / rel.replace(src, dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        if shift_ms and rel.endswith(f"programme/{src}.json"):
            payload = _shift_dates(json.loads(path.read_text(encoding="utf-8")), shift_ms)
            target.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        else:
            shutil.copyfile(path, target)


_DATE_KEYS = {"date", "dateReunion", "heureDepart", "dateProgramme"}


def _ddmmyyyy(text: str) -> dt.date:
    return dt.date(int(text[4:]), int(text[2:4]), int(text[:2]))


def _shift_dates(value: Any, shift_ms: int) -> Any:
    if isinstance(value, dict):
        return {
            k: v + shift_ms if k in _DATE_KEYS and isinstance(v, int) else _shift_dates(v, shift_ms)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_shift_dates(v, shift_ms) for v in value]
    return value
