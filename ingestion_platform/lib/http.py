"""HTTP client base for every API source: timeouts, retries, bounded concurrency, replay.

* Explicit connect/read timeouts on every request.
* Retries with exponential backoff and full jitter on 429 (honouring ``Retry-After``), 5xx,
  timeouts, connection resets and truncated bodies; a response whose body fails the caller's
  validation (truncated JSON behind a 200) is retried the same way, and when it still fails the
  last body is handed back in ``InvalidPayload`` so the caller can dead-letter it. ``get``,
  ``post`` and ``request`` share that loop; a POST is retried like a GET, so use ``post`` for
  read-only queries (search endpoints, JSON-RPC reads) or give the client ``HttpRetry(max_attempts=1)``.
* Bodies are streamed into one buffer and refused past ``max_body_bytes`` (``ResponseTooLarge``,
  never retried): a declared ``Content-Length`` over the limit is refused before reading.
* ``map`` runs calls concurrently on a thread pool bounded by ``max_concurrency``; a semaphore also
  bounds requests made from any other thread.
* ``file://`` base URLs are served from a directory of recorded responses (``DirectoryTransport``):
  the same code path runs live, in tests and in the offline demo; what leaves the client names the
  recorded file's ``file://`` URL, not the transport's placeholder host.
* Errors name what was asked: ``HttpError`` says method, scheme, host and path, then why, e.g.
  ``GET https://online.turfinfo.api.pmu.fr/rest/client/1/programme/14032025: gave up after 6
  attempts: [Errno -2] Name or service not known``; each failed attempt is logged the same way.
* Nothing that leaves the client carries a secret: headers (tokens) are never logged, and every URL
  in ``Fetched.url``, ``HttpError`` and log lines goes through ``redact_url`` (no credentials, no
  query string). ``describe_endpoint`` gives the same for a configured base URL (ledger provider).
* ``path_segment`` encodes a configured value (an organization id) as exactly one path segment.
"""

from __future__ import annotations

import email.utils
import io
import json
import logging
import mimetypes
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import httpx

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO, query string included: keep that out of run logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

T = TypeVar("T")
R = TypeVar("R")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: default ``HttpClient.max_body_bytes``
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
#: the placeholder host of a ``file://`` client (its transport serves a directory)
REPLAY_HOST = "http://replay.local"


@dataclass(frozen=True)
class HttpRetry:
    """How hard to try. ``max_attempts`` counts the first try."""

    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before attempt ``attempt + 1`` (attempt is 1-based)."""
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Fetched:
    """A response body as bytes, with what the raw store needs to know about it.

    ``info`` holds fetcher-specific metadata (a dropped file's path, size, mtime, sha256) that
    ``meta()`` adds to the raw-store metadata. ``attempts == 0`` means no request was made (a replay).
    """

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]
    attempts: int
    elapsed_s: float
    info: Mapping[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "elapsed_s": round(self.elapsed_s, 4),
            "content_type": self.headers.get("content-type"),
            **self.info,
        }


def valid_json(fetched: Fetched) -> None:
    """A ``validate`` callback: a 200 whose body is not JSON (cut off, an HTML error page) is retried."""
    if fetched.status == 200:
        json.loads(fetched.body)


class HttpError(RuntimeError):
    """The request failed for good (retries exhausted or a non-retryable status)."""

    def __init__(self, message: str, *, url: str, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.attempts = attempts


class InvalidPayload(HttpError):
    """Every attempt returned a body that failed validation; ``fetched`` holds the last one."""

    def __init__(self, message: str, *, fetched: Fetched, error: Exception) -> None:
        super().__init__(message, url=fetched.url, status=fetched.status, attempts=fetched.attempts)
        self.fetched = fetched
        self.error = error


class ResponseTooLarge(HttpError):
    """The body is larger than ``HttpClient.max_body_bytes``; not retried (it would be the same)."""

    def __init__(self, message: str, *, url: str, status: int, attempts: int, limit: int) -> None:
        super().__init__(message, url=url, status=status, attempts=attempts)
        self.limit = limit


@dataclass
class HttpClient:
    """A small, thread-safe, retrying client around ``httpx.Client``."""

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    retry: HttpRetry = field(default_factory=HttpRetry)
    max_concurrency: int = 8
    ok_statuses: Sequence[int] = (200,)
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        base = self.base_url.rstrip("/")
        transport = self.transport
        self._replay_uri: str | None = None
        if base.startswith("file://"):
            root = Path(unquote(urlsplit(base).path))
            transport = DirectoryTransport(root)
            self._replay_uri = root.as_uri().rstrip("/")
            base = REPLAY_HOST
        self._client = httpx.Client(
            base_url=base,
            headers=dict(self.headers),
            timeout=httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s),
            transport=transport,
            limits=httpx.Limits(max_connections=max(self.max_concurrency, 1) * 2),
            follow_redirects=True,
        )
        self._slots = threading.BoundedSemaphore(max(self.max_concurrency, 1))
        self.stats = {"requests": 0, "retries": 0}
        self._stats_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        validate: Callable[[Fetched], Any] | None = None,
        accept_statuses: Iterable[int] = (),
    ) -> Fetched:
        """GET ``path`` with retries (see ``request``)."""
        return self.request("GET", path, params=params, validate=validate, accept_statuses=accept_statuses)

    def post(
        self,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        validate: Callable[[Fetched], Any] | None = None,
        accept_statuses: Iterable[int] = (),
    ) -> Fetched:
        """POST a JSON body (``json``), a form (``data``) or raw bytes (``content``), with retries."""
        return self.request(
            "POST",
            path,
            json=json,
            data=data,
            content=content,
            params=params,
            headers=headers,
            validate=validate,
            accept_statuses=accept_statuses,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        validate: Callable[[Fetched], Any] | None = None,
        accept_statuses: Iterable[int] = (),
    ) -> Fetched:
        """``method path`` with retries; the body of any content type comes back as bytes.

        Statuses in ``ok_statuses`` or ``accept_statuses`` are returned (the caller decides what
        a 404 or 204 means); retryable failures are retried; anything else raises ``HttpError``.
        ``validate`` is called on an OK body; if it raises, the request is retried and finally
        ``InvalidPayload`` carries the last body. A body over ``max_body_bytes`` raises
        ``ResponseTooLarge`` at once.
        """
        method = method.upper()
        request = self._client.build_request(
            method, path, params=params, json=json, data=data, content=content, headers=headers
        )
        shown = self._shown(request.url)
        accepted = set(self.ok_statuses) | set(accept_statuses)
        started = time.monotonic()
        last_error: Exception | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            wait: float | None = None
            try:
                with self._slots:
                    self._count("requests")
                    response = self._client.send(request, stream=True)
                    try:
                        body = self._read_body(response, method, attempt)
                    finally:
                        response.close()
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = exc
                log.warning(
                    "%s %s attempt %d: %s: %s",
                    method,
                    shown,
                    attempt,
                    type(exc).__name__,
                    _scrub(str(exc), request.url),
                )
            else:
                fetched = Fetched(
                    url=self._shown(response.url),
                    status=response.status_code,
                    body=body,
                    headers=dict(response.headers),
                    attempts=attempt,
                    elapsed_s=time.monotonic() - started,
                )
                if response.status_code in accepted:
                    if validate is None or response.status_code not in self.ok_statuses:
                        return fetched
                    try:
                        validate(fetched)
                        return fetched
                    except Exception as exc:
                        last_error = exc
                        log.warning(
                            "%s %s attempt %d: invalid body (%s)",
                            method,
                            shown,
                            attempt,
                            _scrub(str(exc), request.url),
                        )
                        if attempt == self.retry.max_attempts:
                            raise InvalidPayload(
                                f"{method} {fetched.url}: body still invalid after {attempt} attempts: "
                                f"{_scrub(str(exc), request.url)}",
                                fetched=fetched,
                                error=exc,
                            ) from exc
                elif response.status_code in RETRY_STATUSES:
                    last_error = HttpError(f"HTTP {response.status_code}", url=fetched.url, status=response.status_code)
                    wait = _retry_after(response.headers.get("retry-after"), self.retry.retry_after_max_s)
                    log.warning("%s %s attempt %d: HTTP %d", method, shown, attempt, response.status_code)
                else:
                    raise HttpError(
                        f"{method} {fetched.url}: HTTP {response.status_code}",
                        url=fetched.url,
                        status=response.status_code,
                        attempts=attempt,
                    )
            if attempt < self.retry.max_attempts:
                self._count("retries")
                self.sleep(wait if wait is not None else self.retry.backoff(attempt))
        raise HttpError(
            f"{method} {shown}: gave up after {self.retry.max_attempts} attempts: "
            f"{_scrub(str(last_error), request.url)}",
            url=shown,
            status=getattr(last_error, "status", None),
            attempts=self.retry.max_attempts,
        )

    def _shown(self, url: httpx.URL) -> str:
        """``url`` as it may leave the client: redacted; for a replay, the recorded file's ``file://`` URL."""
        shown = redact_url(str(url))
        if self._replay_uri is not None and shown.startswith(REPLAY_HOST):
            return self._replay_uri + shown[len(REPLAY_HOST) :]
        return shown

    def _read_body(self, response: httpx.Response, method: str, attempt: int) -> bytes:
        """The decoded body in one buffer, refused as soon as it passes ``max_body_bytes``."""
        limit = self.max_body_bytes

        def too_large(detail: str) -> ResponseTooLarge:
            url = self._shown(response.url)
            return ResponseTooLarge(
                f"{method} {url}: response larger than {limit} bytes ({detail}; limit HttpClient.max_body_bytes)",
                url=url,
                status=response.status_code,
                attempts=attempt,
                limit=limit,
            )

        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise too_large(f"Content-Length {declared}")
        # BytesIO grows in place and getvalue() hands its buffer over without a copy when the
        # writes are done, so a body costs about its size once (not join + copies).
        buffer = io.BytesIO()
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise too_large(f"stopped reading at {size} bytes")
            buffer.write(chunk)
        return buffer.getvalue()

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R | BaseException]:
        """``fn`` over ``items`` concurrently (at most ``max_concurrency`` at once), in order.

        An item whose call raised yields its exception in place of a result, so one bad item
        never hides the others.
        """
        items = list(items)
        if not items:
            return []

        def guarded(item: T) -> R | BaseException:
            try:
                return fn(item)
            except Exception as exc:
                return exc

        if self.max_concurrency <= 1 or len(items) == 1:
            return [guarded(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(guarded, items))

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1


def _retry_after(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


# -- URLs that leave the client ------------------------------------------------------------------
def redact_url(url: str) -> str:
    """``url`` safe to log or store: credentials replaced by ``***``, query string and fragment dropped.

    ``http://user:pw@host:8080/a/b?token=x`` -> ``http://***@host:8080/a/b``; a bare path keeps its path.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    if parts.scheme:
        return f"{parts.scheme}://{netloc}{parts.path}"
    return f"//{netloc}{parts.path}" if netloc else parts.path


def describe_endpoint(url: str) -> str:
    """``scheme://host[:port]/path`` of a configured URL, without credentials, query or trailing slash.

    Meant for what is recorded about a source (the ledger's ``provider``), where even ``***`` is noise.
    """
    parts = urlsplit(url.strip())
    hostport = parts.netloc.rpartition("@")[2]
    host = parts.hostname
    if host is not None:
        try:
            port = parts.port
        except ValueError:  # not a number: keep what was written
            port = None
        else:
            hostport = f"[{host}]" if ":" in host else host
            if port is not None:
                hostport = f"{hostport}:{port}"
    path = parts.path.rstrip("/")
    if parts.scheme:
        return f"{parts.scheme}://{hostport}{path}"
    return f"//{hostport}{path}" if hostport else path


def path_segment(value: str) -> str:
    """``value`` (from configuration: an id, a slug) as exactly one URL path segment.

    Every reserved character is percent-encoded, ``/`` included, so
    ``f"/organizations/{path_segment(org)}/events/"`` cannot reach another path; ``""``, ``"."``
    and ``".."`` are refused (they would change the path even encoded).
    """
    if not isinstance(value, str):
        raise TypeError(f"path segment must be a string, not {type(value).__name__}")
    if value in ("", ".", ".."):
        raise ValueError(f"{value!r} is not a usable path segment")
    return quote(value, safe="")


def _scrub(text: str, url: httpx.URL) -> str:
    """``text`` without the credentials of ``url`` (an exception message may quote them)."""
    secrets = {url.userinfo.decode("ascii", "replace"), url.password or ""}
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) > 1:
            text = text.replace(secret, "***")
    return text


class DirectoryTransport(httpx.BaseTransport):
    """Serves recorded responses from ``root`` (404 when absent), whatever the method and query.

    ``/a/b`` is served from ``<root>/a/b.json`` as ``application/json`` when it exists, else from
    ``<root>/a/b`` as is, else from the one ``<root>/a/b.<ext>`` (ICS, CSV, XML recordings), with a
    content type guessed from the file name. Nothing outside ``root`` is served (symlinks included).

    This is the replay mode of every API resource: point its base URL at ``file:///dir``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        relative = unquote(request.url.path).lstrip("/")
        found = self._find(relative)
        if found is None:
            return httpx.Response(404, json={"error": "not recorded", "path": request.url.path}, request=request)
        path, content_type = found
        return httpx.Response(200, content=path.read_bytes(), headers={"content-type": content_type}, request=request)

    def _find(self, relative: str) -> tuple[Path, str] | None:
        recorded = self._inside(self.root / f"{relative}.json")
        if recorded is not None:
            return recorded, "application/json"
        wanted = self.root / relative
        name = wanted.name
        found = self._inside(wanted)
        if found is None and name not in ("", ".", "..") and self._inside_dir(wanted.parent):
            prefix = name + "."
            siblings = [p for p in wanted.parent.iterdir() if p.name.startswith(prefix) and self._inside(p)]
            siblings = [p for p in siblings if "." not in p.name[len(prefix) :]]
            if len(siblings) != 1:
                return None  # none, or several (b.csv and b.xml): ambiguous, serve neither
            name, found = siblings[0].name, self._inside(siblings[0])
        return (found, guess_content_type(name)) if found is not None else None

    def _inside(self, candidate: Path) -> Path | None:
        path = candidate.resolve()
        return path if self.root in path.parents and path.is_file() else None

    def _inside_dir(self, candidate: Path) -> bool:
        path = candidate.resolve()
        return (path == self.root or self.root in path.parents) and path.is_dir()


_CONTENT_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".ics": "text/calendar",
    ".xml": "application/xml",
    ".txt": "text/plain",
    ".html": "text/html",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
    ".gz": "application/gzip",
    ".zip": "application/zip",
}


def guess_content_type(name: str) -> str:
    """The content type of a file by its extension: a fixed table for the usual source formats (the
    same on every machine), then ``mimetypes``, then ``application/octet-stream``."""
    suffix = Path(name).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
