"""HTTP client base for every API source: timeouts, retries, bounded concurrency, replay.

* Explicit connect/read timeouts on every request.
* Retries with exponential backoff and full jitter on 429 (honouring ``Retry-After``), 5xx,
  timeouts, connection resets and truncated bodies; a response whose body fails the caller's
  validation (truncated JSON behind a 200) is retried the same way, and when it still fails the
  last body is handed back in ``InvalidPayload`` so the caller can dead-letter it.
* ``map`` runs calls concurrently on a thread pool bounded by ``max_concurrency``; a semaphore also
  bounds requests made from any other thread.
* ``file://`` base URLs are served from a directory of recorded responses (``DirectoryTransport``):
  the same code path runs live, in tests and in the offline demo.
* Headers (tokens) are never logged; logged URLs carry no query string.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO, query string included: keep that out of run logs.
logging.getLogger("httpx").setLevel(logging.WARNING)

T = TypeVar("T")
R = TypeVar("R")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


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
    """A response body as bytes, with what the raw store needs to know about it."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]
    attempts: int
    elapsed_s: float

    def meta(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "elapsed_s": round(self.elapsed_s, 4),
            "content_type": self.headers.get("content-type"),
        }


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

    def __post_init__(self) -> None:
        base = self.base_url.rstrip("/")
        transport = self.transport
        if base.startswith("file://"):
            transport = DirectoryTransport(Path(unquote(urlsplit(base).path)))
            base = "http://replay.local"
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
        """GET ``path`` with retries.

        Statuses in ``ok_statuses`` or ``accept_statuses`` are returned (the caller decides what
        a 404 or 204 means); retryable failures are retried; anything else raises ``HttpError``.
        ``validate`` is called on an OK body; if it raises, the request is retried and finally
        ``InvalidPayload`` carries the last body.
        """
        accepted = set(self.ok_statuses) | set(accept_statuses)
        started = time.monotonic()
        last_error: Exception | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            wait: float | None = None
            try:
                with self._slots:
                    self._count("requests")
                    response = self._client.get(path, params=params)
                    body = response.read()
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error = exc
                log.warning("GET %s attempt %d: %s", _show(path), attempt, type(exc).__name__)
            else:
                fetched = Fetched(
                    url=_show(str(response.url)),
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
                        log.warning("GET %s attempt %d: invalid body (%s)", _show(path), attempt, exc)
                        if attempt == self.retry.max_attempts:
                            raise InvalidPayload(
                                f"GET {fetched.url}: body still invalid after {attempt} attempts: {exc}",
                                fetched=fetched,
                                error=exc,
                            ) from exc
                elif response.status_code in RETRY_STATUSES:
                    last_error = HttpError(f"HTTP {response.status_code}", url=fetched.url, status=response.status_code)
                    wait = _retry_after(response.headers.get("retry-after"), self.retry.retry_after_max_s)
                    log.warning("GET %s attempt %d: HTTP %d", _show(path), attempt, response.status_code)
                else:
                    raise HttpError(
                        f"GET {fetched.url}: HTTP {response.status_code}",
                        url=fetched.url,
                        status=response.status_code,
                        attempts=attempt,
                    )
            if attempt < self.retry.max_attempts:
                self._count("retries")
                self.sleep(wait if wait is not None else self.retry.backoff(attempt))
        raise HttpError(
            f"GET {_show(path)}: gave up after {self.retry.max_attempts} attempts: {last_error}",
            url=_show(path),
            status=getattr(last_error, "status", None),
            attempts=self.retry.max_attempts,
        )

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


def _show(url: str) -> str:
    """A URL safe to log: no query string (tokens may travel there), no credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path


class DirectoryTransport(httpx.BaseTransport):
    """Serves recorded responses: ``GET /a/b`` -> ``<root>/a/b.json`` (404 when absent).

    This is the replay mode of every API resource: point its base URL at ``file:///dir``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        relative = unquote(request.url.path).lstrip("/")
        path = (self.root / f"{relative}.json").resolve()
        if self.root not in path.parents or not path.is_file():
            return httpx.Response(404, json={"error": "not recorded", "path": request.url.path}, request=request)
        return httpx.Response(
            200, content=path.read_bytes(), headers={"content-type": "application/json"}, request=request
        )
