"""Fetchers: HTTP GET/POST of any content type against a real local server, file drops (CSV, Excel,
globs), and replay from the raw store."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest

from ingestion_platform.lib import ingest
from ingestion_platform.lib.fetch import Fetcher, FileFetcher, HttpFetcher, MissingRaw, ReplayFetcher, Request
from ingestion_platform.lib.http import Fetched, HttpClient, HttpError, HttpRetry
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform_tests import local_http

FAST = HttpRetry(max_attempts=3, backoff_base_s=0.001, backoff_max_s=0.002)

XML = b'<?xml version="1.0" encoding="UTF-8"?>\n<events><event id="1">Caf\xc3\xa9</event></events>\n'
CSV_LATIN1 = "nom;ville\nBéatrice;Montréal\n".encode("latin-1")
ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class Server:
    """GET routes play a script of (status, body, content type), the last one repeating; ``/echo``
    answers a POST with its own body and content type."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, bytes, str]]] = {}
        self.hits: dict[str, int] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    n = server.hits.get(parts.path, 0)
                    server.hits[parts.path] = n + 1
                    server.seen.append(Seen(self.command, parts.path, parts.query, dict(self.headers), body))
                if parts.path == "/echo":
                    status, content, content_type = 200, body, self.headers.get("Content-Type", "")
                else:
                    script = server.routes.get(parts.path, [(404, b'{"error": "no route"}', "application/json")])
                    status, content, content_type = script[min(n, len(script) - 1)]
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd, self.url = local_http.start(Handler)

    def close(self) -> None:
        local_http.stop(self.httpd)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def http(server: Server, sleeps: list[float]) -> Iterator[Callable[..., HttpFetcher]]:
    clients: list[HttpClient] = []

    def make(validate: Callable[[Fetched], Any] | None = None, **kwargs: Any) -> HttpFetcher:
        client = HttpClient(base_url=server.url, retry=FAST, sleep=sleeps.append, **kwargs)
        clients.append(client)
        return HttpFetcher(client, validate=validate)

    yield make
    for client in clients:
        client.close()


# -- requests ------------------------------------------------------------------------------------
def test_request_is_small_and_checked() -> None:
    request = Request("page-1", "/events", method="post", json={"page": 1})
    assert (request.method, request.nothing_statuses) == ("POST", ())
    assert Request("x", "/x", nothing_statuses=[404, 204]).nothing_statuses == (404, 204)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        Request("x", "/x", method="POST", json={}, form={"a": "1"})
    with pytest.raises(ValueError, match="needs a name"):
        Request(" ", "/x")
    with pytest.raises(AttributeError):
        request.path = "/other"  # type: ignore[misc]


def test_every_fetcher_is_a_fetcher(tmp_path: Path) -> None:
    with HttpClient(base_url="http://127.0.0.1:9") as client:
        fetchers = [HttpFetcher(client), FileFetcher(tmp_path), ReplayFetcher(RawStore(tmp_path), "s", "p")]
    assert all(isinstance(f, Fetcher) for f in fetchers)


# -- HTTP ----------------------------------------------------------------------------------------
def test_get_json(server: Server, http: Callable[..., HttpFetcher]) -> None:
    server.routes["/events"] = [(200, b'{"events": [1, 2]}', "application/json")]
    fetched = http(validate=lambda f: json.loads(f.body)).fetch(
        Request("events-2", "/events", params={"page": 2, "token": "t0k"})
    )
    assert fetched is not None
    assert (fetched.status, fetched.body, fetched.attempts) == (200, b'{"events": [1, 2]}', 1)
    assert fetched.meta()["content_type"] == "application/json"
    assert fetched.url == f"{server.url}/events"  # no query string
    assert parse_qs(server.seen[0].query) == {"page": ["2"], "token": ["t0k"]}


def test_post_json_body_is_sent_and_echoed(server: Server, http: Callable[..., HttpFetcher]) -> None:
    body = {"query": "Montréal", "limit": 50, "filters": {"free": True}}
    fetched = http().fetch(Request("search", "/echo", method="POST", json=body, headers={"X-Trace": "abc"}))
    assert fetched is not None
    seen = server.seen[0]
    assert (seen.method, seen.headers["Content-Type"], seen.headers["X-Trace"]) == ("POST", "application/json", "abc")
    assert json.loads(seen.body) == body
    assert json.loads(fetched.body) == body
    assert fetched.meta()["content_type"] == "application/json"


def test_post_form_body(server: Server, http: Callable[..., HttpFetcher]) -> None:
    fetched = http().fetch(Request("login", "/echo", method="POST", form={"user": "a b", "scope": "read&write"}))
    assert fetched is not None
    assert server.seen[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(server.seen[0].body.decode()) == {"user": ["a b"], "scope": ["read&write"]}


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/feed.xml", XML, "application/xml; charset=utf-8"),
        ("/export.csv", CSV_LATIN1, "text/csv; charset=ISO-8859-1"),
        ("/club.ics", ICS, "text/calendar"),
    ],
)
def test_any_content_type_comes_back_as_bytes(
    server: Server, http: Callable[..., HttpFetcher], path: str, body: bytes, content_type: str
) -> None:
    server.routes[path] = [(200, body, content_type)]
    fetched = http().fetch(Request(path.lstrip("/"), path))
    assert fetched is not None
    assert fetched.body == body  # exactly the bytes sent, never decoded
    assert fetched.meta()["content_type"] == content_type


def test_post_500_then_200_is_retried_with_its_body(
    server: Server, http: Callable[..., HttpFetcher], sleeps: list[float]
) -> None:
    server.routes["/query"] = [(500, b"oops", "text/plain"), (200, b'{"rows": []}', "application/json")]
    fetched = http().fetch(Request("query", "/query", method="POST", json={"q": 1}))
    assert fetched is not None
    assert (fetched.status, fetched.body, fetched.attempts) == (200, b'{"rows": []}', 2)
    assert [(s.method, json.loads(s.body)) for s in server.seen] == [("POST", {"q": 1}), ("POST", {"q": 1})]
    assert len(sleeps) == 1


def test_invalid_body_is_retried_through_the_fetcher(server: Server, http: Callable[..., HttpFetcher]) -> None:
    server.routes["/page"] = [(200, b'{"cut": ', "application/json"), (200, b'{"whole": 1}', "application/json")]
    fetched = http(validate=lambda f: json.loads(f.body)).fetch(Request("page", "/page"))
    assert fetched is not None and fetched.attempts == 2


def test_nothing_statuses_mean_none_others_are_errors(server: Server, http: Callable[..., HttpFetcher]) -> None:
    fetcher = http()
    assert fetcher.fetch(Request("maybe", "/unpublished", nothing_statuses=(404, 204))) is None
    with pytest.raises(HttpError) as info:
        fetcher.fetch(Request("maybe", "/unpublished"))
    assert info.value.status == 404


def test_http_fetcher_replays_non_json_recordings(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "club.ics").write_bytes(ICS)
    with HttpClient(base_url=f"file://{tmp_path}", retry=FAST) as client:
        fetched = HttpFetcher(client).fetch(Request("club", "/feeds/club"))
    assert fetched is not None
    assert (fetched.body, fetched.meta()["content_type"]) == (ICS, "text/calendar")


# -- file drops ----------------------------------------------------------------------------------
MTIME = dt.datetime(2025, 3, 14, 6, 30, tzinfo=dt.UTC)


def drop(root: Path, relative: str, body: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))
    return path


def test_file_drop_of_a_csv(tmp_path: Path) -> None:
    path = drop(tmp_path / "drops", "2025-03-14/contacts.csv", CSV_LATIN1)
    fetched = FileFetcher(tmp_path / "drops").fetch(Request("contacts", "2025-03-14/contacts.csv"))
    assert fetched is not None
    assert (fetched.status, fetched.body, fetched.attempts) == (200, CSV_LATIN1, 1)
    assert fetched.url == path.resolve().as_uri()
    meta = fetched.meta()
    assert meta["content_type"] == "text/csv"
    assert meta["path"] == str(path.resolve())
    assert meta["size"] == len(CSV_LATIN1)
    assert meta["mtime"] == "2025-03-14T06:30:00+00:00"
    assert meta["sha256"] == hashlib.sha256(CSV_LATIN1).hexdigest()


def test_file_drop_of_an_excel_export(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["reference", "amount"])
    sheet.append(["INV-1", 12.5])
    path = tmp_path / "exports" / "invoices.xlsx"
    path.parent.mkdir()
    workbook.save(path)
    fetched = FileFetcher(tmp_path).fetch(Request("invoices", "exports/invoices.xlsx"))
    assert fetched is not None
    assert fetched.body == path.read_bytes()
    assert fetched.meta()["content_type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert fetched.meta()["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    rows = list(openpyxl.load_workbook(io.BytesIO(fetched.body)).active.iter_rows(values_only=True))
    assert rows == [("reference", "amount"), ("INV-1", 12.5)]


def test_glob_lists_the_drop_folder_as_requests(tmp_path: Path) -> None:
    root = tmp_path / "drops"
    for name in ("b.csv", "a.csv", "notes.txt", "2025/c.csv"):
        drop(root, name, name.encode())
    drop(tmp_path, "outside.csv", b"secret")
    (root / "link.csv").symlink_to(tmp_path / "outside.csv")
    (root / "dir.csv").mkdir()
    files = FileFetcher(root)
    requests = files.glob("**/*.csv")
    assert [r.name for r in requests] == ["2025/c.csv", "a.csv", "b.csv"]
    assert [files.fetch(r).body for r in requests] == [b"2025/c.csv", b"a.csv", b"b.csv"]  # type: ignore[union-attr]
    assert files.glob("*.xlsx") == []


def test_file_fetcher_refusals(tmp_path: Path) -> None:
    root = tmp_path / "drops"
    drop(root, "big.csv", b"x" * 101)
    drop(tmp_path, "secret.csv", b"secret")
    (root / "link.csv").symlink_to(tmp_path / "secret.csv")
    files = FileFetcher(root, max_bytes=100)
    assert files.fetch(Request("later", "not-dropped-yet.csv")) is None
    for outside in ("../secret.csv", "link.csv", str(tmp_path / "secret.csv")):
        with pytest.raises(ValueError, match="outside the drop folder"):
            files.fetch(Request("x", outside))
    with pytest.raises(ValueError, match="file larger than 100 bytes"):
        files.fetch(Request("big", "big.csv"))
    with pytest.raises(ValueError, match="only read"):
        files.fetch(Request("big", "big.csv", method="POST", json={}))


# -- replay --------------------------------------------------------------------------------------
def test_replay_serves_the_stored_payload(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    meta = {"url": "https://api.example/v1/contacts", "status": 200, "attempts": 2, "content_type": "text/csv"}
    store.write("crm", "2025-03-14", "contacts/page-1", CSV_LATIN1, meta)
    fetched = ReplayFetcher(store, "crm", "2025-03-14").fetch(Request("contacts/page-1", "/ignored/in/replay"))
    assert (fetched.url, fetched.status, fetched.body) == ("https://api.example/v1/contacts", 200, CSV_LATIN1)
    assert (fetched.headers, fetched.attempts) == ({"content-type": "text/csv"}, 0)
    assert fetched.meta()["content_type"] == "text/csv"
    assert fetched.info == {}  # what the raw store adds (size, sha256, stored_at) is not handed back


def test_replay_refuses_a_missing_payload_naming_it(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    store.write("crm", "2025-03-14", "contacts/page-1", b"{}", {})
    replay = ReplayFetcher(store, "crm", "2025-03-14")
    with pytest.raises(MissingRaw, match="no raw payload stored for crm/2025-03-14/contacts/page-2") as info:
        replay.fetch(Request("contacts/page-2", "/contacts"))
    assert MissingRaw is ingest.MissingRaw and isinstance(info.value, LookupError)
    with pytest.raises(MissingRaw, match="crm/2025-03-15/contacts/page-1"):
        ReplayFetcher(store, "crm", "2025-03-15").fetch(Request("contacts/page-1", "/contacts"))


def test_a_file_drop_stored_raw_replays_the_same(tmp_path: Path) -> None:
    root = tmp_path / "drops"
    drop(root, "2025-03-14/a.csv", b"a\n1\n")
    drop(root, "2025-03-14/b.csv", b"b\n2\n")
    store = RawStore(tmp_path / "data")
    files = FileFetcher(root)
    live = {}
    for request in files.glob("2025-03-14/*.csv"):
        fetched = files.fetch(request)
        assert fetched is not None
        store.write("drops", "2025-03-14", request.name, fetched.body, fetched.meta())
        live[request.name] = fetched
    replay = ReplayFetcher(store, "drops", "2025-03-14")
    requests = replay.requests("*.csv")
    assert [r.name for r in requests] == ["2025-03-14/a.csv", "2025-03-14/b.csv"]
    for request in requests:
        replayed = replay.fetch(request)
        original = live[request.name]
        assert (replayed.body, replayed.url, replayed.headers) == (original.body, original.url, original.headers)
        assert replayed.info == {"path": original.info["path"], "mtime": original.info["mtime"]}
    assert replay.requests("*.xlsx") == []
