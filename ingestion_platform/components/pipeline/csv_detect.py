"""Encoding and delimiter detection of CSV files, on the first bytes of a file.

Two functions, kept small so they can be unified with the carbon family's readers:

* ``detect_encoding(sample) -> str``: ``utf-8-sig`` when the file starts with a UTF-8 BOM, ``utf-8``
  when the sample decodes as UTF-8 (a multi-byte character cut at the end of the sample is allowed),
  else ``cp1252`` (Windows exports; every byte decodes, so nothing is lost).
* ``sniff_delimiter(text) -> str``: the candidate among ``, ; \\t |`` that splits the first lines
  into the same number (> 1) of fields most consistently, quotes respected.
"""

from __future__ import annotations

import csv
import io

CANDIDATES = (",", ";", "\t", "|")
SAMPLE_BYTES = 64 * 1024


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
    return "cp1252"


def sniff_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]  # the last line of a sample may be cut
    best, best_score = ",", (0, 0)
    for candidate in CANDIDATES:
        counts = [len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=candidate)]
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for n in counts if n == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = candidate, score
    return best
