"""Errors and rejects that name the offending input precisely (file/request, record, field).

* :class:`RecordError` is *raised*: a payload (or a record, inside a parser) cannot be read.
* :class:`Reject` is *returned* by a parser next to the rows it could read: one record that produced
  no row (``dropped=True``, it becomes a dead letter) or one value that was not taken as written
  (``dropped=False``, a warning; the row still loads). It is the only reject type of the platform:
  parsers of every source return ``Parsed(value, rejects)`` and the load driver
  (``lib.ingest.PartitionLoad``) files the rejects, counts them in the ledger and shows them in the
  Dagster metadata.

Pure module: no Dagster, no I/O, so parsers import it freely.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RecordError(ValueError):
    """A payload or one of its records cannot be parsed.

    ``request`` names the payload (raw-store request name or file path), ``record`` identifies the
    record inside it (e.g. ``R1C3 runner 7``) and ``field`` the offending field, so that the message
    read in a dead letter or a Dagster log points straight at the data.
    """

    def __init__(
        self,
        message: str,
        *,
        request: str | None = None,
        record: str | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.request = request
        self.record = record
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.request:
            where.append(f"request {self.request}")
        if self.record:
            where.append(f"record {self.record}")
        if self.field:
            where.append(f"field {self.field!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def with_request(self, request: str) -> RecordError:
        """Return the same error, now naming the payload it came from."""
        return RecordError(self.reason, request=request, record=self.record, field=self.field)


@dataclass
class Reject:
    """A record (``dropped=True``) or one of its values (``dropped=False``) that was not taken as written.

    ``record`` is the raw record as received (kept in the dead letter so it can be replayed).
    ``key`` is the table key of the rejected record when the parser knows it (all or a leading part
    of the key columns): a ``replace_window`` load never deletes the rows it names, since the source
    still has that record. A dropped reject without a key makes its table's load partial (nothing is
    deleted). ``table`` names the table the record was meant for (``None``: every table of the load).
    ``day`` is the partition day the record belongs to when the parser knows it; the dead letter is
    filed under that day (else under the fetch window). ``name`` overrides the dead letter's name
    (default: the request and the record label).
    """

    error: RecordError
    record: Any = None
    dropped: bool = True
    key: Mapping[str, Any] | None = None
    table: str | None = None
    day: dt.date | None = None
    name: str | None = None

    @property
    def message(self) -> str:
        return str(self.error)


@dataclass
class Parsed(Generic[T]):
    """What a parser returns: the value it could read (rows ...) and the rejects it found on the way."""

    value: T
    rejects: list[Reject] = field(default_factory=list)
