"""Every recording under ../shared/odoo (Odoo 16 and 17) against the client's error mapping, the field
lists of the sync, the parser, and the fake server (which must answer the recorded requests alike).

A file no checker claims fails the test: a new recording is noticed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
import xmlrpc.client
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from ingestion_platform.defs.crm.odoo import client as odoo_client
from ingestion_platform.defs.crm.odoo import models
from ingestion_platform.defs.crm.odoo.client import (
    OdooAccessDenied,
    OdooSessionExpired,
    OdooUnknownDatabase,
    OdooUnknownField,
    OdooUnknownModel,
    error_from_rpc,
    odoo_error,
)
from ingestion_platform_tests.conftest import SHARED, require_shared
from ingestion_platform_tests.crm.fake_odoo import FakeOdoo, fields_of

ROOT = SHARED / "odoo"
SERVER_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")  # naive UTC, whole seconds

# what each recorded error must map to (the file name says what was done), and the name it must carry
EXPECTED_ERRORS: dict[str, tuple[type, str | None]] = {
    "wrong_password": (OdooAccessDenied, None),
    "authenticate_wrong_password": (OdooAccessDenied, None),
    "session_authenticate_wrong_password": (OdooAccessDenied, None),
    "unknown_model": (OdooUnknownModel, None),
    "unknown_db": (OdooUnknownDatabase, "no_such_db"),
    "invalid_field_in_domain": (OdooUnknownField, "no_such_field"),
    "invalid_field_in_fields": (OdooUnknownField, "no_such_field"),
    "call_kw_no_session": (OdooSessionExpired, None),
}


def _kind(stem: str) -> str:
    for key in sorted(EXPECTED_ERRORS, key=len, reverse=True):
        if key in stem:
            return key
    return ""


def _check_error(kind: str, error: Exception) -> None:
    expected, named = EXPECTED_ERRORS[kind]
    assert isinstance(error, expected), f"{kind}: {type(error).__name__}: {error}"
    text = str(error)
    if named:
        assert named in text
    if isinstance(error, OdooUnknownField):
        assert error.field == "no_such_field" and "res.partner" in text
    if isinstance(error, OdooUnknownModel):
        assert "no.such.model" in text or "res.partnerx" in text
    assert "admin" not in text.replace("'admin'", "")  # the password is never quoted (the login may be)


@pytest.fixture(scope="module")
def fake17() -> Any:
    with FakeOdoo(version=17, db="odoo_try_helper", login="admin", password="admin", api_key="not-used") as fake:
        when = dt.datetime(2026, 11, 22, 21, 49, 44, 512000)
        fake.now = when
        with fake.transaction() as tx:
            country = 233
            tx.create(
                "res.partner",
                [
                    {"name": "Deco Addict", "customer_rank": 8, "country_id": [country, "United States"]},
                    {"name": "Public user", "customer_rank": 0, "active": False},
                ],
            )
            [product] = tx.create("product.product", [{"name": "Acoustic Bloc Screens", "type": "product"}])
            [order] = tx.create("sale.order", [{"name": "S00001", "date_order": when, "state": "draft"}])
            tx.create(
                "sale.order.line",
                [
                    {
                        "order_id": [order, "S00001"],
                        "product_id": [product, "Acoustic Bloc Screens"],
                        "product_uom_qty": 3.0,
                        "price_unit": 295.0,
                        "price_subtotal": 885.0,
                        "state": "draft",
                    }
                ],
            )
        yield fake


def _post(url: str, path: str, body: dict[str, Any], opener: Any = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with (opener or urllib.request.build_opener()).open(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def _same_shape(recorded: Any, answered: Any, where: str) -> None:
    """The fake's answer has the recorded shape: same error (name, message, code), same record keys."""
    if "error" in recorded:
        assert "error" in answered, where
        r, a = recorded["error"], answered["error"]
        assert (a["code"], a["message"], a["data"]["name"]) == (r["code"], r["message"], r["data"]["name"]), where
        assert a["data"]["message"] == r["data"]["message"], where
        assert set(a["data"]) >= {"name", "debug", "message", "arguments", "context"}, where
        return
    result, mine = recorded["result"], answered.get("result")
    if isinstance(result, list) and result and isinstance(result[0], dict):
        assert mine and isinstance(mine, list), where
        for record in mine:
            assert set(record) == set(result[0]), where
            assert SERVER_DATETIME.match(record["write_date"]), where
    elif isinstance(result, dict):
        assert (
            isinstance(mine, dict)
            and set(result) >= {k for k in mine if k in result}
            and mine.get("uid", 0) == result.get("uid", 0)
        )
        if "server_version" in result:
            assert mine["server_version_info"] == result["server_version_info"], where
    else:
        assert type(mine) is type(result) and (not isinstance(result, bool) or mine == result), where


def check_jsonrpc(path: Path, fake: FakeOdoo) -> None:
    recording = json.loads(path.read_text())
    request, response = recording["request"], recording["response"]
    assert response["status"] == 200  # errors are HTTP 200 JSON-RPC error objects
    body = response["body"]
    kind = _kind(path.stem)
    if "error" in body:
        _check_error(kind, error_from_rpc(body["error"], db="odoo_try_helper", login="admin"))
    elif kind:  # a refusal answered as ``result: false``: the client turns it into AccessDenied
        assert body["result"] is False
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    if request["path"].startswith("/web/dataset/") and "result" in body:  # recorded inside a web session
        login = {"db": fake.db, "login": fake.login, "password": fake.password}
        _post(fake.url, "/web/session/authenticate", {"jsonrpc": "2.0", "method": "call", "params": login}, opener)
    _same_shape(body, _post(fake.url, request["path"], request["body"], opener), path.name)


def check_xmlrpc(path: Path, fake: FakeOdoo) -> None:
    text = path.read_text()
    response = text.split("<!-- RESPONSE -->", 1)[1].strip()
    kind = _kind(path.stem)
    try:
        (result,), _method = xmlrpc.client.loads(response)
    except xmlrpc.client.Fault as fault:
        _check_error(kind, odoo_error(None, fault.faultString, db="odoo_try_helper", login="admin"))
        return
    if kind:
        assert result is False
    elif isinstance(result, list):
        for record in result:
            assert SERVER_DATETIME.match(record["write_date"])
            _check_records(path, [record])
    else:
        assert isinstance(result, (dict, int))


def _model_of(name: str) -> str:
    for model in ("res.partner", "product.product", "sale.order.line", "stock.quant"):
        if model in name or model.replace(".", "_") in name:
            return model
    if "partner" in name:
        return "res.partner"
    if "product" in name:
        return "product.product"
    raise AssertionError(f"no model in {name}")


def check_fields_get(path: Path, fake: FakeOdoo) -> None:
    """The sync's required fields exist on the recorded server; the fake's fields are real ones."""
    if path.suffix == ".xml":
        (fields,), _ = xmlrpc.client.loads(path.read_text().split("<!-- RESPONSE -->", 1)[1].strip())
    else:
        data = json.loads(path.read_text())
        fields = data["response"]["body"]["result"] if "response" in data else data
    model = _model_of(path.name)
    spec = next(m for m in models.SYNCED if m.name == model)
    missing = [f for f in spec.required if f not in fields]
    assert not missing, f"{path.name}: the sync requires {missing}"
    version = 16 if "odoo16" in str(path) else 17
    assert set(fields_of(model, version)) <= set(fields) | {"__last_update"}, f"{path.name}: fake has unknown fields"
    if model == "product.product":
        assert "detailed_type" in fields  # 16/17 shape (18: is_storable)


def _check_records(path: Path, records: list[dict[str, Any]]) -> None:
    from ingestion_platform_tests.crm.odoo_helpers import check_parsed_records

    check_parsed_records(_model_of(path.name), records, path.name)


def check_search_read(path: Path, fake: FakeOdoo) -> None:
    records = json.loads(path.read_text())
    assert records and all(SERVER_DATETIME.match(r["write_date"]) for r in records)
    _check_records(path, records)


def check_wire(path: Path, fake: FakeOdoo) -> None:
    data = json.loads(path.read_text())
    if path.name == "wire.errors.json":
        for kind, body in data.items():
            _check_error(_kind(kind), error_from_rpc(body["error"], db="odoo_test", login="admin"))
    elif path.name == "wire.login_wrong_password.response.json":
        assert data["result"] is False
    elif path.name == "wire.search_read.request.json":
        args = data["params"]["args"]
        assert data["params"]["service"] == "object" and args[4] == "search_read"
        with FakeOdoo(version=16, db=args[0], login="admin", password=args[2], uid=args[1]) as fake16:
            fake16.create(
                "res.partner", [{"name": "Deco Addict", "customer_rank": 3, "country_id": [233, "United States"]}]
            )
            answer = _post(fake16.url, "/jsonrpc", data)
        recorded = json.loads((path.parent / "wire.search_read.response.json").read_text())
        _same_shape(recorded, answer, path.name)
    elif path.name == "wire.search_read.response.json":
        _check_records(path.with_name("res.partner"), data["result"])


def check_cursor_experiment(path: Path, fake: FakeOdoo) -> None:
    """The measured cursor behaviour holds on the fake: 2,500 partners of one create share a write_date."""
    from ingestion_platform_tests.crm.odoo_helpers import cursor_experiment

    measured = json.loads(path.read_text())
    found = cursor_experiment()
    if "run1" in measured:
        assert found["keyset"]["distinct_ids"] == measured["run1"]["distinct_ids"] == 2502
        assert found["keyset"]["archived"] == measured["run1"]["archived"]
        assert found["keyset"]["pages"] == measured["run1"]["pages"]
    else:
        assert measured["count_active_test_false"] == found["count_active_test_false"]
        assert measured["count_default"] == found["count_default"]
        assert found["naive_gt_cursor"]["distinct_ids"] < found["count_active_test_false"]
        assert measured["naive_gt_cursor"]["distinct_ids"] < measured["count_active_test_false"]


def check_summary(path: Path, fake: FakeOdoo) -> None:
    summary = json.loads(path.read_text())
    for spec in models.SYNCED:
        if spec.name in summary:
            assert summary[spec.name]["has_active_field"] == spec.active, spec.name
            assert summary[spec.name]["count_active_test_false"] >= summary[spec.name]["count_default"]


def check_sources(path: Path, fake: FakeOdoo) -> None:
    assert "write_date" in path.read_text()


CHECKERS: list[tuple[re.Pattern[str], Callable[[Path, FakeOdoo], None]]] = [
    (re.compile(r"^SOURCES\.md$"), check_sources),
    (re.compile(r"^jsonrpc_object_fields_get_.*\.json$"), check_fields_get),
    (re.compile(r"^jsonrpc_.*\.json$"), check_jsonrpc),
    (re.compile(r"^xmlrpc_object_fields_get_.*\.xml$"), check_fields_get),
    (re.compile(r"^xmlrpc_.*\.xml$"), check_xmlrpc),
    (re.compile(r"^fields_get[._].*\.json$"), check_fields_get),
    (re.compile(r"^search_read[._].*\.json$"), check_search_read),
    (re.compile(r"^wire\..*\.json$"), check_wire),
    (re.compile(r"^cursor_experiment.*\.json$"), check_cursor_experiment),
    (re.compile(r"^summary\.json$"), check_summary),
]


def _files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*") if p.is_file()) if ROOT.is_dir() else []


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recording(path: Path, fake17: FakeOdoo) -> None:
    checker = next((fn for pattern, fn in CHECKERS if pattern.match(path.name)), None)
    assert checker is not None, f"no conformance check for {path}: add one"
    checker(path, fake17)


def test_every_recording_is_checked() -> None:
    require_shared("odoo")  # a failure in CI when the recordings are missing
    assert len(_files()) >= 50  # 16 + 34 recordings at the time of writing, and SOURCES.md
    assert odoo_client.OdooError.__mro__[1].__name__ == "RecordError"


def test_the_page_decoder_reads_every_recorded_response_as_the_standard_library() -> None:
    """``client.decode`` (orjson) gives the values ``json`` gives, on every JSON recording of the real
    servers and on what orjson refuses; a body that is not JSON raises ``json``'s error."""
    require_shared("odoo")
    recordings = [p for p in _files() if p.suffix == ".json"]
    assert len(recordings) >= 30
    for path in recordings:
        body = path.read_bytes()
        assert odoo_client.decode(body) == json.loads(body), path
    for text in ('{"result": [{"id": 1, "x": Infinity}]}', '["\\ud800"]', '{"note": "Cr\\u00e9mant \\ud83c\\udf77"}'):
        assert odoo_client.decode(text.encode()) == json.loads(text)
    with pytest.raises(json.JSONDecodeError) as caught:
        odoo_client.decode(b'{"jsonrpc": "2.0", "result": [{"id": 1},]}')
    assert caught.value.pos == 40
