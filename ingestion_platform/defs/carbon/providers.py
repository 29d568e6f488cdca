"""Carbon providers: a registry keyed by (module, provider_type, target_type) and one lifecycle for all.

Adding a provider is one class and one ``register(...)`` line. The lifecycle (template method,
:meth:`Provider.run`):

    job -> processing, validate_connection(), fetch_data(filters) (raw stored first), transform_data(raw),
    load_data(rows), job -> completed (207 when records were rejected) | failed (with the message)

Progress (fetched, transformed, loaded rows) is written to the job's metadata while it runs. The
factory :func:`provider_for_job` rebuilds a provider from a job's record alone (module, provider type,
target type, filters and config in its metadata): that is what a retry uses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ingestion_platform.defs.carbon import layouts, tables
from ingestion_platform.defs.carbon.jobs import SyncJobs
from ingestion_platform.lib.errors import Parsed, RecordError
from ingestion_platform.lib.fetch import FileFetcher, Request
from ingestion_platform.lib.ingest import PartitionLoad
from ingestion_platform.lib.settings import SettingError

PROGRESS_EVERY = 5000


class InvalidProvider(ValueError):
    """No provider for this (module, provider_type, target_type)."""


class ProviderError(RuntimeError):
    """The provider could not do its job; ``status_code`` is the job's (401 credentials, 502 upstream ...)."""

    def __init__(self, message: str, status_code: int = 502) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class SyncSpec:
    """What a provider needs to know about its sync: read from the job's record."""

    job_id: int
    module_id: str
    provider_type: str
    target_type: str
    year: int
    inventory_id: str | None
    factor_type_id: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_job(cls, job: Mapping[str, Any]) -> SyncSpec:
        meta = job.get("metadata") or {}
        return cls(
            job["id"],
            job["module_id"],
            job["provider_type"],
            job["target_type"],
            job["year"],
            job["inventory_id"],
            job.get("factor_type_id"),
            dict(meta.get("filters") or {}),
            dict(meta.get("config") or {}),
        )


@dataclass
class Raw:
    """What fetch_data returns: payloads by request name (already stored raw)."""

    payloads: dict[str, bytes]
    complete: bool = True


class Provider:
    """Base of every provider (see the module docstring). Subclasses implement the four steps."""

    provider_type: ClassVar[str]
    target_type: ClassVar[str]

    def __init__(self, spec: SyncSpec, resources: Mapping[str, Any]) -> None:
        self.spec = spec
        self.resources = resources
        self.fetched = self.transformed = self.loaded = 0

    # -- the lifecycle ----------------------------------------------------------------------------
    def run(
        self, load: PartitionLoad, jobs: SyncJobs, *, run_id: str | None = None, close: bool = True
    ) -> dict[str, Any]:
        """Run the whole sync into ``load`` and (``close``) close the job; re-raises after marking it failed.

        An asset passes ``close=False`` and calls :meth:`close` once its materialisations and checks are
        reported, so the job turns completed when the Dagster run has nothing left to do."""
        self.load, self.jobs = load, jobs
        jobs.start(self.spec.job_id, run_id)
        try:
            self.validate_connection()
            raw = self.fetch_data(self.spec.filters)
            self.report(fetched=self.fetched)
            parsed = self.transform_data(raw)
            self.report(transformed=len(parsed.value))
            result = self.load_data(parsed, complete=raw.complete)
            self.report(loaded=self.loaded)
        except (ProviderError, RecordError, SettingError, OSError, ValueError) as exc:
            code = exc.status_code if isinstance(exc, ProviderError) else 400 if isinstance(exc, RecordError) else 500
            jobs.fail(self.spec.job_id, f"{type(exc).__name__}: {exc}", code)
            raise
        except BaseException as exc:
            jobs.fail(self.spec.job_id, f"{type(exc).__name__}: {exc}", 500)
            raise
        self.result = result
        if close:
            self.close()
        return result

    def close(self) -> None:
        """The job -> completed (207 when records were rejected), with the counts and errors."""
        load, result = self.load, self.result
        rejected = sum(job.counts.rejected for job in load.jobs.values())
        letters = [d["error"] for d in load.dead_letters][:100]
        summary = (
            f"loaded {self.loaded} row(s) (created {result['created']}, updated {result['updated']}, "
            f"unchanged {result['unchanged']}, deleted {result['deleted']}), rejected {rejected}"
        )
        self.jobs.complete(
            self.spec.job_id,
            rejected=rejected,
            summary=summary,
            metadata={**result, "errors": letters, "ledger_job_ids": [j.job_id for j in load.jobs.values()]},
        )

    def fail_after_load(self, exc: BaseException) -> None:
        """The run failed after the load (reporting or checks): the job fails with it."""
        self.jobs.fail(self.spec.job_id, f"{type(exc).__name__}: {exc}", 500)

    def report(self, **progress: int) -> None:
        self.jobs.progress(self.spec.job_id, **progress)

    # -- the steps --------------------------------------------------------------------------------
    def validate_connection(self) -> None:
        raise NotImplementedError

    def fetch_data(self, filters: Mapping[str, Any]) -> Raw:
        raise NotImplementedError

    def transform_data(self, raw: Raw) -> Parsed[list[dict[str, Any]]]:
        raise NotImplementedError

    def load_data(self, parsed: Parsed[list[dict[str, Any]]], *, complete: bool) -> dict[str, Any]:
        raise NotImplementedError


# -- the registry ------------------------------------------------------------------------------------
REGISTRY: dict[tuple[str, str, str], type[Provider]] = {}
GENERIC = "generic"


def register(module: str, provider_type: str, target_type: str) -> Callable[[type[Provider]], type[Provider]]:
    def add(cls: type[Provider]) -> type[Provider]:
        REGISTRY[(module, provider_type, target_type)] = cls
        return cls

    return add


def valid_combinations() -> list[str]:
    return [f"({m}, {p}, {t})" for m, p, t in sorted(REGISTRY)]


def provider_class(module: str, provider_type: str, target_type: str) -> type[Provider]:
    """The provider of this combination (a module without its own falls back to ``generic``)."""
    cls = REGISTRY.get((module, provider_type, target_type)) or REGISTRY.get((GENERIC, provider_type, target_type))
    if cls is None:
        raise InvalidProvider(
            f"no provider for (module {module!r}, provider_type {provider_type!r}, target_type {target_type!r}); "
            f"valid combinations: {', '.join(valid_combinations())}"
        )
    return cls


def provider_for_job(job: Mapping[str, Any], resources: Mapping[str, Any]) -> Provider:
    """Rebuild the provider of a job from its record (what a retry uses)."""
    spec = SyncSpec.of_job(job)
    return provider_class(spec.module_id, spec.provider_type, spec.target_type)(spec, resources)


# -- CSV uploads -------------------------------------------------------------------------------------
class CsvUpload(Provider):
    """A CSV file given by path (``config.file``: an API upload stored raw, or a drop-folder file)."""

    provider_type = "csv_upload"

    def _file(self) -> Path:
        name = self.spec.config.get("file")
        if not name:
            raise RecordError("a csv_upload sync needs a file (config.file)")
        return Path(str(name))

    def validate_connection(self) -> None:
        if self.load.reprocess_from_raw:
            return
        path = self._file()
        if not path.is_file():
            raise ProviderError(f"uploaded file {path.name} is missing", 400)

    def fetch_data(self, filters: Mapping[str, Any]) -> Raw:
        path = self._file()
        request = f"job_{self.spec.job_id}/{path.name}"
        fetcher = FileFetcher(path.parent)
        body = self.load.land(request, lambda: fetcher.fetch(Request(request, path.name)))
        if body is None:
            raise ProviderError(f"uploaded file {path.name} is missing", 400)
        self.fetched = body.count(b"\n")
        return Raw({request: body})


@register("travel", "csv_upload", "data_entries")
@register("headcount", "csv_upload", "data_entries")
@register("energy", "csv_upload", "data_entries")
@register("purchases", "csv_upload", "data_entries")
class CsvEntriesProvider(CsvUpload):
    """Data entries of a module from a CSV file with the module's declared columns."""

    target_type = "data_entries"

    def transform_data(self, raw: Raw) -> Parsed[list[dict[str, Any]]]:
        schema = layouts.MODULES[self.spec.module_id]
        out: Parsed[list[dict[str, Any]]] = Parsed([])
        for request, body in raw.payloads.items():
            name = Path(request).name
            table = layouts.read_module_file(body, name, schema)
            records = layouts.module_records(table, schema)
            self.fetched = len(records.value) + len(records.rejects)
            self.report(fetched=self.fetched)
            ctx = self.context(name, decimal="," if table.delimiter == ";" else None)
            for start in range(0, len(records.value), PROGRESS_EVERY):
                part = layouts.entries_from_records(schema, records.value[start : start + PROGRESS_EVERY], ctx)
                out.value += part.value
                out.rejects += part.rejects
                self.report(transformed=len(out.value))
            self.load.file_rejects(request, records.rejects + out.rejects)
            out.rejects = []
        return out

    def context(self, source_ref: str, *, decimal: str | None = None, day_first: bool = True) -> layouts.EntryContext:
        s = self.spec
        return layouts.EntryContext(
            s.module_id,
            s.inventory_id or "",
            s.year,
            s.provider_type,
            source_ref,
            s.job_id,
            day_first=bool(s.config.get("day_first", day_first)),
            decimal=s.config.get("decimal", decimal),
        )

    def load_data(self, parsed: Parsed[list[dict[str, Any]]], *, complete: bool) -> dict[str, Any]:
        return load_entries(self, parsed.value, complete=complete)


def load_entries(provider: Provider, rows: list[dict[str, Any]], *, complete: bool) -> dict[str, Any]:
    """Load data entries (replacing the synced days of the module and inventory) and the reference rows."""
    s, load = provider.spec, provider.load
    days = set(load.days)
    inside = [r for r in rows if r["activity_date"] in days]
    load_reference(load, s)
    result = load.load(tables.data_entries, inside, scope=[(s.module_id, s.inventory_id)], complete=complete)
    return {**loaded(provider, result), "outside_run_days": len(rows) - len(inside)}


def loaded(provider: Provider, result: Any) -> dict[str, Any]:
    """The figures of a committed load (a ``LoadResult``), counted as the provider's loaded rows."""
    provider.loaded = result.created + result.updated + result.unchanged
    return {k: getattr(result, k) for k in ("created", "updated", "unchanged", "deleted", "received")}


def load_reference(load: PartitionLoad, spec: SyncSpec) -> None:
    """The inventory, module and factor type rows a sync refers to (upserted)."""
    from ingestion_platform.lib.warehouse import Warehouse

    warehouse: Warehouse = load.warehouse
    warehouse.ensure_tables([tables.inventories, tables.modules, tables.factor_types])
    if spec.inventory_id:
        organisation = spec.inventory_id.rsplit("-", 1)[0]
        warehouse.load(tables.inventories, [{"id": spec.inventory_id, "year": spec.year, "organisation": organisation}])
    schema = layouts.MODULES.get(spec.module_id)
    warehouse.load(
        tables.modules, [{"id": spec.module_id, "name": schema.name if schema else spec.module_id}], columns=("name",)
    )
    if spec.factor_type_id:
        warehouse.load(tables.factor_types, [{"id": spec.factor_type_id, "name": spec.factor_type_id}])


@register(GENERIC, "csv_upload", "factors")
class CsvFactorsProvider(CsvUpload):
    """Emission factors from an OEFDB, ADEME Base Carbone or DEFRA flat file (``config.layout`` forces one)."""

    target_type = "factors"

    def transform_data(self, raw: Raw) -> Parsed[list[dict[str, Any]]]:
        out: Parsed[list[dict[str, Any]]] = Parsed([])
        for request, body in raw.payloads.items():
            name = Path(request).name
            layout, table = layouts.read_factor_file(body, name, self.spec.config.get("layout"))
            self.fetched = len(table.rows)
            self.report(fetched=self.fetched)
            parsed, skipped = layouts.factors_from_table(layout, table, self.spec.factor_type_id or GENERIC)
            self.load.job.metadata.update(
                layout=layout.name,
                encoding=table.encoding,
                delimiter=table.delimiter,
                header_line=table.header_line,
                skipped=skipped,
                mojibake_repaired=table.repaired,
            )
            self.load.file_rejects(request, parsed.rejects)
            out.value += parsed.value
        return out

    def load_data(self, parsed: Parsed[list[dict[str, Any]]], *, complete: bool) -> dict[str, Any]:
        load_reference(self.load, self.spec)
        return loaded(self, self.load.load(tables.emission_factors, parsed.value))


def year_days(year: int) -> list[dt.date]:
    first = dt.date(year, 1, 1)
    return [first + dt.timedelta(days=i) for i in range((dt.date(year + 1, 1, 1) - first).days)]
