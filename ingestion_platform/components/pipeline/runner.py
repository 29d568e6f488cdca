"""One run of one stream: extract (landed raw) -> transform -> schema policy -> loads, with the ledger,
dead letters, checks and the Dagster metadata (rows in and out per step, preview, column types,
null counts).

State kept between runs lives in ``platform.pipeline_state`` (one row per stream): the output schema
(what ``freeze``/``discard`` compare with when the stream declares no ``columns``) and the
``incremental`` cursor.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from ingestion_platform.components.pipeline import schema
from ingestion_platform.components.pipeline.extract import (
    ROW,
    Batch,
    Landing,
    PipelineError,
    Window,
    describe,
    extract_batches,
)
from ingestion_platform.components.pipeline.load import WarehouseLoad, parquet_load, s3_load
from ingestion_platform.components.pipeline.transform import StepCounter, apply_steps, arrow_type
from ingestion_platform.lib.errors import RecordError
from ingestion_platform.lib.ledger import Ledger
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import Warehouse

MAX_LETTERS = 1_000
PREVIEW_ROWS = 10

state_table = sa.Table(
    "pipeline_state",
    sa.MetaData(schema="platform"),
    sa.Column("asset_key", sa.Text, primary_key=True, comment="the stream's asset key"),
    sa.Column("columns", sa.JSON, comment="output column -> Arrow type, as first loaded (schema policy)"),
    sa.Column("cursor", sa.JSON, comment="incremental: the largest cursor value loaded"),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


@dataclass
class StreamRun:
    pipeline: str
    stream: schema.Stream
    asset_key: str
    base: Path
    warehouse: Warehouse
    raw_store: RawStore
    run_id: str | None
    partition_key: str | None
    window: tuple[dt.date, dt.date] | None
    replay: bool = False
    log: Any = None
    counters: list[StepCounter] = field(default_factory=list)
    rejected: int = 0
    letters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"pipeline_{self.pipeline}__{self.stream.name}"[:64]

    @property
    def raw_partition(self) -> str:
        return self.partition_key or "unpartitioned"

    # -- state --------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        self.warehouse.ensure_tables([state_table])
        rows = self.warehouse.fetch(sa.select(state_table).where(state_table.c.asset_key == self.asset_key))
        return rows[0] if rows else {}

    def _save_state(self, **values: Any) -> None:
        with self.warehouse.engine.begin() as conn:
            found = conn.execute(sa.select(state_table.c.asset_key).where(state_table.c.asset_key == self.asset_key))
            now = {"updated_at": dt.datetime.now(dt.UTC), **values}
            if found.first() is None:
                conn.execute(sa.insert(state_table).values(asset_key=self.asset_key, **now))
            else:
                conn.execute(sa.update(state_table).where(state_table.c.asset_key == self.asset_key).values(**now))

    # -- rejects --------------------------------------------------------------------------------------
    def reject(self, request: str, row: int | None, column: str, value: Any, reason: str, record: Any) -> None:
        """One record refused: a dead letter naming the file or page, the row and the field."""
        self.rejected += 1
        where = f"row {row}" if row is not None else "a row"
        error = RecordError(
            f"value {value!r} {reason}",
            request=f"{self.source}/{self.raw_partition}/{request}",
            record=where,
            field=column,
        )
        if len(self.letters) < MAX_LETTERS:
            name = f"{request}__row_{row}"
            record = {k: v for k, v in (record or {}).items() if k != ROW} if isinstance(record, dict) else record
            self.raw_store.dead_letter(
                self.source,
                self.raw_partition,
                name,
                error,
                payload=json.dumps(record, default=str, ensure_ascii=False).encode(),
                context={"asset_key": self.asset_key, "field": column, "row": row},
                origin=request,
            )
            self.letters.append({"request": request, "row": row, "field": column, "error": str(error)})

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> tuple[dict[str, Any], list[dg.AssetCheckResult]]:
        stream = self.stream
        ledger = Ledger(self.warehouse)
        state = self._state()
        mode = stream.mode or "append"
        cursor_since = self._cursor_since(state.get("cursor")) if mode == "incremental" else None
        window = Window(self.partition_key, *(self.window or (None, None)), cursor=cursor_since)
        loads = self._loads(mode)
        with ledger.job(
            source=self.source,
            asset_key=self.asset_key,
            partition_key=self.partition_key,
            run_id=self.run_id,
            provider="raw store replay" if self.replay else describe(stream.source, self.base),
            target=", ".join(load.name for load in loads),
            metadata={
                "pipeline": self.pipeline,
                "stream": stream.name,
                "mode": mode,
                "reprocess_from_raw": self.replay,
            },
        ) as job:
            landing = Landing(self.raw_store, self.source, self.raw_partition, self.asset_key, replay=self.replay)
            extract_counter = StepCounter(f"extract {stream.source.type}")
            self.counters.append(extract_counter)

            def extract_reject(*args: Any) -> None:
                extract_counter.rejected += 1
                self.reject(*args)

            batches = self._counted_extract(
                extract_batches(
                    stream.source, landing, window, base=self.base, warehouse=self.warehouse, reject=extract_reject
                ),
                extract_counter,
            )
            decimal = getattr(stream.source, "decimal", "auto")
            batches = apply_steps(list(stream.transform or []), batches, self.reject, self.counters, decimal)
            if mode == "incremental" and cursor_since is not None:
                batches = self._after_cursor(batches, cursor_since)
            known = self._known_columns(state)
            policy = stream.schema_policy or "evolve"
            out_schema: pa.Schema | None = None
            track = {stream.cursor.column} if mode == "incremental" and stream.cursor else set()
            stats = OutputStats(stream.checks or [], track=track)
            try:
                for batch in batches:
                    data = self._conform(batch.data, known, policy)
                    if out_schema is None:
                        out_schema = data.schema
                        known = known if known is not None else {f.name: f.type for f in data.schema}
                    elif data.schema != out_schema:
                        data = _unify(data, out_schema)
                    stats.add(data)
                    for load in loads:
                        load.write(data)
                results = [load.close() for load in loads]
            except BaseException:
                for load in loads:
                    load.abort()
                raise
            for result in results:
                job.loaded(result)
            for letter in self.letters[:100]:
                job.rejected(letter["error"])
            if self.rejected > len(self.letters[:100]):
                job.counts.rejected += self.rejected - len(self.letters[:100])
            steps = [c.as_dict() for c in self.counters]
            job.metadata["steps"] = steps
            job.metadata["landed"] = landing.landed[:200]
            updates: dict[str, Any] = {}
            if out_schema is not None and (state.get("columns") is None or policy == "evolve"):
                updates["columns"] = {**(state.get("columns") or {}), **{f.name: str(f.type) for f in out_schema}}
            if mode == "incremental" and stats.cursor_max(stream.cursor.column) is not None:  # type: ignore[union-attr]
                updates["cursor"] = _json_value(stats.cursor_max(stream.cursor.column))  # type: ignore[union-attr]
            if updates:
                self._save_state(**updates)
            job_id = job.job_id
        checks = stats.evaluate(self.window[1] if self.window else None)
        return self._metadata(steps, results, stats, out_schema, job_id, landing), checks

    def _counted_extract(self, batches: Iterator[Batch], counter: StepCounter) -> Iterator[Batch]:
        for batch in batches:
            counter.rows_in += batch.data.num_rows
            counter.rows_out += batch.data.num_rows
            yield batch

    def _loads(self, mode: str) -> list[Any]:
        stream, out = self.stream, []
        common = {"mode": mode, "key": stream.key, "partition": self.partition_key, "run_id": self.run_id}
        for target in stream.targets:
            if isinstance(target, schema.PostgresLoad):
                out.append(
                    WarehouseLoad(
                        target, self.warehouse, evolve=(stream.schema_policy or "evolve") == "evolve", **common
                    )
                )
            elif isinstance(target, schema.ParquetLoad):
                out.append(parquet_load(target, **common))
            else:
                out.append(s3_load(target, **common))
        return out

    # -- incremental --------------------------------------------------------------------------------
    def _cursor_since(self, last: Any) -> Any:
        cursor = self.stream.cursor
        assert cursor is not None
        if last is None:
            return cursor.start
        overlap = cursor.overlap
        if isinstance(last, (int, float)) and isinstance(overlap, (int, float)):
            return last - overlap
        moment = _moment(last)
        if moment is None:
            return last
        delta = (
            schema.parse_duration(str(overlap))
            if not isinstance(overlap, (int, float))
            else dt.timedelta(seconds=overlap)
        )
        return moment - delta

    def _after_cursor(self, batches: Iterator[Batch], since: Any) -> Iterator[Batch]:
        column = self.stream.cursor.column  # type: ignore[union-attr]
        counter = StepCounter(f"incremental {column} >= {since}")
        self.counters.append(counter)
        for batch in batches:
            counter.rows_in += batch.data.num_rows
            if column not in batch.data.schema.names:
                raise PipelineError(f"cursor.column {column!r} is not an output column")
            kind = batch.data.schema.field(column).type
            value = _moment(since) if (pa.types.is_timestamp(kind) or pa.types.is_date(kind)) else since
            data = batch.data.filter(pc.greater_equal(batch.data.column(column), pa.scalar(value).cast(kind)))
            counter.rows_out += data.num_rows
            yield Batch(batch.request, data)

    # -- schema policy ------------------------------------------------------------------------------
    def _known_columns(self, state: dict[str, Any]) -> dict[str, pa.DataType] | None:
        if self.stream.columns is not None:
            return {name: arrow_type(kind) for name, kind in self.stream.columns.items()}
        stored = state.get("columns")
        if not stored:
            return None
        return {name: _type_from_text(kind) for name, kind in stored.items()}

    def _conform(self, data: pa.RecordBatch, known: dict[str, pa.DataType] | None, policy: str) -> pa.RecordBatch:
        data = data.select([n for n in data.schema.names if not n.startswith("__")])
        if known is None:
            return _no_null_type(data)
        names = data.schema.names
        new = [n for n in names if n not in known]
        gone = [n for n in known if n not in names]
        changed = [n for n in names if n in known and not _fits(data.schema.field(n).type, known[n])]
        if policy == "freeze" and (new or gone or changed):
            parts = [
                f"new column(s) {new}" if new else "",
                f"missing column(s) {gone}" if gone else "",
                f"changed type(s) {[f'{n}: {known[n]} -> {data.schema.field(n).type}' for n in changed]}"
                if changed
                else "",
            ]
            raise PipelineError(
                f"stream {self.stream.name}: schema_policy freeze refuses the drift: "
                + "; ".join(p for p in parts if p)
            )
        arrays, fields = [], []
        for name, kind in known.items():
            if name in names:
                column = data.column(name)
                if column.type != kind:
                    try:
                        column = pc.cast(column, kind)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise PipelineError(
                            f"stream {self.stream.name}: column {name!r} is {column.type}, "
                            f"known as {kind}, and cannot be cast: {exc}"
                        ) from None
                arrays.append(column)
            else:
                arrays.append(pa.nulls(data.num_rows, kind))
            fields.append(pa.field(name, kind))
        if policy == "evolve":
            for name in new:
                column = data.column(name)
                column = pc.cast(column, pa.string()) if pa.types.is_null(column.type) else column
                arrays.append(column)
                fields.append(pa.field(name, column.type))
                known[name] = column.type
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))

    # -- metadata -----------------------------------------------------------------------------------
    def _metadata(
        self,
        steps: list[dict[str, Any]],
        results: list[Any],
        stats: OutputStats,
        out_schema: pa.Schema | None,
        job_id: int,
        landing: Landing,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "dagster/row_count": dg.MetadataValue.int(stats.rows),
            "rows_in": dg.MetadataValue.int(steps[0]["rows_in"] if steps else 0),
            "rows_out": dg.MetadataValue.int(stats.rows),
            "rejected": dg.MetadataValue.int(self.rejected),
            "steps": dg.MetadataValue.json(steps),
            "loads": dg.MetadataValue.json([r.as_dict() for r in results]),
            "null_counts": dg.MetadataValue.json(stats.nulls),
            "ledger_job_id": dg.MetadataValue.int(job_id),
            "raw_payloads": dg.MetadataValue.int(len(landing.landed)),
        }
        if out_schema is not None:
            metadata["column_types"] = dg.MetadataValue.json({f.name: str(f.type) for f in out_schema})
            metadata["dagster/column_schema"] = dg.TableSchema(
                columns=[dg.TableColumn(f.name, str(f.type)) for f in out_schema]
            )
        if stats.preview:
            metadata["preview"] = dg.MetadataValue.md(_markdown(stats.preview))
        if self.letters:
            metadata["dead_letters"] = dg.MetadataValue.json(self.letters[:50])
        return metadata


def _moment(value: Any) -> dt.datetime | dt.date | None:
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    if isinstance(value, str):
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        except ValueError:
            return None
    return None


def _json_value(value: Any) -> Any:
    return (
        value.isoformat()
        if isinstance(value, (dt.date, dt.datetime))
        else (float(value) if hasattr(value, "as_integer_ratio") and not isinstance(value, int) else value)
    )


_TEXT_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "date32[day]": pa.date32(),
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
}


def _type_from_text(text: str) -> pa.DataType:
    if text in _TEXT_TYPES:
        return _TEXT_TYPES[text]
    if text.startswith("decimal128("):
        precision, scale = (int(p) for p in text[len("decimal128(") : -1].split(","))
        return pa.decimal128(precision, scale)
    try:
        return pa.type_for_alias(text)
    except ValueError:
        return pa.string()


def _fits(actual: pa.DataType, known: pa.DataType) -> bool:
    return actual == known or pa.types.is_null(actual) or (pa.types.is_integer(actual) and pa.types.is_integer(known))


def _no_null_type(data: pa.RecordBatch) -> pa.RecordBatch:
    if not any(pa.types.is_null(f.type) for f in data.schema):
        return data
    arrays = [pc.cast(c, pa.string()) if pa.types.is_null(c.type) else c for c in data.columns]
    return pa.RecordBatch.from_arrays(arrays, names=data.schema.names)


def _unify(data: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for f in target:
        arrays.append(
            pc.cast(data.column(f.name), f.type) if f.name in data.schema.names else pa.nulls(data.num_rows, f.type)
        )
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _markdown(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ["" if row[c] is None else str(row[c]).replace("|", "\\|").replace("\n", " ")[:60] for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


class OutputStats:
    """What the checks and the metadata need, gathered batch by batch over the loaded output."""

    def __init__(self, checks: list[schema.CheckSpec], track: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.checks = checks
        self.rows = 0
        self.nulls: dict[str, int] = {}
        self.preview: list[dict[str, Any]] = []
        self.maxima: dict[str, Any] = {}
        self.seen: dict[str, set[tuple[Any, ...]]] = {}
        self.duplicates: dict[str, list[Any]] = {}
        self.refused: dict[str, list[Any]] = {}
        self.refused_count: dict[str, int] = {}
        self._max_columns = {c.freshness.column for c in checks if c.freshness is not None} | set(track)

    def add(self, data: pa.RecordBatch) -> None:
        self.rows += data.num_rows
        for name in data.schema.names:
            self.nulls[name] = self.nulls.get(name, 0) + data.column(name).null_count
        if len(self.preview) < PREVIEW_ROWS:
            self.preview += data.slice(0, PREVIEW_ROWS - len(self.preview)).to_pylist()
        for name in self._max_columns:
            if name in data.schema.names and data.num_rows:
                value = pc.max(data.column(name)).as_py()
                if value is not None and (self.maxima.get(name) is None or value > self.maxima[name]):
                    self.maxima[name] = value
        for check in self.checks:
            if check.unique is not None:
                seen = self.seen.setdefault(check.check_name, set())
                sample = self.duplicates.setdefault(check.check_name, [])
                missing = [c for c in check.unique if c not in data.schema.names]
                if missing:
                    continue
                for key in zip(*(data.column(c).to_pylist() for c in check.unique), strict=True):
                    if key in seen:
                        if len(sample) < 20:
                            sample.append(list(key))
                        self.refused_count[check.check_name] = self.refused_count.get(check.check_name, 0) + 1
                    seen.add(key)
            if check.accepted_values is not None and check.accepted_values.column in data.schema.names:
                column = data.column(check.accepted_values.column)
                allowed = (
                    pa.array(check.accepted_values.values).cast(column.type)
                    if len(check.accepted_values.values)
                    else pa.array([], column.type)
                )
                bad = data.filter(pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, allowed))))
                name = check.check_name
                self.refused_count[name] = self.refused_count.get(name, 0) + bad.num_rows
                sample = self.refused.setdefault(name, [])
                for value in bad.column(check.accepted_values.column).to_pylist():
                    if len(sample) >= 20:
                        break
                    if value not in sample:
                        sample.append(value)

    def cursor_max(self, column: str) -> Any:
        return self.maxima.get(column)

    def evaluate(self, end: dt.date | None) -> list[dg.AssetCheckResult]:
        results = []
        for check in self.checks:
            passed, metadata = self._one(check, end)
            results.append(
                dg.AssetCheckResult(
                    check_name=check.check_name,
                    passed=passed,
                    severity=dg.AssetCheckSeverity.WARN if check.severity == "warn" else dg.AssetCheckSeverity.ERROR,
                    metadata=metadata,
                )
            )
        return results

    def _one(self, check: schema.CheckSpec, end: dt.date | None) -> tuple[bool, dict[str, Any]]:
        name = check.check_name
        if check.not_null is not None:
            missing = [c for c in check.not_null if c not in self.nulls]
            counts = {c: self.nulls.get(c, 0) for c in check.not_null if c in self.nulls}
            return not missing and not any(counts.values()), {"null_counts": counts, "missing_columns": missing}
        if check.unique is not None:
            n = self.refused_count.get(name, 0)
            return n == 0 and name in self.seen, {"duplicates": n, "sample": self.duplicates.get(name, [])}
        if check.accepted_values is not None:
            n = self.refused_count.get(name, 0)
            return n == 0, {"refused_rows": n, "refused_values": [str(v) for v in self.refused.get(name, [])]}
        if check.row_count is not None:
            low, high = check.row_count.min, check.row_count.max
            ok = (low is None or self.rows >= low) and (high is None or self.rows <= high)
            return ok, {
                "rows": self.rows,
                "min": low if low is not None else "-",
                "max": high if high is not None else "-",
            }
        freshness = check.freshness
        assert freshness is not None
        newest = self.maxima.get(freshness.column)
        reference = dt.datetime.combine(end, dt.time(), dt.UTC) if end else dt.datetime.now(dt.UTC)
        if newest is None:
            return False, {"newest": "none", "reference": reference.isoformat()}
        moment = newest if isinstance(newest, dt.datetime) else dt.datetime.combine(newest, dt.time(), dt.UTC)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        age = reference - moment
        limit = schema.parse_duration(freshness.max_age)
        return age <= limit, {
            "newest": moment.isoformat(),
            "reference": reference.isoformat(),
            "age_hours": round(age.total_seconds() / 3600, 2),
        }
