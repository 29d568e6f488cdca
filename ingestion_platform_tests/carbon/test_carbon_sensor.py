"""The upload folder sensor: a dropped CSV becomes a sync job (file stored raw first) and one run, once."""

from pathlib import Path

import dagster as dg

from ingestion_platform.defs.carbon.jobs import SyncJobs
from ingestion_platform.defs.carbon.resources import CarbonSettings
from ingestion_platform.defs.carbon.sensors import carbon_upload_sensor
from ingestion_platform.lib.warehouse import WarehouseResource, get_warehouse


def test_a_drop_becomes_one_job_and_run(sqlite_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INGESTION_DATA_DIR", str(tmp_path / "data"))
    drop = tmp_path / "drop"
    (drop / "headcount" / "2024").mkdir(parents=True)
    (drop / "factors" / "energy").mkdir(parents=True)
    (drop / "rockets" / "2024").mkdir(parents=True)
    (drop / "headcount" / "2024" / "hc.csv").write_text("date,department,fte\n2024-01-02,Ops,2\n")
    (drop / "factors" / "energy" / "defra.csv").write_text(
        "ID,Level 1,UOM,GHG/Unit,GHG Conversion Factor 2024\n1,Fuels,kWh,kg CO2e,0.2\n"
    )
    (drop / "rockets" / "2024" / "x.csv").write_text("a\n1\n")
    (drop / "headcount" / "2024" / ".partial.csv").write_text("date\n")
    resources = {
        "warehouse": WarehouseResource(database_url=sqlite_url),
        "carbon": CarbonSettings(upload_dir=str(drop)),
    }
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = carbon_upload_sensor(context)
        cursor = context.cursor
    requests = sorted(result, key=lambda r: r.job_name)
    assert [r.job_name for r in requests] == ["carbon_data_entries_sync", "carbon_factors_sync"]
    jobs = SyncJobs(get_warehouse(sqlite_url))
    entries = jobs.get(int(requests[0].tags["carbon/job_id"]))
    assert (entries["module_id"], entries["year"], entries["status"]) == ("headcount", 2024, "pending")
    assert requests[0].tags["dagster/asset_partition_range_end"] == "2024-12-31"
    copy = Path(entries["metadata"]["config"]["file"])
    assert copy.is_relative_to(tmp_path / "data" / "uploads" / "carbon") and copy.read_text().startswith("date,")
    factors = jobs.get(int(requests[1].tags["carbon/job_id"]))
    assert (factors["target_type"], factors["factor_type_id"]) == ("factors", "energy")
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor) as context:
        again = carbon_upload_sensor(context)
    assert isinstance(again, dg.SkipReason) and "no new file" in again.skip_message
