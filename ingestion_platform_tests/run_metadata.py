"""Read a run's per-partition Dagster metadata and check results back as run totals (test helper)."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

#: figures each partition reports for its own day; the run's total is their sum
SUMMED = ("created", "updated", "unchanged", "deleted", "rejected", "dagster/row_count")
#: lists a window-wide unit repeats on each of its days; the run's list is their union, in order
MERGED = ("dead_letters", "pending", "dead_letters_resolved", "failures", "warning_sample")


def plain(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def per_partition(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict[str | None, dict[str, Any]]:
    """Each materialised partition's own metadata, as plain values."""
    events = result.asset_materializations_for_node(asset.op.name)
    assert events, f"{asset.key.to_user_string()} was not materialised"
    return {e.partition: plain(e.metadata) for e in events}


def run_metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict[str, Any]:
    """The run's metadata of ``asset``: each partition's figures summed, lists merged, ``partitions``
    counted; other entries as the last partition shows them."""
    parts = list(per_partition(result, asset).values())
    out: dict[str, Any] = dict(parts[-1])
    for key in SUMMED:
        if any(key in p for p in parts):
            out[key] = sum(int(p.get(key, 0)) for p in parts)
    out["warnings"] = max(int(p.get("warnings", 0)) for p in parts)  # counted per fetch unit, repeated per day
    for key in MERGED:
        seen: dict[str, Any] = {}
        for p in parts:
            for item in p.get(key, []):
                seen.setdefault(json.dumps(item, sort_keys=True, default=str), item)
        if seen:
            out[key] = list(seen.values())
        else:
            out.pop(key, None)
    tables: dict[str, dict[str, int]] = {}
    for p in parts:
        for name, figures in (p.get("tables") or {}).items():
            entry = tables.setdefault(name, dict.fromkeys(figures, 0))
            for k, v in figures.items():
                entry[k] = entry.get(k, 0) + v
    out["tables"] = tables
    out["partitions"] = len(parts)
    return out


def checks_passed(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    """Per (asset, check): passed on every partition it was evaluated for."""
    out: dict[tuple[str, str], bool] = {}
    for e in result.get_asset_check_evaluations():
        key = (e.asset_key.to_user_string(), e.check_name)
        out[key] = out.get(key, True) and e.passed
    return out
