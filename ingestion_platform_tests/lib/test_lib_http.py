"""The HTTP client against a real local server: retries, Retry-After, timeouts, validation, accepted
statuses, bounded concurrency, per-item errors in map, the body size limit, credentials kept out of
everything the client shows, path segments, and the file:// replay transport."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ingestion_platform.lib.http import (
    DirectoryTransport,
    Fetched,
    HttpClient,
    HttpError,
    HttpRetry,
    InvalidPayload,
    ResponseTooLarge,
    describe_endpoint,
    guess_content_type,
    path_segment,
    redact_url,
)
from ingestion_platform_tests import local_http

FAST = HttpRetry(max_attempts=4, backoff_base_s=0.001, backoff_max_s=0.002, retry_after_max_s=60)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    repeat: int = 1  # the body is written this many times (a large body the server never holds)


Script = list[Reply] | Callable[[BaseHTTPRequestHandler], Reply]


class Server:
    """A threaded HTTP server; each path plays its script (the last reply repeats)."""

    def __init__(self) -> None:
        self.routes: dict[str, Script] = {}
        self.hits: dict[str, int] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.written: dict[str, int] = {}  # body bytes the server managed to send, per path
        self.done = threading.Event()  # set each time a handler has finished writing
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with server.lock:
                    n = server.hits.get(parts.path, 0)
                    server.hits[parts.path] = n + 1
                    server.seen.append((parts.path, parts.query, dict(self.headers)))
                script = server.routes.get(parts.path, [Reply(404, b'{"error": "no route"}')])
                reply = script(self) if callable(script) else script[min(n, len(script) - 1)]
                if reply.delay_s:
                    server.release.wait(reply.delay_s)
                written = 0
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.content_length:
                        self.send_header("Content-Length", str(len(reply.body) * reply.repeat))
                    self.end_headers()
                    for _ in range(reply.repeat):
                        self.wfile.write(reply.body)
                        written += len(reply.body)
                except OSError:
                    pass  # the client gave up (timeout test, body size limit)
                finally:
                    with server.lock:
                        server.written[parts.path] = written
                    server.done.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.release = threading.Event()
        self.httpd, self.url = local_http.start(Handler)

    def close(self) -> None:
        self.release.set()
        local_http.stop(self.httpd)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def make_client(server: Server, sleeps: list[float]) -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(**kwargs: Any) -> HttpClient:
        kwargs.setdefault("retry", FAST)
        client = HttpClient(base_url=server.url, sleep=sleeps.append, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- retries -------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retryable_statuses_are_retried(server: Server, make_client: Any, sleeps: list[float], status: int) -> None:
    server.routes["/data"] = [Reply(status, b"busy"), Reply(status, b"busy"), Reply(200, b'{"n": 1}')]
    client = make_client()
    fetched = client.get("/data")
    assert (fetched.status, fetched.body, fetched.attempts) == (200, b'{"n": 1}', 3)
    assert fetched.url == f"{server.url}/data"
    assert server.hits["/data"] == 3
    assert client.stats == {"requests": 3, "retries": 2}
    assert len(sleeps) == 2
    assert all(0 <= s <= FAST.backoff_max_s for s in sleeps)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("7", 7.0),
        ("0.25", 0.25),
        ("9999", 60.0),  # capped at retry_after_max_s
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP date in the past: no wait
    ],
)
def test_retry_after_is_honoured(
    server: Server, make_client: Any, sleeps: list[float], retry_after: str, expected: float
) -> None:
    server.routes["/limited"] = [Reply(429, b"slow down", {"Retry-After": retry_after}), Reply(200)]
    assert make_client().get("/limited").status == 200
    assert sleeps == [expected]


def test_unparseable_retry_after_falls_back_to_backoff(server: Server, make_client: Any, sleeps: list[float]) -> None:
    server.routes["/limited"] = [Reply(503, b"", {"Retry-After": "soon-ish"}), Reply(200)]
    assert make_client().get("/limited").attempts == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= FAST.backoff_max_s


def test_timeouts_are_retried(server: Server, make_client: Any) -> None:
    server.routes["/slow"] = [Reply(200, b"late", delay_s=2.0), Reply(200, b"on time")]
    client = make_client(read_timeout_s=0.2)
    fetched = client.get("/slow")
    assert (fetched.body, fetched.attempts) == (b"on time", 2)
    assert server.hits["/slow"] == 2


def test_connection_errors_are_retried_then_give_up(sleeps: list[float]) -> None:
    client = HttpClient(base_url="http://127.0.0.1:9", retry=FAST, sleep=sleeps.append)
    with client, pytest.raises(HttpError, match="gave up after 4 attempts") as info:
        client.get("/x")
    assert info.value.attempts == 4
    assert client.stats == {"requests": 4, "retries": 3}
    assert len(sleeps) == 3


def test_gives_up_naming_the_url_without_query_or_secrets(
    server: Server, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/v1/data"] = [Reply(503, b"down")]
    client = make_client(headers={"Authorization": "Bearer tok-abc123"})
    with caplog.at_level(logging.DEBUG, logger="ingestion_platform.lib.http"), pytest.raises(HttpError) as info:
        client.get("/v1/data", params={"token": "s3cret-token"})
    exc = info.value
    assert not isinstance(exc, InvalidPayload)
    assert (exc.status, exc.attempts) == (503, 4)
    assert "/v1/data" in str(exc) and "/v1/data" in exc.url
    assert "gave up after 4 attempts" in str(exc)
    assert server.hits["/v1/data"] == 4
    # The secrets really were sent, and are nowhere in the error or in this module's log lines.
    assert server.seen[0][1] == "token=s3cret-token"
    assert server.seen[0][2]["Authorization"] == "Bearer tok-abc123"
    own_logs = [r.getMessage() for r in caplog.records if r.name == "ingestion_platform.lib.http"]
    assert len(own_logs) == 4, "every failed attempt is logged"
    shown = str(exc) + exc.url + "\n".join(own_logs)
    for secret in ("s3cret-token", "tok-abc123"):
        assert secret not in shown


def test_non_retryable_status_fails_at_once(server: Server, make_client: Any, sleeps: list[float]) -> None:
    server.routes["/private"] = [Reply(403, b"forbidden")]
    with pytest.raises(HttpError) as info:
        make_client().get("/private?key=hidden-key")
    assert server.seen[0][1] == "key=hidden-key"
    assert str(info.value) == f"GET {server.url}/private: HTTP 403"
    assert (info.value.status, info.value.attempts, info.value.url) == (403, 1, f"{server.url}/private")
    assert server.hits["/private"] == 1
    assert sleeps == []


# -- validation and accepted statuses -----------------------------------------------------------
def parse_json(fetched: Fetched) -> Any:
    return json.loads(fetched.body)


def test_invalid_body_is_retried_until_valid(server: Server, make_client: Any) -> None:
    server.routes["/feed"] = [Reply(200, b'{"truncated": '), Reply(200, b'{"complete": true}')]
    fetched = make_client().get("/feed", validate=parse_json)
    assert (fetched.body, fetched.attempts) == (b'{"complete": true}', 2)


def test_body_still_invalid_raises_invalid_payload_with_the_body(server: Server, make_client: Any) -> None:
    server.routes["/feed"] = [Reply(200, b'{"first": '), Reply(200, b'{"last": ')]
    with pytest.raises(InvalidPayload, match="body still invalid after 4 attempts") as info:
        make_client().get("/feed", validate=parse_json)
    exc = info.value
    assert isinstance(exc, HttpError)
    assert exc.fetched.body == b'{"last": '
    assert (exc.fetched.status, exc.attempts, exc.status) == (200, 4, 200)
    assert isinstance(exc.error, json.JSONDecodeError)
    assert server.hits["/feed"] == 4


@pytest.mark.parametrize(("status", "body"), [(404, b'{"error": "not published"}'), (204, b"")])
def test_accepted_statuses_are_returned_unvalidated(server: Server, make_client: Any, status: int, body: bytes) -> None:
    server.routes["/maybe"] = [Reply(status, body)]

    def never(_: Fetched) -> None:
        raise AssertionError("validate must only see OK statuses")

    fetched = make_client().get("/maybe", accept_statuses=(404, 204), validate=never)
    assert (fetched.status, fetched.body, fetched.attempts) == (status, body, 1)
    assert server.hits["/maybe"] == 1


def test_unaccepted_404_is_an_error(server: Server, make_client: Any) -> None:
    server.routes["/maybe"] = [Reply(404)]
    with pytest.raises(HttpError) as info:
        make_client().get("/maybe")
    assert info.value.status == 404
    assert server.hits["/maybe"] == 1


def test_ok_statuses_setting(server: Server, make_client: Any) -> None:
    server.routes["/created"] = [Reply(201, b"{}")]
    assert make_client(ok_statuses=(200, 201)).get("/created").status == 201


# -- concurrency -----------------------------------------------------------------------------------
class InFlight:
    """Holds each request until more than ``limit`` are in flight (a violation) or briefly."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.current = 0
        self.max_seen = 0
        self.cond = threading.Condition()

    def __call__(self, handler: BaseHTTPRequestHandler) -> Reply:
        with self.cond:
            self.current += 1
            self.max_seen = max(self.max_seen, self.current)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.current > self.limit, timeout=0.3)
            self.current -= 1
        return Reply(200, handler.path.encode())


def test_map_respects_max_concurrency(server: Server, make_client: Any) -> None:
    gate = InFlight(limit=3)
    server.routes["/item"] = gate
    client = make_client(max_concurrency=3)
    results = client.map(lambda i: client.get("/item", params={"i": i}), range(12))
    assert [r.body for r in results] == [f"/item?i={i}".encode() for i in range(12)]
    assert server.hits["/item"] == 12
    assert gate.max_seen == 3


def test_semaphore_bounds_requests_from_other_threads(server: Server, make_client: Any) -> None:
    gate = InFlight(limit=2)
    server.routes["/item"] = gate
    client = make_client(max_concurrency=2)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: client.get("/item"), range(8)))
    assert all(r.status == 200 for r in results)
    assert gate.max_seen == 2


def test_map_returns_per_item_exceptions_in_order(server: Server, make_client: Any) -> None:
    server.routes["/ok"] = [Reply(200, b"fine")]
    server.routes["/broken"] = [Reply(500, b"boom")]
    client = make_client(retry=HttpRetry(max_attempts=2, backoff_base_s=0.001), max_concurrency=4)

    def fetch(item: str) -> bytes:
        if item == "bug":
            raise ValueError("not a request")
        return client.get(f"/{item}").body

    results = client.map(fetch, ["ok", "broken", "bug", "ok"])
    assert results[0] == b"fine" and results[3] == b"fine"
    assert isinstance(results[1], HttpError) and results[1].status == 500
    assert isinstance(results[2], ValueError) and str(results[2]) == "not a request"
    assert client.map(fetch, []) == []
    serial = make_client(max_concurrency=1)
    assert [type(r) for r in serial.map(fetch, ["bug", "ok"])] == [ValueError, bytes]


# -- file:// replay ----------------------------------------------------------------------------
@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    root = tmp_path / "rec"
    (root / "api" / "day").mkdir(parents=True)
    (root / "api" / "day" / "programme.json").write_bytes(b'{"programme": 1}')
    (root / "top.json").write_bytes(b'{"top": true}')
    (tmp_path / "secret.json").write_bytes(b'{"secret": "outside the root"}')
    (tmp_path / "rec2").mkdir()
    (tmp_path / "rec2" / "sibling.json").write_bytes(b'{"sibling": "prefix of the root name"}')
    (root / "link.json").symlink_to(tmp_path / "secret.json")
    return root


def test_directory_transport_serves_recorded_files(recorded: Path) -> None:
    with HttpClient(base_url=f"file://{recorded}", retry=FAST) as client:
        fetched = client.get("/api/day/programme")
        assert (fetched.status, fetched.body) == (200, b'{"programme": 1}')
        assert fetched.headers["content-type"] == "application/json"
        assert client.get("top", validate=parse_json).body == b'{"top": true}'
        missing = client.get("/api/day/nothing", accept_statuses=(404,))
        assert missing.status == 404
        with pytest.raises(HttpError) as info:
            client.get("/api/day/nothing")
        assert info.value.status == 404


@pytest.mark.parametrize(
    "path",
    ["/../secret", "/%2e%2e/secret", "/..%2Fsecret", "/api/..%2F..%2Fsecret", "/..%2Frec2/sibling", "/link", "/api"],
)
def test_directory_transport_404s_outside_the_root(recorded: Path, path: str) -> None:
    with HttpClient(base_url=f"file://{recorded}", retry=FAST) as client:
        fetched = client.get(path, accept_statuses=(404,))
    assert fetched.status == 404
    assert b"outside the root" not in fetched.body and b"prefix of the root name" not in fetched.body

    transport = DirectoryTransport(recorded)
    response = transport.handle_request(httpx.Request("GET", f"http://replay.local{path}"))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.ics", "text/calendar"),
        ("a.CSV", "text/csv"),
        ("a.xml", "application/xml"),
        ("a", "application/octet-stream"),
    ],
)
def test_guess_content_type(name: str, content_type: str) -> None:
    assert guess_content_type(name) == content_type


def test_directory_transport_serves_non_json_recordings(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    (root / "feeds").mkdir(parents=True)
    (root / "feeds" / "club.ics").write_bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    (root / "feeds" / "export.csv").write_bytes(b"a,b\n1,2\n")
    (root / "feeds" / "both.json").write_bytes(b'{"json": "wins"}')
    (root / "feeds" / "both.xml").write_bytes(b"<xml/>")
    (root / "feeds" / "twice.csv").write_bytes(b"a\n")
    (root / "feeds" / "twice.xml").write_bytes(b"<a/>")
    with HttpClient(base_url=f"file://{root}", retry=FAST) as client:
        ics = client.get("/feeds/club")
        assert (ics.body, ics.headers["content-type"]) == (b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar")
        csv = client.get("/feeds/export.csv")  # a path recorded as is
        assert (csv.body, csv.headers["content-type"]) == (b"a,b\n1,2\n", "text/csv")
        both = client.get("/feeds/both")  # <path>.json first, as before
        assert (both.body, both.headers["content-type"]) == (b'{"json": "wins"}', "application/json")
        assert client.get("/feeds/twice", accept_statuses=(404,)).status == 404  # ambiguous: neither
        assert client.get("/feeds", accept_statuses=(404,)).status == 404  # a directory


# -- response size limit --------------------------------------------------------------------------
def test_declared_length_over_the_limit_is_refused_without_retry(
    server: Server, make_client: Any, sleeps: list[float]
) -> None:
    server.routes["/big"] = [Reply(200, b"x" * 2000)]
    with pytest.raises(ResponseTooLarge) as info:
        make_client(max_body_bytes=1000).get("/big")
    exc = info.value
    assert isinstance(exc, HttpError)
    assert str(exc) == (
        f"GET {server.url}/big: response larger than 1000 bytes (Content-Length 2000; limit HttpClient.max_body_bytes)"
    )
    assert (exc.status, exc.attempts, exc.limit, exc.url) == (200, 1, 1000, f"{server.url}/big")
    assert server.hits["/big"] == 1
    assert sleeps == []


def test_undeclared_body_over_the_limit_stops_reading(server: Server, make_client: Any, sleeps: list[float]) -> None:
    chunk, repeat = b"x" * 65536, 1024  # 64 MiB offered, close-delimited
    server.routes["/stream"] = [Reply(200, chunk, content_length=False, repeat=repeat)]
    with pytest.raises(ResponseTooLarge, match=r"response larger than 262144 bytes \(stopped reading at \d+ bytes"):
        make_client(max_body_bytes=262144).get("/stream")
    assert server.hits["/stream"] == 1
    assert sleeps == []
    assert server.done.wait(30), "the server's write ends once the client has hung up"
    assert server.written["/stream"] < len(chunk) * repeat, "the client hung up instead of reading it all"


def test_decoded_size_counts_not_the_compressed_one(server: Server, make_client: Any) -> None:
    bomb = gzip.compress(b"\0" * 2_000_000)
    server.routes["/bomb"] = [Reply(200, bomb, {"Content-Encoding": "gzip"})]
    assert len(bomb) < 1_000_000
    with pytest.raises(ResponseTooLarge, match="stopped reading at"):
        make_client(max_body_bytes=1_000_000).get("/bomb")


@pytest.mark.parametrize("content_length", [True, False])
def test_body_at_the_limit_is_returned_as_bytes(server: Server, make_client: Any, content_length: bool) -> None:
    server.routes["/full"] = [Reply(200, b"y" * 1000, content_length=content_length)]
    fetched = make_client(max_body_bytes=1000).get("/full")
    assert fetched.body == b"y" * 1000
    assert type(fetched.body) is bytes


# -- credentials ----------------------------------------------------------------------------------
USER, PASSWORD = "alice-user", "pa55-w0rd-secret"


def assert_no_credentials(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and USER not in text, text


def test_credentials_in_the_url_are_sent_but_never_shown(
    server: Server, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/ok"] = [Reply(200, b"{}")]
    server.routes["/down"] = [Reply(503, b"down")]
    server.routes["/private"] = [Reply(403, b"no")]
    server.routes["/odd"] = [Reply(200, b"not json")]
    host = server.url.removeprefix("http://")

    def reject(_: Fetched) -> None:
        raise ValueError(f"the server refused {USER}:{PASSWORD}")

    with (
        caplog.at_level(logging.DEBUG),
        HttpClient(base_url=f"http://{USER}:{PASSWORD}@{host}", retry=FAST, sleep=sleeps.append) as client,
    ):
        fetched = client.get("/ok", params={"q": "1"})
        with pytest.raises(HttpError) as down:
            client.get("/down")
        with pytest.raises(HttpError) as private:
            client.get("/private")
        with pytest.raises(InvalidPayload) as invalid:
            client.get("/odd", validate=reject)
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert server.seen[0][2]["Authorization"] == expected, "the credentials were used"
    assert fetched.url == f"http://***@{host}/ok"
    assert str(private.value) == f"GET http://***@{host}/private: HTTP 403"
    assert_no_credentials(
        fetched.url,
        json.dumps(fetched.meta()),
        *(str(e.value) for e in (down, private, invalid)),
        *(e.value.url for e in (down, private, invalid)),
        invalid.value.fetched.url,
        caplog.text,
        *(r.getMessage() for r in caplog.records),
    )
    assert any("/down" in r.getMessage() for r in caplog.records), "failed attempts are still logged"


def test_credentials_stay_out_of_connection_errors(sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    client = HttpClient(base_url=f"http://{USER}:{PASSWORD}@127.0.0.1:9", retry=FAST, sleep=sleeps.append)
    with caplog.at_level(logging.DEBUG), client, pytest.raises(HttpError, match="gave up after 4 attempts") as info:
        client.get("/x")
    assert info.value.url == "http://***@127.0.0.1:9/x"
    assert_no_credentials(str(info.value), caplog.text)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pw@host:8080/a/b?token=x#frag", "http://***@host:8080/a/b"),
        ("http://user@host/", "http://***@host/"),
        ("http://u:p%40ss@host/x", "http://***@host/x"),
        ("http://u:p@ss@host/x", "http://***@host/x"),
        ("https://host/a?key=1", "https://host/a"),
        ("/v1/data?token=s", "/v1/data"),
        ("file:///data/rec", "file:///data/rec"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://User:pw@API.Example.com:8443/v3/?token=x", "https://api.example.com:8443/v3"),
        ("https://www.eventbriteapi.com/v3", "https://www.eventbriteapi.com/v3"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://u:p@host:notaport/x", "http://host:notaport/x"),
        ("file:///tmp/rec/", "file:///tmp/rec"),
        ("https://online.turfinfo.api.pmu.fr", "https://online.turfinfo.api.pmu.fr"),
    ],
)
def test_describe_endpoint(url: str, endpoint: str) -> None:
    assert describe_endpoint(url) == endpoint


# -- path segments --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("1234567", "1234567"),
        ("../../v3/users/me/owned_events/x", "..%2F..%2Fv3%2Fusers%2Fme%2Fowned_events%2Fx"),
        ("a b?c#d&e=f", "a%20b%3Fc%23d%26e%3Df"),
        ("%2e%2e", "%252e%252e"),
        ("...", "..."),
        ("été", "%C3%A9t%C3%A9"),
    ],
)
def test_path_segment_encodes_everything_reserved(value: str, segment: str) -> None:
    assert path_segment(value) == segment


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_path_segment_refuses_dot_segments(value: str) -> None:
    with pytest.raises(ValueError, match="not a usable path segment"):
        path_segment(value)


def test_an_encoded_segment_reaches_the_server_as_one_segment(server: Server, sleeps: list[float]) -> None:
    org = "../../v3/users/me/owned_events/x"
    with HttpClient(base_url=f"{server.url}/v3", retry=FAST, sleep=sleeps.append) as client:
        # Unencoded, httpx removes the dot segments itself: the request would leave the organization.
        assert client._client.build_request("GET", f"/organizations/{org}/events/").url.path == (
            "/v3/users/me/owned_events/x/events/"
        )
        fetched = client.get(f"/organizations/{path_segment(org)}/events/", accept_statuses=(404,))
    assert fetched.status == 404  # no such route: the server saw exactly the encoded path
    assert [path for path, _, _ in server.seen] == [
        "/v3/organizations/..%2F..%2Fv3%2Fusers%2Fme%2Fowned_events%2Fx/events/"
    ]
    assert fetched.url == f"{server.url}/v3/organizations/..%2F..%2Fv3%2Fusers%2Fme%2Fowned_events%2Fx/events/"


class _Unreachable(httpx.BaseTransport):
    """What a host that does not resolve gives: a connection error before any response."""

    def __init__(self) -> None:
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)


def test_a_network_error_names_method_host_path_and_reason_without_secrets(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    transport = _Unreachable()
    base = f"https://{USER}:{PASSWORD}@online.turfinfo.api.pmu.fr"
    client = HttpClient(base_url=base, retry=FAST, transport=transport, sleep=sleeps.append)
    with caplog.at_level(logging.WARNING), client, pytest.raises(HttpError) as info:
        client.get("/rest/client/1/programme/14032025", params={"token": PASSWORD})
    assert str(info.value) == (
        "GET https://***@online.turfinfo.api.pmu.fr/rest/client/1/programme/14032025: "
        "gave up after 4 attempts: [Errno -2] Name or service not known"
    )
    assert transport.calls == 4 and info.value.attempts == 4 and info.value.status is None
    attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert attempts[0] == (
        "GET https://***@online.turfinfo.api.pmu.fr/rest/client/1/programme/14032025 attempt 1: "
        "ConnectError: [Errno -2] Name or service not known"
    )
    assert_no_credentials(str(info.value), caplog.text)

    plain = HttpClient(base_url="https://online.turfinfo.api.pmu.fr", retry=FAST, transport=_Unreachable(),
                       sleep=sleeps.append)  # fmt: skip
    with plain, pytest.raises(HttpError, match=r"^GET https://online\.turfinfo\.api\.pmu\.fr/rest/client/1/"):
        plain.get("/rest/client/1/programme/14032025")


def test_a_replay_names_the_recorded_file_not_a_placeholder_host(recorded: Path) -> None:
    with HttpClient(base_url=recorded.as_uri(), retry=FAST) as client:
        fetched = client.get("/api/day/programme")
        with pytest.raises(HttpError) as info:
            client.get("/api/day/nothing")
    assert fetched.url == f"{recorded.as_uri()}/api/day/programme"
    assert str(info.value) == f"GET {recorded.as_uri()}/api/day/nothing: HTTP 404"
    assert "replay.local" not in fetched.url + str(info.value)
