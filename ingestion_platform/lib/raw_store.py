"""Raw landing zone and dead letters, on the local file system under the data directory.

Layout (``INGESTION_DATA_DIR``, default ``./.data``)::

    raw/<source>/<partition>/<request>.json.gz          the payload bytes exactly as received
    raw/<source>/<partition>/<request>.meta.json        url, status, fetched_at, sha256, size
    raw/<source>/<partition>/<request>.file             a large file landed verbatim (``write_file``)
    dead_letter/<source>/<partition>/<request>.json.gz  payload + error + traceback + context
    dead_letter/<source>/<partition>/_resolved/...      dead letters replayed successfully

Every payload is written before it is parsed (atomically: temp file + rename), so a parse bug never
loses data and ``reprocess_from_raw`` can rebuild tables without calling the source again. A record
or payload that cannot be parsed or loaded becomes a dead letter carrying its error; once the code is
fixed, reprocessing the partition replays it and moves the dead letter to ``_resolved``.

Partitions are labels of days: ``2025-03-14`` (one day) or ``2025-03-01_2025-03-31`` (a fetch that
served a window of days). ``covering`` finds, for any days, the latest stored fetch that covers each
of them, so a replay or a check of any range finds its payloads whatever range fetched them.
File names are collision-free: a name that had to be sanitised carries a hash of the original
(``a b`` and ``a;b`` are two files).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import dagster as dg

from ingestion_platform.lib.warehouse import default_data_dir

_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def safe_name(name: str) -> str:
    """A request name usable as a file name, distinct for distinct names.

    Names made of ``[A-Za-z0-9._=-]`` stay as they are; others are sanitised and suffixed with a hash
    of the original, so two names never share a file (``R1/C2/participants`` ->
    ``R1_C2_participants-<8 hex>``).
    """
    cleaned = _SAFE.sub("_", name).strip("._")
    if not cleaned:
        raise ValueError(f"empty request name {name!r}")
    if cleaned != name:
        cleaned = f"{cleaned[:150]}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return cleaned


def label_days(label: str) -> tuple[dt.date, dt.date] | None:
    """``(first, last)`` day of a partition label (``2025-03-14`` or ``2025-03-01_2025-03-31``)."""
    try:
        first, _, last = label.partition("_")
        start = dt.date.fromisoformat(first)
        end = dt.date.fromisoformat(last) if last else start
    except ValueError:
        return None
    return (start, end) if start <= end else None


def window_label(first: dt.date, last: dt.date) -> str:
    """The partition label of the days ``first`` .. ``last`` (inclusive)."""
    return first.isoformat() if first == last else f"{first.isoformat()}_{last.isoformat()}"


@dataclass(frozen=True)
class RawPayload:
    source: str
    partition: str
    request: str
    body: bytes
    meta: dict[str, Any]


@dataclass(frozen=True)
class DeadLetter:
    source: str
    partition: str
    request: str
    error: str
    context: dict[str, Any]
    created_at: str
    path: Path
    origin: str = ""
    """The raw request the dead letter came from (itself for a payload; the page of a record)."""

    def days(self) -> tuple[dt.date, dt.date] | None:
        return label_days(self.partition)

    def payload(self) -> bytes | None:
        """The payload bytes kept with the dead letter (None when the failure had no payload)."""
        record = json.loads(gzip.decompress(self.path.read_bytes()))
        text = record.get("payload")
        if text is None:
            return None
        if record.get("payload_encoding") == "latin-1":
            return text.encode("latin-1")
        return text.encode("utf-8")


RAW_GZIP_LEVEL = 1  # raw payloads are written once per fetch and rarely read: the fastest level (7% larger)


class RawStore:
    """Write-once raw payloads and dead letters under ``root``."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_data_dir()

    # -- raw payloads ----------------------------------------------------------------------
    def _raw_dir(self, source: str, partition: str) -> Path:
        return self.root / "raw" / safe_name(source) / safe_name(partition)

    def write(
        self,
        source: str,
        partition: str,
        request: str,
        body: bytes,
        meta: Mapping[str, Any] | None = None,
        *,
        asset_key: str | None = None,
    ) -> Path:
        """Store ``body`` verbatim (gzip) and its metadata; a re-fetch replaces the previous copy.

        ``asset_key`` marks the partition as fetched by that asset, so ``covering`` can tell the
        fetches of two assets of one source apart.
        """
        directory = self._raw_dir(source, partition)
        if asset_key is not None:
            marker = directory / f".asset.{safe_name(asset_key)}"
            if not marker.exists():
                directory.mkdir(parents=True, exist_ok=True)
                marker.touch()
        name = safe_name(request)
        info = {
            "request": request,
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "stored_at": dt.datetime.now(dt.UTC).isoformat(),
            **dict(meta or {}),
        }
        _atomic_write(directory / f"{name}.json.gz", gzip.compress(body, compresslevel=RAW_GZIP_LEVEL, mtime=0))
        _atomic_write(directory / f"{name}.meta.json", json.dumps(info, default=str, indent=1).encode())
        return directory / f"{name}.json.gz"

    def read(self, source: str, partition: str, request: str) -> RawPayload:
        directory = self._raw_dir(source, partition)
        name = safe_name(request)
        body = gzip.decompress((directory / f"{name}.json.gz").read_bytes())
        meta_path = directory / f"{name}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return RawPayload(source, partition, meta.get("request", request), body, meta)

    def write_file(
        self,
        source: str,
        partition: str,
        request: str,
        path: Path,
        meta: Mapping[str, Any] | None = None,
        *,
        asset_key: str | None = None,
    ) -> Path:
        """Store the file at ``path`` verbatim, uncompressed, as ``<request>.file``: a large drop is
        copied by the OS in chunks, never held in memory. Read it back with ``open_payload``."""
        directory = self._raw_dir(source, partition)
        directory.mkdir(parents=True, exist_ok=True)
        if asset_key is not None:
            (directory / f".asset.{safe_name(asset_key)}").touch()
        name = safe_name(request)
        target = directory / f"{name}.file"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            digest = hashlib.sha256()
            with open(tmp, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        (directory / f"{name}.json.gz").unlink(missing_ok=True)
        stat = target.stat()
        info = {
            "request": request,
            "size": stat.st_size,
            "sha256": digest.hexdigest(),
            "path": str(path),
            "stored_at": dt.datetime.now(dt.UTC).isoformat(),
            **dict(meta or {}),
        }
        _atomic_write(directory / f"{name}.meta.json", json.dumps(info, default=str, indent=1).encode())
        return target

    def open_payload(self, source: str, partition: str, request: str) -> IO[bytes]:
        """A stored payload as a binary file to stream from: the ``.file`` copy or the ``.json.gz`` body."""
        directory = self._raw_dir(source, partition)
        name = safe_name(request)
        if (directory / f"{name}.file").exists():
            return open(directory / f"{name}.file", "rb")
        return gzip.open(directory / f"{name}.json.gz", "rb")

    def exists(self, source: str, partition: str, request: str) -> bool:
        return (self._raw_dir(source, partition) / f"{safe_name(request)}.json.gz").exists()

    def requests(self, source: str, partition: str) -> list[str]:
        """The request names stored for a partition, in name order."""
        return list(self.stored(source, partition))

    def stored(self, source: str, partition: str) -> dict[str, dict[str, Any]]:
        """``{request: its metadata}`` (``stored_at``, ``size``, ``sha256`` ...) of a partition, in name order."""
        directory = self._raw_dir(source, partition)
        if not directory.exists():
            return {}
        found: dict[str, dict[str, Any]] = {}
        for meta in sorted(directory.glob("*.meta.json")):
            info = json.loads(meta.read_text())
            found[info.get("request", meta.name[: -len(".meta.json")])] = info
        return found

    def labels(self, source: str) -> list[str]:
        """Partition labels with stored payloads for ``source``."""
        base = self.root / "raw" / safe_name(source)
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and label_days(p.name) is not None)

    def covering(self, source: str, days: list[dt.date], asset_key: str | None = None) -> dict[str, list[dt.date]]:
        """For each day, the latest stored fetch (partition label) whose days include it; with
        ``asset_key``, only the fetches that asset made (or unmarked ones).

        Returns ``{label: [days it serves]}``; days no stored fetch covers are left out.
        """
        candidates = []
        for label in self.labels(source):
            first, last = label_days(label)  # type: ignore[misc]
            directory = self._raw_dir(source, label)
            if asset_key is not None and not _fetched_by(directory, asset_key):
                continue
            stamps = [p.stat().st_mtime_ns for p in directory.glob("*.meta.json")]
            if stamps:
                candidates.append((max(stamps), first, last, label))
        candidates.sort(reverse=True)
        out: dict[str, list[dt.date]] = {}
        for day in days:
            for _stamp, first, last, label in candidates:
                if first <= day <= last:
                    out.setdefault(label, []).append(day)
                    break
        return out

    # -- dead letters ----------------------------------------------------------------------
    def _dead_dir(self, source: str, partition: str) -> Path:
        return self.root / "dead_letter" / safe_name(source) / safe_name(partition)

    def dead_letter(
        self,
        source: str,
        partition: str,
        request: str,
        error: BaseException | str,
        *,
        payload: bytes | None = None,
        context: Mapping[str, Any] | None = None,
        origin: str | None = None,
    ) -> Path:
        """Keep a payload (or record) that could not be parsed or loaded, with its error.

        ``origin`` names the raw request the record came from (default: ``request`` itself).
        """
        if isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}"
            trace = "".join(traceback.format_exception(error))
        else:
            message, trace = error, None
        text, encoding = None, None
        if payload is not None:
            try:
                text, encoding = payload.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                text, encoding = payload.decode("latin-1"), "latin-1"
        record = {
            "source": source,
            "partition": partition,
            "request": request,
            "origin": origin or request,
            "error": message,
            "traceback": trace,
            "context": dict(context or {}),
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "payload": text,
            "payload_encoding": encoding,
        }
        path = self._dead_dir(source, partition) / f"{safe_name(request)}.json.gz"
        _atomic_write(path, gzip.compress(json.dumps(record, default=str).encode(), mtime=0))
        return path

    def dead_letters(self, source: str | None = None, partition: str | None = None) -> list[DeadLetter]:
        """Unresolved dead letters, optionally for one source and partition."""
        base = self.root / "dead_letter"
        if not base.exists():
            return []
        pattern = f"{safe_name(source) if source else '*'}/{safe_name(partition) if partition else '*'}/*.json.gz"
        return [_letter(path) for path in sorted(base.glob(pattern))]

    def dead_letters_overlapping(self, source: str, first: dt.date, last: dt.date) -> list[DeadLetter]:
        """Unresolved dead letters of ``source`` filed under a day or window that meets ``first`` .. ``last``."""
        base = self.root / "dead_letter" / safe_name(source)
        if not base.exists():
            return []
        letters = []
        for directory in sorted(base.iterdir()):
            span = label_days(directory.name)
            if span is None or span[1] < first or span[0] > last:
                continue
            letters += [_letter(path) for path in sorted(directory.glob("*.json.gz"))]
        return letters

    def resolve(self, source: str, partition: str, request: str) -> bool:
        """Mark a dead letter as replayed: it moves to ``_resolved`` (kept for the audit trail)."""
        path = self._dead_dir(source, partition) / f"{safe_name(request)}.json.gz"
        if not path.exists():
            return False
        target = path.parent / "_resolved" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        return True


def _fetched_by(directory: Path, asset_key: str) -> bool:
    markers = list(directory.glob(".asset.*"))
    return not markers or (directory / f".asset.{safe_name(asset_key)}") in markers


def _letter(path: Path) -> DeadLetter:
    record = json.loads(gzip.decompress(path.read_bytes()))
    return DeadLetter(
        source=record["source"],
        partition=record["partition"],
        request=record["request"],
        error=record["error"],
        context=record.get("context") or {},
        created_at=record["created_at"],
        path=path,
        origin=record.get("origin") or record["request"],
    )


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RawStoreResource(dg.ConfigurableResource):
    """The raw store as a Dagster resource; ``data_dir`` empty means ``INGESTION_DATA_DIR``."""

    data_dir: str = ""

    def get(self) -> RawStore:
        return RawStore(self.data_dir or None)
