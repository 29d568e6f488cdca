"""Resources shared by every source: the warehouse and the raw store."""

import dagster as dg

from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource


@dg.definitions
def platform_resources() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": WarehouseResource(), "raw_store": RawStoreResource()})
