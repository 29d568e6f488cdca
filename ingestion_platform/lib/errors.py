"""Errors that name the offending input precisely (file/request, record, field)."""

from __future__ import annotations


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
