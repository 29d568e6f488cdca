"""The code location loads, every asset is documented, and the graph matches its snapshot.

When the graph changes on purpose, regenerate the snapshot with
``UPDATE_SNAPSHOT=1 python -m pytest ingestion_platform_tests/project/test_definitions.py`` and review the
diff of ``snapshots/definitions.json`` like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from ingestion_platform.definitions import defs

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "definitions.json"


def _graph() -> dict:
    d = defs()
    repo = d.get_repository_def()
    graph = repo.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": None
            if partitions is None
            else {
                "type": type(partitions).__name__,
                "timezone": getattr(partitions, "timezone", None),
                "end_offset": getattr(partitions, "end_offset", None),
            },
            "backfill_policy": str(node.backfill_policy.policy_type.value) if node.backfill_policy else None,
            "pool": sorted(node.pools) if hasattr(node, "pools") and node.pools else None,
            "checks": sorted(c.name for c in node.check_keys),
        }
    return {
        "assets": assets,
        "schedules": {
            s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name}
            for s in sorted(repo.schedule_defs, key=lambda s: s.name)
        },
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "resources": sorted(d.resources or {}),
    }


def test_definitions_load_and_resolve() -> None:
    d = defs()
    d.validate_loadable(d)
    repo = d.get_repository_def()
    assert repo.get_job("pmu_day_job") is not None
    assert {"warehouse", "raw_store", "pmu_api"} <= set(d.resources or {})


def test_every_asset_has_group_kinds_owner_description() -> None:
    repo = defs().get_repository_def()
    graph = repo.asset_graph
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        spec = node.to_asset_spec() if hasattr(node, "to_asset_spec") else None
        assert node.group_name and node.group_name != "default", key
        assert node.owners, f"{key} has no owner"
        assert node.kinds, f"{key} has no kinds"
        description = node.description or (spec.description if spec else None)
        assert description and len(description) > 40, f"{key} needs a real description"


def test_pmu_graph_shape() -> None:
    graph = _graph()["assets"]
    assert graph["pmu/participants"]["deps"] == ["pmu/programme"]
    assert graph["pmu/performances"]["deps"] == ["pmu/participants"]
    assert graph["pmu/rapports"]["deps"] == ["pmu/programme"]
    for name in ("pmu/programme", "pmu/participants", "pmu/performances", "pmu/rapports"):
        assert graph[name]["partitions"]["timezone"] == "Europe/Paris"
        assert graph[name]["backfill_policy"] == "MULTI_RUN"
        assert graph[name]["checks"], f"{name} has no checks"


def test_graph_matches_snapshot() -> None:
    current = _graph()
    if os.environ.get("UPDATE_SNAPSHOT") or (not SNAPSHOT.exists() and not os.environ.get("CI")):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), (
        "the asset graph changed: review and regenerate with UPDATE_SNAPSHOT=1"
    )


def test_pmu_assets_use_the_api_pool() -> None:
    from ingestion_platform.defs.pmu.assets import participants, performances, programme, rapports

    for asset in (programme, participants, performances, rapports):
        assert asset.op.pool == "pmu_api"
        assert isinstance(asset.partitions_def, dg.DailyPartitionsDefinition)


def test_every_source_asset_comes_from_its_declaration() -> None:
    """Pool, tags, group, partitions and policy come from the source declaration (lib.source)."""
    from ingestion_platform.lib.source import SOURCES

    defs().get_repository_def()  # every defs module imported: every source declared
    assert {"pmu", "eventbrite", "montreal", "ics"} <= set(SOURCES)
    graph = defs().resolve_asset_graph()
    for source in SOURCES.values():
        for key, asset in source.assets.items():
            node = graph.get(key)
            assert node.group_name == source.group and node.partitions_def == source.partitions, key
            assert node.backfill_policy == source.backfill_policy, key
            assert node.pools == {source.pool}, key
            assert node.tags["source"] == source.name, key
            assert node.metadata["dagster/table_name"] == asset.main.fullname, key
    from ingestion_platform.defs.events.assets import eventbrite, ics_feeds, montreal

    assert {a.op.pool for a in (eventbrite, montreal, ics_feeds)} == {
        "eventbrite_api",
        "montreal_open_data",
        "ics_feeds",
    }
