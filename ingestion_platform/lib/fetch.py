"""Fetchers: one small interface to get a payload, live or replayed from the raw store.

    class Fetcher(Protocol):
        def fetch(self, request: Request) -> Fetched | None: ...

``Request`` names the payload in the raw store and says what to ask for. ``None`` means "nothing
there (yet)": a status listed in ``Request.nothing_statuses``, or a file not dropped yet.

* ``HttpFetcher(client)``: GET or POST (JSON body or form) through ``HttpClient``: timeouts,
  retries, ``max_body_bytes``, redacted URLs; the body of any content type (JSON, XML, CSV, ICS)
  comes back as bytes with its ``content-type`` in the meta.
* ``FileFetcher(root)``: a file dropped in a folder (CSV, Excel, anything) as bytes, with its path,
  size, mtime and sha256 in the meta; ``glob(pattern)`` lists the dropped files as requests. Drops
  must be written atomically (temp file + rename): a file still being written is read as it is.
* ``ReplayFetcher(raw_store, source, partition)``: the payload stored under the request's name, or
  ``MissingRaw`` naming source, partition and request; ``requests()`` lists what is stored.

With ``PartitionLoad``, a fetcher is what ``land`` calls::

    body = load.land(request.name, lambda: fetcher.fetch(request))

Third-party clients that bring their own HTTP stack:

* odoorpc 0.10 (JSON-RPC over urllib): ``odoorpc.ODOO(host, protocol="jsonrpc+ssl", port=443,
  timeout=30)`` sets one timeout (seconds, default 120) on every urllib call; change it later with
  ``odoo.config["timeout"] = 60``. Every RPC (``login``, ``execute_kw``, ``env[model].search_read``,
  ``db.*``) goes through the instance method ``ODOO.json(url, params)``, which returns the decoded
  response dict and raises ``odoorpc.error.RPCError`` for an error answered by the server: wrapping
  it on the instance (``odoo.json = wrapper``) is the hook for retries (on ``OSError``: URLError,
  timeouts, resets, and ``urllib.error.HTTPError`` 429/5xx only; never an RPCError, and only for
  reads, ``execute_kw`` writes are not idempotent) and for raw storage (``json.dumps(result)``,
  re-encoded; byte-exact bodies need ``ODOO(..., opener=...)``, a urllib opener whose handler's
  ``http_response`` records the body, keeping an ``HTTPCookieProcessor`` for the session cookie).
  Keep the ``odoorpc`` logger above DEBUG: it logs request params and masks only a ``password``
  param, not the password that ``execute_kw`` sends in its args.
* tableauserverclient (requests-based; not installed here): ``TSC.Server(url, http_options={"timeout":
  60})`` passes the options as keyword arguments to every requests call (``add_http_options`` adds
  more). Retries and recording go on the ``requests.Session``: recent releases take
  ``TSC.Server(..., session_factory=make_session)``; mount ``HTTPAdapter(max_retries=urllib3.util.Retry(
  ..., status_forcelist=(429, 500, 502, 503, 504)))`` on it (urllib3 retries only idempotent methods
  by default: sign-in and publish are POST) and record with ``session.hooks["response"]``, a hook
  storing ``response.content`` (XML) under ``redact_url(response.url)``, skipping streamed downloads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ingestion_platform.lib.http import DEFAULT_MAX_BODY_BYTES, Fetched, HttpClient, guess_content_type
from ingestion_platform.lib.ingest import MissingRaw
from ingestion_platform.lib.raw_store import RawStore

__all__ = ["Fetcher", "FileFetcher", "HttpFetcher", "MissingRaw", "ReplayFetcher", "Request"]


@dataclass(frozen=True)
class Request:
    """One payload to get: ``name`` in the raw store, ``path`` relative to the client's base URL (or
    to the drop folder), and for HTTP the method, query ``params``, a ``json`` body or a ``form``,
    extra ``headers``, and the statuses that mean "nothing there" (``fetch`` returns ``None``)."""

    name: str
    path: str
    method: str = "GET"
    params: Mapping[str, Any] | None = None
    json: Any = None
    form: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    nothing_statuses: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a request needs a name (its name in the raw store)")
        if self.json is not None and self.form is not None:
            raise ValueError(f"request {self.name!r}: a JSON body or a form, not both")
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "nothing_statuses", tuple(self.nothing_statuses))


@runtime_checkable
class Fetcher(Protocol):
    def fetch(self, request: Request) -> Fetched | None: ...


@dataclass
class HttpFetcher:
    """Requests through ``client``; ``validate`` (optional) checks an OK body, retried when it raises."""

    client: HttpClient
    validate: Callable[[Fetched], Any] | None = None

    def fetch(self, request: Request) -> Fetched | None:
        fetched = self.client.request(
            request.method,
            request.path,
            params=request.params,
            json=request.json,
            data=request.form,
            headers=request.headers,
            validate=self.validate,
            accept_statuses=request.nothing_statuses,
        )
        if fetched.status in request.nothing_statuses and fetched.status not in self.client.ok_statuses:
            return None
        return fetched


@dataclass
class FileFetcher:
    """Files dropped under ``root``; a path outside it (``..``, a symlink out) is refused."""

    root: Path
    max_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    def fetch(self, request: Request) -> Fetched | None:
        if request.method != "GET" or request.json is not None or request.form is not None:
            raise ValueError(f"request {request.name!r}: a file drop is only read (GET, no body)")
        started = time.monotonic()
        path = self._resolve(request.path)
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            body = handle.read(self.max_bytes + 1)  # never more than the limit, even if the file grows
        if len(body) > self.max_bytes:
            raise ValueError(
                f"{path}: file larger than {self.max_bytes} bytes ({stat.st_size}; limit FileFetcher.max_bytes)"
            )
        info = {
            "path": str(path),
            "size": len(body),
            "mtime": dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat(),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        return Fetched(
            url=path.as_uri(),
            status=200,
            body=body,
            headers={"content-type": guess_content_type(path.name)},
            attempts=1,
            elapsed_s=time.monotonic() - started,
            info=info,
        )

    def glob(self, pattern: str) -> list[Request]:
        """The files under ``root`` matching ``pattern`` (``Path.glob`` syntax), in path order, as
        requests named by their path relative to ``root`` (``2025-03/sales.csv``)."""
        root = self.root.resolve()
        names = []
        for path in self.root.glob(pattern):
            resolved = path.resolve()
            if path.is_file() and root in resolved.parents:
                names.append(path.relative_to(self.root).as_posix())
        return [Request(name=name, path=name) for name in sorted(names)]

    def _resolve(self, relative: str) -> Path:
        root = self.root.resolve()
        path = (root / relative).resolve()
        if root not in path.parents:
            raise ValueError(f"{relative!r} is outside the drop folder {self.root}")
        return path


#: raw-store meta keys that ``ReplayFetcher`` does not hand back in ``Fetched.info``
_STORE_KEYS = frozenset({"request", "size", "sha256", "stored_at", "url", "status", "attempts", "elapsed_s"})


@dataclass
class ReplayFetcher:
    """Serves requests from the raw store of one source and partition, by request name."""

    raw_store: RawStore
    source: str
    partition: str

    def fetch(self, request: Request) -> Fetched:
        if not self.raw_store.exists(self.source, self.partition, request.name):
            raise MissingRaw(
                f"no raw payload stored for {self.source}/{self.partition}/{request.name} "
                f"(replaying from the raw store in {self.raw_store.root})"
            )
        payload = self.raw_store.read(self.source, self.partition, request.name)
        meta = payload.meta
        content_type = meta.get("content_type")
        return Fetched(
            url=str(meta.get("url") or f"raw:{self.source}/{self.partition}/{request.name}"),
            status=int(meta.get("status") or 200),
            body=payload.body,
            headers={"content-type": content_type} if content_type else {},
            attempts=0,
            elapsed_s=0.0,
            info={k: v for k, v in meta.items() if k not in _STORE_KEYS and k != "content_type"},
        )

    def requests(self, pattern: str = "*") -> list[Request]:
        """The requests stored for the partition whose name matches ``pattern`` (``fnmatch``: ``*``
        also matches ``/``), in name order: what a ``FileFetcher.glob`` stored, to replay it."""
        names = sorted(self.raw_store.requests(self.source, self.partition))
        return [Request(name=name, path=name) for name in names if fnmatchcase(name, pattern)]
