"""The loading contract of a table, declared next to the extraction (like dlt's primary key and write
disposition), and the validation of rows against it before they reach the warehouse.

A :class:`TableContract` says how an asset loads one table:

``mode``            ``upsert`` (insert new keys, update changed rows), ``insert_missing`` or
                    ``replace_window`` (upsert, then delete the rows of the window the source no
                    longer has: for sets that can shrink).
``day_column``      the column holding the partition day (a ``Date``): rows are loaded, counted and
                    checked per day through it, and a ``replace_window`` window is "this day".
                    ``None`` for dimensions that span days (horses, jockeys ...).
``scope_columns``   further columns that bound the window inside a day, e.g. the races a load covers
                    (``meeting_num``, ``race_num``) or the source of a shared table (``source``).
``columns``         the value columns this load owns (``None``: all). The others keep their values
                    on update, so two assets can own different columns of one table (a source's
                    fields and the figures a downstream asset derives), and are not validated.
``update_where``    ``fn(table) -> condition`` on the existing row that allows an update, e.g. a
                    lower-precedence source never overwrites a row another source holds.

The key is the table's primary key. The asset never picks a mode at each call; the one thing it
says is whether its fetch was complete: a partial fetch never deletes (see
``lib.ingest.PartitionLoad.load``), and the keys of rejected records are never deleted either.

:func:`validate` checks every row against the table before the load: a value the warehouse would
refuse (too long for its column, a NUL character, a number out of range, a wrong type, a missing
required value) rejects that row, naming table, column, key and value; the other rows load.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ingestion_platform.lib.errors import RecordError, Reject
from ingestion_platform.lib.warehouse import LINEAGE_COLUMNS, LOAD_MODES

_INT_RANGES = {
    sa.SmallInteger: (-(2**15), 2**15 - 1),
    sa.BigInteger: (-(2**63), 2**63 - 1),
    sa.Integer: (-(2**31), 2**31 - 1),
}


@dataclass(frozen=True)
class TableContract:
    """How one asset loads one table (see the module docstring)."""

    table: sa.Table
    mode: str = "upsert"
    day_column: str | None = None
    scope_columns: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None
    update_where: Callable[[sa.Table], sa.ColumnElement[bool]] | None = None
    _checks: tuple[tuple[str, Callable[[Any], str | None]], ...] = field(
        default=(), init=False, repr=False, compare=False
    )
    _fits: tuple[tuple[str, Callable[[list[Any]], bool]], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.mode not in LOAD_MODES:
            raise ValueError(f"{self.table.fullname}: unknown load mode {self.mode!r}; expected one of {LOAD_MODES}")
        for name in (self.day_column, *self.scope_columns, *(self.columns or ())):
            if name is not None and name not in self.table.c:
                raise ValueError(f"{self.table.fullname} has no column {name!r}")
        if self.mode == "replace_window" and self.day_column is None and not self.scope_columns:
            raise ValueError(f"{self.table.fullname}: replace_window needs a day column or scope columns")
        loaded = None if self.columns is None else {*self.columns, *self.key}
        checks = [c for c in _column_checks(self.table) if loaded is None or c[0] in loaded]
        object.__setattr__(self, "_checks", tuple((name, fn) for name, fn, _fits in checks))
        object.__setattr__(self, "_fits", tuple((name, fits) for name, _fn, fits in checks))
        CONTRACTS.setdefault(self.name, self)

    @property
    def name(self) -> str:
        return self.table.fullname

    @property
    def key(self) -> list[str]:
        return [c.name for c in self.table.primary_key.columns]

    def load_options(self) -> dict[str, Any]:
        """The keyword arguments of ``Warehouse.load`` this contract adds (columns owned, update guard)."""
        return {"columns": self.columns, "update_where": self.update_where}

    def validate(self, rows: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[Reject]]:
        """The rows the warehouse will accept, and one :class:`Reject` per row it would refuse.

        Column by column first: a column whose values all certainly fit (their types, longest text,
        smallest and largest number, read over the whole batch) needs no row-by-row check; the rows are
        checked one by one against the other columns only, with the same messages."""
        rows = rows if isinstance(rows, list) else list(rows)
        doubtful = {name for name, fits in self._fits if not fits(_column(rows, name))}
        if not doubtful:
            return rows, []
        checks = tuple((name, check) for name, check in self._checks if name in doubtful)
        good: list[Mapping[str, Any]] = []
        rejects: list[Reject] = []
        for row in rows:
            problem = self.problem(row, checks)
            if problem is None:
                good.append(row)
            else:
                rejects.append(self._reject(row, *problem))
        return good, rejects

    def problem(
        self, row: Mapping[str, Any], checks: tuple[tuple[str, Callable[[Any], str | None]], ...] | None = None
    ) -> tuple[str, str] | None:
        """``(column, why)`` of the first value of ``row`` the warehouse would refuse; ``None`` when it fits."""
        for name, check in self._checks if checks is None else checks:
            message = check(row.get(name))
            if message is not None:
                return name, message
        return None

    def _reject(self, row: Mapping[str, Any], column: str, message: str) -> Reject:
        key = {k: row.get(k) for k in self.key}
        shown = ", ".join(f"{k}={_short(v)}" for k, v in key.items())
        error = RecordError(
            f"value {_short(row.get(column))} {message}",
            request=f"table {self.name}",
            record=f"key {shown}",
            field=column,
        )
        day = row.get(self.day_column) if self.day_column else None
        return Reject(
            error=error,
            record=_plain(row),
            key=key if all(v is not None for v in key.values()) else None,
            table=self.name,
            day=day if isinstance(day, dt.date) else None,
            name=f"{self.table.name}__{'_'.join(str(v) for v in key.values())}"[:180],
        )


RowCheck = Callable[[str, Mapping[str, Any], str], None]
"""``check(table, row, record)``: raises :class:`RecordError` when the warehouse would refuse ``row``."""


def row_check(contracts: Iterable[TableContract]) -> RowCheck:
    """A check a parser runs on the rows of one source record, by table full name.

    One record often gives rows of several tables (a runner: its horse, jockey, trainer and race row;
    a meeting: its row and its races' rows). Validated table by table at load time, one bad value
    would reject one row per table it reaches, and leave the record's other rows loaded (a race
    without its meeting, a bet line without its bet). Checked in the parser, the record is rejected
    once, as a record (its raw form kept, named by the parser), with all its rows. The error names
    the record, ``table.column`` and the value; tables without a contract pass.
    """
    by_name = {c.name: c for c in contracts}

    def check(table: str, row: Mapping[str, Any], record: str) -> None:
        contract = by_name.get(table)
        problem = contract.problem(row) if contract is not None else None
        if problem is not None:
            column, message = problem
            raise RecordError(f"value {_short(row.get(column))} {message}", record=record, field=f"{table}.{column}")

    return check


#: every table some contract loads, by full name (the first contract declared for it): the operator
#: commands list tables from here, so a new source edits no shared list
CONTRACTS: dict[str, TableContract] = {}


# -- column checks ---------------------------------------------------------------------------------
Fits = Callable[[list[Any]], bool]
"""``fits(values)``: True when every value of a column certainly passes its check (False: check each)."""


def _column_checks(table: sa.Table) -> list[tuple[str, Callable[[Any], str | None], Fits]]:
    checks = []
    for column in table.columns:
        if column.name in LINEAGE_COLUMNS:
            continue
        check = _type_check(column.type)
        required = not column.nullable or column.primary_key
        checks.append((column.name, _with_null(check, required), _batch_fits(column.type, required)))
    return checks


def _batch_fits(kind: sa.types.TypeEngine, required: bool) -> Fits:
    """The column-wide test of a column type: exact types first (a ``str`` subclass, a ``bool`` in an
    integer column, a ``datetime`` in a date column are left to the row check), then the bounds."""
    null = () if required else (type(None),)

    def types_in(*allowed: type) -> Callable[[list[Any]], set[type] | None]:
        ok = {*allowed, *null}
        return lambda values: found if (found := set(map(type, values))) <= ok else None

    if isinstance(kind, sa.JSON) or _type_check(kind) is None:
        return lambda values: required is False or None not in values
    if isinstance(kind, sa.String):
        length = getattr(kind, "length", None)
        of_text = types_in(str)

        def text(values: list[Any]) -> bool:
            if of_text(values) is None:
                return False
            present = list(filter(None, values))  # None and "" always fit
            if "\x00" in "".join(present):
                return False
            return length is None or max(map(len, present), default=0) <= length

        return text
    if isinstance(kind, sa.Boolean):
        of_bool = types_in(bool)
        return lambda values: of_bool(values) is not None
    if isinstance(kind, sa.Integer):
        low, high = next((r for t, r in _INT_RANGES.items() if isinstance(kind, t)), _INT_RANGES[sa.Integer])
        of_int = types_in(int)
        return lambda values: (found := of_int(values)) is not None and _within(_present(values, found), low, high)
    if isinstance(kind, sa.Float):
        of_real = types_in(int, float, decimal.Decimal)
        return lambda values: of_real(values) is not None
    if isinstance(kind, sa.Numeric):
        whole_digits = None if kind.precision is None else kind.precision - (kind.scale or 0)
        bound = None if whole_digits is None else 10**whole_digits - 1
        of_number = types_in(int, float, decimal.Decimal)

        def number(values: list[Any]) -> bool:
            found = of_number(values)
            if found is None:
                return False
            present = _present(values, found)
            if float in found:  # NaN compares false: only an all-float finite sum proves finiteness
                if found - {float, int, type(None)}:
                    return False
                try:
                    if not math.isfinite(math.fsum(present)):
                        return False
                except (OverflowError, ValueError):
                    return False
            try:  # a Decimal NaN raises here; an infinity is out of any bound
                return _within(present, -bound, bound, strict=True) if bound is not None else _finite(present)
            except (decimal.InvalidOperation, TypeError):
                return False

        return number
    if isinstance(kind, sa.DateTime):
        of_datetime = types_in(dt.datetime)
        return lambda values: of_datetime(values) is not None
    if isinstance(kind, sa.Date):
        of_date = types_in(dt.date)
        return lambda values: of_date(values) is not None
    return lambda values: False


def _column(rows: list[Mapping[str, Any]], name: str) -> list[Any]:
    """The values of column ``name`` of ``rows`` (``None`` where a row lacks it)."""
    try:
        return list(map(operator.itemgetter(name), rows))  # every row has it: the usual case, twice as fast
    except KeyError:
        return [row.get(name) for row in rows]


def _present(values: list[Any], types: set[type]) -> list[Any]:
    """``values`` without their NULLs (the list itself when ``types`` says it holds none)."""
    return [v for v in values if v is not None] if type(None) in types else values


def _within(present: list[Any], low: int, high: int, *, strict: bool = False) -> bool:
    """Every value of ``present`` (no NULL) is between ``low`` and ``high``."""
    if not present:
        return True
    smallest, largest = min(present), max(present)
    return low < smallest and largest < high if strict else low <= smallest and largest <= high


def _finite(values: list[Any]) -> bool:
    return all(v.is_finite() for v in values if isinstance(v, decimal.Decimal))


def _with_null(check: Callable[[Any], str | None] | None, required: bool) -> Callable[[Any], str | None]:
    def fn(value: Any) -> str | None:
        if value is None:
            return "is missing (the column is required)" if required else None
        return check(value) if check is not None else None

    return fn


def _type_check(kind: sa.types.TypeEngine) -> Callable[[Any], str | None] | None:
    if isinstance(kind, sa.JSON):
        return None  # serialised as JSON text; NULs travel escaped as \u0000
    if isinstance(kind, sa.String):  # Text, String(n), Enum ...
        return _string_check(getattr(kind, "length", None))
    if isinstance(kind, sa.Boolean):
        return lambda v: None if isinstance(v, bool) else f"is {type(v).__name__}, expected a boolean"
    if isinstance(kind, sa.Integer):
        low, high = next((r for t, r in _INT_RANGES.items() if isinstance(kind, t)), _INT_RANGES[sa.Integer])
        return _integer_check(low, high)
    if isinstance(kind, sa.Float):
        return _float_check
    if isinstance(kind, sa.Numeric):
        return _numeric_check(kind.precision, kind.scale)
    if isinstance(kind, sa.DateTime):
        return lambda v: None if isinstance(v, dt.datetime) else f"is {type(v).__name__}, expected a date and time"
    if isinstance(kind, sa.Date):
        return lambda v: (
            None
            if isinstance(v, dt.date) and not isinstance(v, dt.datetime)
            else f"is {type(v).__name__}, expected a date"
        )
    return None


def _string_check(length: int | None) -> Callable[[Any], str | None]:
    def fn(value: Any) -> str | None:
        if type(value) is not str:
            if isinstance(value, str):
                value = str(value)
            else:
                return f"is {type(value).__name__}, expected text"
        if "\x00" in value:
            return "contains a NUL character (\\x00), which PostgreSQL refuses in text"
        if length is not None and len(value) > length:
            return f"is {len(value)} characters long, longer than the column's {length}"
        return None

    return fn


def _integer_check(low: int, high: int) -> Callable[[Any], str | None]:
    def fn(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"is {type(value).__name__}, expected an integer"
        if not low <= value <= high:
            return f"is out of range for the column ({low} .. {high})"
        return None

    return fn


def _float_check(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return f"is {type(value).__name__}, expected a number"
    return None


def _numeric_check(precision: int | None, scale: int | None) -> Callable[[Any], str | None]:
    whole_digits = None if precision is None else precision - (scale or 0)
    # below this magnitude rounding to the scale (by at most 0.5) cannot reach 10**whole_digits: the value
    # fits without the exact (slow) rounding below; 0 when whole_digits is 0 (the fast path never applies)
    fits_below = None if whole_digits is None else 10**whole_digits - 1

    def fn(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
            return f"is {type(value).__name__}, expected a number"
        if isinstance(value, float) and not math.isfinite(value):
            return "is not a finite number"
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            return "is not a finite number"
        if fits_below is None or -fits_below < value < fits_below:
            return None
        if whole_digits is not None and value != 0:
            number = decimal.Decimal(str(value)) if isinstance(value, float) else decimal.Decimal(value)
            rounded = round(number, scale or 0)
            digits = rounded.adjusted() + 1 if rounded != 0 else 0
            if digits > whole_digits:
                return (
                    f"is out of range for NUMERIC({precision}, {scale}): {whole_digits} digits at most before the point"
                )
        return None

    return fn


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, (dt.date, dt.datetime, decimal.Decimal)):
            v = str(v)
        out[k] = v
    return out
