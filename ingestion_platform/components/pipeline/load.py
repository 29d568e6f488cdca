"""Loads of a stream's output batches: the platform warehouse, Parquet files, S3-compatible storage.

Every loader takes the batches one at a time (``write``) and commits at ``close`` (``abort`` on failure):

* **warehouse** (``postgres``): batches are spooled to a local Arrow file, then loaded in one
  transaction through ``Warehouse.load`` (staged ``COPY`` + set-based merge on PostgreSQL), so the
  ledger gets created / updated / unchanged / deleted. Mode mapping: ``append`` -> ``insert_missing``,
  ``upsert``/``incremental`` -> ``upsert``, ``replace`` -> ``replace_window`` over the partition
  (``_partition``) or the whole table. Without a key, the key is ``_row_hash`` (a hash of the values).
  ``evolve`` adds new columns with ``ALTER TABLE ... ADD COLUMN``.
* **parquet** / **s3**: one folder per day (``day=YYYY-MM-DD/``, the run's partition or the values of
  ``partition_column``); each file is written under a dot-name and moved into place when complete
  (readers skip dot files), so a failed run never leaves a half file. ``replace`` replaces the day's
  files, ``append`` adds one, ``upsert``/``incremental`` merge with the day's rows by key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import sqlalchemy as sa

from ingestion_platform.components.pipeline import schema
from ingestion_platform.components.pipeline.extract import PipelineError
from ingestion_platform.lib.warehouse import LoadResult, Warehouse, default_data_dir, lineage_columns

PARTITION = "_partition"
ROW_HASH = "_row_hash"


def sa_type(kind: pa.DataType) -> sa.types.TypeEngine:
    if pa.types.is_boolean(kind):
        return sa.Boolean()
    if pa.types.is_integer(kind):
        return sa.BigInteger()
    if pa.types.is_floating(kind):
        return sa.Float(53)
    if pa.types.is_decimal(kind):
        return sa.Numeric(kind.precision, kind.scale)
    if pa.types.is_date(kind):
        return sa.Date()
    if pa.types.is_timestamp(kind):
        return sa.DateTime(timezone=True)
    return sa.Text()


class WarehouseLoad:
    def __init__(
        self,
        target: schema.PostgresLoad,
        warehouse: Warehouse,
        *,
        mode: str,
        key: list[str] | None,
        partition: str | None,
        run_id: str | None,
        evolve: bool,
    ) -> None:
        self.target, self.warehouse, self.mode, self.key = target, warehouse, mode, key
        self.partition, self.run_id, self.evolve = partition, run_id, evolve
        self._dir = tempfile.mkdtemp(prefix="pipeline_spool_")
        self._writer: ipc.RecordBatchFileWriter | None = None
        self._schema: pa.Schema | None = None

    @property
    def name(self) -> str:
        return f"{self.target.schema_name}.{self.target.table}"

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._schema = batch.schema
            self._writer = ipc.new_file(os.path.join(self._dir, "spool.arrow"), batch.schema)
        self._writer.write_batch(batch)

    def _table(self, data_schema: pa.Schema) -> sa.Table:
        key = list(self.key or [ROW_HASH])
        columns = []
        if ROW_HASH in key:
            columns.append(sa.Column(ROW_HASH, sa.String(40), primary_key=True, comment="hash of the row's values"))
        for field in data_schema:
            columns.append(
                sa.Column(
                    field.name,
                    sa_type(field.type),
                    primary_key=field.name in key,
                    nullable=field.name not in key,
                    autoincrement=False,
                )
            )
        columns.append(sa.Column(PARTITION, sa.Text, comment="the Dagster partition that loaded the row"))
        table = sa.Table(self.target.table, sa.MetaData(schema=self.target.schema_name), *columns, *lineage_columns())
        self.warehouse.ensure_tables([table])
        existing = sa.inspect(self.warehouse.engine).get_columns(self.target.table, schema=self.target.schema_name)
        have = {c["name"] for c in existing}
        missing = [c for c in table.columns if c.name not in have]
        if missing and not self.evolve:
            raise PipelineError(
                f"{self.name} lacks the column(s) {[c.name for c in missing]} (schema_policy allows no change)"
            )
        with self.warehouse.engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE {_qualified(conn, table)} ADD COLUMN "{column.name}" {kind}'))
        return table

    def close(self) -> LoadResult:
        if self._writer is None:
            return self._nothing()
        self._writer.close()
        table = self._table(self._schema)  # type: ignore[arg-type]
        wmode = {"append": "insert_missing", "upsert": "upsert", "incremental": "upsert"}.get(
            self.mode, "replace_window"
        )
        window = None
        if wmode == "replace_window":
            window = table.c[PARTITION] == self.partition if self.partition is not None else sa.true()
        hashed = not self.key
        names = [f.name for f in self._schema]  # type: ignore[union-attr]

        def rows() -> Iterator[dict[str, Any]]:
            with pa.memory_map(os.path.join(self._dir, "spool.arrow")) as source:
                reader = ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    for row in reader.get_batch(i).to_pylist():
                        row[PARTITION] = self.partition
                        if hashed:
                            row[ROW_HASH] = hashlib.sha1(repr([row[n] for n in names]).encode()).hexdigest()
                        yield row

        try:
            return self.warehouse.load(table, rows(), mode=wmode, window=window, run_id=self.run_id)
        finally:
            self.abort()

    def _nothing(self) -> LoadResult:
        """No row: ``replace`` still empties the partition (or the table) when the table exists."""
        if self.mode != "replace" or not sa.inspect(self.warehouse.engine).has_table(
            self.target.table, schema=self.target.schema_name
        ):
            return LoadResult(table=self.name, mode=self.mode)
        table = sa.Table(self.target.table, sa.MetaData(schema=self.target.schema_name),
                         autoload_with=self.warehouse.engine)  # fmt: skip
        window = table.c[PARTITION] == self.partition if self.partition is not None else sa.true()
        result = self.warehouse.delete_window(table, window)
        result.table, result.mode = self.name, self.mode
        return result

    def abort(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def _qualified(conn: sa.Connection, table: sa.Table) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)


class ParquetFilesLoad:
    """Parquet files under a folder of a pyarrow file system (local or S3)."""

    def __init__(
        self,
        fs: pafs.FileSystem,
        root: str,
        shown: str,
        *,
        mode: str,
        key: list[str] | None,
        partition: str | None,
        partition_column: str | None,
        compression: str,
        run_id: str | None,
    ) -> None:
        self.fs, self.root, self.shown, self.mode, self.key = fs, root.rstrip("/"), shown, mode, key
        self.partition, self.partition_column = partition, partition_column
        self.compression = None if compression == "none" else compression
        self.run_id = run_id or uuid.uuid4().hex
        self._writers: dict[str | None, tuple[pq.ParquetWriter, str]] = {}
        self._rows = 0

    @property
    def name(self) -> str:
        return self.shown

    def _folder(self, day: str | None) -> str:
        return f"{self.root}/day={day}" if day is not None else self.root

    def write(self, batch: pa.RecordBatch) -> None:
        self._rows += batch.num_rows
        if self.partition_column is None:
            self._write(self.partition, batch)
            return
        if self.partition_column not in batch.schema.names:
            raise PipelineError(f"{self.shown}: no partition_column {self.partition_column!r} in the output")
        days = (
            pc.cast(batch.column(self.partition_column), pa.date32())
            if not pa.types.is_date(batch.schema.field(self.partition_column).type)
            else batch.column(self.partition_column)
        )
        for day in pc.unique(days).to_pylist():
            mask = pc.is_null(days) if day is None else pc.equal(days, pa.scalar(day, days.type))
            self._write(day.isoformat() if day is not None else "none", batch.filter(mask))

    def _write(self, day: str | None, batch: pa.RecordBatch) -> None:
        if day not in self._writers:
            folder = self._folder(day)
            self.fs.create_dir(folder, recursive=True)
            temp = f"{folder}/.tmp-{uuid.uuid4().hex}.parquet"
            writer = pq.ParquetWriter(temp, batch.schema, filesystem=self.fs, compression=self.compression)
            self._writers[day] = (writer, temp)
        self._writers[day][0].write_batch(batch)

    def close(self) -> LoadResult:
        result = LoadResult(table=self.shown, mode=self.mode, received=self._rows)
        if not self._writers and self.mode == "replace" and self.partition_column is None:
            folder = self._folder(self.partition)  # no row: the day's (or the dataset's) files go
            if self.fs.get_file_info(folder).type == pafs.FileType.Directory:
                for info in self.fs.get_file_info(pafs.FileSelector(folder)):
                    if info.type == pafs.FileType.File and info.base_name.endswith(".parquet"):
                        result.deleted += pq.read_metadata(info.path, filesystem=self.fs).num_rows
                        self.fs.delete_file(info.path)
        for day, (writer, temp) in self._writers.items():
            writer.close()
            folder = self._folder(day)
            existing = [
                f.path
                for f in self.fs.get_file_info(pafs.FileSelector(folder))
                if f.type == pafs.FileType.File
                and f.base_name.endswith(".parquet")
                and not f.base_name.startswith((".", "_"))
            ]
            if self.mode == "append":
                final = f"{folder}/part-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{self.run_id[:8]}.parquet"
                self.fs.move(temp, final)
                result.created += pq.read_metadata(final, filesystem=self.fs).num_rows
                continue
            if self.mode in ("upsert", "incremental") and existing and self.key:
                new = pq.read_table(temp, filesystem=self.fs)
                old = pa.concat_tables(
                    [pq.read_table(p, filesystem=self.fs) for p in existing], promote_options="permissive"
                )
                kept = old.join(new.select(self.key), self.key, join_type="left anti")
                merged = pa.concat_tables([kept, new], promote_options="permissive")
                result.created += new.num_rows - (old.num_rows - kept.num_rows)
                result.updated += old.num_rows - kept.num_rows
                pq.write_table(merged, temp, filesystem=self.fs, compression=self.compression)
            else:
                result.created += pq.read_metadata(temp, filesystem=self.fs).num_rows
                result.deleted += sum(pq.read_metadata(p, filesystem=self.fs).num_rows for p in existing)
            final = f"{folder}/part-0.parquet"
            self.fs.move(temp, final)
            for path in existing:
                if path != final:
                    self.fs.delete_file(path)
        self._writers.clear()
        return result

    def abort(self) -> None:
        for writer, temp in self._writers.values():
            try:
                writer.close()
            finally:
                self.fs.delete_file(temp)
        self._writers.clear()


def parquet_load(target: schema.ParquetLoad, **kwargs: Any) -> ParquetFilesLoad:
    raw = (os.environ.get(target.path_env) if target.path_env else None) or target.path
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = default_data_dir() / "pipelines" / path
    path.mkdir(parents=True, exist_ok=True)
    return ParquetFilesLoad(
        pafs.LocalFileSystem(),
        str(path),
        str(path),
        partition_column=target.partition_column,
        compression=target.compression,
        **kwargs,
    )


def s3_filesystem(target: schema.S3Load) -> pafs.S3FileSystem:
    endpoint = os.environ.get(target.endpoint_env) or None
    access, secret = os.environ.get(target.access_key_env), os.environ.get(target.secret_key_env)
    options: dict[str, Any] = {"region": target.region, "access_key": access, "secret_key": secret}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        options.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    return pafs.S3FileSystem(**options)


def s3_load(target: schema.S3Load, **kwargs: Any) -> ParquetFilesLoad:
    bucket = (os.environ.get(target.bucket_env) if target.bucket_env else None) or target.bucket
    root = f"{bucket}/{target.prefix.strip('/')}" if target.prefix.strip("/") else bucket
    return ParquetFilesLoad(
        s3_filesystem(target),
        root,
        f"s3://{root}",
        partition_column=target.partition_column,
        compression=target.compression,
        **kwargs,
    )
