"""Extracts: each lands its payloads in the raw store first, then yields Arrow batches read from what was
landed (so a replay with ``reprocess_from_raw`` reads exactly the same bytes).

* CSV: each matched file is copied verbatim into the raw store, then read from the copy in batches
  (every column as text: types come from ``clean.cast``, so one bad value rejects one record).
* PostgreSQL: the query runs with bind parameters; each fetched batch lands as an Arrow IPC payload.
* REST: each page lands as the body the server sent; records are read from ``records_path``.

Every batch carries ``__row`` (the record's number in its payload, from 1) and its payload's name,
so a rejected record is named by file or page and row.
"""

from __future__ import annotations

import csv as csvlib
import datetime as dt
import glob as globlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import sqlalchemy as sa

from ingestion_platform.components.pipeline import schema
from ingestion_platform.components.pipeline.csv_detect import SAMPLE_BYTES, detect_encoding, sniff_delimiter
from ingestion_platform.lib.http import HttpClient, HttpRetry, describe_endpoint, valid_json
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import Warehouse

ROW = "__row"
Reject = Callable[[str, int | None, str, Any, str, Any], None]
_PLACEHOLDER = re.compile(r"\{(partition_key|partition_start|partition_end|cursor)\}")


class PipelineError(RuntimeError):
    """A pipeline run that cannot go on (a missing file, a source that refuses, schema drift ...)."""


@dataclass
class Batch:
    request: str
    data: pa.RecordBatch
    decimal: str = "."
    """The decimal separator of the payload's numbers in text (CSV: declared, or detected)."""


@dataclass
class Window:
    """What a run injects into its extract: the partition window and the incremental cursor."""

    partition_key: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    cursor: Any = None

    def values(self) -> dict[str, Any]:
        return {
            "partition_key": self.partition_key,
            "partition_start": self.start,
            "partition_end": self.end,
            "cursor": self.cursor,
        }

    def fill(self, text: str) -> str:
        """``{partition_start}`` ... replaced by their values (ISO text); nothing else is interpreted."""
        values = self.values()

        def one(match: re.Match[str]) -> str:
            value = values[match.group(1)]
            return "" if value is None else (value.isoformat() if hasattr(value, "isoformat") else str(value))

        return _PLACEHOLDER.sub(one, text)


@dataclass
class Landing:
    """Where a run lands its payloads: the raw store folder of this stream and partition."""

    raw_store: RawStore
    source: str
    partition: str
    asset_key: str
    replay: bool = False
    landed: list[str] = field(default_factory=list)

    def stored(self) -> list[str]:
        names = self.raw_store.requests(self.source, self.partition)
        if not names:
            raise PipelineError(f"reprocess_from_raw: nothing stored for {self.source}/{self.partition}")
        return names

    def write(self, request: str, body: bytes, meta: Mapping[str, Any]) -> None:
        self.raw_store.write(self.source, self.partition, request, body, meta, asset_key=self.asset_key)
        self.landed.append(request)


def describe(extract: Any, base: Path) -> str:
    """The ledger's ``provider``: what was read, without credentials."""
    if isinstance(extract, schema.CsvExtract):
        return f"csv {csv_pattern(extract, base, Window())}"
    if isinstance(extract, schema.RestExtract):
        return f"rest {describe_endpoint(rest_url(extract))}"
    return f"postgres {extract.url_env or 'platform warehouse'}"


def extract_batches(
    extract: Any, landing: Landing, window: Window, *, base: Path, warehouse: Warehouse, reject: Reject
) -> Iterator[Batch]:
    """The batches of the extract; a CSV line that does not split into the header's columns is given to
    ``reject(request, row, field, value, reason, record)``."""
    if isinstance(extract, schema.CsvExtract):
        return _csv(extract, landing, window, base, reject)
    if isinstance(extract, schema.PostgresExtract):
        return _sql(extract, landing, window, warehouse)
    return _rest(extract, landing, window)


# -- CSV -------------------------------------------------------------------------------------------
def csv_pattern(extract: schema.CsvExtract, base: Path, window: Window) -> str:
    raw = (os.environ.get(extract.path_env) if extract.path_env else None) or extract.path
    path = Path(window.fill(raw)).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _csv(extract: schema.CsvExtract, landing: Landing, window: Window, base: Path, reject: Reject) -> Iterator[Batch]:
    if landing.replay:
        names = landing.stored()
    else:
        pattern = csv_pattern(extract, base, window)
        files = sorted(globlib.glob(pattern)) if globlib.has_magic(pattern) else [pattern]
        files = [f for f in files if Path(f).is_file()]
        if not files:
            raise PipelineError(f"csv extract: no file matches {pattern}")
        names = []
        for file in files:
            name = Path(file).name
            landing.raw_store.write_file(
                landing.source, landing.partition, name, Path(file), asset_key=landing.asset_key
            )
            landing.landed.append(name)
            names.append(name)
    for name in names:
        with landing.raw_store.open_payload(landing.source, landing.partition, name) as handle:
            yield from _csv_file(extract, name, handle, reject)


def _csv_file(extract: schema.CsvExtract, name: str, handle: Any, reject: Reject) -> Iterator[Batch]:
    head = handle.read(SAMPLE_BYTES)
    handle.seek(0)
    encoding = extract.encoding or detect_encoding(head)
    text = head.decode(encoding, errors="replace")
    delimiter = extract.delimiter or sniff_delimiter("\n".join(text.splitlines()[extract.skip_rows :]))
    lines = text.splitlines()[extract.skip_rows :]
    if not lines:
        return
    decimal = extract.decimal if extract.decimal != "auto" else ("," if delimiter == ";" else ".")
    header = next(csvlib.reader([lines[0].lstrip("\ufeff")], delimiter=delimiter))

    def invalid(row: Any) -> str:
        reason = f"{row.actual_columns} field(s) where the header has {row.expected_columns}"
        reject(name, row.number, "(line)", row.text[:200], reason, {"line": row.number, "text": row.text})
        return "skip"

    arrow_encoding = {"utf-8-sig": "utf8", "utf-8": "utf8"}.get(encoding.lower(), encoding)
    reader = pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(
            encoding=arrow_encoding, skip_rows=extract.skip_rows + 1, column_names=header, block_size=1 << 20
        ),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=invalid, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in header},
            null_values=extract.null_values,
            strings_can_be_null=True,
        ),
    )
    row = 0
    for chunk in reader:
        for start in range(0, chunk.num_rows, extract.batch_rows):
            part = chunk.slice(start, extract.batch_rows)
            numbers = pa.array(range(row + 1, row + 1 + part.num_rows), pa.int64())
            row += part.num_rows
            yield Batch(name, part.append_column(ROW, numbers), decimal)


# -- SQL -------------------------------------------------------------------------------------------
def _sql(extract: schema.PostgresExtract, landing: Landing, window: Window, warehouse: Warehouse) -> Iterator[Batch]:
    if landing.replay:
        for name in landing.stored():
            with landing.raw_store.open_payload(landing.source, landing.partition, name) as handle:
                for batch in ipc.open_stream(io.BytesIO(handle.read())):
                    yield Batch(name, batch)
        return
    if extract.url_env:
        url = os.environ.get(extract.url_env)
        if not url:
            raise PipelineError(f"postgres extract: the environment variable {extract.url_env} is not set")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    else:
        engine = warehouse.engine
    params = {**extract.params, **window.values()}
    statement = sa.text(extract.query)
    wanted = set(statement.compile().params)
    bound = {k: _bindable(v, engine.dialect.name) for k, v in params.items() if k in wanted}
    number, row = 0, 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=extract.batch_rows).execute(statement, bound)
        columns = list(result.keys())
        for rows in result.partitions(extract.batch_rows):
            number += 1
            data = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
            data[ROW] = list(range(row + 1, row + 1 + len(rows)))
            row += len(rows)
            batch = pa.RecordBatch.from_pydict(data)
            sink = io.BytesIO()
            with ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            name = f"query_part_{number:05d}.arrow"
            landing.write(name, sink.getvalue(), {"query": extract.query, "params": _jsonable(bound)})
            yield Batch(name, batch)
    if extract.url_env:
        engine.dispose()


def _bindable(value: Any, dialect: str) -> Any:
    """SQLite stores instants as naive UTC text: an aware cursor is compared in the same form."""
    if dialect == "sqlite" and isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}


# -- REST ------------------------------------------------------------------------------------------
def rest_url(extract: schema.RestExtract) -> str:
    return (os.environ.get(extract.url_env) if extract.url_env else None) or extract.url


def _rest(extract: schema.RestExtract, landing: Landing, window: Window) -> Iterator[Batch]:
    if landing.replay:
        for name in landing.stored():
            with landing.raw_store.open_payload(landing.source, landing.partition, name) as handle:
                records, _ = _records(extract, json.loads(handle.read()), name)
            yield Batch(name, _records_batch(records))
        return
    url = rest_url(extract)
    if urlsplit(url).scheme not in ("http", "https", "file"):
        raise PipelineError(f"rest extract: {describe_endpoint(url)} is not an http(s) or file URL")
    headers = dict(extract.headers)
    for header, env in extract.headers_env.items():
        value = os.environ.get(env)
        if value is None:
            raise PipelineError(f"rest extract: the environment variable {env} (header {header}) is not set")
        headers[header] = value
    client = HttpClient(
        base_url=url,
        headers=headers,
        read_timeout_s=extract.timeout_s,
        retry=HttpRetry(max_attempts=extract.max_attempts, backoff_base_s=0.2),
        max_concurrency=1,
    )
    pages = extract.pagination
    params = {k: window.fill(v) if isinstance(v, str) else v for k, v in extract.params.items()}
    path: str | None = extract.path
    following: str | None = None
    number = pages.start if pages.type == "page" else 0
    offset = 0
    try:
        for index in range(1, pages.max_pages + 1):
            query: dict[str, Any] | None = dict(params)
            if following is not None:  # a Link header's URL carries its own query
                query = None
            elif pages.size_param:
                query[pages.size_param] = pages.size  # type: ignore[index]
            if query is not None and pages.type == "page":
                query[pages.param or "page"] = number
            elif query is not None and pages.type == "offset":
                query[pages.param or "offset"] = offset
            target = following if following is not None else (path or "")
            if extract.method == "POST":
                fetched = client.post(target, json=query, validate=valid_json)
            else:
                fetched = client.get(target, params=query, validate=valid_json)
            name = f"page_{index:05d}.json"
            landing.write(name, fetched.body, fetched.meta())
            records, body = _records(extract, json.loads(fetched.body), name)
            yield Batch(name, _records_batch(records))
            if pages.type == "none" or not records:
                return
            if pages.type == "page":
                number += 1
            elif pages.type == "offset":
                offset += len(records)
                if len(records) < pages.size:
                    return
            elif pages.type == "cursor":
                cursor = _at(body, pages.cursor_path or "next", name)
                if cursor in (None, ""):
                    return
                params[pages.param or "cursor"] = cursor
            elif pages.type == "link":
                following = _next_link(fetched.headers.get("link", ""))
                if following is None:
                    return
        raise PipelineError(f"rest extract: stopped after max_pages={pages.max_pages} pages, more were announced")
    finally:
        client.close()


def _records(extract: schema.RestExtract, body: Any, name: str) -> tuple[list[dict[str, Any]], Any]:
    records = _at(body, extract.records_path, name) if extract.records_path else body
    if not isinstance(records, list):
        raise PipelineError(f"rest extract {name}: records_path {extract.records_path!r} is not a list")
    return [r if isinstance(r, dict) else {"value": r} for r in records], body


def _at(body: Any, path: str, name: str) -> Any:
    value = body
    for part in [p for p in path.split(".") if p]:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        match = re.match(r"\s*<([^>]+)>\s*;(.*)", part)
        if match and re.search(r'rel\s*=\s*"?next"?', match.group(2)):
            return match.group(1)
    return None


def _records_batch(records: list[dict[str, Any]]) -> pa.RecordBatch:
    """Records as a batch: nested values as JSON text, scalars kept; a column of mixed types as text."""
    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        for key in record:
            columns.setdefault(str(key), [None] * i)
        for key, values in columns.items():
            value = record.get(key)
            if isinstance(value, (dict, list)):
                value = json.dumps(value, ensure_ascii=False)
            values.append(value)
    arrays, names = [], []
    for key, values in columns.items():
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
        names.append(key)
    arrays.append(pa.array(range(1, len(records) + 1), pa.int64()))
    names.append(ROW)
    return pa.RecordBatch.from_arrays(arrays, names=names)
