"""Transform steps over a stream of Arrow batches: ``clean``, ``filter``, ``aggregate``.

Each step takes an iterator of batches and returns one, so a pipeline holds one batch at a time
(``aggregate`` holds its partial groups, never the input rows). A value ``clean.cast`` cannot read
rejects its record through ``reject(request, row, field, value, reason, record)``; the other records
of the batch go on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingestion_platform.components.pipeline import schema
from ingestion_platform.components.pipeline.expr import columns_of, parse_expression
from ingestion_platform.components.pipeline.extract import ROW, Batch, PipelineError, Reject
from ingestion_platform.lib.text import fold

_INT = r"^[+-]?\d+$"
_FLOAT = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_TRUE = ("true", "yes", "y", "1", "oui", "vrai", "t")
_FALSE = ("false", "no", "n", "0", "non", "faux", "f")
COMPACT_ROWS = 200_000


def arrow_type(name: str, cast: schema.Cast | None = None) -> pa.DataType:
    return {
        "string": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "decimal": pa.decimal128(38, cast.scale if cast else 6),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[name]


def normal_name(name: str) -> str:
    """``Émission (kg CO2e)`` -> ``emission_kg_co2e``."""
    text = re.sub(r"[^0-9a-zA-Z]+", "_", fold(name)).strip("_").lower()
    return text if text and not text[0].isdigit() else f"c_{text}"


@dataclass
class StepCounter:
    """Rows in and out of one step (the ``steps`` metadata and the ledger)."""

    name: str
    rows_in: int = 0
    rows_out: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.name, "rows_in": self.rows_in, "rows_out": self.rows_out, "rejected": self.rejected}


def _counted(batches: Iterator[Batch], counter: StepCounter, fn: Callable[[Batch], Batch | None]) -> Iterator[Batch]:
    for batch in batches:
        counter.rows_in += batch.data.num_rows
        out = fn(batch)
        if out is not None and out.data.num_rows:
            counter.rows_out += out.data.num_rows
            yield out


def apply_steps(
    steps: list[schema.Step], batches: Iterator[Batch], reject: Reject, counters: list[StepCounter], decimal: str
) -> Iterator[Batch]:
    for index, step in enumerate(steps):
        counter = StepCounter(f"transform[{index}] {step.kind}")
        counters.append(counter)
        if step.clean is not None:
            batches = _counted(batches, counter, _cleaner(step.clean, reject, counter, decimal))
        elif step.filter is not None:
            batches = _counted(batches, counter, _filterer(step.filter, index))
        else:
            batches = _aggregate(step.aggregate, batches, counter)  # type: ignore[arg-type]
    return batches


# -- clean -----------------------------------------------------------------------------------------
def _cleaner(clean: schema.Clean, reject: Reject, counter: StepCounter, decimal: str) -> Callable[[Batch], Batch]:
    seen: set[tuple[Any, ...]] = set()

    def fn(batch: Batch) -> Batch:
        data = pa.Table.from_batches([batch.data])
        if clean.normalize_names:
            data = data.rename_columns([c if c.startswith("__") else normal_name(c) for c in data.column_names])
        if clean.rename:
            data = data.rename_columns([clean.rename.get(c, c) for c in data.column_names])
        drop = [c for c in clean.drop if c in data.column_names]
        if drop:
            data = data.drop_columns(drop)
        if clean.trim:
            for i, name in enumerate(data.column_names):
                if pa.types.is_string(data.schema.field(i).type) and not name.startswith("__"):
                    data = data.set_column(i, name, pc.utf8_trim_whitespace(data.column(i)))
        bad = None
        for column, wanted in clean.cast.items():
            if column not in data.column_names:
                raise PipelineError(f"clean.cast: no column {column!r} (columns: {', '.join(_shown(data))})")
            cast = wanted if isinstance(wanted, schema.Cast) else schema.Cast(type=wanted)
            values, failed = _cast(data.column(column), cast, batch.decimal if decimal == "auto" else decimal)
            data = data.set_column(data.column_names.index(column), column, values)
            if failed is not None:
                for row in pa.Table.from_batches([batch.data]).filter(failed).to_pylist():
                    reason = f"is not a {cast.type}" + (f" in the format {cast.format}" if cast.format else "")
                    original = row.get(column) if column in row else None
                    reject(batch.request, row.get(ROW), column, original, reason, _plain(row))
                    counter.rejected += 1
                bad = failed if bad is None else pc.or_(bad, failed)
        if bad is not None:
            data = data.filter(pc.invert(bad))
        for column, value in clean.fill_null.items():
            if column in data.column_names:
                index = data.column_names.index(column)
                kind = data.schema.field(index).type
                fill = pa.scalar(value).cast(kind) if not pa.types.is_null(kind) else pa.scalar(value)
                data = data.set_column(index, column, pc.fill_null(data.column(index), fill))
        for column in clean.drop_null:
            if column not in data.column_names:
                raise PipelineError(f"clean.drop_null: no column {column!r} (columns: {', '.join(_shown(data))})")
            data = data.filter(pc.is_valid(data.column(column)))
        if clean.dedupe:
            missing = [c for c in clean.dedupe if c not in data.column_names]
            if missing:
                raise PipelineError(f"clean.dedupe: no column {missing} (columns: {', '.join(_shown(data))})")
            keys = zip(*(data.column(c).to_pylist() for c in clean.dedupe), strict=True)
            keep = []
            for key in keys:
                keep.append(key not in seen)
                seen.add(key)
            data = data.filter(pa.array(keep, pa.bool_()))
        return Batch(batch.request, _one_batch(data), batch.decimal)

    return fn


def _shown(data: pa.Table) -> list[str]:
    return [c for c in data.column_names if not c.startswith("__")]


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    table = table.combine_chunks()
    batches = table.to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in row.items()}


def _cast(column: pa.ChunkedArray, cast: schema.Cast, decimal: str) -> tuple[pa.ChunkedArray, pa.Array | None]:
    """The column as ``cast.type`` and the mask of values that could not be read (None: all could)."""
    target = arrow_type(cast.type, cast)
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        try:
            return pc.cast(column, target), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            column = pc.cast(column, pa.string())
    text = column
    if cast.type == "string":
        return text, None
    comma = (cast.decimal or decimal) == ","
    if cast.type in ("int", "float") and not comma:
        try:  # the common case, every value already plain: one vectorised cast, no pattern matching
            return pc.cast(text, target), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if cast.type in ("int", "float", "decimal"):
        text = pc.replace_substring_regex(text, "[\\s\u00a0\u202f']", "")
        if comma:
            text = pc.replace_substring(pc.replace_substring(text, ".", ""), ",", ".")
        pattern = _INT if cast.type == "int" else _FLOAT
        ok = pc.match_substring_regex(text, pattern)
    elif cast.type == "bool":
        lowered = pc.utf8_lower(text)
        ok = pc.or_(pc.is_in(lowered, pa.array(_TRUE)), pc.is_in(lowered, pa.array(_FALSE)))
        failed = pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(ok, False)))
        values = pc.if_else(pc.fill_null(ok, False), pc.is_in(lowered, pa.array(_TRUE)), pa.scalar(None, pa.bool_()))
        return values, failed if pc.any(failed).as_py() else None
    else:
        fmt = cast.format
        if fmt is None:
            fmt = "%Y-%m-%d" if cast.type == "date" else None
        if fmt is None:  # ISO 8601 timestamps
            parsed = _iso_timestamps(text)
        else:
            parsed = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
            if cast.type == "timestamp":
                parsed = pc.assume_timezone(parsed, "UTC") if parsed.type.tz is None else parsed
        failed = pc.and_(pc.is_valid(text), pc.is_null(parsed))
        values = pc.cast(parsed, target)
        return values, failed if pc.any(failed).as_py() else None
    failed = pc.and_(pc.is_valid(text), pc.invert(pc.fill_null(ok, False)))
    cleaned = pc.if_else(pc.fill_null(ok, False), text, pa.scalar(None, pa.string()))
    values = pc.cast(cleaned, pa.float64() if cast.type == "float" else target)
    return values, failed if pc.any(failed).as_py() else None


def _iso_timestamps(text: pa.ChunkedArray) -> pa.ChunkedArray:
    out = []
    for value in text.to_pylist():
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value is not None else None
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        out.append(moment)
    return pa.chunked_array([pa.array(out, pa.timestamp("us", tz="UTC"))])


# -- filter ----------------------------------------------------------------------------------------
def _filterer(text: str, index: int) -> Callable[[Batch], Batch]:
    expression = parse_expression(text)
    needed = columns_of(text)

    def fn(batch: Batch) -> Batch:
        missing = needed - set(batch.data.schema.names)
        if missing:
            raise PipelineError(
                f"transform[{index}].filter {text!r}: no column {', '.join(sorted(missing))} "
                f"(columns: {', '.join(n for n in batch.data.schema.names if not n.startswith('__'))})"
            )
        try:
            return Batch(
                batch.request, _one_batch(pa.Table.from_batches([batch.data]).filter(expression)), batch.decimal
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise PipelineError(f"transform[{index}].filter {text!r}: {exc}") from None

    return fn


# -- aggregate -------------------------------------------------------------------------------------
def _aggregate(aggregate: schema.Aggregate, batches: Iterator[Batch], counter: StepCounter) -> Iterator[Batch]:
    """Partial aggregates per batch, merged: sum of sums, sum of counts, min of mins ...; a mean is a sum
    over a count; count_distinct keeps the distinct (group, value) pairs."""
    keys = list(aggregate.group_by)
    metrics = {name: schema.parse_metric(text) for name, text in aggregate.metrics.items()}
    pairs_needed: dict[tuple[str, str], str] = {}  # (column, arrow function) -> partial column name

    def partial(column: str, fn: str) -> str:
        return pairs_needed.setdefault((column, fn), f"p__{column}__{fn}")

    for _name, (fn, column) in metrics.items():
        if fn == "count":
            partial(column or ROW, "count")
        elif fn == "mean":
            partial(column, "sum")  # type: ignore[arg-type]
            partial(column, "count")  # type: ignore[arg-type]
        elif fn != "count_distinct":
            partial(column, fn)  # type: ignore[arg-type]
    partial_aggs = [(c, f, o) for (c, f), o in pairs_needed.items()]
    merge = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}
    distinct = {name: column for name, (fn, column) in metrics.items() if fn == "count_distinct"}
    parts: list[pa.Table] = []
    pairs: dict[str, list[pa.Table]] = {name: [] for name in distinct}
    held = 0
    request = "aggregate"
    for batch in batches:
        counter.rows_in += batch.data.num_rows
        request = batch.request
        table = pa.Table.from_batches([batch.data])
        needed = set(keys) | {c for _f, c in metrics.values() if c}
        missing = needed - set(table.column_names)
        if missing:
            raise PipelineError(
                f"aggregate: no column {', '.join(sorted(missing))} (columns: {', '.join(_shown(table))})"
            )
        for column, fn, _out in partial_aggs:
            kind = table.schema.field(column).type
            numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            if fn == "sum" and not (numeric or pa.types.is_boolean(kind)):
                raise PipelineError(
                    f"aggregate: sum({column}) needs a number, the column is {kind} (cast it in a clean step)"
                )
        grouped = table.group_by(keys).aggregate([(c, f) for c, f, _o in partial_aggs])
        grouped = grouped.rename_columns([*_renamed(grouped.column_names, partial_aggs)])
        parts.append(grouped)
        held += grouped.num_rows
        for name, column in distinct.items():
            pairs[name].append(table.select([*keys, column]).group_by([*keys, column]).aggregate([]))
        if held > COMPACT_ROWS:
            parts = [_merge(parts, keys, partial_aggs, merge)]
            for name in distinct:
                pairs[name] = [pa.concat_tables(pairs[name]).group_by(pairs[name][0].column_names).aggregate([])]
            held = parts[0].num_rows
    if not parts:
        return
    result = _merge(parts, keys, partial_aggs, merge)
    columns: dict[str, Any] = {k: result.column(k) for k in keys}
    for name, (fn, _column) in metrics.items():
        if fn == "count":
            columns[name] = result.column(pairs_needed[(_column or ROW, "count")])
        elif fn == "mean":
            total = pc.cast(result.column(pairs_needed[(_column, "sum")]), pa.float64())  # type: ignore[index]
            columns[name] = pc.divide(total, result.column(pairs_needed[(_column, "count")]))  # type: ignore[index]
        elif fn == "count_distinct":
            seen = pa.concat_tables(pairs[name]).group_by(pairs[name][0].column_names).aggregate([])
            counted = seen.group_by(keys).aggregate([(distinct[name], "count")]) if keys else None
            if keys:
                joined = result.select(keys).join(counted, keys, join_type="left outer")
                order = result.select(keys).append_column("__i", pa.array(range(result.num_rows)))
                joined = order.join(joined, keys).sort_by("__i")
                columns = {k: joined.column(k) for k in keys} | {n: v for n, v in columns.items() if n not in keys}
                columns[name] = joined.column(f"{distinct[name]}_count")
            else:
                columns[name] = pa.array([seen.filter(pc.is_valid(seen.column(distinct[name]))).num_rows])
        else:
            columns[name] = result.column(pairs_needed[(_column, fn)])  # type: ignore[index]
    out = pa.table(columns)
    if keys:
        out = out.sort_by([(k, "ascending") for k in keys])
    counter.rows_out += out.num_rows
    for piece in out.to_batches(max_chunksize=65_536) or [pa.RecordBatch.from_pylist([], schema=out.schema)]:
        yield Batch(request, piece)


def _renamed(names: list[str], aggs: list[tuple[str, str, str]]) -> list[str]:
    lookup = {f"{c}_{f}": o for c, f, o in aggs}
    return [lookup.get(n, n) for n in names]


def _merge(parts: list[pa.Table], keys: list[str], aggs: list[tuple[str, str, str]], merge: dict[str, str]) -> pa.Table:
    table = pa.concat_tables(parts, promote_options="permissive")
    grouped = table.group_by(keys).aggregate([(o, merge[f]) for _c, f, o in aggs])
    return grouped.rename_columns([n.rsplit("_", 1)[0] if n not in keys else n for n in grouped.column_names])
