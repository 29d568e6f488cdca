"""The typed schema of a pipeline's ``defs.yaml`` attributes (documented attribute by attribute in
docs/PIPELINES.md).

Every model is a ``dg.Resolvable`` ``dg.Model`` (pydantic, unknown keys refused), so Dagster validates
the YAML against it when the definitions load and reports a mistake with the file, the line and the
field (``dg check defs``). Checks that need several fields (``upsert`` without a key, a filter
expression that does not parse) are pydantic validators, raised with the field they concern.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar, Literal

import dagster as dg
import pydantic

from ingestion_platform.components.pipeline.expr import ExpressionError, parse_expression

NAME = r"^[a-z][a-z0-9_]{0,62}$"
MODES = ("append", "upsert", "replace", "incremental")
TYPES = ("string", "int", "float", "decimal", "bool", "date", "timestamp")
AGGREGATES = ("sum", "count", "count_distinct", "mean", "min", "max")
_METRIC = re.compile(r"^\s*(sum|count|count_distinct|mean|min|max)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)?\s*\)\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")


def parse_duration(text: str) -> dt.timedelta:
    """``30s``, ``15m``, ``6h``, ``2d`` as a timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 6h or 2d")
    value, unit = float(match.group(1)), match.group(2)
    return dt.timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: value})


def parse_metric(text: str) -> tuple[str, str | None]:
    """``sum(value)`` -> ``("sum", "value")``; ``count()`` -> ``("count", None)``."""
    match = _METRIC.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an aggregate such as sum(col), count(), count_distinct(col), mean(col)")
    fn, column = match.group(1), match.group(2)
    if column is None and fn != "count":
        raise ValueError(f"{fn}() needs a column: {fn}(column)")
    return fn, column


class Base(dg.Resolvable, dg.Model):
    """Unknown keys are refused (a typo is an error, not a silently ignored option)."""


# -- extract ---------------------------------------------------------------------------------------
class CsvExtract(Base):
    type: ClassVar[str] = "csv"
    required: ClassVar[tuple[str, ...]] = ("path",)
    path: str | None = None
    """A file or a glob (``data/*.csv``); relative paths are relative to the pipeline folder.
    ``{partition_key}``, ``{partition_start}``, ``{partition_end}`` are replaced per run."""
    path_env: str | None = None
    """An environment variable whose value, when set, replaces ``path`` (read at run time)."""
    encoding: str | None = None
    """None: detected (UTF-8 with or without BOM, else Windows-1252)."""
    delimiter: str | None = None
    """None: sniffed from the header line among , ; tab |."""
    decimal: Literal[".", ",", "auto"] = "auto"
    """The decimal separator of numbers read by ``clean.cast``; auto: ``,`` in a ``;``-separated file, else ``.``."""
    null_values: list[str] = ["", "NA", "N/A", "null", "NULL", "nan"]
    skip_rows: int = 0
    batch_rows: int = 65_536

    @pydantic.field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError("the delimiter is one character")
        return value


class PostgresExtract(Base):
    type: ClassVar[str] = "postgres"
    required: ClassVar[tuple[str, ...]] = ("query",)
    query: str | None = None
    """A SQL query; ``:partition_start``, ``:partition_end``, ``:partition_key`` and ``:cursor`` are bind
    parameters (never formatted into the text)."""
    url_env: str | None = None
    """Environment variable holding the SQLAlchemy URL (read at run time). None: the platform warehouse."""
    params: dict[str, Any] = {}
    batch_rows: int = 50_000


class Pagination(Base):
    type: Literal["none", "page", "offset", "cursor", "link"] = "none"
    param: str | None = None
    """page: the page number parameter (``page``); offset: the offset parameter (``offset``); cursor:
    the parameter that carries the next cursor (``cursor``)."""
    size_param: str | None = None
    """The page size parameter (``limit``, ``per_page``), sent with ``size``."""
    size: int = 100
    start: int = 1
    """First page number (page pagination)."""
    cursor_path: str | None = None
    """cursor: where the next cursor is in the body (dotted path, e.g. ``meta.next``)."""
    max_pages: int = 10_000


class RestExtract(Base):
    type: ClassVar[str] = "rest"
    required: ClassVar[tuple[str, ...]] = ("url",)
    url: str | None = None
    """The endpoint (``https://…``, ``http://…``), or a base URL with ``path``."""
    url_env: str | None = None
    """An environment variable whose value, when set, replaces ``url`` (read at run time)."""
    path: str = ""
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, Any] = {}
    """Query parameters (GET) or JSON body (POST); ``{partition_start}``, ``{partition_end}``,
    ``{partition_key}`` and ``{cursor}`` in a value are replaced per run."""
    headers: dict[str, str] = {}
    headers_env: dict[str, str] = {}
    """Header name -> environment variable holding its value (secrets, read at run time)."""
    records_path: str = ""
    """Dotted path of the list of records in the body (``result.records``); empty: the body is the list."""
    pagination: Pagination = Pagination()
    max_attempts: int = 4
    timeout_s: float = 30.0


class Extract(Base):
    """Exactly one of ``csv``, ``postgres``, ``rest`` (the key names the kind, as a transform step does)."""

    csv: CsvExtract | None = None
    postgres: PostgresExtract | None = None
    rest: RestExtract | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> Extract:
        _exactly_one(self, ("csv", "postgres", "rest"), "an extract")
        return self

    @property
    def value(self) -> CsvExtract | PostgresExtract | RestExtract:
        return next(v for v in (self.csv, self.postgres, self.rest) if v is not None)


def _exactly_one(model: Base, names: tuple[str, ...], what: str) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise ValueError(f"{what} is exactly one of {', '.join(names)} (got {given or 'none'})")


# -- transform -------------------------------------------------------------------------------------
class Cast(Base):
    type: Literal["string", "int", "float", "decimal", "bool", "date", "timestamp"]
    format: str | None = None
    """date/timestamp: a strptime format (``%d/%m/%Y``); default ISO 8601."""
    decimal: Literal[".", ","] | None = None
    """A decimal comma for this column only (the extract's ``decimal`` otherwise)."""
    scale: int = 6
    """decimal: digits after the point (precision 38)."""


class Clean(Base):
    normalize_names: bool = False
    """Column names to snake_case ASCII (``Émission (kg)`` -> ``emission_kg``)."""
    trim: bool = True
    """Strip spaces around text values."""
    rename: dict[str, str] = {}
    drop: list[str] = []
    cast: dict[str, Literal["string", "int", "float", "decimal", "bool", "date", "timestamp"] | Cast] = {}
    """Column -> type. A value that does not fit rejects its record (dead letter naming file, row, field)."""
    fill_null: dict[str, Any] = {}
    drop_null: list[str] = []
    """Records with a null in one of these columns are dropped (counted, not dead-lettered)."""
    dedupe: list[str] = []
    """Keep the first record of each value of these columns (across the whole run)."""


class Aggregate(Base):
    group_by: list[str] = []
    metrics: dict[str, str]
    """Output column -> ``sum(col)``, ``count()``, ``count(col)``, ``count_distinct(col)``, ``mean(col)``,
    ``min(col)``, ``max(col)``."""

    @pydantic.field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("an aggregate needs at least one metric")
        for _name, text in value.items():
            parse_metric(text)
        return value


class Step(Base):
    """One transform step: exactly one of ``clean``, ``filter`` or ``aggregate``."""

    clean: Clean | None = None
    filter: str | None = None
    """A safe expression over columns (``value > 0 and sector in ['Energy', 'Transport']``)."""
    aggregate: Aggregate | None = None

    @pydantic.field_validator("filter")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_expression(value)
            except ExpressionError as exc:
                raise ValueError(str(exc)) from None
        return value

    @pydantic.model_validator(mode="after")
    def _one(self) -> Step:
        given = [n for n in ("clean", "filter", "aggregate") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is exactly one of clean, filter, aggregate (got {given or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(n for n in ("clean", "filter", "aggregate") if getattr(self, n) is not None)


# -- load ------------------------------------------------------------------------------------------
class PostgresLoad(Base):
    type: ClassVar[str] = "postgres"
    table: str
    schema_name: str = pydantic.Field("pipelines", alias="schema")
    """Namespace in the platform warehouse (a PostgreSQL schema; an attached file on SQLite)."""

    @pydantic.field_validator("table", "schema_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(NAME, value):
            raise ValueError(f"{value!r} is not a table or schema name (lower case, digits, _)")
        return value


class ParquetLoad(Base):
    type: ClassVar[str] = "parquet"
    path: str
    """Output folder; relative to ``INGESTION_DATA_DIR``/pipelines when not absolute."""
    path_env: str | None = None
    """An environment variable whose value, when set, replaces ``path`` (read at run time)."""
    partition_column: str | None = None
    """A date column whose values split the files (``day=YYYY-MM-DD/``); default: the run's partition."""
    compression: Literal["snappy", "zstd", "gzip", "none"] = "zstd"


class S3Load(Base):
    type: ClassVar[str] = "s3"
    bucket: str
    bucket_env: str | None = None
    """An environment variable whose value, when set, replaces ``bucket`` (read at run time)."""
    prefix: str = ""
    endpoint_env: str = "PIPELINES_S3_ENDPOINT"
    """Environment variable holding the endpoint (``http://127.0.0.1:8333``); unset: AWS."""
    access_key_env: str = "PIPELINES_S3_ACCESS_KEY"
    secret_key_env: str = "PIPELINES_S3_SECRET_KEY"
    region: str = "us-east-1"
    partition_column: str | None = None
    compression: Literal["snappy", "zstd", "gzip", "none"] = "zstd"


class Load(Base):
    """Exactly one of ``postgres``, ``parquet``, ``s3``."""

    postgres: PostgresLoad | None = None
    parquet: ParquetLoad | None = None
    s3: S3Load | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> Load:
        _exactly_one(self, ("postgres", "parquet", "s3"), "a load")
        return self

    @property
    def value(self) -> PostgresLoad | ParquetLoad | S3Load:
        return next(v for v in (self.postgres, self.parquet, self.s3) if v is not None)


# -- checks ----------------------------------------------------------------------------------------
class RowCount(Base):
    min: int | None = None
    max: int | None = None


class AcceptedValues(Base):
    column: str
    values: list[Any]


class Freshness(Base):
    column: str
    max_age: str
    """The newest value of ``column`` is at most this old (``2d``, ``6h``) at the end of the partition (or now)."""

    @pydantic.field_validator("max_age")
    @classmethod
    def _age(cls, value: str) -> str:
        parse_duration(value)
        return value


class CheckSpec(Base):
    """One check: exactly one of ``not_null``, ``unique``, ``accepted_values``, ``row_count``, ``freshness``."""

    name: str | None = None
    severity: Literal["warn", "error"] = "error"
    blocking: bool = False
    not_null: list[str] | None = None
    unique: list[str] | None = None
    accepted_values: AcceptedValues | None = None
    row_count: RowCount | None = None
    freshness: Freshness | None = None

    @pydantic.model_validator(mode="after")
    def _one(self) -> CheckSpec:
        given = [n for n in CHECK_KINDS if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a check is exactly one of {', '.join(CHECK_KINDS)} (got {given or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(n for n in CHECK_KINDS if getattr(self, n) is not None)

    @property
    def check_name(self) -> str:
        if self.name:
            return self.name
        value = getattr(self, self.kind)
        if isinstance(value, list):
            return f"{self.kind}__{'_'.join(value)}"
        if isinstance(value, (AcceptedValues, Freshness)):
            return f"{self.kind}__{value.column}"
        return self.kind


CHECK_KINDS = ("not_null", "unique", "accepted_values", "row_count", "freshness")


# -- stream and pipeline ---------------------------------------------------------------------------
class Cursor(Base):
    column: str
    overlap: str | float = 0
    """Re-read this much before the last cursor (a number, or a duration such as ``1h`` for times)."""
    start: str | float | None = None
    """The cursor of the very first run (None: everything)."""


class StreamOptions(Base):
    """What ``defaults:`` may set and each stream may override."""

    extract: Extract | None = None
    transform: list[Step] | None = None
    load: list[Load] | None = None
    key: list[str] | None = None
    mode: Literal["append", "upsert", "replace", "incremental"] | None = None
    cursor: Cursor | None = None
    schema_policy: Literal["evolve", "freeze", "discard"] | None = None
    columns: dict[str, Literal["string", "int", "float", "decimal", "bool", "date", "timestamp"]] | None = None
    """The expected output columns (``freeze``/``discard`` compare with them; default: the first run's)."""
    checks: list[CheckSpec] | None = None


class Stream(StreamOptions):
    name: str
    description: str | None = None

    @property
    def source(self) -> CsvExtract | PostgresExtract | RestExtract:
        assert self.extract is not None
        return self.extract.value

    @property
    def targets(self) -> list[PostgresLoad | ParquetLoad | S3Load]:
        return [load.value for load in self.load or []]

    @pydantic.field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(NAME, value):
            raise ValueError(f"{value!r} is not a stream name (lower case letter, then lower case, digits, _)")
        return value


class Partitions(Base):
    start: str
    """First day (``2025-01-01``)."""
    end_offset: int = 0
    """Days after today that exist as partitions."""
    timezone: str = "UTC"

    @pydantic.field_validator("start")
    @classmethod
    def _day(cls, value: str) -> str:
        dt.date.fromisoformat(str(value))
        return str(value)


class Schedule(Base):
    cron: str
    timezone: str = "UTC"


class Notifications(Base):
    """Channels of this pipeline's failure notifications, overriding the platform's."""

    webhook_url: str | None = None
    slack_webhook_url: str | None = None
    email_to: list[str] | None = None


def _merge_extract(defaults: Extract | None, own: Extract | None) -> Extract | None:
    """The stream's extract over the defaults' one of the same kind (the stream's keys win)."""
    if defaults is None or own is None or defaults.value.type != own.value.type:
        return own if own is not None else defaults
    kind = own.value.type
    merged = {**defaults.value.model_dump(by_alias=True, exclude_unset=True),
              **own.value.model_dump(by_alias=True, exclude_unset=True)}  # fmt: skip
    return Extract.model_validate({kind: merged})


def effective(defaults: StreamOptions | None, stream: Stream) -> Stream:
    """The stream with the defaults filled in (a stream's own value wins; extracts of the same type merge)."""
    if defaults is None:
        return stream
    values = {}
    for name in StreamOptions.model_fields:
        own, default = getattr(stream, name), getattr(defaults, name)
        values[name] = _merge_extract(default, own) if name == "extract" else (own if own is not None else default)
    return stream.model_copy(update=values)


def stream_problem(stream: Stream) -> tuple[str, str] | None:
    """``(field, why)`` of the first thing an effective stream lacks to run; None when it can run."""
    if stream.extract is None:
        return "extract", "the stream has no extract (neither its own nor in defaults)"
    source = stream.source
    for name in source.required:
        if getattr(source, name) is None:
            return f"extract.{source.type}", f"the {source.type} extract needs {name} (its own or in defaults)"
    if not stream.load:
        return "load", "the stream has no load (neither its own nor in defaults)"
    mode = stream.mode or "append"
    if mode in ("upsert", "incremental") and not stream.key:
        return "key", f"mode {mode} needs a key (the columns that identify a record)"
    if mode == "incremental" and stream.cursor is None:
        return "cursor", "mode incremental needs a cursor: {column, overlap}"
    if stream.cursor is not None and not isinstance(stream.cursor.overlap, (int, float)):
        try:
            parse_duration(str(stream.cursor.overlap))
        except ValueError as exc:
            return "cursor.overlap", str(exc)
    return None
