"""A local PMU-shaped HTTP server for tests and benchmarks (standard library only).

``PmuServer(root)`` serves ``GET /rest/client/N/...`` from ``<root>/rest/client/N/....json`` (the
layout of the recorded sample day) on 127.0.0.1 with an ephemeral port, in a daemon thread. The
client number does not matter: a path missing under ``client/N`` is looked up under every other
client directory present in ``root``. Query strings are ignored.

``FaultPlan`` scripts failures per request path, so retry, timeout and validation code can be tested
against real sockets::

    faults = FaultPlan({"participants": ["500", "reset", "ok"], "R1/C2/participants": ["429:1"]})
    with PmuServer(root, faults=faults, latency_s=0.05) as srv:
        httpx.get(srv.base_url + "/rest/client/61/programme/14032025/R1/C1/participants")  # 500
        srv.counts()  # {"500": 1}
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

SIMPLE_BEHAVIOURS = frozenset(
    {"ok", "500", "502", "503", "404", "204", "429", "timeout", "reset", "truncated", "truncated_json", "garbage"}
)
_CLIENT_PATH = re.compile(r"^rest/client/([^/]+)/(.+)$")
_GARBAGE = (
    b"<!DOCTYPE html><html><head><title>Maintenance</title></head>"
    b"<body><h1>Service momentanement indisponible</h1></body></html>"
)


def _check_behaviour(behaviour: str) -> str:
    if behaviour in SIMPLE_BEHAVIOURS:
        return behaviour
    if behaviour.startswith("429:") and behaviour[4:].isdigit():
        return behaviour
    raise ValueError(f"unknown fault behaviour {behaviour!r}")


def behaviour_kind(behaviour: str) -> str:
    """``"429:3"`` -> ``"429"``; other behaviours are their own kind."""
    return behaviour.split(":", 1)[0]


class FaultPlan:
    """Scripted behaviours per request path.

    The rule used for a path is the longest key that is a substring of it. Each distinct path walks
    its own copy of that rule's list (first request item 0, next item 1, ...), then behaves "ok".
    """

    def __init__(self, rules: dict[str, list[str]] | None = None) -> None:
        self._rules = {key: [_check_behaviour(b) for b in seq] for key, seq in (rules or {}).items()}
        self._served: Counter[str] = Counter()
        self._lock = threading.Lock()

    def rule_for(self, path: str) -> str | None:
        """The key that governs ``path`` (the longest matching one), or None."""
        keys = [key for key in self._rules if key in path]
        return max(keys, key=len) if keys else None

    def next_behaviour(self, path: str) -> str:
        """The behaviour for the next request of ``path`` (consumes one step of its sequence)."""
        with self._lock:
            key = self.rule_for(path)
            if key is None:
                return "ok"
            step = self._served[path]
            self._served[path] += 1
            sequence = self._rules[key]
            return sequence[step] if step < len(sequence) else "ok"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid the delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        owner = self.server.owner
        path = unquote(urlsplit(self.path).path)
        owner._record(path)
        if owner.latency_s > 0:
            owner._in_flight(+1)
            try:
                time.sleep(owner.latency_s)
            finally:
                owner._in_flight(-1)
        behaviour = owner.faults.next_behaviour(path)
        owner._count(behaviour)
        try:
            self._serve(owner, path, behaviour)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (e.g. after a "timeout")

    # -- behaviours --------------------------------------------------------------------------
    def _serve(self, owner: PmuServer, path: str, behaviour: str) -> None:
        kind = behaviour_kind(behaviour)
        if kind == "reset":
            self._reset()
        elif kind in ("500", "502", "503", "404"):
            self._send(int(kind), _error_body(int(kind), path))
        elif kind == "204":
            self._send(204, b"")
        elif kind == "429":
            headers = {"Retry-After": behaviour.split(":", 1)[1]} if ":" in behaviour else {}
            self._send(429, _error_body(429, path), headers)
        elif kind == "garbage":
            self._send(200, _GARBAGE)
        else:
            if kind == "timeout":
                time.sleep(owner.timeout_sleep_s)
            status, body = owner.lookup(path)
            if kind == "truncated":
                self._send(status, body, body_limit=max(1, len(body) // 2))
            elif kind == "truncated_json":
                self._send(200, body[: max(1, len(body) // 2)])
            else:
                self._send(status, body)

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, body_limit: int | None = None
    ) -> None:
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body_limit is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if status != 204:
            self.wfile.write(body if body_limit is None else body[:body_limit])
        self.wfile.flush()

    def _reset(self) -> None:
        """Close abruptly: SO_LINGER 0 makes close() send a TCP RST instead of a FIN."""
        self.close_connection = True
        conn = self.connection
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        conn.close()


def _error_body(status: int, path: str) -> bytes:
    return json.dumps({"status": status, "error": "simulated" if status != 404 else "not found", "path": path}).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: PmuServer

    def handle_error(self, request: object, client_address: object) -> None:  # quiet
        return


class PmuServer:
    """The local server; a context manager (``with PmuServer(root) as srv: srv.base_url``)."""

    def __init__(
        self,
        root: Path,
        *,
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        timeout_sleep_s: float = 2.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()
        self.timeout_sleep_s = timeout_sleep_s
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._counts: Counter[str] = Counter()
        self._waiting = 0
        self.max_in_flight = 0
        """Most requests seen waiting out their latency at the same time (concurrency, not timing)."""
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> PmuServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._httpd is not None:
            return
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="pmu-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("PmuServer is not running (use it as a context manager)")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- observations ------------------------------------------------------------------------
    @property
    def requests(self) -> list[str]:
        """Request paths (query string removed) in arrival order."""
        with self._lock:
            return list(self._requests)

    def counts(self) -> dict[str, int]:
        """How many times each behaviour was served ("429:1" counts as "429"; "ok" included)."""
        with self._lock:
            return dict(self._counts)

    def _record(self, path: str) -> None:
        with self._lock:
            self._requests.append(path)

    def _in_flight(self, delta: int) -> None:
        with self._lock:
            self._waiting += delta
            self.max_in_flight = max(self.max_in_flight, self._waiting)

    def _count(self, behaviour: str) -> None:
        with self._lock:
            self._counts[behaviour_kind(behaviour)] += 1

    # -- content -----------------------------------------------------------------------------
    def lookup(self, path: str) -> tuple[int, bytes]:
        """(status, body) of the normal response for ``path``: the JSON file, or a 404 JSON body."""
        found = self._find(path.strip("/"))
        if found is None:
            return 404, _error_body(404, path)
        return 200, found.read_bytes()

    def _find(self, rel: str) -> Path | None:
        candidates = [rel]
        match = _CLIENT_PATH.match(rel)
        clients_dir = self.root / "rest" / "client"
        if match and clients_dir.is_dir():
            wanted, rest = match.groups()
            others = sorted(d.name for d in clients_dir.iterdir() if d.is_dir() and d.name != wanted)
            candidates += [f"rest/client/{other}/{rest}" for other in others]
        for candidate in candidates:
            target = (self.root / f"{candidate}.json").resolve()
            if target.is_relative_to(self.root) and target.is_file():
                return target
        return None
