"""Odoo over JSON-RPC with odoorpc as the transport, and the mapping of Odoo's errors to clear ones.

odoorpc 0.10.1 logs in with ``common.login`` on ``/jsonrpc`` (an API key is a drop-in password there;
``/web/session/authenticate``, an interactive login, refuses API keys on Odoo 14+) and sends every
``execute_kw`` to the ``object`` service of ``/jsonrpc`` with the key. Reads are always
``execute_kw(model, 'search_read', [domain], {'fields': [...], 'limit': n, 'order': 'id asc',
'context': {'active_test': False}})``: never ``browse()`` (it reads every field and breaks on fields a
version renamed), always an explicit field list.

Errors come back as HTTP 200 JSON-RPC error objects (see ../shared/odoo): :func:`odoo_error` turns
them (and XML-RPC faults) into :class:`OdooError` subclasses that name what is wrong: the user and
database for a refused key, the database, the model, the field, the missing access right. They are
``lib.errors.RecordError`` (the request they concern is named); a payload error would be
dead-lettered by ``PartitionLoad.parse``, but these are raised by the fetch, so they fail the run's
ledger jobs and the step with that message. The API key never appears in a message, a log line
(the ``odoorpc`` logger is kept above DEBUG: it logs the password ``execute_kw`` sends) or a raw file.

Transport failures (connection refused or reset, timeouts, HTTP 429/5xx) are retried with exponential
backoff, for reads only (every call made here is a read).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlsplit

import odoorpc
import odoorpc.error
import orjson
from odoorpc.rpc import jsonrpclib

from ingestion_platform.lib.errors import RecordError

DATETIME = "%Y-%m-%d %H:%M:%S"
RETRY_STATUSES = (429, 500, 502, 503, 504)


class OdooError(RecordError):
    """Odoo answered with an error; the message names what is wrong (never the API key)."""

    def __init__(
        self, message: str, *, request: str | None = None, field: str | None = None, odoo_name: str | None = None
    ) -> None:
        super().__init__(message, request=request, field=field)
        self.odoo_name = odoo_name


class OdooAccessDenied(OdooError):
    """Wrong login or API key (``odoo.exceptions.AccessDenied``, or ``authenticate`` answering false)."""


class OdooUnknownDatabase(OdooError):
    """``ODOO_DB`` names a database the server does not have."""


class OdooUnknownModel(OdooError):
    """A model the server does not have (its module is not installed)."""


class OdooUnknownField(OdooError):
    """A field the model does not have (in the field list or a domain leaf)."""


class OdooAccessRight(OdooError):
    """The user may not read a model (``odoo.exceptions.AccessError``)."""


class OdooSessionExpired(OdooError):
    """A web endpoint called without (or with an expired) session."""


class OdooServerError(OdooError):
    """Any other error Odoo answered."""


class OdooUnavailable(OdooError):
    """The server could not be reached (after retries), or answered something that is not JSON-RPC."""


_UNKNOWN_DB = re.compile(r'database "([^"]+)" does not exist')
_UNKNOWN_MODEL = re.compile(r"Object (\S+) doesn't exist")
_FIELD_IN_FIELDS = re.compile(r"Invalid field '([^']+)' on model '([^']+)'")
_FIELD_IN_LEAF = re.compile(r"Invalid field ([\w.]+)\.(\w+) in leaf")
_ACCESS = re.compile(r"\(([\w.]+)\) records")


def odoo_error(
    name: str | None,
    message: str,
    *,
    db: str | None = None,
    login: str | None = None,
    model: str | None = None,
    request: str | None = None,
    code: int | None = None,
) -> OdooError:
    """The clear error for an Odoo error ``name`` (``data.name``; None for an XML-RPC fault) and message.

    ``message`` is ``data.message`` of a JSON-RPC error, or the ``faultString`` of an XML-RPC fault
    (which can be ``[... last line was: ValueError: ...]``: matched anywhere in the text).
    """
    name = name or ""
    text = message or ""
    where = request or (f"{model}" if model else None)
    if name.endswith("AccessDenied") or text.strip() == "Access Denied":
        return OdooAccessDenied(
            f"Odoo refused the credentials of user {login!r} on database {db!r} (AccessDenied): "
            "check ODOO_USER and ODOO_API_KEY",
            request=where,
            odoo_name=name or "AccessDenied",
        )
    if found := _UNKNOWN_DB.search(text):
        return OdooUnknownDatabase(
            f"Odoo has no database {found.group(1)!r}: check ODOO_DB", request=where, odoo_name=name
        )
    if found := _UNKNOWN_MODEL.search(text):
        return OdooUnknownModel(
            f"Odoo has no model {found.group(1)!r} (is its module installed?)", request=where, odoo_name=name
        )
    if found := _FIELD_IN_FIELDS.search(text):
        field, owner = found.group(1), found.group(2)
        return OdooUnknownField(
            f"Odoo model {owner!r} has no field {field!r}", request=where, field=field, odoo_name=name
        )
    if found := _FIELD_IN_LEAF.search(text):
        owner, field = found.group(1), found.group(2)
        return OdooUnknownField(
            f"Odoo model {owner!r} has no field {field!r} (in the domain)", request=where, field=field, odoo_name=name
        )
    if name.endswith("AccessError"):
        denied = _ACCESS.search(text)
        what = denied.group(1) if denied else model
        first = text.strip().splitlines()[0] if text.strip() else name
        return OdooAccessRight(
            f"user {login!r} may not read Odoo model {what!r}: {first} (grant the user read access to it)",
            request=where,
            odoo_name=name,
        )
    if name.endswith("SessionExpiredException") or code == 100:
        return OdooSessionExpired(f"Odoo session expired: {text}", request=where, odoo_name=name)
    return OdooServerError(f"Odoo error {name or 'fault'}: {text.strip()[:500]}", request=where, odoo_name=name)


def error_from_rpc(error: Mapping[str, Any], **context: Any) -> OdooError:
    """:func:`odoo_error` for a JSON-RPC ``error`` object (``{code, message, data: {name, message}}``)."""
    data = error.get("data") or {}
    return odoo_error(
        data.get("name"), data.get("message") or error.get("message") or "", code=error.get("code"), **context
    )


class _DateRecorder(urllib.request.BaseHandler):
    """Keeps the ``Date`` header of the last response: the server's clock (the sync lag counts from it)."""

    handler_order = 999

    def __init__(self) -> None:
        self.server_date: dt.datetime | None = None

    def http_response(self, request: Any, response: Any) -> Any:
        header = response.headers.get("Date")
        if header:
            with _quiet(ValueError, TypeError):
                self.server_date = email.utils.parsedate_to_datetime(header).astimezone(dt.UTC).replace(tzinfo=None)
        return response

    https_response = http_response


@dataclass(frozen=True)
class RawPage:
    """Records as decoded, the response bytes they were decoded from (the JSON-RPC envelope), and the
    seconds the request took."""

    records: list[dict[str, Any]]
    body: bytes
    elapsed_s: float | None = None


def decode(body: bytes | str) -> Any:
    """A JSON-RPC response (or a stored page) decoded: orjson, about twice as fast as the standard
    library on a page of 1,000 records (``benchmarks/README.md``), and the standard library for what
    orjson refuses and Python's ``json`` accepts (``NaN``, ``Infinity``, lone surrogates), whose error a
    body that is not JSON gets. Odoo's integers are database integers (ids, integer fields, 32 or 64
    bits): orjson reads them exactly (it would read one beyond 64 bits as a float)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def records_of(decoded: Any) -> Any:
    """The records of a stored page: its JSON-RPC envelope's ``result`` (or the page itself, as stored
    before the envelope was kept)."""
    return decoded["result"] if isinstance(decoded, dict) and "result" in decoded else decoded


class _KeepingProxy(jsonrpclib.ProxyJSON):
    """odoorpc's JSON-RPC proxy, keeping the bytes of the last response of each thread: a page is stored
    raw as the server sent it and decoded once (odoorpc 0.10's ``ODOO.json`` calls the connector's
    ``_proxy_json``; this replaces it, ``deserialize=False`` returning the HTTP response)."""

    def __init__(self, host: str, port: int, timeout: float, ssl: bool, opener: Any) -> None:
        super().__init__(host, port, timeout, ssl=ssl, opener=opener, deserialize=False)
        self.kept = threading.local()

    def __call__(self, url: str, params: Any = None) -> Any:
        response = super().__call__(url, params)
        body = response.read()
        self.kept.body = body
        return decode(body)


class _quiet:
    def __init__(self, *errors: type[BaseException]) -> None:
        self.errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, value: Any, tb: Any) -> bool:
        return kind is not None and issubclass(kind, self.errors)


def endpoint(url: str) -> tuple[str, str, int]:
    """odoorpc's ``(host, protocol, port)`` for ``ODOO_URL`` (scheme, host and port)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OdooUnavailable(f"ODOO_URL must be http(s)://host[:port], not {redact(url)!r}")
    protocol = "jsonrpc+ssl" if parts.scheme == "https" else "jsonrpc"
    return parts.hostname, protocol, parts.port or (443 if parts.scheme == "https" else 80)


def redact(url: str) -> str:
    """The URL without credentials, path or query (what the ledger and messages show)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class OdooClient:
    """One authenticated Odoo user over ``/jsonrpc`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        db: str,
        login: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 4,
        backoff_base_s: float = 0.5,
    ) -> None:
        if not url or not db or not login or not api_key:
            missing = [
                n
                for n, v in (("ODOO_URL", url), ("ODOO_DB", db), ("ODOO_USER", login), ("ODOO_API_KEY", api_key))
                if not v
            ]
            raise OdooAccessDenied(f"Odoo is not configured: set {', '.join(missing)}")
        host, protocol, port = endpoint(url)
        logger = logging.getLogger("odoorpc")
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))  # DEBUG would log the key
        self.url = redact(url)
        self.db = db
        self.login_name = login
        self._key = api_key
        self._dates = _DateRecorder()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), self._dates)
        self._odoo = odoorpc.ODOO(host, protocol=protocol, port=port, timeout=timeout_s, opener=opener)
        connector = self._odoo._connector
        self._proxy = _KeepingProxy(connector.host, connector.port, timeout_s, connector.ssl, opener)
        connector._proxy_json = self._proxy
        self._odoo.json = self._retrying(self._odoo.json)  # the hook odoorpc routes every RPC through
        self.max_attempts = max(1, int(max_attempts))
        self.backoff_base_s = backoff_base_s
        self.uid: int | None = None
        self._fields: dict[str, dict[str, Any]] = {}
        self.calls = 0

    def __repr__(self) -> str:  # never the key
        return f"OdooClient({self.url}, db={self.db!r}, user={self.login_name!r})"

    # -- transport ----------------------------------------------------------------------------------
    def _retrying(self, json: Any) -> Any:
        """``ODOO.json`` with retries on transport failures (reads only; an RPC error is an answer)."""

        def call(url: str, params: Mapping[str, Any]) -> Any:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    self.calls += 1
                    return json(url, params)
                except urllib.error.HTTPError as exc:
                    if exc.code not in RETRY_STATUSES or attempt == self.max_attempts:
                        raise OdooUnavailable(f"Odoo at {self.url} answered HTTP {exc.code}", request=url) from None
                except (OSError, ValueError) as exc:  # URLError, timeouts, resets; ValueError: not JSON
                    if attempt == self.max_attempts:
                        raise OdooUnavailable(
                            f"Odoo at {self.url} unreachable after {attempt} attempt(s): {type(exc).__name__}: {exc}",
                            request=url,
                        ) from None
                time.sleep(random.uniform(0, self.backoff_base_s * 2 ** (attempt - 1)))
            raise AssertionError("unreachable")

        return call

    def _mapped(self, exc: odoorpc.error.RPCError, request: str, model: str | None = None) -> OdooError:
        info = exc.info if isinstance(exc.info, Mapping) else {"message": str(exc)}
        return error_from_rpc(info, db=self.db, login=self.login_name, model=model, request=request)

    @property
    def server_now(self) -> dt.datetime:
        """The server's clock (naive UTC) from the last response's ``Date`` header, else this machine's."""
        return self._dates.server_date or dt.datetime.now(dt.UTC).replace(tzinfo=None)

    # -- services -----------------------------------------------------------------------------------
    @property
    def major_version(self) -> int:
        """16, 17, 18 ... from ``/web/webclient/version_info`` (odoorpc reads it once)."""
        try:
            version = self._odoo.version
        except odoorpc.error.RPCError as exc:
            raise self._mapped(exc, "version") from None
        found = re.search(r"(\d+)", str(version))
        return int(found.group(1)) if found else 0

    def authenticate(self) -> int:
        """odoorpc's ``login`` (``common.login`` over /jsonrpc); a refusal raises OdooAccessDenied."""
        try:
            self._odoo.login(self.db, self.login_name, self._key)
        except odoorpc.error.RPCError as exc:
            if not isinstance(exc.info, Mapping):  # "Wrong login ID or password": login answered false
                exc = odoorpc.error.RPCError(
                    "Access Denied", {"data": {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied"}}
                )
            raise self._mapped(exc, "common.login") from None
        self.uid = int(self._odoo.env.uid)
        return self.uid

    def execute_kw(self, model: str, method: str, args: Sequence[Any], kwargs: Mapping[str, Any] | None = None) -> Any:
        if self.uid is None:
            self.authenticate()
        try:
            return self._odoo.execute_kw(model, method, list(args), dict(kwargs or {}))
        except odoorpc.error.RPCError as exc:
            raise self._mapped(exc, f"{model} {method}", model) from None

    def fields(self, model: str) -> dict[str, Any]:
        """``fields_get`` of ``model`` (cached): which fields this server's version has."""
        if model not in self._fields:
            self._fields[model] = self.execute_kw(model, "fields_get", [], {"attributes": ["type", "string"]})
        return self._fields[model]

    def pick_fields(self, model: str, required: Sequence[str], optional: Sequence[str] = ()) -> list[str]:
        """The fields to ask for: every ``required`` one (a missing one raises OdooUnknownField naming it)
        and the ``optional`` ones this version has (e.g. ``detailed_type`` up to 17, ``is_storable`` 18+)."""
        available = self.fields(model)
        for name in required:
            if name not in available:
                raise OdooUnknownField(
                    f"Odoo model {model!r} has no field {name!r}", request=f"{model} fields_get", field=name
                )
        return list(dict.fromkeys([*required, *(n for n in optional if n in available)]))

    def search_read(
        self, model: str, domain: Sequence[Any], fields: Sequence[str], *, limit: int = 1000, order: str = "id asc"
    ) -> list[dict[str, Any]]:
        kwargs = {"fields": list(fields), "limit": limit, "order": order, "context": {"active_test": False}}
        return self.execute_kw(model, "search_read", [list(domain)], kwargs)

    def keyset(
        self, model: str, domain: Sequence[Any], fields: Sequence[str], *, page_size: int = 1000, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """One page: records of ``domain`` with ``id > after_id``, ordered by id (never an offset)."""
        return self.search_read(model, [*domain, ("id", ">", after_id)], fields, limit=page_size)

    def raw_search_read(
        self, model: str, domain: Sequence[Any], fields: Sequence[str], *, limit: int = 1000, after_id: int = 0
    ) -> RawPage:
        """``keyset`` with the response's bytes, as the server sent them (never holding the API key: that
        travels in the request only)."""
        began = time.monotonic()
        records = self.keyset(model, domain, fields, page_size=limit, after_id=after_id)
        return RawPage(records, self._proxy.kept.body, time.monotonic() - began)

    def ids(self, model: str, domain: Sequence[Any] = (), *, page_size: int = 1000) -> list[int]:
        """Every id of ``domain`` (archived included), keyset-paged by id."""
        out: list[int] = []
        last = 0
        while True:
            page = self.keyset(model, domain, ["id"], page_size=page_size, after_id=last)
            out.extend(int(r["id"]) for r in page)
            if len(page) < page_size:
                return out
            last = int(page[-1]["id"])

    def can_read(self, model: str) -> bool:
        """Whether the user may read ``model`` (``check_access_rights('read')``)."""
        return bool(self.execute_kw(model, "check_access_rights", ["read"], {"raise_exception": False}))
