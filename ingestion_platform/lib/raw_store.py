"""Raw landing zone and dead letters, on the local file system under the data directory.

Layout (``INGESTION_DATA_DIR``, default ``./.data``)::

    raw/<source>/<partition>/<request>.json.gz          the payload bytes exactly as received
    raw/<source>/<partition>/<request>.meta.json        url, status, fetched_at, sha256, size
    dead_letter/<source>/<partition>/<request>.json.gz  payload + error + traceback + context
    dead_letter/<source>/<partition>/_resolved/...      dead letters replayed successfully

Every payload is written before it is parsed (atomically: temp file + rename), so a parse bug never
loses data and ``reprocess_from_raw`` can rebuild tables without calling the source again. A record
or payload that cannot be parsed or loaded becomes a dead letter carrying its error; once the code is
fixed, reprocessing the partition replays it and moves the dead letter to ``_resolved``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from ingestion_platform.lib.warehouse import default_data_dir

_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def safe_name(name: str) -> str:
    """A request name usable as a file name (``R1/C2/participants`` -> ``R1_C2_participants``)."""
    cleaned = _SAFE.sub("_", name).strip("._")
    if not cleaned:
        raise ValueError(f"empty request name {name!r}")
    return cleaned


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

    def payload(self) -> bytes | None:
        """The payload bytes kept with the dead letter (None when the failure had no payload)."""
        record = json.loads(gzip.decompress(self.path.read_bytes()))
        text = record.get("payload")
        if text is None:
            return None
        if record.get("payload_encoding") == "latin-1":
            return text.encode("latin-1")
        return text.encode("utf-8")


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
    ) -> Path:
        """Store ``body`` verbatim (gzip) and its metadata; a re-fetch replaces the previous copy."""
        directory = self._raw_dir(source, partition)
        name = safe_name(request)
        info = {
            "request": request,
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "stored_at": dt.datetime.now(dt.UTC).isoformat(),
            **dict(meta or {}),
        }
        _atomic_write(directory / f"{name}.json.gz", gzip.compress(body, compresslevel=5, mtime=0))
        _atomic_write(directory / f"{name}.meta.json", json.dumps(info, default=str, indent=1).encode())
        return directory / f"{name}.json.gz"

    def read(self, source: str, partition: str, request: str) -> RawPayload:
        directory = self._raw_dir(source, partition)
        name = safe_name(request)
        body = gzip.decompress((directory / f"{name}.json.gz").read_bytes())
        meta_path = directory / f"{name}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return RawPayload(source, partition, meta.get("request", request), body, meta)

    def exists(self, source: str, partition: str, request: str) -> bool:
        return (self._raw_dir(source, partition) / f"{safe_name(request)}.json.gz").exists()

    def requests(self, source: str, partition: str) -> list[str]:
        """The request names stored for a partition, in name order."""
        directory = self._raw_dir(source, partition)
        if not directory.exists():
            return []
        names = []
        for meta in sorted(directory.glob("*.meta.json")):
            names.append(json.loads(meta.read_text()).get("request", meta.name[: -len(".meta.json")]))
        return names

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
    ) -> Path:
        """Keep a payload (or record) that could not be parsed or loaded, with its error."""
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
        letters = []
        for path in sorted(base.glob(pattern)):
            record = json.loads(gzip.decompress(path.read_bytes()))
            letters.append(
                DeadLetter(
                    source=record["source"],
                    partition=record["partition"],
                    request=record["request"],
                    error=record["error"],
                    context=record.get("context") or {},
                    created_at=record["created_at"],
                    path=path,
                )
            )
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
