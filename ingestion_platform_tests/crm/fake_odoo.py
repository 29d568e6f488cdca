"""A fake Odoo JSON-RPC server that behaves like the recorded Odoo 16 and 17 servers (../shared/odoo).

A real HTTP server in a thread (``FakeOdoo().start()``), driven by odoorpc in the tests. What it keeps
from the recordings (see ../shared/odoo/SOURCES.md):

* ``/jsonrpc`` services ``common`` (``version``, ``login``, ``authenticate``: ``false`` for a wrong
  password) and ``object`` (``execute_kw`` with the password or an API key on every call), and the web
  endpoints odoorpc uses by default (``/web/webclient/version_info``, ``/web/session/authenticate``,
  ``/web/dataset/call_kw`` with its session cookie, ``/web/database/list``). As on a real Odoo 14+,
  an API key is refused by ``/web/session/authenticate`` (an interactive login) and accepted by
  ``/jsonrpc``.
* Errors are HTTP 200 JSON-RPC error objects (``code`` 200, ``message`` "Odoo Server Error",
  ``data.name`` / ``message`` / ``arguments`` / ``debug`` / ``context``): ``AccessDenied`` for a wrong
  key, ``UserError`` "Object x doesn't exist", ``ValueError`` "Invalid field ..." (in ``fields`` and in
  a domain leaf), ``psycopg2.OperationalError`` for an unknown database, ``AccessError`` for a model the
  user may not read, ``SessionExpiredException`` (code 100) for ``call_kw`` without a session.
* ``write_date`` kept with microseconds inside and returned cut to whole seconds; every record written
  by one transaction shares the transaction's start time (``create`` of 2,500 records = one
  write_date); a transaction opened with ``begin()`` is invisible until ``commit()``, which can happen
  after a sync read past its write_date (the late commit); ``unlink`` deletes for good.
* ``product.template`` records hold the template's fields (name, price, category ...); a variant
  (``product.product`` with ``product_tmpl_id``) reads them from its template but keeps its own
  ``write_date``: writing only the template (its price) does not move the variant's.
* Domains compare datetimes as PostgreSQL does (a string leaf is a timestamp at .000000, so a record
  at 21:45:45.5 is ``>= '21:45:45'`` and ``> '21:45:45'``); ``active_test`` hides archived records
  unless the context sets it to false; ``order`` and ``offset`` are honoured.
* Version shapes: 16 and 17 have ``detailed_type`` and ``type='product'`` for storable products, 18 has
  ``type='consu'`` + ``is_storable`` and no ``detailed_type``.

The tests drive the clock: ``fake.now`` is the server time (naive UTC), also sent as the ``Date`` header.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import email.utils
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ingestion_platform_tests import local_http

DATETIME = "%Y-%m-%d %H:%M:%S"

# field name -> type, per model (the fields the tests and the sync use; real servers have ~150)
_BASE_FIELDS: dict[str, dict[str, str]] = {
    "res.partner": {
        "name": "char",
        "display_name": "char",
        "email": "char",
        "phone": "char",
        "mobile": "char",
        "zip": "char",
        "city": "char",
        "country_id": "many2one",
        "is_company": "boolean",
        "customer_rank": "integer",
        "category_id": "many2many",
        "active": "boolean",
        "country_code": "char",
        "parent_id": "many2one",
        "company_id": "many2one",
        "vat": "char",
        "is_blacklisted": "boolean",
        "lang": "char",
    },
    "product.product": {
        "name": "char",
        "display_name": "char",
        "default_code": "char",
        "barcode": "char",
        "list_price": "float",
        "standard_price": "float",
        "uom_id": "many2one",
        "categ_id": "many2one",
        "type": "selection",
        "active": "boolean",
        "product_tmpl_id": "many2one",
        "volume": "float",
        "description_sale": "text",
    },
    "product.template": {
        "name": "char",
        "display_name": "char",
        "default_code": "char",
        "list_price": "float",
        "standard_price": "float",
        "uom_id": "many2one",
        "categ_id": "many2one",
        "type": "selection",
        "active": "boolean",
        "description_sale": "text",
    },
    "uom.uom": {
        "name": "char",
        "factor": "float",
        "uom_type": "selection",
        "category_id": "many2one",
        "active": "boolean",
    },
    "sale.order": {
        "name": "char",
        "partner_id": "many2one",
        "date_order": "datetime",
        "state": "selection",
        "team_id": "many2one",
    },
    "sale.order.line": {
        "order_id": "many2one",
        "product_id": "many2one",
        "name": "text",
        "product_uom_qty": "float",
        "product_uom": "many2one",
        "price_unit": "float",
        "price_subtotal": "float",
        "price_total": "float",
        "discount": "float",
        "currency_id": "many2one",
        "state": "selection",
        "order_partner_id": "many2one",
        "qty_delivered": "float",
        "display_type": "selection",
    },
    "stock.quant": {
        "product_id": "many2one",
        "location_id": "many2one",
        "lot_id": "many2one",
        "quantity": "float",
        "reserved_quantity": "float",
        "inventory_quantity": "float",
        "in_date": "datetime",
        "company_id": "many2one",
        "last_count_date": "date",
        "warehouse_id": "many2one",
    },
    "stock.location": {
        "name": "char",
        "complete_name": "char",
        "usage": "selection",
        "active": "boolean",
        "warehouse_id": "many2one",
    },
    "mail.message": {
        "model": "char",
        "res_id": "integer",
        "date": "datetime",
        "subject": "char",
        "body": "html",
        "message_type": "selection",
        "subtype_id": "many2one",
        "author_id": "many2one",
        "record_name": "char",
    },
}
_COMMON = {"id": "integer", "create_date": "datetime", "write_date": "datetime"}
_DESCRIPTIONS = {
    "res.partner": "Contact",
    "product.product": "Product Variant",
    "product.template": "Product",
    "sale.order.line": "Sales Order Line",
    "stock.quant": "Quants",
    "mail.message": "Message",
    "uom.uom": "Product Unit of Measure",
    "sale.order": "Sales Order",
    "stock.location": "Inventory Locations",
}
_ACTIVE_MODELS = {"res.partner", "product.product", "product.template", "uom.uom", "stock.location"}
_TEMPLATE_OWN = {"id", "create_date", "write_date", "active", "display_name"}
"""Fields of ``product.template`` a variant does not take from its template (it has its own)."""


def fields_of(model: str, version: int) -> dict[str, str]:
    fields = {**_COMMON, **_BASE_FIELDS[model]}
    if model in ("product.product", "product.template"):
        if version >= 18:
            fields["is_storable"] = "boolean"
        else:
            fields["detailed_type"] = "selection"
    if model == "res.partner" and version >= 18:
        fields.pop("mobile")  # moved out of base in 18
    return fields


class RpcFault(Exception):
    """An error answered as a JSON-RPC error object (HTTP 200)."""

    def __init__(self, name: str, message: str, code: int = 200) -> None:
        super().__init__(message)
        self.name, self.message, self.code = name, message, code

    def body(self, request_id: Any) -> dict[str, Any]:
        exception_line = f"{self.name.rsplit('.', 1)[-1]}: {self.message}"
        debug = f'Traceback (most recent call last):\n  File "odoo/http.py", line 1, in _serve_db\n{exception_line}\n'
        data = {"name": self.name, "debug": debug, "message": self.message, "arguments": [self.message], "context": {}}
        message = "Odoo Session Expired" if self.code == 100 else "Odoo Server Error"
        return {"jsonrpc": "2.0", "id": request_id, "error": {"code": self.code, "message": message, "data": data}}


def _access_denied() -> RpcFault:
    return RpcFault("odoo.exceptions.AccessDenied", "Access Denied")


class Transaction:
    """Writes that share one write_date (the transaction's start) and show only once committed."""

    def __init__(self, server: FakeOdoo) -> None:
        self.server = server
        self.started = server.now
        self.pending: list[tuple[str, int, dict[str, Any] | None]] = []

    def create(self, model: str, values: list[dict[str, Any]]) -> list[int]:
        ids = []
        for value in values:
            new_id = self.server._next_id(model)
            record = {"create_date": self.started, **value, "id": new_id, "write_date": self.started}
            self.pending.append((model, new_id, record))
            ids.append(new_id)
        return ids

    def write(self, model: str, ids: list[int], values: dict[str, Any]) -> None:
        for record_id in ids:
            current = self.server.records[model][record_id]
            self.pending.append((model, record_id, {**current, **values, "write_date": self.started}))

    def unlink(self, model: str, ids: list[int]) -> None:
        self.pending.extend((model, record_id, None) for record_id in ids)

    def commit(self) -> None:
        with self.server.lock:
            for model, record_id, record in self.pending:
                self.server._put(model, record_id, record)
        self.pending = []


class FakeOdoo:
    """An Odoo-shaped JSON-RPC server: ``start()`` it, point odoorpc at ``host``/``port``."""

    def __init__(
        self,
        *,
        version: int = 17,
        db: str = "estate",
        login: str = "sync@estate.example",
        password: str = "web-password",
        api_key: str = "0123456789abcdef-api-key",
        uid: int = 2,
        now: dt.datetime | None = None,
    ) -> None:
        self.version = version
        self.db = db
        self.login = login
        self.password = password
        self.api_key = api_key
        self.uid = uid
        self.now = now or dt.datetime(2026, 11, 22, 21, 45, 45, 123456)
        self.lock = threading.RLock()
        self.records: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in _BASE_FIELDS}
        self._ids: dict[str, list[int]] = {m: [] for m in _BASE_FIELDS}
        self._sequence: dict[str, int] = dict.fromkeys(_BASE_FIELDS, 0)
        self.forbidden: set[str] = set()  # models the user may not read (AccessError)
        self.calls: list[dict[str, Any]] = []  # every object call: model, method, args, kwargs
        # called after each search_read with (model, kwargs, result): changes "during" a sync
        self.after_read: Any = None
        self._sessions: set[str] = set()
        self.httpd: ThreadingHTTPServer | None = None
        self.url = ""

    # -- data ---------------------------------------------------------------------------------------
    def tick(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now

    def _next_id(self, model: str) -> int:
        with self.lock:
            self._sequence[model] += 1
            return self._sequence[model]

    def _put(self, model: str, record_id: int, record: dict[str, Any] | None) -> None:
        ids = self._ids[model]
        position = bisect.bisect_left(ids, record_id)
        present = position < len(ids) and ids[position] == record_id
        if record is None:
            if present:
                ids.pop(position)
                del self.records[model][record_id]
            return
        if not present:
            ids.insert(position, record_id)
        if model in _ACTIVE_MODELS:
            record.setdefault("active", True)
        self.records[model][record_id] = record

    def begin(self) -> Transaction:
        return Transaction(self)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        tx = self.begin()
        yield tx
        tx.commit()

    def create(self, model: str, values: list[dict[str, Any]]) -> list[int]:
        """One committed transaction creating ``values`` (all share one write_date)."""
        with self.transaction() as tx:
            return tx.create(model, values)

    def write(self, model: str, ids: list[int], values: dict[str, Any]) -> None:
        with self.transaction() as tx:
            tx.write(model, ids, values)

    def unlink(self, model: str, ids: list[int]) -> None:
        with self.transaction() as tx:
            tx.unlink(model, ids)

    def name_of(self, model: str, record_id: int) -> list[Any]:
        """A many2one value: ``[id, display name]``."""
        record = self.records[model][record_id]
        return [record_id, record.get("display_name") or record.get("complete_name") or record.get("name")]

    # -- serving ------------------------------------------------------------------------------------
    def start(self) -> FakeOdoo:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return email.utils.format_datetime(server.now.replace(tzinfo=dt.UTC), usegmt=True)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                cookie = self.headers.get("Cookie") or ""
                session = next((c.split("=", 1)[1] for c in cookie.split("; ") if c.startswith("session_id=")), None)
                set_cookie = None
                try:
                    result, set_cookie = server.dispatch(self.path, body.get("params") or {}, session)
                    answer = {"jsonrpc": "2.0", "id": body.get("id"), "result": result}
                except RpcFault as fault:
                    answer = fault.body(None if fault.code == 100 else body.get("id"))
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if set_cookie:
                    self.send_header("Set-Cookie", f"session_id={set_cookie}; Path=/; HttpOnly")
                self.end_headers()
                self.wfile.write(data)

        self.httpd, self.url = local_http.start(Handler)
        return self

    @property
    def port(self) -> int:
        assert self.httpd is not None
        return self.httpd.server_address[1]

    def stop(self) -> None:
        if self.httpd is not None:
            local_http.stop(self.httpd)
            self.httpd = None

    def __enter__(self) -> FakeOdoo:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- RPC ----------------------------------------------------------------------------------------
    def dispatch(self, path: str, params: dict[str, Any], session: str | None) -> tuple[Any, str | None]:
        info = {
            "server_version": f"{self.version}.0",
            "server_version_info": [self.version, 0, 0, "final", 0, ""],
            "server_serie": f"{self.version}.0",
            "protocol_version": 1,
        }
        if path == "/web/webclient/version_info":
            return info, None
        if path == "/web/database/list":
            return [self.db], None
        if path == "/web/session/authenticate":
            self._check_db(params.get("db"))
            # interactive login: the password only, never an API key (Odoo 14+)
            if params.get("login") != self.login or params.get("password") != self.password:
                raise _access_denied()
            session_id = uuid.uuid4().hex
            self._sessions.add(session_id)
            return {
                "uid": self.uid,
                "db": self.db,
                "username": self.login,
                "server_version": info["server_version"],
                "server_version_info": info["server_version_info"],
                "user_context": {"lang": "en_US", "tz": "Europe/Paris", "uid": self.uid},
            }, session_id
        if path == "/web/dataset/call_kw" or path.startswith("/web/dataset/call_kw/"):
            if session not in self._sessions:
                raise RpcFault("odoo.http.SessionExpiredException", "Session expired", code=100)
            return self.call(
                params["model"], params["method"], params.get("args") or [], params.get("kwargs") or {}
            ), None
        if path == "/jsonrpc":
            return self._service(params.get("service"), params.get("method"), params.get("args") or []), None
        raise RpcFault("werkzeug.exceptions.NotFound", f"404: Not Found ({path})")

    def _check_db(self, db: Any) -> None:
        if db != self.db:
            raise RpcFault(
                "psycopg2.OperationalError",
                f'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
                f'FATAL:  database "{db}" does not exist\n',
            )

    def _credentials_ok(self, password: Any) -> bool:
        return password in (self.password, self.api_key)

    def _service(self, service: Any, method: Any, args: list[Any]) -> Any:
        if service == "common":
            if method == "version":
                return {
                    "server_version": f"{self.version}.0",
                    "server_version_info": [self.version, 0, 0, "final", 0, ""],
                    "server_serie": f"{self.version}.0",
                    "protocol_version": 1,
                }
            if method in ("login", "authenticate"):
                db, login, password = args[0], args[1], args[2]
                self._check_db(db)
                return self.uid if login == self.login and self._credentials_ok(password) else False
        if service == "db" and method == "list":
            return [self.db]
        if service == "object" and method in ("execute_kw", "execute"):
            db, uid, password, model, rpc_method = args[:5]
            self._check_db(db)
            if uid != self.uid or not self._credentials_ok(password):
                raise _access_denied()
            if method == "execute":  # positional arguments (odoorpc's login reads res.users.context_get)
                if (model, rpc_method) == ("res.users", "context_get"):
                    return {"lang": "en_US", "tz": "Europe/Paris", "uid": self.uid}
                return self.call(model, rpc_method, list(args[5:]), {})
            return self.call(model, rpc_method, args[5] if len(args) > 5 else [], args[6] if len(args) > 6 else {})
        raise RpcFault("builtins.NameError", f"The method {method!r} of service {service!r} does not exist")

    def call(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        with self.lock:
            self.calls.append({"model": model, "method": method, "args": args, "kwargs": kwargs})
        if model not in self.records:
            raise RpcFault("odoo.exceptions.UserError", f"Object {model} doesn't exist")
        fields = fields_of(model, self.version)
        if method == "check_access_rights":
            allowed = model not in self.forbidden
            if not allowed and kwargs.get("raise_exception", True):
                raise self._access_error(model)
            return allowed
        if model in self.forbidden:
            raise self._access_error(model)
        if method == "fields_get":
            return {name: {"type": kind, "string": name.replace("_", " ").title()} for name, kind in fields.items()}
        if method in ("search_read", "search", "search_count"):
            domain = args[0] if args else kwargs.get("domain", [])
            context = kwargs.get("context") or {}
            ids = self._search(
                model, domain, context, kwargs.get("order") or "id asc", kwargs.get("offset") or 0, kwargs.get("limit")
            )
            if method == "search":
                return ids
            if method == "search_count":
                return len(ids)
            wanted = kwargs.get("fields") or (args[1] if len(args) > 1 else None) or list(fields)
            for name in wanted:
                if name not in fields:
                    raise RpcFault("builtins.ValueError", f"Invalid field {name!r} on model {model!r}")
            result = [self._read(model, self._effective(model, self.records[model][i]), wanted) for i in ids]
            if self.after_read is not None:
                self.after_read(model, kwargs, result)
            return result
        raise RpcFault("builtins.AttributeError", f"The method '{model}.{method}' does not exist")

    def _access_error(self, model: str) -> RpcFault:
        label = _DESCRIPTIONS.get(model, model)
        return RpcFault(
            "odoo.exceptions.AccessError",
            f"You are not allowed to access '{label}' ({model}) records.\n\nThis operation is allowed for the "
            "following groups:\n\t- Sales/User: Own Documents Only\n\nContact your administrator to request "
            "access if necessary.",
        )

    def _effective(self, model: str, record: dict[str, Any]) -> dict[str, Any]:
        """A variant with the fields its template holds (price, name ...), as Odoo's related fields read
        them; its own ``write_date`` stays the variant's: writing the template does not move it."""
        if model != "product.product":
            return record
        pair = record.get("product_tmpl_id")
        template = self.records["product.template"].get(pair[0]) if isinstance(pair, list) and pair else None
        if template is None:
            return record
        return {**record, **{k: v for k, v in template.items() if k not in _TEMPLATE_OWN}}

    @staticmethod
    def _read(model: str, record: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": record["id"]}
        for name in wanted:
            value = record.get(name, False)
            if isinstance(value, dt.datetime):
                value = value.strftime(DATETIME)  # cut to whole seconds, as the API does
            elif isinstance(value, dt.date):
                value = value.isoformat()
            elif value is None or value == "":
                value = False  # Odoo's false-for-empty
            out[name] = value
        return out

    def _search(
        self, model: str, domain: list[Any], context: dict[str, Any], order: str, offset: int, limit: int | None
    ) -> list[int]:
        fields = fields_of(model, self.version)
        active_test = context.get("active_test", True) and "active" in fields
        if active_test and not any(isinstance(t, (list, tuple)) and t[0] == "active" for t in domain):
            domain = ["&", ("active", "=", True), *domain] if domain else [("active", "=", True)]
        predicate = self._compile(model, list(domain))
        keys = [part.strip().split() for part in order.split(",")]
        with self.lock:
            ids = list(self._ids[model])
            records = self.records[model]
            by_id = keys == [["id", "asc"]] or keys == [["id"]]
            start = 0
            if by_id:  # keyset fast path: skip what an ``id > n`` leaf excludes anyway
                floor = _id_floor(domain)
                if floor is not None:
                    start = bisect.bisect_right(ids, floor)
            listed = _id_list(domain)
            if listed is not None:  # ``id in [...]``: the primary key index
                ids, start = sorted(i for i in set(listed) if i in records), 0
            matched: list[int] = []
            descending = keys == [["id", "desc"]]  # the primary key index read backwards
            stop = None if limit is None or not (by_id or descending) else offset + limit
            for record_id in reversed(ids[start:]) if descending else ids[start:]:
                if predicate(records[record_id]):
                    matched.append(record_id)
                    if stop is not None and len(matched) >= stop:
                        break
        if not by_id and not descending:
            for name, *direction in reversed(keys):
                reverse = bool(direction) and direction[0].lower() == "desc"
                matched.sort(key=lambda i, n=name: _sortable(records[i].get(n)), reverse=reverse)
        matched = matched[offset:]
        return matched[:limit] if limit else matched

    def _compile(self, model: str, domain: list[Any]) -> Any:
        """A predicate for a prefix-notation domain ('&', '|', '!' and leaves; implicit '&')."""
        fields = fields_of(model, self.version)

        def leaf(term: Any) -> Any:
            name, op, value = term
            path = name.split(".")
            if path[0] not in fields:
                raise RpcFault("builtins.ValueError", f"Invalid field {model}.{path[0]} in leaf {tuple(term)!r}")
            relation = _RELATIONS.get((model, path[0])) if len(path) > 1 else None

            def get(record: dict[str, Any]) -> Any:
                value = record.get(path[0], False)
                if relation is not None:
                    target = self.records[relation].get(value[0]) if isinstance(value, list) else None
                    value = target.get(path[1], False) if target else False
                return value[0] if isinstance(value, list) and value and isinstance(value[0], int) else value

            return lambda record: _compare(get(record), op, value)

        def parse(position: int) -> tuple[Any, int]:
            term = domain[position]
            if term == "!":
                inner, position = parse(position + 1)
                return (lambda r: not inner(r)), position
            if term in ("&", "|"):
                left, position = parse(position + 1)
                right, position = parse(position)
                if term == "&":
                    return (lambda r: left(r) and right(r)), position
                return (lambda r: left(r) or right(r)), position
            return leaf(term), position + 1

        predicates = []
        position = 0
        while position < len(domain):
            predicate, position = parse(position)
            predicates.append(predicate)
        return lambda record: all(p(record) for p in predicates)


_RELATIONS = {
    ("sale.order.line", "order_id"): "sale.order",
    ("sale.order.line", "product_id"): "product.product",
    ("stock.quant", "location_id"): "stock.location",
    ("stock.quant", "product_id"): "product.product",
    ("product.product", "uom_id"): "uom.uom",
    ("product.product", "product_tmpl_id"): "product.template",
}


def _id_floor(domain: list[Any]) -> int | None:
    """The n of a top-level ``('id', '>', n)`` leaf when the domain is a plain conjunction."""
    if any(t in ("|", "!") for t in domain):
        return None
    floors = [t[2] for t in domain if isinstance(t, (list, tuple)) and t[0] == "id" and t[1] == ">"]
    return max(floors) if floors else None


def _id_list(domain: list[Any]) -> list[int] | None:
    """The ids of a top-level ``('id', 'in', [...])`` leaf when the domain is a plain conjunction."""
    if any(t in ("|", "!") for t in domain):
        return None
    for term in domain:
        if isinstance(term, (list, tuple)) and term[0] == "id" and term[1] == "in":
            return [int(i) for i in term[2]]
    return None


def _sortable(value: Any) -> Any:
    return (value is False or value is None, value if not isinstance(value, list) else value[0])


def _coerce(value: Any, like: Any) -> Any:
    """A domain value as PostgreSQL compares it with the column: strings against timestamps are cast."""
    if isinstance(like, dt.datetime) and isinstance(value, str):
        return dt.datetime.strptime(value[:19], DATETIME)
    if isinstance(like, dt.date) and not isinstance(like, dt.datetime) and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def _compare(current: Any, op: str, value: Any) -> bool:
    if op in ("in", "not in"):
        found = current in value
        return found if op == "in" else not found
    if op in ("=", "=="):
        return current == value if value is not False else current in (False, None, "")
    if op == "!=":
        return current != value
    if current is False or current is None:
        return False  # NULL compares false
    value = _coerce(value, current)
    if op == ">":
        return current > value
    if op == ">=":
        return current >= value
    if op == "<":
        return current < value
    if op == "<=":
        return current <= value
    if op == "ilike":
        return str(value).lower() in str(current).lower()
    raise RpcFault("builtins.ValueError", f"Invalid leaf operator {op!r}")
