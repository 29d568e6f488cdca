"""The sync API (FastAPI): carbon syncs (start, poll, history, retry) and the ingestion dashboard.

``make api`` serves it on ``INGESTION_API_PORT``. Every route needs a bearer token of
``INGESTION_API_TOKENS`` (``token:role`` pairs, comma separated; role ``admin`` or ``read``): 401
without a valid token, 403 for a read-only token on a POST. Inputs are validated (422 naming the
field). Responses never carry a secret (job configs are redacted, URLs carry no credentials).

A sync creates its ledger job (``defs.carbon.jobs``), stores an uploaded file raw before anything
parses it, and launches a Dagster run through the webserver's GraphQL API (``DAGSTER_GRAPHQL_URL``),
tagged ``carbon/job_id``: the run is queued and the daemon starts it.
"""

import datetime as dt
import json
import re
import secrets
import uuid
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError

from ingestion_platform.api.launcher import DagsterLauncher, LaunchError
from ingestion_platform.defs.carbon import layouts
from ingestion_platform.defs.carbon import tableau as _tableau_provider  # noqa: F401  (registers it)
from ingestion_platform.defs.carbon.jobs import JobNotFound, SyncJobs
from ingestion_platform.defs.carbon.providers import GENERIC, InvalidProvider, provider_class
from ingestion_platform.defs.carbon.resources import CarbonSettings
from ingestion_platform.defs.carbon.source import DATA_ENTRIES, EMISSION_FACTORS, PARTITIONS, SYNC_JOB_TAG
from ingestion_platform.lib.ledger import ingestion_job, jsonable
from ingestion_platform.lib.settings import SettingError, run_setting
from ingestion_platform.lib.warehouse import Warehouse, get_warehouse

API_TOKENS = run_setting(
    "INGESTION_API_TOKENS",
    "",
    "bearer tokens of the sync API: token:role pairs, comma separated (role admin or read)",
    secret=True,
)
API_PORT = run_setting("INGESTION_API_PORT", 8000, "port of the sync API (make api)")
API_HOST = run_setting("INGESTION_API_HOST", "127.0.0.1", "interface the sync API listens on")
ROLES = ("admin", "read")
MAX_UPLOAD_BYTES = 256 * 1024 * 1024


def parse_tokens(text: str) -> dict[str, str]:
    """``"tok1:admin,tok2:read"`` -> {token: role}; SettingError naming the bad entry (never the token)."""
    tokens: dict[str, str] = {}
    for index, item in enumerate(x.strip() for x in (text or "").split(",")):
        if not item:
            continue
        token, _, role = item.rpartition(":")
        if not token or role not in ROLES:
            raise SettingError(f"INGESTION_API_TOKENS entry {index + 1} is not token:admin or token:read")
        tokens[token] = role
    return tokens


class SyncRequest(BaseModel):
    provider_type: str = Field(min_length=1, max_length=64)
    year: int = Field(ge=1900, le=2200)
    filters: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)


class SyncAccepted(BaseModel):
    job_id: int
    status: str
    status_code: int
    message: str


class IngestRequest(BaseModel):
    partition: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


def _invalid(field: str, message: str, where: str = "body") -> HTTPException:
    return HTTPException(422, detail=[{"loc": [where, field], "msg": message, "type": "value_error"}])


def create_app(
    *,
    warehouse: Warehouse | None = None,
    launcher: DagsterLauncher | None = None,
    tokens: dict[str, str] | None = None,
    carbon: CarbonSettings | None = None,
    upload_dir: Path | None = None,
) -> FastAPI:
    """The application; every argument defaults to the settings, read now."""
    tokens = tokens if tokens is not None else parse_tokens(API_TOKENS.read())
    wh = warehouse or get_warehouse()
    jobs = SyncJobs(wh)
    launch = launcher or DagsterLauncher()
    settings = (carbon or CarbonSettings()).resolved()
    uploads = upload_dir or settings.api_upload_dir()
    app = FastAPI(
        title="ingestion_platform sync API",
        version="1.0.0",
        description="Carbon syncs (data entries and emission factors) and the ingestion dashboard.",
    )
    bearer = HTTPBearer(auto_error=False)

    def role_of(credentials: HTTPAuthorizationCredentials | None) -> str:
        if credentials is None:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        for token, role in tokens.items():
            if secrets.compare_digest(token.encode(), credentials.credentials.encode()):
                return role
        raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    def reader(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        return role_of(credentials)

    def admin(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        if role_of(credentials) != "admin":
            raise HTTPException(403, "this token is read-only")
        return "admin"

    Read = Annotated[str, Depends(reader)]
    Admin = Annotated[str, Depends(admin)]

    # -- helpers ---------------------------------------------------------------------------------
    def check_year(year: int) -> None:
        first = PARTITIONS.start.year
        last = (dt.date.today() + dt.timedelta(days=366)).year - 1
        if not first <= year <= last:
            raise _invalid("year", f"year must be between {first} and {last} (the carbon partitions)")

    def check_provider(module: str, provider_type: str, target: str) -> None:
        try:
            provider_class(module, provider_type, target)
        except InvalidProvider as exc:
            raise _invalid("provider_type", str(exc)) from None

    async def read_request(request: Request) -> tuple[SyncRequest, Path | None]:
        """The JSON body, or a multipart form (provider_type, year, filters, config as JSON, file)."""
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            form = await request.form()
            fields: dict[str, Any] = {k: form.get(k) for k in ("provider_type", "year") if form.get(k) is not None}
            for name in ("filters", "config"):
                raw = form.get(name)
                if isinstance(raw, str) and raw.strip():
                    try:
                        fields[name] = json.loads(raw)
                    except json.JSONDecodeError:
                        raise _invalid(name, "must be a JSON object") from None
            fields.setdefault("provider_type", "csv_upload")
            body = _model(fields)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return body, None
            return body, await store_upload(upload)
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _invalid("body", "must be a JSON object or a multipart form") from None
        return _model(payload), None

    def _model(payload: Any) -> SyncRequest:
        try:
            return SyncRequest.model_validate(payload)
        except ValidationError as exc:  # the field and why, as FastAPI says it
            detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise HTTPException(422, detail=detail) from None

    async def store_upload(upload: Any) -> Path:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.filename or "upload.csv").name)[:120] or "upload.csv"
        folder = uploads / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        body = await upload.read()
        if len(body) > MAX_UPLOAD_BYTES:
            raise _invalid("file", f"larger than {MAX_UPLOAD_BYTES} bytes")
        if not body:
            raise _invalid("file", "empty file")
        temp = folder / f".{name}.part"
        temp.write_bytes(body)
        temp.rename(folder / name)
        return folder / name

    def start(job_id: int) -> JSONResponse:
        job = jobs.get(job_id)
        if job["target_type"] == "data_entries":
            asset, op = DATA_ENTRIES, "carbon__data_entries"
            tags = {
                "dagster/asset_partition_range_start": f"{job['year']}-01-01",
                "dagster/asset_partition_range_end": f"{job['year']}-12-31",
            }
        else:
            asset, op, tags = EMISSION_FACTORS, "carbon__emission_factors", {}
        # a failed sync is retried through /sync/retry (a new job), never by the instance's run retries
        tags = {**tags, SYNC_JOB_TAG: str(job_id), "carbon/module": job["module_id"], "dagster/max_retries": "0"}
        try:
            run_id = launch.launch([asset.path], run_config={"ops": {op: {"config": {"job_id": job_id}}}}, tags=tags)
        except LaunchError as exc:
            jobs.fail(job_id, f"LaunchError: {exc}", 503)
            return JSONResponse(
                status_code=503,
                content={
                    "job_id": job_id,
                    "status": "failed",
                    "status_code": 503,
                    "message": f"run not launched: {exc}",
                },
            )
        jobs.attach_run(job_id, run_id)
        body = SyncAccepted(job_id=job_id, status="pending", status_code=102, message="Sync initiated")
        return JSONResponse(status_code=202, content={**body.model_dump(), "run_id": run_id})

    def create_sync(
        module: str, target: str, factor_type: str | None, body: SyncRequest, file: Path | None, who: str
    ) -> JSONResponse:
        check_year(body.year)
        check_provider(module, body.provider_type, target)
        config = dict(body.config)
        if body.provider_type == "csv_upload":
            if file is None:
                raise _invalid("file", "a csv_upload sync needs a file (multipart field 'file')")
            config["file"] = str(file)
        job_id = jobs.create(
            module_id=module,
            target_type=target,
            provider_type=body.provider_type,
            year=body.year,
            inventory_id=settings.inventory_id(body.year) if target == "data_entries" else None,
            factor_type_id=factor_type,
            filters=body.filters,
            config=config,
            created_by=f"api ({who})",
        )
        return start(job_id)

    def public(job: dict[str, Any]) -> dict[str, Any]:
        meta = job["metadata"]
        return jsonable(
            {
                "job_id": job["id"],
                "status": job["status"],
                "status_code": job["status_code"],
                "message": job["message"],
                "progress": meta.get("progress", {}),
                "inventory_id": job["inventory_id"],
                "module_id": job["module_id"],
                "factor_type_id": job["factor_type_id"],
                "provider_type": job["provider_type"],
                "target_type": job["target_type"],
                "year": job["year"],
                "created_by": job["created_by"],
                "started_at": job["started_at"],
                "completed_at": job["completed_at"],
                "run_id": job["run_id"],
                "retry_of": job["retry_of"],
                "metadata": {k: meta[k] for k in ("filters", "config", "errors") if k in meta},
                "counts": {k: job[k] for k in ("created", "updated", "unchanged", "rejected")},
            }
        )

    def get_job(job_id: int) -> dict[str, Any]:
        try:
            return jobs.get(job_id)
        except JobNotFound:
            raise HTTPException(404, f"no sync job {job_id}") from None

    ModuleId = Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

    # -- carbon syncs ----------------------------------------------------------------------------
    @app.post(
        "/api/v1/sync/data-entries/{module_id}",
        status_code=202,
        response_model=SyncAccepted,
        summary="Start a sync of a module's data entries for a year",
    )
    async def sync_data_entries(module_id: ModuleId, request: Request, who: Admin) -> JSONResponse:
        if module_id not in layouts.MODULES:
            raise _invalid("module_id", f"unknown module; known: {', '.join(layouts.MODULES)}", "path")
        body, file = await read_request(request)
        return create_sync(module_id, "data_entries", None, body, file, who)

    @app.post(
        "/api/v1/sync/factors/{module_id}/{factor_type_id}",
        status_code=202,
        response_model=SyncAccepted,
        summary="Start a sync of emission factors of a factor type",
    )
    async def sync_factors(module_id: ModuleId, factor_type_id: ModuleId, request: Request, who: Admin) -> JSONResponse:
        if module_id not in (*layouts.MODULES, GENERIC):
            raise _invalid("module_id", f"unknown module; known: {', '.join([*layouts.MODULES, GENERIC])}", "path")
        body, file = await read_request(request)
        return create_sync(module_id, "factors", factor_type_id, body, file, who)

    @app.get("/api/v1/sync/status/{job_id}", summary="Status, status code, message and progress of a sync")
    def sync_status(job_id: int, _: Read) -> dict[str, Any]:
        return public(get_job(job_id))

    @app.get("/api/v1/sync/history/{module_id}", summary="A module's syncs, newest first")
    def sync_history(
        module_id: ModuleId, _: Read, provider_type: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 20
    ) -> list[dict[str, Any]]:
        return [public(j) for j in jobs.history(module_id, provider_type=provider_type, limit=limit)]

    @app.post(
        "/api/v1/sync/retry/{job_id}",
        status_code=202,
        response_model=SyncAccepted,
        summary="Retry a failed sync: a new job, linked to it",
    )
    def sync_retry(job_id: int, who: Admin) -> JSONResponse:
        get_job(job_id)
        try:
            retry = jobs.retry(job_id, created_by=f"api ({who}) retry of {job_id}")
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return start(retry)

    # -- the ingestion dashboard ----------------------------------------------------------------
    @app.get("/api/v1/jobs", summary="Ledger jobs of every source, newest first (paginated)")
    def list_jobs(
        _: Read,
        source: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        j = ingestion_job
        where = sa.and_(
            sa.true(), *([j.c.source == source] if source else []), *([j.c.status == status] if status else [])
        )
        total = wh.count(j, where)
        rows = wh.fetch(sa.select(j).where(where).order_by(j.c.id.desc()).limit(limit).offset(offset))
        return jsonable({"total": total, "limit": limit, "offset": offset, "items": rows})

    @app.get("/api/v1/stats", summary="Per source: rows, last status, created/updated/skipped/errors")
    def stats(_: Read) -> dict[str, Any]:
        from ingestion_platform.cli import source_status

        j = ingestion_job
        out = []
        for entry in source_status(wh):
            sums = wh.fetch(
                sa.select(
                    *[
                        sa.func.coalesce(sa.func.sum(j.c[c]), 0).label(c)
                        for c in ("created", "updated", "unchanged", "rejected")
                    ]
                ).where(j.c.source == entry["source"])
            )[0]
            last = entry["last_sync"] or {}
            out.append(
                {
                    "source": entry["source"],
                    "group": entry["group"],
                    "rows": sum(entry["rows"].values()),
                    "tables": entry["rows"],
                    "last_status": last.get("status"),
                    "last_run_id": last.get("run_id"),
                    "last_success_at": entry["last_success_at"],
                    "created": int(sums["created"]),
                    "updated": int(sums["updated"]),
                    "skipped": int(sums["unchanged"]),
                    "errors": int(sums["rejected"]),
                    "dead_letters": entry["dead_letters"],
                }
            )
        return jsonable({"sources": out})

    def ingest_source(name: str, partition: str | None) -> dict[str, Any]:
        from ingestion_platform.lib.source import SOURCES

        if name not in SOURCES:
            raise _invalid("source", f"unknown source; known: {', '.join(SOURCES)}", "path")
        source = SOURCES[name]
        if source.group == "carbon":
            raise _invalid("source", "carbon syncs start through /api/v1/sync/...", "path")
        keys = list(source.assets)
        day = partition or (dt.date.today() - dt.timedelta(days=1)).isoformat()
        if day not in source.partitions.get_partition_keys():
            raise _invalid("partition", f"{day} is not a partition of {name}")
        try:
            run_id = launch.launch([k.path for k in keys], tags={"dagster/partition": day, "ingest/source": name})
        except LaunchError as exc:
            raise HTTPException(503, f"run not launched: {exc}") from None
        return {"source": name, "partition": day, "run_id": run_id, "assets": [k.to_user_string() for k in keys]}

    @app.post("/api/v1/ingest/{source}", status_code=202, summary="Launch a run of a source's assets for a day")
    def ingest(source: str, who: Admin, body: IngestRequest | None = None) -> dict[str, Any]:
        return ingest_source(source, body.partition if body else None)

    @app.post("/api/v1/ingest-all", status_code=202, summary="Launch a run of every (non-carbon) source for a day")
    def ingest_all(who: Admin, body: IngestRequest | None = None) -> dict[str, Any]:
        from ingestion_platform.lib.source import SOURCES

        runs = [ingest_source(n, body.partition if body else None) for n, s in SOURCES.items() if s.group != "carbon"]
        return {"runs": runs}

    return app


def app_factory() -> FastAPI:
    """``uvicorn --factory ingestion_platform.api.app:app_factory``: the definitions first (every source)."""
    from ingestion_platform.cli import _definitions

    _definitions()
    return create_app()


def main() -> None:
    """``make api``: ``.env`` of the working directory first (as the Dagster CLI reads it), then uvicorn."""
    import uvicorn

    from ingestion_platform import local_env

    local_env.load_dotenv()

    uvicorn.run("ingestion_platform.api.app:app_factory", factory=True, host=API_HOST.read(), port=int(API_PORT.read()))


if __name__ == "__main__":
    main()
