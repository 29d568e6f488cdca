"""TableauFlightsProvider: the travel module's data entries from a Tableau view (tableauserverclient).

* Sign-in with a personal access token (``TABLEAU_PAT_NAME`` / ``TABLEAU_PAT_SECRET``) or a connected
  app JWT (PyJWT, HS256, ``kid`` = secret id, ``iss`` = client id, ``sub`` = ``TABLEAU_USERNAME``,
  ``aud`` = ``tableau``, 5 minutes). One PAT holds one session: signing in again elsewhere ends this
  one, so a sync signs in, exports, and signs out.
* The view: ``config.view`` or ``TABLEAU_VIEW``, by name or ``workbook/sheets/sheet`` content URL.
* Filters: ``vf_<field>=<value>`` on the year (``config.year_field``, default ``Year``) and on each of
  ``filters``. Tableau matches field names exactly and case-sensitively, and silently ignores what it
  does not understand (operators, a misspelt field): the provider therefore checks the rows it gets
  back against the year and rejects the others (they are not the year's).
* The export: UTF-8 with BOM, CRLF, formatted numbers (``"5,004"``, ``$711.83``, ``14.4%``), US dates;
  the long ``Measure Names, Measure Values`` layout is pivoted back to one record per mark.
* Columns map to the travel module's (``config.columns`` {module column: view header} overrides the
  aliases); travel class and distance band are normalised as for CSV files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
import tableauserverclient as TSC

from ingestion_platform.defs.carbon import layouts
from ingestion_platform.defs.carbon.providers import (
    CsvEntriesProvider,
    ProviderError,
    Raw,
    load_entries,
    register,
)
from ingestion_platform.defs.carbon.reading import Table, header_key, read_table
from ingestion_platform.defs.carbon.resources import TableauSettings
from ingestion_platform.lib.errors import Parsed
from ingestion_platform.lib.http import Fetched
from ingestion_platform.lib.settings import SettingError


def connected_app_jwt(client_id: str, secret_id: str, secret: str, username: str) -> str:
    """A Tableau connected-app token (direct trust)."""
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": client_id,
        "sub": username,
        "aud": "tableau",
        "jti": uuid.uuid4().hex,
        "exp": now + dt.timedelta(minutes=5),
        "scp": ["tableau:views:download", "tableau:content:read"],
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": secret_id, "iss": client_id})


def pivot_measures(table: Table) -> Table:
    """A ``Measure Names, Measure Values`` export as one row per mark (the other columns), a column per measure."""
    keys = [header_key(h) for h in table.header]
    if "measurenames" not in keys or "measurevalues" not in keys:
        return table
    names, values = keys.index("measurenames"), keys.index("measurevalues")
    dims = [i for i in range(len(table.header)) if i not in (names, values)]
    measures: list[str] = []
    marks: dict[tuple[str, ...], tuple[int, dict[str, str]]] = {}
    for line, cells in table.rows:
        cells = cells + [""] * (len(table.header) - len(cells))
        mark = tuple(cells[i] for i in dims)
        _, found = marks.setdefault(mark, (line, {}))
        if cells[names] not in measures:
            measures.append(cells[names])
        found[cells[names]] = cells[values]
    # a dimension column named like a measure (Tableau adds the formatted aggregate) gives way to the measure
    kept = [k for k, i in enumerate(dims) if header_key(table.header[i]) not in {header_key(m) for m in measures}]
    header = [table.header[dims[k]] for k in kept] + measures
    rows = [
        (line, [*(mark[k] for k in kept), *(found.get(m, "") for m in measures)])
        for mark, (line, found) in marks.items()
    ]
    return Table(table.name, table.encoding, table.delimiter, header, table.header_line, rows, table.repaired)


@register("travel", "tableau_api", "data_entries")
class TableauFlightsProvider(CsvEntriesProvider):
    """Flights of a Tableau view -> travel data entries (see the module docstring)."""

    provider_type = "tableau_api"

    def _settings(self) -> TableauSettings:
        settings = self.resources.get("tableau") or TableauSettings()
        return settings.resolved()

    def _server(self) -> TSC.Server:
        s = self._settings()
        if not s.server_url:
            raise ProviderError("TABLEAU_SERVER_URL is not set", 400)
        server = TSC.Server(s.server_url, use_server_version=False, http_options={"timeout": float(s.timeout_s or 60)})
        server.version = str(self.spec.config.get("api_version", "3.19"))
        return server

    def _auth(self) -> Any:
        s = self._settings()
        try:
            kind = s.auth_kind()
        except SettingError as exc:
            raise ProviderError(str(exc), 400) from None
        site = s.site or ""
        if kind == "pat":
            return TSC.PersonalAccessTokenAuth(s.pat_name, s.secret("pat_secret"), site_id=site)
        token = connected_app_jwt(s.jwt_client_id, s.jwt_secret_id, s.secret("jwt_secret"), s.username)
        return TSC.JWTAuth(token, site_id=site)

    def validate_connection(self) -> None:
        if self.load.reprocess_from_raw:
            return
        self.server = self._server()
        auth = self._auth()
        try:
            self.server.auth.sign_in(auth)
        except TSC.NotSignedInError as exc:
            raise ProviderError(f"Tableau sign-in refused: {_summary(exc)}", 401) from None
        except TSC.ServerResponseError as exc:
            code = 401 if str(getattr(exc, "code", "")).startswith("401") else 502
            raise ProviderError(f"Tableau sign-in refused: {_summary(exc)}", code) from None
        except Exception as exc:  # requests' connection errors: the URL without credentials
            raise ProviderError(f"Tableau unreachable: {type(exc).__name__}", 502) from None

    def _view_name(self) -> str:
        return str(self.spec.config.get("view") or self._settings().view or "")

    def fetch_data(self, filters: Mapping[str, Any]) -> Raw:
        wanted = self._view_name()
        request = f"view_{header_key(wanted) or 'view'}_{self.spec.year}.csv"
        if self.load.reprocess_from_raw:
            body = self.load.land(request, lambda: None)
            return Raw({request: body or b""})
        try:
            body = self.load.land(request, lambda: self._export(wanted, filters))
        finally:
            self._sign_out()
        if body is None:
            raise ProviderError(f"Tableau view {wanted!r} returned nothing", 502)
        self.fetched = max(body.count(b"\n") - 1, 0)
        return Raw({request: body})

    def _export(self, wanted: str, filters: Mapping[str, Any]) -> Fetched:
        start = dt.datetime.now(dt.UTC)
        try:
            views = list(TSC.Pager(self.server.views))
        except TSC.ServerResponseError as exc:
            raise ProviderError(f"Tableau views list refused: {_summary(exc)}", 502) from None
        match = [
            v
            for v in views
            if wanted in (v.name, v.content_url) or wanted == (v.content_url or "").replace("/sheets/", "/")
        ]
        if not match:
            known = ", ".join(sorted(v.name for v in views)[:20])
            raise ProviderError(f"no Tableau view {wanted!r} on the site (views: {known})", 404)
        view = match[0]
        options = TSC.CSVRequestOptions()
        options.vf(str(self.spec.config.get("year_field", "Year")), str(self.spec.year))
        for name, value in filters.items():
            options.vf(str(name), str(value))
        try:
            self.server.views.populate_csv(view, options)
            body = b"".join(view.csv)
        except TSC.ServerResponseError as exc:
            raise ProviderError(f"Tableau view export refused: {_summary(exc)}", 502) from None
        url = f"{self._settings().server_url}/views/{view.id}/data"
        elapsed = (dt.datetime.now(dt.UTC) - start).total_seconds()
        return Fetched(
            url, 200, body, {"content-type": "text/csv"}, 1, elapsed, {"view": view.name, "view_id": view.id}
        )

    def _sign_out(self) -> None:
        server = getattr(self, "server", None)
        if server is not None and server.is_signed_in():
            with contextlib.suppress(Exception):  # the export is stored; the session then just expires
                server.auth.sign_out()

    def transform_data(self, raw: Raw) -> Parsed[list[dict[str, Any]]]:
        schema = layouts.MODULES["travel"]
        aliases = schema.aliases()
        for column, header in (self.spec.config.get("columns") or {}).items():
            if column in aliases:
                aliases[column] = [str(header)]
        required = [aliases[c.name] for c in schema.columns if c.required]
        out: Parsed[list[dict[str, Any]]] = Parsed([])
        for request, body in raw.payloads.items():
            table = pivot_measures(read_table(body, request, required, layout="Tableau flights view"))
            index = table.index(aliases)
            records = [
                (line, {f: cells[i] if i < len(cells) else "" for f, i in index.items()}) for line, cells in table.rows
            ]
            self.fetched = len(records)
            ctx = self.context(f"tableau:{self._view_name()}", day_first=False)
            parsed = layouts.entries_from_records(schema, records, ctx)
            self.load.file_rejects(request, parsed.rejects)
            out.value += parsed.value
        return out

    def load_data(self, parsed: Parsed[list[dict[str, Any]]], *, complete: bool) -> dict[str, Any]:
        return load_entries(self, parsed.value, complete=complete)


def _summary(exc: BaseException) -> str:
    """A Tableau error without tokens: its code, summary and detail."""
    code, summary, detail = (getattr(exc, k, "") for k in ("code", "summary", "detail"))
    return f"{code} {summary}: {detail}".strip() if code or summary else type(exc).__name__
